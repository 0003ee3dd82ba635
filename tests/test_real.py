"""Integration tests with the real align_image_stack and enfuse.

Every test is marked ``real`` (the conftest skips it, or fails it under
FOCUSWRAP_REQUIRE_REAL, when a tool is missing); those that use the
photographs in ../shared/stacks/pcb are marked ``pcb`` too.

The command line runs as a user runs it: ``python -m focuswrap`` in a
subprocess, with a private TMPDIR (so a work folder left behind is seen) and a
private FOCUSWRAP_HOME.  Stacks are costly (the seven pcb photos take 8-25 s
on two cores), so each stack runs once per module in a fixture and several
small tests look at its result.  Figures worth reading (gains, PSNR, the
result against the peer tool's) are printed: ``pytest -s`` shows them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import unfused_border
from PIL import Image

from focuswrap import presets, sharpness, synthetic

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parent.parent
PCB = REPO.parent / "shared" / "stacks" / "pcb"
REFERENCE = PCB / "reference-focus-stack.jpg"
#: Seconds one focuswrap command may take before the test gives up (the pcb stack needs most).
TIMEOUT = 300
#: The placeholder work folder --dry-run prints, e.g. /tmp/focuswrap.XXXXXXXX/aligned_.
PLACEHOLDER = re.compile(r"[^=]*focuswrap\.XXXXXXXX")
SYNTHETIC_SIZE = (640, 480)
FORMATS = {"jpg": "JPEG", "tif": "TIFF", "png": "PNG"}

# EXIF tags compared between the first photo and the result.
MAKE, MODEL, DATETIME = 0x010F, 0x0110, 0x0132


@dataclass(frozen=True)
class Run:
    """One finished ``python -m focuswrap ...``."""

    argv: list[str]
    cwd: Path | None
    env: dict[str, str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    #: The TMPDIR the command ran with: it must hold no focuswrap.* folder afterwards.
    tmpdir: Path

    def explain(self) -> str:
        return (
            f"$ {shlex.join(self.argv)}\nexit code {self.returncode} after {self.seconds:.1f} s\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )

    def assert_ok(self) -> None:
        assert self.returncode == 0, self.explain()

    def again(self) -> Run:
        """The very same command, run once more."""
        return _run(self.argv, cwd=self.cwd, env=self.env, tmpdir=self.tmpdir)


def focuswrap(*args: object, tmpdir: Path, home: Path | None = None, cwd: Path | None = None) -> Run:
    """Run ``python -m focuswrap ARGS`` with its own TMPDIR and FOCUSWRAP_HOME."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # The autouse fixture sets FOCUSWRAP_HOME for function-scoped tests; module fixtures pass their own.
    env["FOCUSWRAP_HOME"] = os.fspath(home if home is not None else os.environ["FOCUSWRAP_HOME"])
    for name in ("TMPDIR", "TEMP", "TMP"):
        env[name] = os.fspath(tmpdir)
    env["PYTHONIOENCODING"] = "utf-8"
    for name in ("FOCUSWRAP_HUGIN_DIR", "FOCUSWRAP_DEBUG"):
        env.pop(name, None)
    argv = [sys.executable, "-m", "focuswrap", *(os.fspath(a) if isinstance(a, Path) else str(a) for a in args)]
    return _run(argv, cwd=cwd, env=env, tmpdir=tmpdir)


def _run(argv: list[str], *, cwd: Path | None, env: dict[str, str], tmpdir: Path) -> Run:
    t0 = time.monotonic()
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=TIMEOUT
    )
    return Run(argv, cwd, env, done.returncode, done.stdout, done.stderr, time.monotonic() - t0, tmpdir)


def leftovers(run: Run, *folders: Path) -> list[Path]:
    """Work folders left in the run's TMPDIR and half-written results left in ``folders``."""
    found = list(run.tmpdir.glob("focuswrap.*"))
    for folder in folders:
        found += list(folder.glob("*.focuswrap-part"))
    return found


def fingerprint(paths: list[Path]) -> dict[str, tuple[str, int, int]]:
    """sha256, size and mtime of each file."""
    out = {}
    for p in paths:
        st = p.stat()
        out[p.name] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
    return out


def image_info(path: Path) -> tuple[str | None, tuple[int, int]]:
    with Image.open(path) as im:
        return im.format, im.size


# --------------------------------------------------------------------------- the pcb photographs


