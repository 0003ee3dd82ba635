"""The stack: check the photos, align (with the fallback ladder), fuse, deliver.

This is the library entry point behind ``focuswrap stack``; ``cli.py`` only
parses options and shows what :class:`Reporter` is told.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from focuswrap import cache, contribution, diagnose, discovery, events, formats, inputs, proc
from focuswrap.discovery import Tool, Tools
from focuswrap.errors import (
    AlignmentFailed,
    BadInputError,
    FocuswrapError,
    FusionFailed,
    Interrupted,
    ToolFailed,
    ToolTimeout,
    WriteFailed,
)
from focuswrap.hugin import align, enfuse, nona, pto
from focuswrap.presets import AlignOptions, NamedPreset, Rung

if TYPE_CHECKING:
    from PIL import Image


class Reporter:
    """Receives what happens during a stack; the default shows nothing.

    ``cli.py`` subclasses it for the terminal (live progress) and for plain
    lines; tests subclass it to record events.
    """

    def __enter__(self) -> Reporter:
        """A reporter is a context: a live display starts and stops with it."""
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def step(self, name: str, detail: str = "") -> None:
        """A step starts: check, align, fuse, finish."""

    def progress(self, step: str, done: int, total: int, label: str = "") -> None:
        """Progress inside a step, parsed from the tool's own output."""

    def attempt(self, attempt: Attempt, total: int) -> None:
        """An alignment attempt starts (attempt.added/why say what changed)."""

    def attempt_failed(self, attempt: Attempt) -> None:
        """An alignment attempt failed with attempt.diagnosis."""

    def command(self, argv: Sequence[str]) -> None:
        """A tool is about to run with this argv."""

    def tool_line(self, tool: str, stream: str, line: str) -> None:
        """One line of a tool's output (shown with --verbose)."""

    def note(self, text: str) -> None:
        """Something worth telling the user (order used, warnings)."""


class _Emitting(Reporter):
    """Tells the caller's :class:`Reporter` and the typed event sink alike.

    The pipeline talks to this one object; every call becomes one event of
    :mod:`focuswrap.events` for ``on_event`` (and the old Reporter call, for the
    interfaces that still take one).
    """

    def __init__(self, inner: Reporter, sink: events.EventSink | None) -> None:
        self.inner = inner
        self.sink = sink
        self.warnings: list[str] = []

    def _emit(self, event: events.Event) -> None:
        if self.sink is not None:
            self.sink(event)

    def step(self, name: str, detail: str = "", title: str = "") -> None:
        self.inner.step(name, detail)
        index = events.STEPS.index(name) + 1 if name in events.STEPS else 0
        self._emit(events.StepStarted(name, index, len(events.STEPS), title or detail, detail))

    def step_finished(self, name: str, seconds: float) -> None:
        self._emit(events.StepFinished(name, round(seconds, 3)))

    def progress(self, step: str, done: int, total: int, label: str = "") -> None:
        self.inner.progress(step, done, total, label)
        self._emit(events.StepProgress(step, done, total, label))

    def attempt(self, attempt: Attempt, total: int) -> None:
        self.inner.attempt(attempt, total)
        self._emit(events.AttemptStarted(attempt.number, total, attempt.added, attempt.why))

    def attempt_failed(self, attempt: Attempt) -> None:
        self.inner.attempt_failed(attempt)
        d = attempt.diagnosis
        self._emit(
            events.AttemptFailed(
                attempt.number, d.id if d else "unknown", d.explanation if d else "", attempt.next_change
            )
        )

    def command(self, argv: Sequence[str]) -> None:
        self.inner.command(argv)
        self._emit(events.ToolCommand(tool_name(argv), tuple(argv)))

    def tool_line(self, tool: str, stream: str, line: str) -> None:
        self.inner.tool_line(tool, stream, line)
        self._emit(events.ToolOutput(tool, stream, line))

    def note(self, text: str) -> None:
        self.inner.note(text)
        self._emit(events.Notice(text, "info"))

    def warn(self, text: str) -> None:
        """A warning: shown like a note, and listed in the result."""
        self.inner.note(text)
        self.warnings.append(text)
        self._emit(events.Notice(text, "warning"))


