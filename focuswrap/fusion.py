"""The fuse step: enfuse on the aligned frames, its progress, and the checks of what it wrote.

Fusion problems are not retried: the ladder is about alignment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from focuswrap import contribution, diagnose, formats, pixels, proc
from focuswrap.discovery import Tools
from focuswrap.errors import FusionFailed, ToolTimeout, WriteFailed
from focuswrap.hugin import enfuse
from focuswrap.hugin.base import check_written, command_of
from focuswrap.model import EventReporter, StackRequest

if TYPE_CHECKING:
    from PIL import Image


def _fuse_progress(
    reporter: EventReporter, n: int, frames: Sequence[Path] = (), names: Sequence[str] = ()
) -> Callable[[str, str], None]:
    """enfuse reads every photo, then blends them, silently, for most of its time: the blending
    is the last of n + 1 parts (a total fixed up front), so the step stays live until enfuse ends."""
    photos = {f.name: name for f, name in zip(frames, names, strict=False)}  # names may be left out
    done = 0

    def on_line(stream: str, line: str) -> None:
        nonlocal done
        reporter.tool_line(enfuse.NAME, stream, line)
        name = enfuse.loading_image(line)
        if name is not None:
            done += 1
            base = os.path.basename(name)
            shown = f"{photos[base]} (photo {done} of {n})" if base in photos else base
            reporter.progress("fuse", done, n + 1, f"loading {shown}")
            if done == n:
                reporter.progress("fuse", n, n + 1, f"blending the sharpest parts of {n} photos into one")

    return on_line


def fuse_command(request: StackRequest, tools: Tools, frames: Sequence[Path], work: Path, fmt: str) -> list[str]:
    """enfuse's argv: the preset's fusion options, the frames, WORK/fused.tif (and masks for --map).

    ``fmt`` is the delivered format: for JPEG and PNG, enfuse's TIFF is only an
    intermediate and is written with PACKBITS (cheaper to write and read than LZW).
    """
    return enfuse.build_argv(
        command=command_of(tools.enfuse.command),
        options=request.preset.preset.fuse,
        inputs=frames,
        output=work / enfuse.FUSED,
        save_masks=contribution.save_masks_arg() if request.map_output else None,
        intermediate=fmt != "TIFF",
    )


def run_fusion(
    request: StackRequest,
    tools: Tools,
    aligned: list[Path],
    work: Path,
    reporter: EventReporter,
    fmt: str = "TIFF",
    *,
    when_done: Callable[[], None] | None = None,
    names: Sequence[str] = (),
) -> tuple[Path, Image.Image]:
    """Fuse the aligned frames into work/fused.tif; fusion problems are not retried.

    Returns the file and the picture in it, decoded once here for the checks,
    the sharpness report and the JPEG/PNG encoder.  ``when_done`` is called
    the moment enfuse exits 0, before its result is checked.
    """
    fused = work / enfuse.FUSED
    argv = fuse_command(request, tools, aligned, work, fmt)
    reporter.command(argv)
    try:
        done = proc.run(
            argv, cwd=work, timeout=request.timeout, on_line=_fuse_progress(reporter, len(aligned), aligned, names)
        )
    except ToolTimeout as exc:
        raise FusionFailed(
            str(exc), argv=exc.argv, returncode=None, stdout=exc.stdout, stderr=exc.stderr, hint=exc.hint
        ) from None
    diag = enfuse.classify(done.returncode, done.stdout, done.stderr)
    if diag.id == "ok" and when_done is not None:
        when_done()
    if diag.id == "out-of-memory":
        diag = dataclasses.replace(diag, explanation=_memory_needed(aligned))
    if diag.id != "ok":
        failure = FusionFailed(
            f"Fusion failed: {diag.explanation}",
            argv=argv,
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            hint=diagnose.final_advice(diag.id),
            unknown=diag.id == "unknown",
        )
        raise failure
    from PIL import Image

    try:
        size = pixels.size_of(aligned[-1])  # a remapped TIFF (the first may be the photo itself)
        # enfuse can exit 0 and write nothing usable, or a fully transparent picture.
        problem = check_written([fused], size)
        if problem is None:
            image = formats.load_fused(fused)
            problem = formats.check_fused(image)
    except (OSError, Image.DecompressionBombError) as exc:  # unreadable, truncated
        problem = f"its result cannot be read ({exc})"
    if problem is not None:
        raise FusionFailed(
            f"enfuse exited 0 but {problem}.",
            argv=argv,
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            hint=diagnose.final_advice("output-not-written"),
        )
    return fused, image


def _memory_needed(frames: Sequence[Path]) -> str:
    """The out-of-memory explanation with what fusing ``frames`` needs (:data:`enfuse.MB_PER_MEGAPIXEL`)."""
    from PIL import Image

    try:
        with Image.open(frames[-1]) as im:
            megapixels = im.width * im.height / 1e6
    except (OSError, Image.DecompressionBombError):
        return diagnose.DIAGNOSES["out-of-memory"].explanation
    need = enfuse.memory_needed(len(frames), megapixels)
    return (
        f"enfuse ran out of memory: fusing {len(frames)} photos of {megapixels:.1f} megapixels needs about "
        f"{need / 1024:.1f} GB ({enfuse.MB_PER_MEGAPIXEL} MB per megapixel per photo); "
        "use fewer or smaller photos, or close other programs."
    )


def unfused_edge(request: StackRequest, size: tuple[int, int]) -> int:
    """Pixels :func:`cut_unfused_border` cuts from each side of a result of ``size``: 0 in presets that do
    not crop, or for a picture too small to lose them."""
    border = enfuse.unfused_border(request.preset.preset.fuse)
    return border if request.preset.preset.align.crop and min(size) > 4 * border else 0


def cut_unfused_border(
    request: StackRequest, fused: Path, image: Image.Image, fmt: str, work: Path
) -> tuple[Path, Image.Image, int]:
    """Cut the edge enfuse did not fuse (:func:`enfuse.unfused_border`) in presets that crop.

    Returns the result file and picture to deliver, and how many pixels went
    from each side (0: none, as with ``--no-crop``, ``classic`` or a picture too
    small to lose them).  A TIFF result is written again, every sample as it was.
    """
    border = unfused_edge(request, image.size)
    width, height = image.size
    if border == 0:
        return fused, image, 0
    trimmed = image.crop((border, border, width - border, height - border))
    if fmt != "TIFF":
        return fused, trimmed, border
    target = work / f"trimmed-{fused.name}"
    try:
        pixels.trim_tiff(fused, target, border)
    except OSError as exc:
        raise WriteFailed(
            f"Could not write the result in the work folder {work}: {exc.strerror or exc}; "
            "free some space there or point TMPDIR at another folder."
        ) from None
    return target, trimmed, border