@dataclass(frozen=True)
class PcbStack:
    photos: list[Path]
    output: Path
    run: Run
    before: dict[str, tuple[str, int, int]]
    after: dict[str, tuple[str, int, int]]

    def result(self) -> dict:
        self.run.assert_ok()
        return json.loads(self.run.stdout)


@pytest.fixture(scope="module")
def pcb_stack(tmp_path_factory) -> PcbStack:
    """The seven pcb photos stacked once through the command line, with --json."""
    photos = sorted(PCB.glob("pcb_*.jpg"))
    if len(photos) < 2:
        pytest.skip(f"the real photographs are not present at {PCB}")
    base = tmp_path_factory.mktemp("pcb")
    out = base / "result" / "pcb-stacked.jpg"
    out.parent.mkdir()
    before = fingerprint(photos)
    run = focuswrap("stack", *photos, "-o", out, "--json", tmpdir=base / "tmp", home=base / "home")
    print(f"\npcb stack: {len(photos)} photos in {run.seconds:.1f} s (exit {run.returncode})")
    return PcbStack(photos, out, run, before, fingerprint(photos))


@pytest.mark.pcb
def test_pcb_stack_exits_0_with_one_json_object(pcb_stack):
    pcb_stack.run.assert_ok()
    assert isinstance(json.loads(pcb_stack.run.stdout), dict)


@pytest.mark.pcb
def test_pcb_result_is_a_jpeg_of_the_photos_size_less_the_unfused_edge(pcb_stack, pcb_photos):
    pcb_stack.run.assert_ok()
    assert image_info(pcb_photos[0]) == ("JPEG", (2048, 1536))
    b = unfused_border()  # 7: the pcb photos all cover the whole canvas, only enfuse's edge is cut
    assert b == 7
    assert image_info(pcb_stack.output) == ("JPEG", (2048 - 2 * b, 1536 - 2 * b))


@pytest.mark.pcb
def test_pcb_result_carries_the_first_photos_exif(pcb_stack, pcb_photos):
    pcb_stack.run.assert_ok()
    with Image.open(pcb_photos[0]) as im:
        first = im.getexif()
    with Image.open(pcb_stack.output) as im:
        result = im.getexif()
    wanted = {tag: first.get(tag) for tag in (MAKE, MODEL, DATETIME)}
    assert all(wanted.values()), f"pcb_001.jpg lacks some of the EXIF tags compared: {wanted}"
    assert {tag: result.get(tag) for tag in wanted} == wanted


@pytest.mark.pcb
def test_pcb_result_is_sharper_than_every_photo(pcb_stack):
    data = pcb_stack.result()
    result = sharpness.gradient_energy(pcb_stack.output)
    photos = {p.name: sharpness.gradient_energy(p) for p in pcb_stack.photos}
    best = max(photos, key=photos.__getitem__)
    print(f"\npcb: result {result:.1f}, sharpest photo {best} {photos[best]:.1f}: x{result / photos[best]:.2f}")
    assert all(result > e for e in photos.values()), (result, photos)
    # The gain focuswrap reports is measured at half size (pipeline.REPORT_SCALE) on
    # enfuse's TIFF; the same measure on the delivered JPEG agrees with it.
    from focuswrap.pipeline import REPORT_SCALE

    half = {p.name: sharpness.gradient_energy(sharpness.reduced(p, REPORT_SCALE)) for p in pcb_stack.photos}
    half_best = max(half, key=half.__getitem__)
    half_result = sharpness.gradient_energy(sharpness.reduced(pcb_stack.output, REPORT_SCALE))
    assert data["sharpness"]["sharpest_input"] == half_best
    assert data["sharpness"]["gain"] == pytest.approx(half_result / half[half_best], rel=0.05)
    assert data["sharpness"]["gain"] > 1.5


