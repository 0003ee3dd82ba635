"""Record what the real ``align_image_stack`` and ``enfuse`` print, as test fixtures.

Usage::

    python tests/transcripts/record.py [--out DIR] [--case NAME ...]

The script makes small photos with Pillow in a temporary work folder, runs the
real tools on them to provoke each case below, and writes one JSON fixture per
case to ``DIR/<tool>/<case>.json`` (``DIR`` defaults to this script's folder).
Each fixture holds the tool, the case, the argv, the exit code, stdout, stderr,
the files the run wrote, the tool's version and the recording date.  The work
folder is replaced by ``{work}`` everywhere so the fixtures stay stable, and
the tools run with their bare name as ``argv[0]``, as stored.  Output is
decoded the way ``focuswrap.proc.run`` decodes it (UTF-8, undecodable bytes
replaced) and is otherwise stored exactly as the tool printed it: never edit a
fixture by hand, re-record it.  (Some runs print uninitialised memory, so a
few fixtures change a little at every recording; that is the tools, not us.)

The tools run with ``LC_ALL=C`` (untranslated messages) and
``OMP_NUM_THREADS=1`` (align_image_stack's per-cell lines in a stable order).
The whole recording takes a few seconds.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
ALIGN = "align_image_stack"
ENFUSE = "enfuse"
WORK = "{work}"
SIZE = (320, 240)
ENV = {"LC_ALL": "C", "OMP_NUM_THREADS": "1"}

# Flags of the default "miniature" preset: -m -e --use-given-order.
ALIGN_PRESET = ["-m", "-e", "--use-given-order"]
# The default preset's focus-stacking weights.
ENFUSE_PRESET = [
    "--exposure-weight=0",
    "--saturation-weight=0",
    "--contrast-weight=1",
    "--hard-mask",
    "--gray-projector=luminance",
    "--contrast-window-size=15",
]


# ---------------------------------------------------------------- inputs


def _texture(seed: int, size: tuple[int, int], shift: tuple[int, int] = (0, 0)) -> Image.Image:
    """Blurred colour noise (plenty of corners), cropped at ``shift`` from a larger canvas."""
    w, h = size
    margin = 20
    rng = random.Random(seed)
    cw, ch = w + 2 * margin, h + 2 * margin
    grey = bytes(rng.randrange(256) for _ in range(cw * ch))
    canvas = Image.merge(
        "RGB",
        [
            Image.frombytes("L", (cw, ch), grey),
            Image.frombytes("L", (cw, ch), bytes((v * 7) % 256 for v in grey)),
            Image.frombytes("L", (cw, ch), bytes((v * 13) % 256 for v in grey)),
        ],
    ).filter(ImageFilter.GaussianBlur(1.2))
    x, y = margin + shift[0], margin + shift[1]
    return canvas.crop((x, y, x + w, y + h))


def _spot(shift: tuple[int, int]) -> Image.Image:
    """A flat grey frame with one small target: exactly one control point to find."""
    im = Image.new("RGB", SIZE, (128, 128, 128))
    d = ImageDraw.Draw(im)
    x, y = 150 + shift[0], 110 + shift[1]
    d.rectangle((x, y, x + 8, y + 8), fill=(255, 255, 255))
    d.rectangle((x + 3, y + 3, x + 5, y + 5), fill=(0, 0, 0))
    return im


def _truncate(src: Path, dst: Path, keep: float) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])


def make_inputs(work: Path) -> None:
    """Write every input photo the cases use into ``work``."""
    _texture(1, SIZE).save(work / "frame-1.tif")
    _texture(1, SIZE, shift=(3, 2)).save(work / "frame-2.tif")  # the same scene, moved a little
    _texture(1, SIZE).save(work / "frame-1.jpg", quality=92)
    _texture(1, SIZE, shift=(3, 2)).save(work / "frame-2.jpg", quality=92)
    Image.new("RGB", SIZE, (128, 128, 128)).save(work / "flat-1.tif")
    Image.new("RGB", SIZE, (128, 128, 128)).save(work / "flat-2.tif")
    _texture(2, SIZE).save(work / "unrelated-1.tif")  # two different scenes
    _texture(3, SIZE).save(work / "unrelated-2.tif")
    _spot((0, 0)).save(work / "spot-1.tif")
    _spot((2, 1)).save(work / "spot-2.tif")
    _texture(1, (200, 150)).save(work / "small.tif")
    (work / "not-an-image.jpg").write_bytes(random.Random(4).randbytes(4096))
    # Cut off only the tail: enfuse pads each read error with kilobytes of garbage.
    _truncate(work / "frame-2.tif", work / "truncated.tif", keep=0.995)
    _truncate(work / "frame-2.jpg", work / "truncated.jpg", keep=0.6)
    (work / "notes.txt").write_text("a regular file, used as if it were a folder\n")
    (work / "out").mkdir()


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One provoked run: ``args(work)`` is the argv after the program name."""

    tool: str
    name: str
    description: str
    args: Callable[[Path], list[str]]
    #: Writes into {work}/full-disk, a link to the --full-disk folder.
    full_disk: bool = False