def tool_name(argv: Sequence[str]) -> str:
    """Which Hugin tool an argv runs (its program may be a Flatpak launcher)."""
    names = (align.NAME, nona.NAME, enfuse.NAME)
    for arg in argv:
        base = os.path.basename(arg).removesuffix(".exe")
        for name in names:
            if base == name or arg.endswith(f"--command={name}"):
                return name
    return os.path.basename(argv[0]) if argv else ""


@dataclass
class Attempt:
    """One run of align_image_stack with the ladder rungs applied so far."""

    number: int
    options: AlignOptions
    added: str = ""  # flags this attempt added, e.g. "-i"
    why: str = ""
    diagnosis: diagnose.Diagnosis | None = None
    seconds: float = 0.0
    #: What the next attempt changes, in words, once this one failed ("" when none follows).
    next_change: str = ""

    @property
    def ok(self) -> bool:
        return self.diagnosis is not None and self.diagnosis.id == "ok"


@dataclass
class StackRequest:
    """Everything ``focuswrap stack`` was asked to do."""

    inputs: Sequence[Path]
    preset: NamedPreset
    output: Path | None = None
    force: bool = False
    keep_temp: bool = False
    keep_order: bool = False
    retry: bool = True
    max_attempts: int | None = None
    timeout: float = 1800.0
    verbose_tools: bool = True  # pass -v to align_image_stack (its progress lines)
    use_cache: bool = (
        False  # (the CLI turns it on) reuse aligned frames from an earlier run with the same photos and align options
    )
    cache_max_bytes: int = 2048 * 1024 * 1024
    map_output: Path | None = None  # --map: write the contribution map here


@dataclass
class StackResult:
    output: Path
    size: int
    preset: str
    inputs: list[Path]
    attempts: list[Attempt]
    seconds: dict[str, float] = field(default_factory=dict)
    sharpness: object | None = None  # sharpness.SharpnessReport
    work_folder: Path | None = None  # kept with --keep-temp
    cached: bool = False  # aligned frames came from the cache (no alignment ran)
    map_output: Path | None = None
    #: (left, top, right, bottom) of the first photo's pixels (as stored, before
    #: EXIF orientation) that the result covers, when -C cropped; else None.
    crop: tuple[int, int, int, int] | None = None
    #: The result's size as shown (after EXIF orientation), when cropped.
    crop_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class Plan:
    """The exact commands a stack would run (for --dry-run)."""

    inputs: list[Path]
    output: Path
    align_argv: list[str]
    fuse_argv: list[str]
    remap_argvs: list[list[str]] = field(default_factory=list)  # nona, when the preset remaps with it
    remap_env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what depends on the project align_image_stack writes

    def shell_lines(self) -> list[str]:
        # nona's parts run side by side; typed one after the other they give the same frames.
        prefix = "".join(f"{k}={shlex.quote(v)} " for k, v in self.remap_env.items())
        return [
            shlex.join(self.align_argv),
            *(prefix + shlex.join(c) for c in self.remap_argvs),
            shlex.join(self.fuse_argv),
        ]


#: default_output names results FIRST-stacked.EXT.
STACKED_SUFFIX = "-stacked"
#: The project file align_image_stack writes with --keep-temp (opens in Hugin).
DEBUG_PTO = "debug.pto"


@contextlib.contextmanager
def work_folder(*, keep: bool, inside: Path | None = None) -> Iterator[Path]:
    """A private temporary folder, removed afterwards (also on error and Ctrl-C) unless ``keep``.

    ``inside`` puts it in that folder instead of the system's temporary one.
    """
    try:
        if inside is not None:
            inside.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="focuswrap.", dir=inside))
    except OSError as exc:
        where = inside if inside is not None else tempfile.gettempdir()
        raise WriteFailed(
            f"Could not create a work folder in {where}: {exc.strerror or exc}; "
            "free some space there or point TMPDIR at another folder."
        ) from None
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def _flatpak_work(tools: Tools, photos: Sequence[Path]) -> Path | None:
    """Where the work folder must go for a Flatpak Hugin, which sees only the home folder.

    The Flatpak sandbox has its own private /tmp, so the work folder goes
    under the user cache folder; photos outside the home folder cannot be
    read at all, which is said before anything runs.
    """
    if not (tools.align.flatpak or tools.enfuse.flatpak):
        return None
    home = Path.home().resolve()
    outside = [p for p in photos if home not in Path(p).resolve().parents]
    if outside:
        raise BadInputError(
            f"The Flatpak Hugin can read only files under your home folder ({home}); "
            f"{outside[0]} is outside it: copy the photos into your home folder first."
        )
    from focuswrap import paths

    return paths.cache_dir() / "work"