@pytest.mark.pcb
def test_pcb_json_has_the_documented_keys(pcb_stack):
    # docs/json.md: readers ignore keys they do not know, so new keys may be
    # added; the documented ones must stay.
    data = pcb_stack.result()
    assert set(data) >= {"output", "bytes", "preset", "inputs", "attempts", "seconds", "sharpness", "work_folder"}
    assert data["output"] == str(pcb_stack.output)
    assert data["bytes"] == pcb_stack.output.stat().st_size
    assert data["preset"] == presets.DEFAULT_PRESET
    assert data["inputs"] == [str(p) for p in pcb_stack.photos]
    assert data["attempts"], "no attempt recorded"
    for attempt in data["attempts"]:
        assert set(attempt) >= {"number", "flags", "added", "why", "diagnosis", "seconds"}
    assert [a["number"] for a in data["attempts"]] == list(range(1, len(data["attempts"]) + 1))
    assert data["attempts"][-1]["diagnosis"] == "ok"
    assert set(data["seconds"]) >= {"check", "align", "fuse", "finish", "total"}
    sharp = data["sharpness"]
    assert set(sharp) >= {"result", "sharpest_input", "sharpest_input_value", "gain"}
    assert sharp["gain"] == pytest.approx(sharp["result"] / sharp["sharpest_input_value"], abs=1e-3)
    assert data["work_folder"] is None


@pytest.mark.pcb
def test_pcb_photos_are_untouched(pcb_stack):
    assert pcb_stack.after == pcb_stack.before


@pytest.mark.pcb
def test_pcb_stack_leaves_no_work_folder(pcb_stack):
    pcb_stack.run.assert_ok()
    assert leftovers(pcb_stack.run, pcb_stack.output.parent) == []
    assert sorted(pcb_stack.output.parent.iterdir()) == [pcb_stack.output]


@pytest.mark.pcb
def test_pcb_result_against_the_peer_tools_reference(pcb_stack):
    pcb_stack.run.assert_ok()
    if not REFERENCE.is_file():
        pytest.skip(f"the peer tool's result is not present at {REFERENCE}")
    ours = sharpness.gradient_energy(pcb_stack.output)
    theirs = sharpness.gradient_energy(REFERENCE)
    ratio = ours / theirs
    b = unfused_border()  # our result lacks the edge enfuse does not blend: compare the same area
    with Image.open(REFERENCE) as ref:
        same_area = ref.crop((b, b, ref.width - b, ref.height - b))
    print(
        f"\npcb: gradient energy {ours:.1f} against focus-stack's {theirs:.1f}: x{ratio:.2f}; "
        f"PSNR between the two {sharpness.psnr(pcb_stack.output, same_area):.1f} dB"
    )
    # Not ground truth: only a sane band.  Far below means blur or misalignment;
    # far above means noise or halos that the peer tool does not make.
    assert 0.5 < ratio < 2.0


# --------------------------------------------------------------------------- a synthetic bracket


@pytest.fixture(scope="module")
def bracket(tmp_path_factory) -> synthetic.SyntheticStack:
    """Five synthetic frames (with focus breathing and shake) and the truth; tests only read them."""
    return synthetic.make_stack(tmp_path_factory.mktemp("bracket"), size=SYNTHETIC_SIZE)


@dataclass(frozen=True)
class SyntheticResult:
    ext: str
    output: Path
    run: Run


@pytest.fixture(scope="module", params=sorted(FORMATS))
def stacked(request, tmp_path_factory, bracket) -> SyntheticResult:
    """The synthetic bracket stacked once per output format through the command line."""
    ext = request.param
    base = tmp_path_factory.mktemp(f"stacked-{ext}")
    out = base / "result" / f"stacked.{ext}"
    out.parent.mkdir()
    run = focuswrap("stack", *bracket.frames, "-o", out, "--json", tmpdir=base / "tmp", home=base / "home")
    return SyntheticResult(ext, out, run)


def _crop(stacked) -> tuple[int, int, int, int]:
    """The area of the first frame the result covers (the default preset crops with -C)."""
    return tuple(json.loads(stacked.run.stdout)["crop"] or (0, 0, *SYNTHETIC_SIZE))


def test_synthetic_stack_writes_the_asked_format(stacked):
    stacked.run.assert_ok()
    left, top, right, bottom = _crop(stacked)
    assert image_info(stacked.output) == (FORMATS[stacked.ext], (right - left, bottom - top))
    assert json.loads(stacked.run.stdout)["output"] == str(stacked.output)
    assert leftovers(stacked.run, stacked.output.parent) == []


def test_synthetic_result_is_sharper_than_every_frame(stacked, bracket):
    stacked.run.assert_ok()
    result = sharpness.gradient_energy(stacked.output)
    frames = {f.name: sharpness.gradient_energy(f) for f in bracket.frames}
    best = max(frames, key=frames.__getitem__)
    print(
        f"\nsynthetic .{stacked.ext}: result {result:.1f}, sharpest frame {best} {frames[best]:.1f}: "
        f"x{result / frames[best]:.2f}"
    )
    assert all(result > e for e in frames.values()), (result, frames)