def _files(work: Path, *names: str) -> list[str]:
    return [os.fspath(work / n) for n in names]


def _align(*flags: str, prefix: str = "out/aligned_", preset: Sequence[str] = ALIGN_PRESET):
    def args(work: Path, inputs: Sequence[str]) -> list[str]:
        return [*preset, *flags, "-a", os.fspath(work / prefix), *_files(work, *inputs)]

    return args


def align_case(name: str, description: str, inputs: Sequence[str], *flags: str, full_disk: bool = False, **kw) -> Case:
    build = _align(*flags, **kw)
    return Case(ALIGN, name, description, lambda work: build(work, inputs), full_disk)


def enfuse_case(
    name: str,
    description: str,
    inputs: Sequence[str],
    *flags: str,
    output: str = "out/fused.tif",
    full_disk: bool = False,
) -> Case:
    def args(work: Path) -> list[str]:
        return [*ENFUSE_PRESET, *flags, f"--output={work / output}", *_files(work, *inputs)]

    return Case(ENFUSE, name, description, args, full_disk)


RECTILINEAR = ["-m", "--use-given-order"]  # the "rectilinear" preset: no -e
NO_FOV = ["--use-given-order"]  # a preset with optimize_fov = false

CASES: list[Case] = [
    # --- align_image_stack
    align_case("success", "Two textured frames of one scene, shifted by (3, 2) px.", ["frame-1.tif", "frame-2.tif"]),
    align_case(
        "success-verbose",
        "As success, with -v (what focuswrap passes to show progress).",
        ["frame-1.tif", "frame-2.tif"],
        "-v",
    ),
    align_case(
        "success-jpeg-without-exif",
        "Two JPEGs without EXIF: warnings on stderr, exit 0.",
        ["frame-1.jpg", "frame-2.jpg"],
    ),
    align_case(
        "success-one-control-point",
        "A single small target on grey: one control point, a warning, exit 0.",
        ["spot-1.tif", "spot-2.tif"],
    ),
    align_case("no-control-points", "Two flat grey frames with -m: nothing to match.", ["flat-1.tif", "flat-2.tif"]),
    align_case(
        "no-control-points-unrelated", "Two frames of different scenes with -m.", ["unrelated-1.tif", "unrelated-2.tif"]
    ),
    align_case(
        "no-control-points-after-pruning",
        "Good frames, but -t 0.0001 prunes every control point (with -m).",
        ["frame-1.tif", "frame-2.tif"],
        "-t",
        "0.0001",
    ),
    align_case("no-feature-points", "Two flat grey frames without -m.", ["flat-1.tif", "flat-2.tif"], preset=NO_FOV),
    align_case(
        "no-feature-points-verbose",
        "As no-feature-points, with -v.",
        ["flat-1.tif", "flat-2.tif"],
        "-v",
        preset=NO_FOV,
    ),
    align_case(
        "no-feature-points-after-pruning",
        "Good frames, -t 0.0001 prunes every point, without -m.",
        ["frame-1.tif", "frame-2.tif"],
        "-t",
        "0.0001",
        preset=NO_FOV,
    ),
    align_case(
        "optimization-error",
        "A rectilinear field of view over 180 degrees (-f 200): libpano13 rejects the parameters.",
        ["frame-1.tif", "frame-2.tif"],
        "-f",
        "200",
        preset=RECTILINEAR,
    ),
    align_case("different-sizes", "A 320x240 and a 200x150 frame.", ["frame-1.tif", "small.tif"]),
    align_case("undecodable-first", "The first photo is random bytes named .jpg.", ["not-an-image.jpg", "frame-1.tif"]),
    align_case(
        "undecodable-second", "The second photo is random bytes named .jpg.", ["frame-1.tif", "not-an-image.jpg"]
    ),
    align_case("missing-file-first", "The first photo does not exist.", ["missing.tif", "frame-1.tif"]),
    align_case("missing-file-second", "The second photo does not exist.", ["frame-1.tif", "missing.tif"]),
    align_case("damaged-tiff", "The second TIFF is cut off at 99.5 %.", ["frame-1.tif", "truncated.tif"]),
    align_case("damaged-jpeg", "The second JPEG is cut off at 60 %.", ["frame-1.jpg", "truncated.jpg"]),
    align_case("one-image", "A single photo.", ["frame-1.tif"]),
    align_case(
        "output-folder-missing",
        "The -a prefix is in a folder that does not exist.",
        ["frame-1.tif", "frame-2.tif"],
        prefix="missing-folder/aligned_",
    ),
    align_case(
        "output-not-writable",
        "The -a prefix is under a regular file (chmod does not stop root, so this stands in for it).",
        ["frame-1.tif", "frame-2.tif"],
        prefix="notes.txt/aligned_",
    ),
    align_case(
        "disk-full",
        "The aligned frames go to a filesystem with almost no room (--full-disk).",
        ["frame-1.tif", "frame-2.tif"],
        prefix="full-disk/aligned_",
        full_disk=True,
    ),
    Case(
        ALIGN,
        "pto-folder-missing",
        "Only -p into a folder that does not exist: it says it wrote the project but did not.",
        lambda work: [
            *ALIGN_PRESET,
            "-p",
            os.fspath(work / "missing-folder/project.pto"),
            *_files(work, "frame-1.tif", "frame-2.tif"),
        ],
    ),
    align_case("invalid-parameter", "-g 0 is out of range.", ["frame-1.tif", "frame-2.tif"], "-g", "0"),
    align_case("unknown-option", "An option this version does not know.", ["frame-1.tif", "frame-2.tif"], "--bogus"),
    Case(
        ALIGN,
        "no-output-option",
        "Neither -a, -p nor -o.",
        lambda work: [*ALIGN_PRESET, *_files(work, "frame-1.tif", "frame-2.tif")],
    ),
    # --- enfuse
    enfuse_case("success", "Two aligned frames.", ["frame-1.tif", "frame-2.tif"]),
    enfuse_case(
        "success-jpeg-output",
        "JPEG output: a warning about the alpha channel, exit 0.",
        ["frame-1.tif", "frame-2.tif"],
        output="out/fused.jpg",
    ),
    enfuse_case("different-sizes", "A 320x240 and a 200x150 frame.", ["frame-1.tif", "small.tif"]),
    enfuse_case(
        "undecodable-image", "The second photo is random bytes named .jpg.", ["frame-1.tif", "not-an-image.jpg"]
    ),
    enfuse_case("missing-file", "The second photo does not exist.", ["frame-1.tif", "missing.tif"]),
    enfuse_case("damaged-tiff", "The second TIFF is cut off at 99.5 %.", ["frame-1.tif", "truncated.tif"]),
    enfuse_case("damaged-jpeg", "The second JPEG is cut off at 60 %.", ["frame-1.jpg", "truncated.jpg"]),
    enfuse_case("single-image", "A single photo.", ["frame-1.tif"]),
    enfuse_case("no-images", "No photo at all.", []),
    enfuse_case(
        "output-folder-missing",
        "--output in a folder that does not exist.",
        ["frame-1.tif", "frame-2.tif"],
        output="missing-folder/fused.tif",
    ),
    enfuse_case(
        "output-not-writable",
        "--output under a regular file (stands in for a read-only folder).",
        ["frame-1.tif", "frame-2.tif"],
        output="notes.txt/fused.tif",
    ),
    enfuse_case(
        "disk-full",
        "The result goes to a filesystem with almost no room (--full-disk).",
        ["frame-1.tif", "frame-2.tif"],
        output="full-disk/fused.tif",
        full_disk=True,
    ),
    enfuse_case(
        "unknown-output-format",
        "--output with an extension no codec knows (.xyz).",
        ["frame-1.tif", "frame-2.tif"],
        output="out/fused.xyz",
    ),
    enfuse_case("unknown-option", "An option enfuse does not know.", ["frame-1.tif", "frame-2.tif"], "--bogus"),
]