def _command(tool: Tool) -> list[str]:
    """The tool's argv prefix, its program made absolute when given as a relative path.

    The tools run with the work folder as their cwd, where a relative
    ``--hugin-dir bin`` (or FOCUSWRAP_HUGIN_DIR) would no longer point at them.
    """
    program, *rest = tool.command
    if not os.path.isabs(program) and (os.sep in program or (os.altsep and os.altsep in program)):
        program = os.path.abspath(program)
    return [program, *rest]


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
        map_path = inputs.check_output(request.map_output, [*paths, output], force=request.force)
    return photos, output, inputs.output_format(output), map_path


@dataclass(frozen=True)
class AlignCommands:
    """How one alignment attempt runs: align_image_stack, then nona or nothing."""

    align: list[str]
    remap: list[list[str]]  # nona's argvs (run side by side), when the preset remaps with it; else empty
    frames: list[Path]  # what enfuse then fuses, in stack order
    project: Path | None = None  # the .pto align_image_stack writes (for nona, or kept with --keep-temp)

    @property
    def remap_env(self) -> dict[str, str]:
        """The environment nona's parts add: one thread each when there are several."""
        return dict(REMAP_PART_ENV) if len(self.remap) > 1 else {}

    @property
    def written(self) -> list[Path]:
        """The frames the tools write (the work folder's aligned_NNNN.tif)."""
        return [f for f in self.frames if f.name.startswith(align.PREFIX)]


#: nona uses every core for one frame at a time, but reading and writing a
#: frame is serial: on 2 cores two single-threaded nonas, each remapping every
#: other frame, finish sooner (pcb, 6 frames: 2.22 s against 2.35 s).
REMAP_PART_ENV = {"OMP_NUM_THREADS": "1"}


def cpu_count() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def align_commands(
    options: AlignOptions,
    tools: Tools,
    frames: Sequence[Path],
    work: Path,
    *,
    verbose: bool,
    keep_temp: bool,
    cropped: bool = False,
    workers: int = 1,
) -> AlignCommands:
    """The commands of one alignment attempt with ``options``.

    With ``remap = "nona"`` (and nona installed beside align_image_stack),
    align_image_stack only finds control points and optimises, writing the
    project file, and nona remaps the frames from it, uncompressed.  The
    reference (first) frame is then not remapped at all but fused as it is:
    align_image_stack keeps it fixed and maps the output onto it, so its
    remap is the identity (checked on the pcb stack: at most 1 level of
    rounding difference).  That holds only while the canvas is not
    ``cropped`` (-C found an area smaller than the canvas, which is known
    only once align_image_stack has written the project): then nona remaps
    the reference too, cropped like the others.  With ``workers`` > 1 the
    frames nona remaps are shared out among that many nonas (every
    ``workers``-th frame each), run side by side with one thread each.
    """
    nona_tool = discovery.companion(tools.align, nona.NAME) if options.remap == "nona" else None
    prefix = work / align.PREFIX
    remapped = align.expected_outputs(prefix, len(frames))
    project = work / DEBUG_PTO if (keep_temp or nona_tool is not None) else None
    align_argv = align.build_argv(
        command=_command(tools.align),
        options=options,
        inputs=frames,
        prefix=None if nona_tool is not None else prefix,
        verbose=verbose,
        pto=project,
    )
    if nona_tool is None:
        return AlignCommands(align_argv, [], remapped, project)
    reuse_reference = not cropped
    indices = list(range(1 if reuse_reference else 0, len(frames)))
    parts = max(1, min(workers, len(indices)))
    if parts == 1:
        subsets = [indices if reuse_reference else None]
    else:
        subsets = [indices[k::parts] for k in range(parts)]
    remap_argvs = [
        nona.build_argv(command=_command(nona_tool), project=project, prefix=prefix, verbose=verbose, only=only)
        for only in subsets
    ]
    fused_frames = [Path(frames[0]), *remapped[1:]] if reuse_reference else remapped
    return AlignCommands(align_argv, remap_argvs, fused_frames, project)


