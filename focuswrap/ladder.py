"""The fallback ladder: align, and on a retryable failure climb the preset's rungs.

Rungs are tried in order, first success wins (a rung tied to other diagnoses
is passed over); the aligned-frame cache sits around the whole climb.  Each
attempt runs align_image_stack, then nona's parts when the preset remaps with
it, and checks the files they wrote.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from focuswrap import cache, diagnose, discovery, proc
from focuswrap.discovery import Tools
from focuswrap.errors import AlignmentFailed, ToolTimeout
from focuswrap.hugin import align, nona, pto
from focuswrap.hugin.base import check_written, command_of
from focuswrap.model import DEBUG_PTO, Attempt, EventReporter, StackRequest, plural
from focuswrap.presets import AlignOptions, NamedPreset, Rung


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
        command=command_of(tools.align.command),
        options=options,
        inputs=frames,
        prefix=None if nona_tool is not None else prefix,
        verbose=verbose,
        pto=project,
    )
    if nona_tool is None:
        return AlignCommands(align_argv, [], remapped, project)
    assert project is not None  # nona remaps from the project align_image_stack writes
    reuse_reference = not cropped
    indices = list(range(1 if reuse_reference else 0, len(frames)))
    parts = max(1, min(workers, len(indices)))
    if parts == 1:
        subsets = [indices if reuse_reference else None]
    else:
        subsets = [indices[k::parts] for k in range(parts)]
    remap_argvs = [
        nona.build_argv(
            command=command_of(nona_tool.command), project=project, prefix=prefix, verbose=verbose, only=only
        )
        for only in subsets
    ]
    fused_frames = [Path(frames[0]), *remapped[1:]] if reuse_reference else remapped
    return AlignCommands(align_argv, remap_argvs, fused_frames, project)


def _prepare_project(commands: AlignCommands, make_commands: Callable[..., AlignCommands]) -> AlignCommands:
    """Read the project align_image_stack wrote before nona remaps from it.

    A crop (-C found an area smaller than the canvas) means nona must remap
    the reference frame too (``make_commands(cropped=True)``).  A bracket shot
    at one exposure gets a linear response curve (:func:`pto.with_linear_response`),
    which makes nona's photometric round trip cheap without changing it.
    """
    project = commands.project
    if project is None:  # only nona's commands come here, and they always have a project
        return commands
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


class _AlignProgress:
    """Counts align_image_stack's control-point pairs, then the frames written (by it or by nona's parts).

    The total is fixed up front (one step per pair of neighbouring photos, one per photo lined
    up): a photo that needs no remapping (the reference, unless -C crops) counts as lined up
    as soon as that is known, so the count never jumps from [4/8] to [5/9].
    """

    def __init__(self, reporter: EventReporter, pairs: int, remaps: int, names: Sequence[str] = ()) -> None:
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
        kind, written = align.progress(line)
        if kind == "pair":
            pair = min(self.done + 1, self.pairs)
            label = f"comparing photo {pair + 1} with photo {pair}"
            if pair < len(self.names):
                label += f" ({self.names[pair]})"
        elif kind == "saved":
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


def _odd_photo_out(stdout: str, files: Sequence[Path], names: Sequence[str]) -> diagnose.Diagnosis | None:
    """``odd-photo-out`` when align_image_stack's matches per pair single out photos, else None."""
    shown = {}
    for f, name in zip(files, names, strict=True):
        shown[os.fspath(f)] = name
        shown.setdefault(Path(f).name, name)
    pairs = align.matches_per_pair(stdout)
    odd = [shown.get(p, os.path.basename(p)) for p in align.odd_ones_out(pairs)]
    if not odd:
        return None
    if len(odd) == 1:
        what = f"{odd[0]} matches none of the other photos: is it from another scene?"
    else:
        what = f"{', '.join(odd[:-1])} and {odd[-1]} match none of the other photos: are they from another scene?"
    evidence = "\n".join(f"{shown.get(a, a)} and {shown.get(b, b)}: {n} good matches" for a, b, n in pairs)
    return diagnose.Diagnosis("odd-photo-out", False, what, evidence)


def _tail_of(done: proc.Completed) -> str:
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    return "\n".join(lines[-8:])


def run_alignment(
    request: StackRequest,
    tools: Tools,
    files: list[Path],
    work: Path,
    reporter: EventReporter,
    *,
    names: Sequence[str] = (),
) -> tuple[list[Path], list[Attempt]]:
    """Align, climbing the preset's fallback ladder on retryable failures.

    ``names`` are the user's photos' names, in stack order, for the progress labels and messages.
    """
    names = list(names) or [f.name for f in files]
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
            diag = align.classify(done.returncode, done.stdout, done.stderr)
            current.seconds = done.seconds
            if diag.id in ("ok", "no-control-points", "no-feature-points", "optimization-error"):
                # A photo from another scene: named, and no rung of the ladder will help.
                diag = _odd_photo_out(done.stdout, files, names) or diag
            if diag.id == "ok" and commands.remap and commands.project is not None and not commands.project.is_file():
                diag = diagnose.Diagnosis(
                    "output-not-written",
                    False,
                    f"align_image_stack exited 0 but did not write its project file ({commands.project.name}), "
                    "which nona remaps the photos from.",
                    _tail_of(done),
                )
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
                    diag = align.classify(done.returncode, done.stdout, done.stderr)
                    if diag.id in ("unknown", "crashed"):  # say whose failure it is
                        diag = dataclasses.replace(diag, explanation=diag.explanation.replace(align.NAME, nona.NAME))
                        if diag.id == "crashed":
                            diag = dataclasses.replace(diag, explanation=f"nona: {diag.explanation}")
            if diag.id == "ok":
                # align_image_stack can exit 0 without writing its files.
                problem = check_written(commands.written, None)
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
                f"Alignment failed after {plural(len(attempts), 'attempt')}: {diag.explanation}",
                attempts=attempts,
                argv=ran,
                returncode=done.returncode,
                stdout=done.stdout,
                stderr=done.stderr,
                hint=diagnose.final_advice(diag.id),
                unknown=diag.id == "unknown",
            )
            if not diag.retryable and len(attempts) < limit and preset.preset.ladder:
                failure.hint = (
                    f"{failure.hint}\nNot retried with other align options: "
                    "no rung of the preset's fallback ladder helps with this."
                )
            raise failure
        used.append(rung)
        options = preset.preset.align_after(used)
        current = Attempt(
            len(attempts) + 1,
            options,
            added=" ".join(align.option_flags(options, attempts[-1].options)),
            why=rung.why,
        )


def aligned_frames(
    request: StackRequest, tools: Tools, files: list[Path], frames: list[Path], work: Path, reporter: EventReporter
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
        hit = cache.lookup(key, work, on_damaged=reporter.note)
        if hit is not None and len(hit) in (len(files), len(files) - 1):
            reporter.note("Aligned frames reused from the cache (same photos, same align options); alignment skipped.")
            # Only the frames the tools wrote are cached; a reference fused as it is comes from the photos.
            return (hit if len(hit) == len(files) else [frames[0], *hit]), [], True
    aligned, attempts = run_alignment(request, tools, frames, work, reporter, names=[f.name for f in files])
    if key is not None:
        # Only what the tools wrote (a staged photo_NNNN link in the work folder is the user's photo).
        written = [f for f in aligned if f.parent == work and f.name.startswith(align.PREFIX)]
        cache.store(key, written, max_bytes=request.cache_max_bytes)
    return aligned, attempts, False