# ---------------------------------------------------------------- running


def tool_version(exe: str, tool: str) -> str:
    """The version the tool reports (align_image_stack has no --version; its -h shows it)."""
    argv = [exe, "-h"] if tool == ALIGN else [exe, "--version"]
    done = subprocess.run(argv, capture_output=True, text=True, errors="replace", env=_env(), timeout=60)
    text = done.stdout + done.stderr
    pattern = r"align_image_stack version (\S+)" if tool == ALIGN else r"^enfuse (\S+)"
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1) if m else "unknown"


def _env() -> dict[str, str]:
    return {**os.environ, **ENV}


def _snapshot(work: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for folder, _, names in os.walk(work, followlinks=True):  # into {work}/full-disk too
        for name in names:
            path = Path(folder, name)
            found[path.relative_to(work).as_posix()] = path.stat().st_size
    return found


def _placeholder(text: str, work: Path) -> str:
    # Longest first, so /private/tmp/x is replaced before /tmp/x (macOS).
    for form in sorted({os.fspath(work), os.path.realpath(work)}, key=len, reverse=True):
        text = text.replace(form, WORK)
    return text


def record(case: Case, exe: str, version: str, work: Path) -> dict[str, object]:
    """Run one case in ``work`` and return its fixture."""
    shutil.rmtree(work / "out")
    (work / "out").mkdir()
    before = _snapshot(work)
    args = case.args(work)
    done = subprocess.run(
        [case.tool, *args],  # the tool sees its bare name as argv[0], as stored
        executable=exe,
        cwd=work,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",  # as focuswrap.proc.run decodes
        timeout=120,
    )
    after = _snapshot(work)
    written = sorted(f"{WORK}/{name}" for name in after if before.get(name) != after[name])
    for name in after:
        if name not in before:
            (work / name).unlink()  # the next case starts from the same inputs
    return {
        "tool": case.tool,
        "case": case.name,
        "description": case.description,
        "argv": [case.tool] + [_placeholder(a, work) for a in args],
        "env": ENV,
        "returncode": done.returncode,
        "stdout": _placeholder(done.stdout, work),
        "stderr": _placeholder(done.stderr, work),
        "written": written,
        "tool_version": version,
        "recorded": _dt.date.today().isoformat(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for <tool>/<case>.json (default: %(default)s)")
    parser.add_argument("--case", action="append", default=[], help="record only this case (repeatable)")
    parser.add_argument(
        "--full-disk",
        type=Path,
        help="an empty folder on a filesystem with under 200 KB free, for the disk-full cases "
        "(e.g. as root: mount -t tmpfs -o size=64k tmpfs DIR); without it they are skipped",
    )
    parser.add_argument("--align", default=shutil.which(ALIGN), help="align_image_stack to run")
    parser.add_argument("--enfuse", default=shutil.which(ENFUSE), help="enfuse to run")
    opts = parser.parse_args(argv)
    exes = {ALIGN: opts.align, ENFUSE: opts.enfuse}
    for tool, exe in exes.items():
        if not exe:
            parser.error(f"{tool} not found on PATH; pass --{'align' if tool == ALIGN else 'enfuse'}")
    versions = {tool: tool_version(exe, tool) for tool, exe in exes.items()}
    cases = [c for c in CASES if not opts.case or c.name in opts.case]
    if not cases:
        parser.error(f"no case named {opts.case}")
    work = Path(tempfile.mkdtemp(prefix="focuswrap-record."))
    try:
        make_inputs(work)
        if opts.full_disk is not None:
            (work / "full-disk").symlink_to(opts.full_disk.resolve(), target_is_directory=True)
        for case in cases:
            if case.full_disk and opts.full_disk is None:
                print(f"{case.tool:18} {case.name:34} skipped: needs --full-disk")
                continue
            fixture = record(case, exes[case.tool], versions[case.tool], work)
            target = opts.out / case.tool / f"{case.name}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(fixture, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{case.tool:18} {case.name:34} exit {fixture['returncode']:>3}  -> {target}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