def _prepare_project(commands: AlignCommands, make_commands) -> AlignCommands:
    """Read the project align_image_stack wrote before nona remaps from it.

    A crop (-C found an area smaller than the canvas) means nona must remap
    the reference frame too (``make_commands(cropped=True)``).  A bracket shot
    at one exposure gets a linear response curve (:func:`pto.with_linear_response`),
    which makes nona's photometric round trip cheap without changing it.
    """
    project = commands.project
    try:
        text = project.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return commands  # nona will say what is wrong with it
    if pto.crop(text) is not None:
        commands = make_commands(cropped=True)
    linear = pto.with_linear_response(text)
    if linear is not None:
        project.write_text(linear, encoding="utf-8", errors="surrogateescape")
    return commands


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


def next_rung(preset: NamedPreset, diagnosis_id: str, used: list[Rung]) -> Rung | None:
    """The next rung to try after ``diagnosis_id``: the first unused rung that helps it.

    Rungs are tried in order, first success wins; a rung tied to other
    diagnoses (``helps``) is passed over, and rungs already used stay applied.
    """
    for rung in preset.preset.ladder:
        if rung in used:
            continue
        if not rung.helps or diagnosis_id in rung.helps:
            return rung
    return None


_CP_PAIR = re.compile(r"^Creating control points between ")
_SAVING = re.compile(r"^saving (?P<file>\S.*)$")


class _AlignProgress:
    """Counts align_image_stack's control-point pairs, then the frames written (by it or by nona's parts).

    The total is fixed up front (one step per pair of neighbouring photos, one per photo lined
    up): a photo that needs no remapping (the reference, unless -C crops) counts as lined up
    as soon as that is known, so the count never jumps from [4/8] to [5/9].
    """

    def __init__(self, reporter: Reporter, pairs: int, remaps: int, names: Sequence[str] = ()) -> None:
        self.reporter = reporter
        self.pairs = pairs
        self.frames = max(remaps, len(names))
        self.total = pairs + self.frames
        self.names = list(names)
        #: aligned_NNNN.tif -> (its photo's number, name): labels name the user's photos.
        written = align.expected_outputs(align.PREFIX, len(names))
        self.photos = {f.name: (k, name) for k, (f, name) in enumerate(zip(written, names, strict=True), 1)}
        self.count = len(names)
        self.done = 0
        self.lock = threading.Lock()  # nona's parts report from several threads

    def remaps(self, count: int) -> None:
        """How many frames will be written, once known: the others are already in place."""
        with self.lock:
            self.done += max(0, self.frames - count)

    def __call__(self, stream: str, line: str) -> None:
        self.reporter.tool_line(align.NAME, stream, line)
        if _CP_PAIR.match(line):
            pair = min(self.done + 1, self.pairs)
            label = f"comparing photo {pair + 1} with photo {pair}"
            if pair < len(self.names):
                label += f" ({self.names[pair]})"
        elif (m := _SAVING.match(line)) is not None:
            written = os.path.basename(m.group("file"))
            if written in self.photos:
                number, name = self.photos[written]
                label = f"lining up photo {number} of {self.count} ({name})"
            else:
                label = f"remapping {written}"
        else:
            return
        with self.lock:
            self.done += 1
            self.reporter.progress("align", min(self.done, self.total), self.total, label)


def _fuse_progress(reporter: Reporter, n: int, frames: Sequence[Path] = (), names: Sequence[str] = ()):
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


def _check_written(files: Sequence[Path], size: tuple[int, int] | None) -> str | None:
    """Why the tool's output is unusable, or None when every file is there and sized right."""
    from PIL import Image

    for f in files:
        if not f.is_file() or f.stat().st_size == 0:
            return f"{f.name} was not written"
        if size is not None:
            with Image.open(f) as im:
                if im.size != size:
                    return f"{f.name} is {im.size[0]}x{im.size[1]}, expected {size[0]}x{size[1]}"
    return None