def test_synthetic_result_is_closer_to_the_truth_than_the_best_frame(stacked, bracket):
    stacked.run.assert_ok()
    box = _crop(stacked)  # frames and truth compared over the area the result covers
    truth = Image.open(bracket.truth).crop(box)
    result = sharpness.psnr(stacked.output, truth)
    frames = {f.name: sharpness.psnr(Image.open(f).crop(box), truth) for f in bracket.frames}
    best = max(frames, key=frames.__getitem__)
    print(f"\nsynthetic .{stacked.ext}: {result:.1f} dB PSNR to the truth, best frame {best} {frames[best]:.1f} dB")
    # Gain cannot see a misalignment, the distance to the truth can.  Today the
    # margin is about 8 dB; a shifted or badly fused result falls well below 3.
    assert result > frames[best] + 3.0


def test_rerun_without_force_leaves_the_result_untouched(stacked):
    stacked.run.assert_ok()
    before = fingerprint([stacked.output])
    again = stacked.run.again()
    assert again.returncode == 2, again.explain()
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    assert fingerprint([stacked.output]) == before
    assert leftovers(again, stacked.output.parent) == []


def _without_env(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """A shell line's leading NAME=value assignments, and the command after them."""
    env = {}
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
        name, value = tokens.pop(0).split("=", 1)
        env[name] = value
    return env, tokens


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def test_dry_run_prints_commands_that_really_run(bracket, tmp_path):
    out = tmp_path / "never-written.jpg"
    run = focuswrap("stack", *bracket.frames, "-o", out, "--dry-run", tmpdir=tmp_path / "tmp")
    run.assert_ok()
    lines = run.stdout.splitlines()
    # align_image_stack, nona (the default preset remaps with it; one part per core, each
    # with OMP_NUM_THREADS=1 in front), enfuse.
    programs = [_without_env(shlex.split(ln))[1][0].rsplit("/", 1)[-1] for ln in lines]
    parts = min(_cores(), len(bracket.frames) - 1)
    assert programs == ["align_image_stack", *["nona"] * parts, "enfuse"], run.explain()
    assert not out.exists()
    assert leftovers(run) == []

    # Run them by hand, as a user who copies them would, in a real work folder.
    work = tmp_path / "work"
    work.mkdir()
    commands = []
    for line in lines:
        env, argv = _without_env(shlex.split(line))
        assert any(PLACEHOLDER.search(a) for a in argv), f"no placeholder work folder in: {line}"
        commands.append((env, [PLACEHOLDER.sub(lambda _m: os.fspath(work), a) for a in argv]))
        assert "XXXXXXXX" not in " ".join(commands[-1][1])
    for env, argv in commands:
        done = subprocess.run(
            argv, cwd=work, capture_output=True, text=True, errors="replace", timeout=TIMEOUT, env={**os.environ, **env}
        )
        assert done.returncode == 0, f"$ {shlex.join(argv)}\n{done.stdout}\n{done.stderr}"

    aligned = sorted(work.glob("aligned_*.tif"))
    assert len(aligned) == len(bracket.frames) - 1  # the reference frame is fused as it is
    fused = [Path(a.split("=", 1)[1]) for a in commands[-1][1] if a.startswith("--output=")]
    assert len(fused) == 1, commands[-1]
    assert image_info(fused[0]) == ("TIFF", SYNTHETIC_SIZE)
    assert sharpness.gradient_energy(fused[0]) > max(sharpness.gradient_energy(f) for f in bracket.frames)


def test_awkward_file_names_stack_fine(bracket, tmp_path):
    # A name beginning with "-" must reach align_image_stack as a file, not an
    # option; spaces and non-ASCII must survive every hop.
    folder = tmp_path / "shots é"
    folder.mkdir()
    names = []
    for i, frame in enumerate(bracket.frames, 1):
        name = f"-frame {i} é.jpg"
        shutil.copyfile(frame, folder / name)
        names.append(name)
    # --no-crop: the whole canvas, whatever the frames cover.
    run = focuswrap("stack", "--no-crop", "-o", "-stacked é.jpg", "--", *names, cwd=folder, tmpdir=tmp_path / "tmp")
    run.assert_ok()
    out = folder / "-stacked é.jpg"
    assert image_info(out) == ("JPEG", SYNTHETIC_SIZE)
    assert sharpness.gradient_energy(out) > max(sharpness.gradient_energy(folder / n) for n in names)
    assert leftovers(run, folder) == []


# --------------------------------------------------------------------------- other commands


def test_demo_prints_sharpness_and_fidelity(tmp_path):
    folder = tmp_path / "demo"
    run = focuswrap("demo", folder, "-q", tmpdir=tmp_path / "tmp")
    run.assert_ok()
    gain = re.search(r"^\s*sharpness\s+([\d.]+)x the sharpest frame", run.stdout, re.M)
    fidelity = re.search(r"^\s*fidelity\s+([\d.]+) dB PSNR to the truth, against ([\d.]+) dB", run.stdout, re.M)
    assert gain and fidelity, run.explain()
    print(f"\ndemo: x{gain[1]} sharper, {fidelity[1]} dB against {fidelity[2]} dB for the best frame")
    assert float(gain[1]) > 1.0
    assert float(fidelity[1]) > float(fidelity[2])
    assert (folder / "stacked.jpg").is_file()
    # The synthetic frames breathe, so the default's -C crops; the summary says to what size.
    cropped = re.search(r"^\s*cropped\s+to (\d+)x(\d+), the area every frame covers", run.stdout, re.M)
    assert cropped, run.explain()
    with Image.open(folder / "stacked.jpg") as im:
        assert im.size == (int(cropped[1]), int(cropped[2]))
    assert leftovers(run, folder) == []


def test_unalignable_frames_climb_the_whole_ladder_then_advise(tmp_path):
    # Flat grey frames give align_image_stack nothing to match (see
    # tests/transcripts/align_image_stack/no-control-points.json).
    folder = tmp_path / "flat"
    folder.mkdir()
    frames = []
    for i in (1, 2, 3):
        frames.append(folder / f"flat-{i}.jpg")
        Image.new("RGB", (320, 240), (128, 128, 128)).save(frames[-1])
    out = folder / "flat-stacked.jpg"
    run = focuswrap("stack", *frames, "-o", out, "--preset", "miniature", tmpdir=tmp_path / "tmp")

    assert run.returncode == 4, run.explain()
    assert "Traceback" not in run.stdout + run.stderr
    assert "internal error" not in run.stderr
    ladder = presets.get("miniature").preset.ladder
    expected = 1 + len(ladder)
    assert expected == 5

    # The attempt table: "  #  flags  diagnosis", then one row per attempt.
    table = run.stderr.split("Attempts:\n", 1)
    assert len(table) == 2, run.explain()
    rows = [ln.split() for ln in table[1].splitlines() if re.match(r"^\s+\d+\s", ln)]
    assert [int(r[0]) for r in rows] == list(range(1, expected + 1)), run.explain()
    assert all(r[-1] == "no-control-points" for r in rows), run.explain()
    flags = [" ".join(r[1:-1]) for r in rows]
    for earlier, later in itertools.pairwise(flags):  # each rung keeps the ones before
        assert set(earlier.split()) < set(later.split()), flags

    advice = run.stderr.lower()
    assert "tripod" in advice and "steadier" in advice, run.explain()
    assert not out.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["flat-1.jpg", "flat-2.jpg", "flat-3.jpg"]
    assert leftovers(run) == []


def test_doctor_shows_both_real_versions(tmp_path):
    # The versions as the tools themselves tell them, read independently of focuswrap.
    align_help = subprocess.run(["align_image_stack", "-h"], capture_output=True, text=True, timeout=60)
    enfuse_v = subprocess.run(["enfuse", "-V"], capture_output=True, text=True, timeout=60)
    align_version = re.search(r"version (\S+)", align_help.stdout + align_help.stderr)
    enfuse_version = re.search(r"^enfuse (\S+)", enfuse_v.stdout + enfuse_v.stderr, re.M)
    assert align_version and enfuse_version

    run = focuswrap("doctor", tmpdir=tmp_path / "tmp")
    run.assert_ok()
    print(f"\ndoctor: align_image_stack {align_version[1]}, enfuse {enfuse_version[1]}")
    lines = {ln.split()[0]: ln for ln in run.stdout.splitlines() if ln.strip()}
    assert align_version[1] in lines["align_image_stack"], run.explain()
    assert enfuse_version[1] in lines["enfuse"].split(), run.explain()
    assert "NOT USABLE" not in run.stdout
