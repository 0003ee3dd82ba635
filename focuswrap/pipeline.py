"""The stack: check the photos, align (with the fallback ladder), fuse, deliver.

This is the library entry point behind ``focuswrap stack``; it only
orchestrates: the types are in :mod:`focuswrap.model`, the fallback ladder and
the cache around it in :mod:`focuswrap.ladder`, each Hugin tool in its
:mod:`focuswrap.hugin` module, and what an interface is told in :mod:`focuswrap.events`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from focuswrap import contribution, events, formats, inputs, ladder, paths, pixels, workspace
from focuswrap.discovery import Tools
from focuswrap.errors import (
    AlignmentFailed,
    BadInputError,
    FocuswrapError,
    FusionFailed,
    Interrupted,
    WriteFailed,
)

# Kept importable from here (their homes are model.py, ladder.py and fusion.py).
from focuswrap.fusion import _fuse_progress, cut_unfused_border, fuse_command, run_fusion, unfused_edge
from focuswrap.hugin import align
from focuswrap.ladder import (
    REMAP_PART_ENV,
    AlignCommands,
    _AlignProgress,
    align_commands,
    cpu_count,
    next_rung,
    run_alignment,
)
from focuswrap.model import (
    DEBUG_PTO,
    STACKED_SUFFIX,
    Attempt,
    EventReporter,
    Plan,
    Reporter,
    StackRequest,
    StackResult,
    attempt_dict,
    failed_event,
    finished_event,
    plural,
    result_warnings,
    sharpness_dict,
)
from focuswrap.workspace import _flatpak_work, work_folder

if TYPE_CHECKING:
    from PIL import Image

    from focuswrap.sharpness import SharpnessReport

__all__ = [
    "DEBUG_PTO",
    "REMAP_PART_ENV",
    "STACKED_SUFFIX",
    "AlignCommands",
    "Attempt",
    "Plan",
    "Reporter",
    "StackRequest",
    "StackResult",
    "_AlignProgress",
    "_flatpak_work",
    "_fuse_progress",
    "align_commands",
    "attempt_dict",
    "cpu_count",
    "failed_event",
    "finished_event",
    "next_rung",
    "plan",
    "prepare",
    "result_warnings",
    "run_alignment",
    "run_fusion",
    "sharpness_dict",
    "stack",
    "work_folder",
]


def prepare(request: StackRequest) -> tuple[list[inputs.Photo], Path, str, Path | None]:
    """Check photos and outputs before any tool runs: (photos, output, format, map path)."""
    given = inputs.expand_patterns(request.inputs)
    # "shots/*.jpg" run twice picks up the first run's IMG_1-stacked.jpg: leave earlier results out.
    earlier = [p for p in given if p.stem.endswith(STACKED_SUFFIX)]
    if earlier and len(given) - len(earlier) >= 2:
        given = [p for p in given if p not in earlier]
    ordered = inputs.order_photos(given, keep_order=request.keep_order)
    photos = inputs.check_photos(ordered)
    paths = [p.path for p in photos]
    output = request.output if request.output is not None else inputs.default_output(paths[0])
    output = inputs.check_output(output, paths, force=request.force)
    map_path = None
    if request.map_output is not None:
        if request.map_output.suffix.lower() != ".png":
            raise BadInputError(
                f"The contribution map is a PNG picture: name it with .png, not {request.map_output.name}."
            )
        if inputs.same_file(Path(request.map_output).absolute(), output):
            raise BadInputError(
                f"The contribution map and the result would both be {request.map_output.name}; give --map another name."
            )
        map_path = inputs.check_output(request.map_output, [*paths, output], force=request.force)
    return photos, output, inputs.output_format(output), map_path


def plan(request: StackRequest, tools: Tools) -> Plan:
    """The commands, exactly as :func:`stack` would run them first, in a placeholder work folder."""
    photos, output, fmt, _map = prepare(request)
    work = Path(tempfile.gettempdir()) / "focuswrap.XXXXXXXX"
    files = [p.path for p in photos]
    commands = align_commands(
        request.preset.preset.align,
        tools,
        formats.frame_paths(photos, work),
        work,
        verbose=request.verbose_tools,
        keep_temp=request.keep_temp,
        workers=cpu_count(),
    )
    fuse_argv = fuse_command(request, tools, commands.frames, work, fmt)
    notes = []
    if commands.remap:
        notes.append(
            "when every photo has the same exposure, focuswrap marks their colour response as linear "
            "in Hugin's project before nona runs: the same aligned photos, less work"
        )
        if "-C" in commands.align:
            notes.append(
                "if cropping (-C) finds a border to cut, nona remaps the first photo too (-i 0) "
                f"and enfuse gets {align.PREFIX}0000.tif in its place"
            )
    return Plan(files, output, commands.align, fuse_argv, commands.remap, commands.remap_env, notes)


def _deliver_map(target: Path | None, work: Path, files: list[Path], border: int = 0) -> Path | None:
    """Build the contribution map into a temporary file beside it, then move it into place."""
    if target is None:
        return None
    part = target.with_name(f".{target.name[:60]}.{os.getpid()}.focuswrap-part")
    try:
        contribution.build(work, [f.name for f in files], part, border=border)
        os.replace(part, target)
    except OSError as exc:
        raise WriteFailed(f"Could not write the contribution map {target}: {exc.strerror or exc}.") from None
    finally:
        part.unlink(missing_ok=True)
    return target


#: The end-of-stack sharpness report measures at 1/2 size: full size cost
#: about 0.5 s of CPU on the pcb stack (7 x 3 Mpx), half size 0.13 s.
#: The gain it reports is therefore the half-size one (2.3x on pcb, where the
#: full-size measure of the tests and the benchmark says 3.2x).
REPORT_SCALE = 2
#: Threads measuring sharpness once the tools are done.  While a tool runs,
#: even a lowest-priority thread slowed it down as much as its own CPU time
#: (OpenMP's threads wait for each other at every step): measured on pcb, the
#: inputs measured during enfuse made it 0.1 s slower.  After it, two threads
#: use both cores for the 0.2 CPU s the report needs.
REPORT_THREADS = 2


def stack(
    request: StackRequest,
    tools: Tools,
    reporter: Reporter | None = None,
    *,
    on_event: events.EventSink | None = None,
) -> StackResult:
    """Stack the photos into one all-in-focus image; raises FocuswrapError subclasses (or Interrupted).

    ``on_event`` receives every :mod:`focuswrap.events` event, ending with
    ``StackFinished`` or ``StackFailed``; so does ``reporter`` (a Reporter is an event sink).
    """
    out = EventReporter(reporter, on_event)
    try:
        result = _stack(request, tools, out)
    except (FocuswrapError, Interrupted) as exc:
        out._emit(failed_event(exc))
        raise
    out._emit(finished_event(result, out.warnings))
    return result


@contextlib.contextmanager
def _step(reporter: EventReporter, seconds: dict[str, float], name: str, detail: str, title: str) -> Iterator[None]:
    """One named step: announced, timed into ``seconds``, its end announced (not when it fails)."""
    t = time.monotonic()
    reporter.step(name, detail, title)
    yield
    seconds[name] = time.monotonic() - t
    reporter.step_finished(name, seconds[name])


class _Sharpness:
    """The end-of-stack sharpness report, measured on side threads.

    The inputs are measured once enfuse is done (REPORT_THREADS), the result
    while it is written; :meth:`cancel` stops whatever has not started.
    """

    def __init__(self, side: ThreadPoolExecutor, frames: list[Path], names: list[str], border: int) -> None:
        self.side, self.frames, self.names = side, frames, names
        self.border = border  # the inputs are measured over the area the result keeps
        self.parts: list[Future[tuple[float, ...]]] = []

    def measure_inputs(self) -> None:
        from focuswrap import sharpness

        n = REPORT_THREADS
        self.parts += [
            self.side.submit(sharpness.measure_all, self.frames[k::n], factor=REPORT_SCALE, border=self.border)
            for k in range(n)
        ]

    def measure_result(self, image: Image.Image) -> None:
        from focuswrap import sharpness

        self.result = self.side.submit(sharpness.measure_all, [image], factor=REPORT_SCALE)
        self.parts.append(self.result)

    def cancel(self) -> None:
        for part in self.parts:
            part.cancel()

    def report(self, reporter: EventReporter) -> SharpnessReport | None:
        """The report; a failed measurement is a warning, not a failure (the result is written)."""
        from focuswrap import sharpness

        inputs = self.parts[:-1]
        try:
            energies = [0.0] * len(self.frames)
            for k, part in enumerate(inputs):
                energies[k :: len(inputs)] = part.result()
            return sharpness.report_measured(self.result.result()[0], energies, self.names)
        except Exception as exc:  # noqa: BLE001 - (Ctrl-C, an Interrupted BaseException, passes through)
            reporter.warn(f"Could not measure sharpness: {exc}")
            return None


def _check(request: StackRequest, reporter: EventReporter) -> tuple[list[inputs.Photo], Path, str, Path | None]:
    """The check step: :func:`prepare`, and say what was left out or reordered."""
    photos, output, fmt, map_target = prepare(request)
    files = [p.path for p in photos]
    given = [Path(p).absolute() for p in request.inputs]
    left_out = [p for p in given if p not in files]
    if left_out:
        reporter.note("Left out earlier results: " + ", ".join(p.name for p in left_out))
    if not request.keep_order and [p for p in given if p in files] != files:
        reporter.note("Frames sorted in natural order: " + ", ".join(f.name for f in files))
    return photos, output, fmt, map_target


def _convert(photos: list[inputs.Photo], work: Path, reporter: EventReporter, seconds: dict[str, float]) -> list[Path]:
    """The frames Hugin reads: HEIF and raw photos become TIFFs in the work folder first."""
    converting = sum(formats.needs_conversion(p) for p in photos)
    step = (
        _step(
            reporter,
            seconds,
            "convert",
            f"{plural(converting, 'HEIF/raw photo')} to TIFF",
            f"Converting {plural(converting, 'HEIF or raw photo')} into pictures Hugin can read",
        )
        if converting
        else contextlib.nullcontext()
    )
    with step:
        frames = formats.prepare_frames(
            photos, work, on_frame=lambda done, total, path: reporter.progress("convert", done, total, path.name)
        )
    # No tool ever sees a name it could misread: unsafe ones are linked under generated names.
    return paths.stage(frames, work, [_frame_suffix(p) for p in photos])


def _frame_suffix(photo: inputs.Photo) -> str:
    """The extension a frame's generated name gets (the tools pick their reader by it)."""
    if formats.needs_conversion(photo):
        return ".tif"
    return {"JPEG": ".jpg", "PNG": ".png"}.get(inputs.INPUT_FORMATS.get(photo.format, "TIFF"), ".tif")