def run_alignment(
    request: StackRequest,
    tools: Tools,
    files: list[Path],
    work: Path,
    reporter: Reporter,
    *,
    names: Sequence[str] = (),
) -> tuple[list[Path], list[Attempt]]:
    """Align, climbing the preset's fallback ladder on retryable failures.

    ``names`` are the user's photos' names, in stack order, for the progress labels.
    """
    preset = request.preset
    limit = 1 if not request.retry else (request.max_attempts or 1 + len(preset.preset.ladder))
    used: list[Rung] = []
    attempts: list[Attempt] = []
    current = Attempt(1, preset.preset.align)
    while True:
        for f in work.glob(f"{align.PREFIX}*.tif"):
            f.unlink()  # a failed attempt may leave some frames behind
        make_commands = functools.partial(
            align_commands,
            current.options,
            tools,
            files,
            work,
            verbose=request.verbose_tools,
            keep_temp=request.keep_temp,
            workers=cpu_count(),
        )
        commands = make_commands()
        argv = commands.align
        ran = argv  # the command the failure report shows: nona's when nona failed
        attempts.append(current)
        reporter.attempt(current, limit)
        reporter.command(argv)
        try:
            # nona -v prints the same "saving" lines, so one progress count runs through both.
            progress = _AlignProgress(reporter, len(files) - 1, len(commands.written), names)
            done = proc.run(argv, cwd=work, timeout=request.timeout, on_line=progress)
            diag = diagnose.classify(align.NAME, done.returncode, done.stdout, done.stderr)
            current.seconds = done.seconds
            if diag.id == "ok" and commands.remap:
                commands = _prepare_project(commands, make_commands)
                progress.remaps(len(commands.written))
                for remap_argv in commands.remap:
                    reporter.command(remap_argv)
                env = {**os.environ, **commands.remap_env} if commands.remap_env else None
                parts = proc.run_together(commands.remap, cwd=work, env=env, timeout=request.timeout, on_line=progress)
                current.seconds += max(part.seconds for part in parts)
                # The part that failed, not the ones stopped because of it.
                ran, done = next(
                    ((a, p) for a, p in zip(commands.remap, parts, strict=True) if p.returncode != 0 and not p.stopped),
                    (commands.remap[0], parts[0]),
                )
                if done.returncode != 0:
                    # nona reads and writes with the same libraries as align_image_stack's
                    # own remapping, so its failures read the same way.
                    diag = diagnose.classify(align.NAME, done.returncode, done.stdout, done.stderr)
            if diag.id == "ok":
                # align_image_stack can exit 0 without writing its files.
                problem = _check_written(commands.written, None)
                if problem is None:
                    current.diagnosis = diag
                    return commands.frames, attempts
                diag = diagnose.Diagnosis(
                    "output-not-written", False, f"{os.path.basename(argv[0])} exited 0 but {problem}.", problem
                )
        except ToolTimeout as exc:
            done = proc.Completed(-1, exc.stdout, exc.stderr, request.timeout)
            diag = diagnose.Diagnosis("timeout", False, str(exc), "")
        current.diagnosis = diag
        rung = next_rung(preset, diag.id, used) if diag.retryable else None
        if rung is not None and len(attempts) < limit:
            flags = " ".join(align.option_flags(preset.preset.align_after([*used, rung]), current.options))
            current.next_change = f"adding {flags} ({rung.why})" if flags else rung.why
        reporter.attempt_failed(current)
        if rung is None or len(attempts) >= limit:
            failure = AlignmentFailed(
                f"Alignment failed after {_plural(len(attempts), 'attempt')}: {diag.explanation}",
                attempts=attempts,
                argv=ran,
                returncode=done.returncode,
                stdout=done.stdout,
                stderr=done.stderr,
                hint=diagnose.final_advice(diag.id),
            )
            failure.unknown = diag.id == "unknown"
            raise failure
        used.append(rung)
        options = preset.preset.align_after(used)
        current = Attempt(
            len(attempts) + 1,
            options,
            added=" ".join(align.option_flags(options, attempts[-1].options)),
            why=rung.why,
        )


def fuse_command(request: StackRequest, tools: Tools, frames: Sequence[Path], work: Path, fmt: str) -> list[str]:
    """enfuse's argv: the preset's fusion options, the frames, WORK/fused.tif (and masks for --map).

    ``fmt`` is the delivered format: for JPEG and PNG, enfuse's TIFF is only an
    intermediate and is written with PACKBITS (cheaper to write and read than LZW).
    """
    return enfuse.build_argv(
        command=_command(tools.enfuse),
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
    reporter: Reporter,
    fmt: str = "TIFF",
    *,
    when_done=None,
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
    diag = diagnose.classify(enfuse.NAME, done.returncode, done.stdout, done.stderr)
    if diag.id == "ok" and when_done is not None:
        when_done()
    if diag.id != "ok":
        failure = FusionFailed(
            f"Fusion failed: {diag.explanation}",
            argv=argv,
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            hint=diagnose.final_advice(diag.id),
        )
        failure.unknown = diag.id == "unknown"
        raise failure
    from PIL import Image

    try:
        with Image.open(aligned[-1]) as im:  # a remapped TIFF (the first may be the photo itself)
            size = im.size
        # enfuse can exit 0 and write nothing usable, or a fully transparent picture.
        problem = _check_written([fused], size)
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


def _aligned_frames(
    request: StackRequest, tools: Tools, files: list[Path], frames: list[Path], work: Path, reporter: Reporter
) -> tuple[list[Path], list[Attempt], bool]:
    """Aligned frames from the cache when an earlier run made them, else from align_image_stack.

    The key is the preset's first-attempt options: a run that needed a ladder
    rung stores its frames under the options it started from, because the
    next run with the same preset would climb to the same rung.
    """
    key = None
    if request.use_cache and request.cache_max_bytes > 0:
        options = request.preset.preset.align
        key = cache.key(files, [*align.option_flags(options), f"remap={options.remap}"], tools.align.version)
        hit = cache.lookup(key, work)
        if hit is not None and len(hit) in (len(files), len(files) - 1):
            reporter.note("Aligned frames reused from the cache (same photos, same align options); alignment skipped.")
            # Only the frames the tools wrote are cached; a reference fused as it is comes from the photos.
            return (hit if len(hit) == len(files) else [frames[0], *hit]), [], True
    aligned, attempts = run_alignment(request, tools, frames, work, reporter, names=[f.name for f in files])
    if key is not None:
        cache.store(key, [f for f in aligned if f.parent == work], max_bytes=request.cache_max_bytes)
    return aligned, attempts, False


def _deliver_map(target: Path | None, work: Path, files: list[Path]) -> Path | None:
    """Build the contribution map into a temporary file beside it, then move it into place."""
    if target is None:
        return None
    part = target.with_name(f".{target.name}.{os.getpid()}.focuswrap-part")
    try:
        contribution.build(work, [f.name for f in files], part)
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
    ``StackFinished`` or ``StackFailed``; ``reporter`` gets the same news the old way.
    """
    out = _Emitting(reporter or Reporter(), on_event)
    try:
        result = _stack(request, tools, out)
    except (FocuswrapError, Interrupted) as exc:
        out._emit(failed_event(exc))
        raise
    if on_event is not None:
        out._emit(finished_event(result, out.warnings))
    return result


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


#: Below this gain the result is not sharper than the sharpest photo: a little below 1
#: is measurement noise (the inputs are measured from the JPEG, the result from
#: enfuse's TIFF); clearly below means the stack went wrong.
LOW_GAIN = 0.97
LOW_GAIN_WARNING = (
    "the result is not sharper than the sharpest photo; the frames may not have aligned well (try --preset handheld)."
)


def result_warnings(result: StackResult) -> list[str]:
    """Warnings about a finished result (shown after it, listed in StackFinished)."""
    sharp = result.sharpness
    gain = getattr(sharp, "gain", None)
    return [LOW_GAIN_WARNING] if gain is not None and gain < LOW_GAIN else []


def attempt_dict(a: Attempt) -> dict[str, object]:
    """One attempt as plain JSON (the shape docs/json.md documents)."""
    return {
        "number": a.number,
        "flags": " ".join(align.option_flags(a.options)),
        "added": a.added,
        "why": a.why,
        "diagnosis": a.diagnosis.id if a.diagnosis else None,
        "seconds": round(a.seconds, 3),
    }


def sharpness_dict(sharp: object) -> dict[str, object] | None:
    """The sharpness report as plain JSON (JSON has no Infinity: an infinite gain is null)."""
    import math

    if sharp is None:
        return None
    gain = sharp.gain  # type: ignore[attr-defined]
    return {
        "result": round(sharp.result, 3),  # type: ignore[attr-defined]
        "sharpest_input": sharp.sharpest_name,  # type: ignore[attr-defined]
        "sharpest_input_value": round(sharp.sharpest, 3),  # type: ignore[attr-defined]
        "gain": round(gain, 3) if math.isfinite(gain) else None,
    }


def finished_event(result: StackResult, warnings: Sequence[str] = ()) -> events.StackFinished:
    """The StackFinished event of a result."""
    return events.StackFinished(
        output=str(result.output),
        size=result.size,
        preset=result.preset,
        inputs=tuple(str(p) for p in result.inputs),
        seconds={k: round(v, 3) for k, v in result.seconds.items()},
        sharpness=sharpness_dict(result.sharpness),
        cached=result.cached,
        map_output=str(result.map_output) if result.map_output else None,
        crop=tuple(result.crop) if result.crop else None,
        warnings=(*warnings, *result_warnings(result)),
        crop_size=tuple(result.crop_size) if result.crop_size else None,
        work_folder=str(result.work_folder) if result.work_folder else None,
        attempts=tuple(attempt_dict(a) for a in result.attempts),
    )


def failed_event(exc: FocuswrapError | Interrupted) -> events.StackFailed:
    """The StackFailed event of a failure: message, exit code, advice, attempts, the tool's output."""
    attempts = getattr(exc, "attempts", None) or []
    return events.StackFailed(
        message=exc.message,
        exit_code=int(exc.exit_code),
        hint=exc.hint or "",
        attempts=tuple(attempt_dict(a) for a in attempts if isinstance(a, Attempt)),
        tool_output=exc.details() if isinstance(exc, ToolFailed) else "",
    )


def _stack(request: StackRequest, tools: Tools, reporter: _Emitting) -> StackResult:
    """:func:`stack`'s work, its news told to ``reporter``."""
    from concurrent.futures import ThreadPoolExecutor

    from focuswrap import output as out_mod
    from focuswrap import sharpness

    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    n = len(request.inputs)
    reporter.step("check", _plural(n, "photo"), f"Checking {_plural(n, 'photo')}")
    photos, output, fmt, map_target = prepare(request)
    # -o into a folder that does not exist yet: it is made once there is a result to put in it.
    # Only such a folder: one that existed and went away (an unplugged drive) is a write failure.
    to_create = [t.parent for t in (output, map_target) if t is not None and not t.parent.is_dir()]
    files = [p.path for p in photos]
    given = [Path(p).absolute() for p in request.inputs]
    left_out = [p for p in given if p not in files]
    if left_out:
        reporter.note("Left out earlier results: " + ", ".join(p.name for p in left_out))
    if not request.keep_order and [p for p in given if p in files] != files:
        reporter.note("Frames sorted in natural order: " + ", ".join(f.name for f in files))
    seconds["check"] = time.monotonic() - t0
    reporter.step_finished("check", seconds["check"])

    inside = _flatpak_work(tools, files)
    # The work folder is the outer context: the side threads (which may read
    # converted frames from it) are finished before the folder is removed.
    with (
        work_folder(keep=request.keep_temp, inside=inside) as work,
        ThreadPoolExecutor(max_workers=REPORT_THREADS, thread_name_prefix="focuswrap-report") as side,
    ):
        # Hugin reads neither HEIF nor raw: those become TIFFs in the work folder first.
        converting = sum(formats.needs_conversion(p) for p in photos)
        if converting:
            t = time.monotonic()
            reporter.step(
                "convert",
                f"{_plural(converting, 'HEIF/raw photo')} to TIFF",
                f"Converting {_plural(converting, 'HEIF or raw photo')} into pictures Hugin can read",
            )
        frames = formats.prepare_frames(
            photos, work, on_frame=lambda done, total, path: reporter.progress("convert", done, total, path.name)
        )
        if converting:
            seconds["convert"] = time.monotonic() - t
            reporter.step_finished("convert", seconds["convert"])
        measuring = []  # the inputs' sharpness, measured in parts once enfuse is done (REPORT_THREADS)

        def measure_inputs() -> None:
            parts = REPORT_THREADS
            measuring.extend(
                side.submit(sharpness.measure_all, frames[k::parts], factor=REPORT_SCALE) for k in range(parts)
            )

        try:
            t = time.monotonic()
            reporter.step(
                "align",
                f"{len(files)} frames, preset {request.preset.name}",
                f"Lining up {_plural(len(files), 'photo')} (preset {request.preset.name})",
            )
            aligned, attempts, cached = _aligned_frames(request, tools, files, frames, work, reporter)
            seconds["align"] = time.monotonic() - t
            reporter.step_finished("align", seconds["align"])

            t = time.monotonic()
            reporter.step(
                "fuse",
                f"{len(aligned)} aligned frames",
                f"Combining the sharpest parts of {_plural(len(aligned), 'photo')}",
            )
            fused, image = run_fusion(
                request, tools, aligned, work, reporter, fmt, when_done=measure_inputs, names=[f.name for f in files]
            )
            seconds["fuse"] = time.monotonic() - t
            reporter.step_finished("fuse", seconds["fuse"])
        except (AlignmentFailed, FusionFailed) as exc:
            if request.keep_temp:
                # The .pto may be missing: align_image_stack may stop before writing it.
                kept = (
                    f"The work folder is kept for inspection: {work} ({DEBUG_PTO} there, if written, opens in Hugin)."
                )
                exc.hint = f"{exc.hint}\n{kept}" if exc.hint else kept
            for part in measuring:
                part.cancel()
            raise
        except BaseException:  # Ctrl-C, or an error: do not start measuring now
            for part in measuring:
                part.cancel()
            raise

        crop = _crop_box(image, frames[0])
        crop_size = None
        if crop is not None:
            crop_size = (crop[2] - crop[0], crop[3] - crop[1])
            if photos[0].orientation in (5, 6, 7, 8):  # delivered turned a quarter
                crop_size = crop_size[::-1]
        t = time.monotonic()
        reporter.step("finish", str(output), f"Writing {output.name}")
        # The result is measured on a side thread while it is written.
        result_energy = side.submit(sharpness.measure_all, [image], factor=REPORT_SCALE)

        def sharpness_report():
            energies = [0.0] * len(frames)
            for k, part in enumerate(measuring):
                energies[k :: len(measuring)] = part.result()
            return sharpness.report_measured(result_energy.result()[0], energies, [f.name for f in files])

        created: list[Path] = []
        try:
            for folder in to_create:
                if not folder.is_dir():
                    try:
                        created += inputs.make_folder(folder)
                    except OSError as exc:
                        raise WriteFailed(f"Could not create the folder {folder}: {exc.strerror or exc}.") from None
            size = out_mod.deliver(
                fused,
                output,
                fmt=fmt,
                first_input=files[0],
                force=request.force,
                orientation=photos[0].orientation,
                image=image,
            )
            map_path = _deliver_map(map_target, work, files)
        except BaseException:
            result_energy.cancel()
            for part in measuring:
                part.cancel()
            for folder in created:  # innermost first; only the ones this run made, and only if empty
                try:
                    folder.rmdir()
                except OSError:
                    pass
            raise
        try:
            report = sharpness_report()
        except Exception as exc:  # noqa: BLE001 - the result is written; a failed measurement is no failure
            # (Ctrl-C, an Interrupted BaseException, passes through.)
            reporter.warn(f"Could not measure sharpness: {exc}")
            report = None
        seconds["finish"] = time.monotonic() - t
        reporter.step_finished("finish", seconds["finish"])
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
        crop_size=crop_size,
    )


def _crop_box(fused: Image.Image, first_frame: Path) -> tuple[int, int, int, int] | None:
    """The part of the first frame's canvas the result covers, when it is not all of it.

    ``first_frame`` is what the tools read (a raw or HEIF photo's converted
    TIFF), so its size is the canvas whatever the photo's header says.
    """
    from PIL import Image

    with Image.open(first_frame) as im:
        canvas = im.size
    if fused.size == canvas:
        return None
    left, top = formats.layer_offset(fused)
    return (left, top, left + fused.width, top + fused.height)