def _in_user_names(exc: AlignmentFailed | FusionFailed, frames: Sequence[Path], names: Sequence[str]) -> None:
    """Say the user's photo names in a failure where the tools said the generated ones."""
    for frame, name in zip(frames, names, strict=True):
        if not frame.name.startswith(paths.STAGED_STEM):
            continue
        for text in (os.fspath(frame), frame.name):
            exc.message = exc.message.replace(text, name)
            if exc.hint:
                exc.hint = exc.hint.replace(text, name)
            exc.stdout = exc.stdout.replace(text, name)
            exc.stderr = exc.stderr.replace(text, name)
    exc.args = (exc.message,)


def _keep_hint(exc: AlignmentFailed | FusionFailed, work: Path) -> None:
    # The .pto may be missing: align_image_stack may stop before writing it.
    kept = f"The work folder is kept for inspection: {work} ({DEBUG_PTO} there, if written, opens in Hugin)."
    exc.hint = f"{exc.hint}\n{kept}" if exc.hint else kept


def _stack(request: StackRequest, tools: Tools, reporter: EventReporter) -> StackResult:
    """:func:`stack`'s steps: check, convert, align (ladder and cache), fuse, finish."""
    from focuswrap import output as out_mod

    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    n = plural(len(request.inputs), "photo")
    with _step(reporter, seconds, "check", n, f"Checking {n}"):
        photos, output, fmt, map_target = _check(request, reporter)
    # -o into a folder that does not exist yet: it is made once there is a result to put in it.
    # Only such a folder: one that existed and went away (an unplugged drive) is a write failure.
    to_create = [t.parent for t in (output, map_target) if t is not None and not t.parent.is_dir()]
    files, names = [p.path for p in photos], [p.path.name for p in photos]
    # The work folder is the outer context: the side threads (which may read
    # converted frames from it) are finished before the folder is removed.
    with (
        work_folder(keep=request.keep_temp, inside=_flatpak_work(tools, files)) as work,
        ThreadPoolExecutor(max_workers=REPORT_THREADS, thread_name_prefix="focuswrap-report") as side,
    ):
        frames = _convert(photos, work, reporter, seconds)
        measure = _Sharpness(side, frames, names, unfused_edge(request, pixels.size_of(frames[0])))
        try:
            n = plural(len(files), "photo")
            with _step(reporter, seconds, "align", f"{len(files)} frames, preset {request.preset.name}",
                       f"Lining up {n} (preset {request.preset.name})"):  # fmt: skip
                aligned, attempts, cached = ladder.aligned_frames(request, tools, files, frames, work, reporter)
            with _step(reporter, seconds, "fuse", f"{len(aligned)} aligned frames",
                       f"Combining the sharpest parts of {plural(len(aligned), 'photo')}"):  # fmt: skip
                fused, image = run_fusion(
                    request, tools, aligned, work, reporter, fmt, when_done=measure.measure_inputs, names=names
                )
                origin = formats.layer_offset(image)  # on the canvas, before the unfused edge is cut
                fused, image, border = cut_unfused_border(request, fused, image, fmt, work)
            with _step(reporter, seconds, "finish", str(output), f"Writing {output.name}"):
                measure.measure_result(image)  # while the result is written
                with workspace.missing_folders(to_create):
                    size = out_mod.deliver(
                        fused, output, fmt=fmt, first_input=files[0], force=request.force,
                        orientation=photos[0].orientation, image=image,
                    )  # fmt: skip
                    map_path = _deliver_map(map_target, work, files, border)
                report = measure.report(reporter)
        except (AlignmentFailed, FusionFailed) as exc:
            _in_user_names(exc, frames, names)
            if request.keep_temp:
                _keep_hint(exc, work)
            measure.cancel()
            raise
        except BaseException:  # Ctrl-C, or an error: do not start measuring now
            measure.cancel()
            raise
        crop = _crop_box(image, frames[0], origin, border)
    seconds["total"] = time.monotonic() - t0
    return StackResult(
        output=output,
        size=size,
        preset=request.preset.name,
        inputs=files,
        attempts=attempts,
        seconds=seconds,
        sharpness=report,
        work_folder=work if request.keep_temp else None,
        cached=cached,
        map_output=map_path,
        crop=crop,
        crop_size=_shown_size(crop, photos[0].orientation),
    )


def _shown_size(crop: tuple[int, int, int, int] | None, orientation: int) -> tuple[int, int] | None:
    """The cropped result's size as shown (a photo turned a quarter by EXIF shows it turned)."""
    if crop is None:
        return None
    width, height = crop[2] - crop[0], crop[3] - crop[1]
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _crop_box(
    fused: Image.Image, first_frame: Path, origin: tuple[int, int], border: int
) -> tuple[int, int, int, int] | None:
    """The part of the first frame's canvas the result covers, when it is not all of it.

    ``first_frame`` is what the tools read (a raw or HEIF photo's converted
    TIFF), so its size is the canvas whatever the photo's header says.
    ``origin`` is where enfuse's result sat on the canvas, ``border`` what was
    cut from each of its sides since.
    """
    canvas = pixels.size_of(first_frame)  # also a float or 16-bit grey TIFF, which Pillow cannot open
    if fused.size == canvas and border == 0:
        return None
    left, top = origin[0] + border, origin[1] + border
    return (left, top, left + fused.width, top + fused.height)
