"""Stack every focus bracket in a folder: the library behind ``focuswrap batch``.

The folder's photos are grouped into brackets (:func:`find_groups`): one
subfolder per bracket, Open Camera's bracket names, or gaps in the capture
time.  Each bracket of two or more frames is then stacked by
:func:`pipeline.stack`, with the same checks and fallback ladder as
``focuswrap stack``.  One failed stack does not stop the others; Ctrl-C does,
leaving the finished results in place and nothing of the unfinished ones
(``pipeline.stack`` removes its work folder and writes its result atomically).

A result is up to date, and skipped on the next run, when it exists and is
newer than every frame of its bracket; ``force`` stacks it again.  A result
older than one of its frames is replaced without ``force``: the bracket has
changed since it was made.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from focuswrap import events, formats, inputs, pipeline, proc
from focuswrap.discovery import Tools

# The types live in model.py and the listing, table and report in display.py (kept importable from here).
from focuswrap.display import plan_lines, print_report, summary_table
from focuswrap.model import HOW_TEXT, BatchResult, Group, StackOutcome
from focuswrap.model import failure_text as _failure_text

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "BatchResult",
    "Group",
    "StackOutcome",
    "_failure_text",
    "find_groups",
    "plan",
    "plan_lines",
    "print_report",
    "run",
    "summary_table",
]
from focuswrap.errors import (
    BadInputError,
    FocuswrapError,
    Interrupted,
)
from focuswrap.model import AttemptView
from focuswrap.pipeline import Reporter, StackRequest
from focuswrap.presets import NamedPreset

#: How photos may be grouped into brackets (``--group-by``).
GROUP_BY = ("auto", "names", "folders", "time")
#: Result formats (``--format``) and the extension each one gets.
FORMATS = {"jpg": ".jpg", "tif": ".tif", "png": ".png"}
#: Seconds between two photos that start a new bracket when grouping by time.
DEFAULT_GAP = 5.0
#: Stacks run at once unless --jobs says otherwise.  Measured on the 2-core
#: test machine with two brackets of 4 pcb frames (2048x1536): --jobs 1 took
#: 15.8-16.2 s, --jobs 2 took 11.6-12.1 s (1.35x faster, same 15 s of tool CPU
#: time; other work on the machine, load 1-4).  Neither tool keeps more than
#: one core busy here (one bracket: align_image_stack 6.2 s wall for 5.2 s CPU,
#: enfuse 2.3 s for 2.2 s), so two stacks at once do help.  The default stays
#: 1: each parallel stack holds its own frames in memory (two enfuse runs on
#: 24 MP photos need twice the RAM), and one stack keeps the live progress bar.
DEFAULT_JOBS = 1
#: The results folder inside DIR when none is given.
DEFAULT_OUTDIR = "stacked"
#: Files taken as photos: the formats Hugin reads.  Raw files are left out
#: (Open Camera can save a .dng beside each .jpg of a bracket).
PHOTO_SUFFIXES = frozenset(inputs.OUTPUT_FORMATS)

# Open Camera names a photo prefix + timestamp + suffix + index + extension
# (StorageUtils.createMediaFilename); a focus bracket's frames share the
# timestamp and get the suffix "_N", N from 0, not zero-padded:
#   IMG_20240101_120000_3.jpg    frame 3 of the bracket IMG_20240101_120000
#   IMG_20240101_120000Z_3.jpg   "UTC" time setting: the timestamp ends in Z
#   IMG_20240101_120000_3Z.jpg   a Z after the frame number is accepted too
#   IMG_20240101_120000_3_1.jpg  the name was taken (a second bracket stamped
#                                with the same second): Open Camera adds the
#                                index "_1", so this is frame 3 of the bracket
#                                IMG_20240101_120000_1
# The prefix is a setting ("IMG_" by default), so any text may come before the
# timestamp.
_OPEN_CAMERA = re.compile(
    r"^(?P<stem>.*\d{8}_\d{6})(?P<z>Z?)_(?P<frame>\d+)(?P<frame_z>Z?)(?:_(?P<index>\d+)(?P<index_z>Z?))?$",
    re.ASCII,
)

_EXIF_IFD = 0x8769
_DATE_TIME_ORIGINAL = 0x9003
_SUBSEC_TIME_ORIGINAL = 0x9291
_DATE_TIME = 0x0132

#: Seconds between the main thread's looks at the worker threads (and at Ctrl-C).
_POLL = 0.25


# ---------------------------------------------------------------- grouping


def _hidden(path: Path) -> bool:
    # Also skips macOS "._IMG_1.jpg" AppleDouble files on memory cards and our
    # own ".NAME.focuswrap-part" files of an interrupted delivery.
    return path.name.startswith(".")


def _is_photo(path: Path) -> bool:
    return (
        path.suffix.lower() in PHOTO_SUFFIXES
        and not _hidden(path)
        # Results of earlier runs (batch or ``stack`` with its default name) are not frames.
        and not path.stem.endswith(pipeline.STACKED_SUFFIX)
        and path.is_file()
    )


def _listdir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir(), key=inputs.natural_key)
    except PermissionError:
        raise BadInputError(f"focuswrap cannot read the folder {folder} (permission denied).") from None
    except OSError as exc:
        raise BadInputError(f"focuswrap cannot read the folder {folder}: {exc.strerror or exc}.") from None


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _photos_in(folder: Path) -> list[Path]:
    return [p for p in _listdir(folder) if _is_photo(p)]


def _subfolders(folder: Path, exclude: Sequence[Path]) -> list[Path]:
    return [p for p in _listdir(folder) if p.is_dir() and not _hidden(p) and not any(_same_path(p, x) for x in exclude)]


def _deeper_photo_folders(folder: Path, exclude: Sequence[Path], limit: int = 2000) -> list[Path]:
    """Folders at least two levels below ``folder`` holding photos (batch does not look there).

    At most ``limit`` folders are looked at, so a huge tree costs little.
    """
    found: list[Path] = []
    seen = 0
    for first in _subfolders(folder, exclude):
        for dirpath, dirnames, filenames in os.walk(first):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            seen += 1
            if seen > limit:
                return found
            here = Path(dirpath)
            if here != first and any(_is_photo(here / f) for f in filenames):
                found.append(here)
    return found


def open_camera_bracket(path: Path) -> tuple[str, int] | None:
    """(bracket name, frame number) if ``path`` is named like a frame of an Open Camera focus bracket."""
    m = _OPEN_CAMERA.match(path.stem)
    if m is None:
        return None
    name = m["stem"] + ("Z" if m["z"] or m["frame_z"] or m["index_z"] else "")
    if m["index"] is not None:
        name += f"_{m['index']}"
    return name, int(m["frame"])


def _natural(paths: Iterable[Path]) -> tuple[Path, ...]:
    return tuple(sorted(paths, key=inputs.natural_key))


def _group_by_names(photos: Sequence[Path]) -> tuple[list[Group], list[Path]]:
    """Brackets by Open Camera names, and the photos not named like a bracket frame."""
    brackets: dict[tuple[str, str], list[Path]] = {}
    rest: list[Path] = []
    for photo in photos:
        found = open_camera_bracket(photo)
        if found is None:
            rest.append(photo)
            continue
        # A bracket saved both as .jpg and .png is two brackets, never one of duplicates.
        ext = inputs.OUTPUT_FORMATS[photo.suffix.lower()]
        brackets.setdefault((found[0], ext), []).append(photo)
    groups = [Group(name, _natural(frames), "names") for (name, _ext), frames in brackets.items()]
    groups.sort(key=lambda g: inputs.natural_key(g.name))
    return groups, rest


def _exif_seconds(text: object, subsec: object = None) -> float | None:
    """'2024:01:01 12:00:00' (+ SubSecTime '25') as seconds on a naive clock, or None."""
    from datetime import datetime

    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if not isinstance(text, str):
        return None
    try:
        when = datetime.strptime(text.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:  # "0000:00:00 00:00:00" from a camera without a clock
        return None
    seconds = (when - datetime(1970, 1, 1)).total_seconds()
    if isinstance(subsec, bytes):
        subsec = subsec.decode("ascii", "replace")
    if isinstance(subsec, str) and subsec.strip("\x00 ").isdigit():
        seconds += float("0." + subsec.strip("\x00 "))
    return seconds


def _exif_from(raw: bytes) -> Image.Exif:
    from PIL import Image

    exif = Image.Exif()
    exif.load(raw)
    return exif


def capture_time(path: Path) -> float | None:
    """EXIF DateTimeOriginal (with SubSecTimeOriginal), else DateTime, in seconds; None if absent."""
    from PIL import Image, UnidentifiedImageError

    try:
        with inputs._no_bomb_guard(), Image.open(path) as im:
            if im.format == "PNG":
                # PngImageFile.getexif() decodes the whole image to find an eXIf chunk after it.
                raw = im.info.get("exif")
                exif: Image.Exif | None = _exif_from(raw) if raw else None
            else:
                exif = im.getexif()
    except UnidentifiedImageError:
        # A 16-bit grey (with alpha) or float TIFF: its EXIF read the way the stack reads it.
        exif = formats.read_metadata(path)[0]
    except Exception:  # noqa: BLE001 - an unreadable photo is reported by the stack's own checks (Ctrl-C passes)
        return None
    if exif is None:
        return None
    sub = exif.get_ifd(_EXIF_IFD)
    found = _exif_seconds(sub.get(_DATE_TIME_ORIGINAL), sub.get(_SUBSEC_TIME_ORIGINAL))
    return found if found is not None else _exif_seconds(exif.get(_DATE_TIME))


def _group_by_time(photos: Sequence[Path], gap: float) -> list[Group]:
    """Split the photos where more than ``gap`` seconds pass between two captures."""
    if not photos:
        return []
    timed: list[tuple[float, Path, bool]] = []
    for photo in photos:
        t = capture_time(photo)
        if t is None:
            timed.append((photo.stat().st_mtime, photo, False))
        else:
            timed.append((t, photo, True))
    timed.sort(key=lambda item: (item[0], inputs.natural_key(item[1])))
    runs: list[list[tuple[float, Path, bool]]] = [[timed[0]]]
    for item in timed[1:]:
        if item[0] - runs[-1][-1][0] > gap:
            runs.append([])
        runs[-1].append(item)
    groups = []
    for run_ in runs:
        frames = _natural(p for _t, p, _exif in run_)
        note = "" if all(exif for *_x, exif in run_) else "file times used: no EXIF capture time"
        groups.append(Group(frames[0].stem, frames, "time", note))
    return groups


def _group_loose(photos: Sequence[Path], gap: float) -> list[Group]:
    """Open Camera brackets by name, the other photos by capture time."""
    named, rest = _group_by_names(photos)
    return named + _group_by_time(rest, gap)


def _brackets_in_folder(folder: Path, photos: Sequence[Path]) -> list[Group]:
    """The brackets of one subfolder: all its photos, unless they are several Open Camera brackets.

    Two brackets shot a minute apart land in the same DCIM folder; each is stacked on its
    own (named FOLDER-BRACKET).  Photos not named like a bracket frame stay together.
    """
    named, rest = _group_by_names(photos)
    if len(named) < 2:
        return [Group(folder.name, _natural(photos), "folder")]
    groups = [replace(g, name=f"{folder.name}-{g.name}") for g in named]
    if rest:
        groups.append(Group(folder.name, _natural(rest), "folder"))
    return groups


def _unique_names(groups: list[Group]) -> list[Group]:
    """Give each group its own result name: IMG_1, IMG_1-2, ... (case-insensitively: Windows, macOS)."""
    seen: set[str] = set()
    unique = []
    for g in groups:
        name, n = g.name, 1
        while name.casefold() in seen:
            n += 1
            name = f"{g.name}-{n}"
        seen.add(name.casefold())
        unique.append(g if name == g.name else replace(g, name=name))
    return unique


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise BadInputError(f"The folder {folder} does not exist; check its name.")
    if not folder.is_dir():
        raise BadInputError(
            f"{folder} is a file, not a folder; give the folder holding the brackets "
            "(use 'focuswrap stack' for the photos of one bracket)."
        )


def find_groups(
    folder: str | os.PathLike[str],
    *,
    group_by: str = "auto",
    gap: float = DEFAULT_GAP,
    exclude: Sequence[str | os.PathLike[str]] = (),
) -> list[Group]:
    """The focus brackets in ``folder``, each with its frames in natural order.

    ``group_by``:

    - ``folders``: one bracket per subfolder (its photos, not deeper ones),
      or one per Open Camera bracket when a subfolder holds several;
      photos lying in ``folder`` itself are grouped as with ``auto``.
    - ``names``: Open Camera bracket names; other photos each stand alone.
    - ``time``: a new bracket where more than ``gap`` seconds pass between two
      captures (EXIF DateTimeOriginal, else the file's modification time).
    - ``auto``: ``folders`` if a subfolder holds photos; else Open Camera names
      for the photos named so and capture time for the rest.

    Hidden files, raw files, earlier ``*-stacked`` results and the folders in
    ``exclude`` (the results folder) are left out.  Reads only file names and
    EXIF headers.
    """
    folder = Path(folder)
    if group_by not in GROUP_BY:
        raise BadInputError(f"--group-by must be one of {', '.join(GROUP_BY)}, not {group_by!r}.")
    if not gap > 0:
        raise BadInputError(f"--gap must be more than 0 seconds, not {gap:g}.")
    _check_folder(folder)
    excluded = [Path(x) for x in exclude]
    photos = _photos_in(folder)
    if group_by == "names":
        named, rest = _group_by_names(photos)
        groups = named + [Group(p.stem, (p,), "names") for p in rest]
    elif group_by == "time":
        groups = _group_by_time(photos, gap)
    else:
        with_photos = [(d, found) for d in _subfolders(folder, excluded) if (found := _photos_in(d))]
        if group_by == "folders" or with_photos:
            groups = [g for d, found in with_photos for g in _brackets_in_folder(d, found)]
            groups += _group_loose(photos, gap)
        else:
            groups = _group_loose(photos, gap)
    return _unique_names(groups)


# ---------------------------------------------------------------- planning


def _up_to_date(output: Path, frames: Sequence[Path]) -> bool:
    """True if ``output`` exists and is newer than every frame."""
    try:
        made = output.stat().st_mtime_ns
        return all(made > f.stat().st_mtime_ns for f in frames)
    except OSError:
        return False


def _check_outdir(outdir: Path) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise BadInputError(f"The results folder {outdir} is a file; give a folder with -o.")


def plan(
    folder: str | os.PathLike[str],
    *,
    outdir: str | os.PathLike[str] | None = None,
    fmt: str = "jpg",
    group_by: str = "auto",
    gap: float = DEFAULT_GAP,
    force: bool = False,
) -> BatchResult:
    """What a batch would do: every group, its result path, and whether it is skipped.

    Raises :class:`BadInputError` when the folder holds no bracket of two or more photos.
    """
    folder = Path(folder).absolute()
    if fmt not in FORMATS:
        raise BadInputError(f"focuswrap cannot write {fmt!r} results; give --format one of {', '.join(FORMATS)}.")
    out = Path(outdir).absolute() if outdir is not None else folder / DEFAULT_OUTDIR
    _check_outdir(out)
    groups = find_groups(folder, group_by=group_by, gap=gap, exclude=[out])
    deeper = tuple(_deeper_photo_folders(folder, [out]))
    if not any(len(g.frames) >= 2 for g in groups):
        if not groups:
            raise BadInputError(
                f"There are no photos (.jpg, .tif, .png) in {folder} or its subfolders"
                + (f" ({BatchResult(folder, out, [], deeper=deeper).deeper_note})" if deeper else "")
                + "; check the folder."
            )
        how = " and ".join(sorted({HOW_TEXT[g.how] for g in groups}))
        raise BadInputError(
            f"Found {len(groups)} photo{'s' if len(groups) != 1 else ''} in {folder} but no bracket of two or more "
            f"(grouped by {how}); try another --group-by, or a longer --gap."
        )
    outcomes = []
    for g in groups:
        output = out / f"{g.name}{pipeline.STACKED_SUFFIX}{FORMATS[fmt]}"
        if len(g.frames) < 2:
            status = "single"
        elif not force and _up_to_date(output, g.frames):
            status = "up-to-date"
        else:
            status = "planned"
        outcomes.append(StackOutcome(g, output, status))
    return BatchResult(folder, out, outcomes, deeper=deeper)


# ---------------------------------------------------------------- running


class _Tee(Reporter):
    """The batch's reporter (shown the usual way) plus the caller's event sink, which gets every
    stack's events and a BracketStarted/BracketFinished around each stack."""

    def __init__(self, inner: Reporter, sink: events.EventSink | None) -> None:
        self.inner = inner
        self.sink = sink

    def forward(self, event: events.Event) -> None:
        if self.sink is not None:
            self.sink(event)

    def step(self, name: str, detail: str = "") -> None:
        self.inner.step(name, detail)

    def progress(self, step: str, done: int, total: int, label: str = "") -> None:
        self.inner.progress(step, done, total, label)

    def attempt(self, attempt: AttemptView, total: int) -> None:
        self.inner.attempt(attempt, total)

    def attempt_failed(self, attempt: AttemptView) -> None:
        self.inner.attempt_failed(attempt)

    def command(self, argv: Sequence[str]) -> None:
        self.inner.command(argv)

    def tool_line(self, tool: str, stream: str, line: str) -> None:
        self.inner.tool_line(tool, stream, line)

    def note(self, text: str) -> None:
        self.inner.note(text)


class _GroupReporter(Reporter):
    """Passes one stack's events on to the batch's reporter, and counts its attempts.

    With parallel stacks every event becomes one note prefixed with the stack's
    name (progress bars of two stacks cannot share a line).  Once the batch is
    cancelled, the next event raised on the stack's own thread ends it before
    another tool starts.
    """

    def __init__(self, base: _Tee, name: str, *, parallel: bool, cancel: threading.Event, lock: threading.Lock) -> None:
        self.base = base
        self.name = name
        self.parallel = parallel
        self.cancel = cancel
        self.lock = lock
        self.attempts = 0

    def __call__(self, event: events.Event) -> None:
        self.base.forward(event)  # the caller's sink sees the stack's own events
        super().__call__(event)

    def _check(self) -> None:
        # Only from methods the pipeline calls on the stack's thread: step,
        # attempt, attempt_failed, command (progress and tool_line come from
        # proc.run's reader threads, which swallow exceptions).
        if self.cancel.is_set():
            raise Interrupted("Interrupted; the batch was cancelled.")

    def _note(self, text: str) -> None:
        with self.lock:
            self.base.note(f"{self.name}: {text}")

    def step(self, name: str, detail: str = "") -> None:
        self._check()
        if self.parallel:
            self._note(f"{name} {detail}".rstrip())
        else:
            self.base.step(name, detail)

    def progress(self, step: str, done: int, total: int, label: str = "") -> None:
        if not self.parallel:
            self.base.progress(step, done, total, label)

    def attempt(self, attempt: AttemptView, total: int) -> None:
        self._check()
        self.attempts = max(self.attempts, attempt.number)
        if not self.parallel:
            self.base.attempt(attempt, total)
        elif attempt.number > 1:
            self._note(f"attempt {attempt.number} of up to {total}: adding {attempt.added} ({attempt.why})")

    def attempt_failed(self, attempt: AttemptView) -> None:
        self._check()
        if not self.parallel:
            self.base.attempt_failed(attempt)
        elif attempt.diagnosis is not None:
            self._note(f"attempt {attempt.number} failed: {attempt.diagnosis.id}")

    def command(self, argv: Sequence[str]) -> None:
        self._check()
        with self.lock:
            self.base.command(argv)

    def tool_line(self, tool: str, stream: str, line: str) -> None:
        if self.parallel:
            with self.lock:
                self.base.tool_line(tool, stream, f"[{self.name}] {line}")
        else:
            self.base.tool_line(tool, stream, line)

    def note(self, text: str) -> None:
        if self.parallel:
            self._note(text)
        else:
            self.base.note(text)


def _stack_one(
    outcome: StackOutcome, template: StackRequest, tools: Tools, reporter: _GroupReporter, force: bool
) -> None:
    """Stack one group, recording the outcome; Interrupted (and KeyboardInterrupt) pass through."""
    request = replace(
        template,
        inputs=list(outcome.group.frames),
        output=outcome.output,
        # A result older than its frames is out of date: replace it.
        force=force or os.path.lexists(outcome.output),
    )
    started = time.monotonic()
    try:
        outcome.result = pipeline.stack(request, tools, reporter)
        outcome.status = "ok"
    except Interrupted:
        outcome.status = "interrupted"
        raise
    except FocuswrapError as exc:
        # A worker's tool stopped by a cancel fails in its own way: that is an interruption.
        outcome.status = "interrupted" if reporter.cancel.is_set() else "failed"
        outcome.error = exc
    except BaseException:
        outcome.status = "interrupted"
        raise
    finally:
        outcome.seconds = time.monotonic() - started
        outcome.attempts = reporter.attempts


def _announce(base: _Tee, outcome: StackOutcome, number: int, total: int, *, parallel: bool) -> None:
    group = outcome.group
    base.forward(events.BracketStarted(number, total, group.name, tuple(str(f) for f in group.frames)))
    text = f"{number}/{total} {outcome.group.name}: {len(outcome.group.frames)} frames -> {outcome.output.name}"
    if parallel:
        base.note(text)
    else:
        base.step("stack", text)


def _finished(base: _Tee, outcome: StackOutcome, lock: threading.Lock, number: int, total: int) -> None:
    seconds = f" in {outcome.seconds:.1f} s" if outcome.seconds is not None else ""
    ok = outcome.status == "ok"
    with lock:
        base.note(f"{outcome.group.name}: {outcome.result_text}{seconds}")
        base.forward(
            events.BracketFinished(
                number, total, outcome.group.name, ok, str(outcome.output) if ok else None, outcome.result_text
            )
        )


def _run_serial(todo: list[StackOutcome], template: StackRequest, tools: Tools, base: _Tee, force: bool) -> bool:
    """Stack the groups one after the other in this thread; True if interrupted."""
    lock = threading.Lock()
    cancel = threading.Event()  # never set: Ctrl-C reaches this thread itself
    for number, outcome in enumerate(todo, 1):
        try:
            _announce(base, outcome, number, len(todo), parallel=False)
            reporter = _GroupReporter(base, outcome.group.name, parallel=False, cancel=cancel, lock=lock)
            _stack_one(outcome, template, tools, reporter, force)
            _finished(base, outcome, lock, number, len(todo))
        except (Interrupted, KeyboardInterrupt):
            return True
    return False


def _run_parallel(
    todo: list[StackOutcome], template: StackRequest, tools: Tools, base: _Tee, force: bool, jobs: int
) -> bool:
    """Stack up to ``jobs`` groups at a time on worker threads; True if interrupted."""
    lock = threading.Lock()
    cancel = threading.Event()
    started = 0

    def work(outcome: StackOutcome) -> None:
        nonlocal started
        if cancel.is_set():
            return  # stays "planned", reported as not started
        with lock:
            started += 1
            number = started
            _announce(base, outcome, number, len(todo), parallel=True)
        reporter = _GroupReporter(base, outcome.group.name, parallel=True, cancel=cancel, lock=lock)
        try:
            _stack_one(outcome, template, tools, reporter, force)
        except Interrupted:
            return
        _finished(base, outcome, lock, number, len(todo))

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="focuswrap-batch")
    futures: list[Future[None]] = [pool.submit(work, o) for o in todo]
    try:
        pending = set(futures)
        while pending:
            # Ctrl-C arrives here, in the main thread (as Interrupted from
            # cli.py's signal handler, or KeyboardInterrupt).  Waiting in short
            # slices lets it in on Windows too, where a lock wait without a
            # timeout cannot be interrupted.
            done, pending = wait(pending, timeout=_POLL, return_when=FIRST_COMPLETED)
            for fut in done:
                fut.result()  # a bug in a worker surfaces now
        return False
    except BaseException as exc:
        cancel.set()
        for fut in futures:
            fut.cancel()
        proc.stop_all()
        _drain(futures)
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            return True
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _drain(futures: Sequence[Future[None]]) -> None:
    """Wait for the workers to clean up, even through a second Ctrl-C."""
    while True:
        try:
            if not wait(futures, timeout=_POLL).not_done:
                return
        except (Interrupted, KeyboardInterrupt):
            proc.stop_all()


def run(
    folder: str | os.PathLike[str],
    *,
    tools: Tools | None,
    preset: NamedPreset | None = None,
    request: StackRequest | None = None,
    outdir: str | os.PathLike[str] | None = None,
    fmt: str = "jpg",
    group_by: str = "auto",
    gap: float = DEFAULT_GAP,
    force: bool = False,
    jobs: int = DEFAULT_JOBS,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    on_event: events.EventSink | None = None,
    retry: bool = True,
    verbose_tools: bool = True,
    keep_temp: bool = False,
) -> BatchResult:
    """Stack every bracket in ``folder`` into ``outdir`` (default ``folder/stacked``).

    ``request`` is the :class:`~focuswrap.model.StackRequest` every stack is
    made from, the same type ``focuswrap stack`` builds (its inputs, output and
    force are set per bracket); without it, one is made from ``preset``,
    ``retry``, ``verbose_tools`` and ``keep_temp``.  ``on_event`` gets every stack's typed events, each stack between a
    BracketStarted and a BracketFinished. A stack's failure is recorded in its outcome and the
    batch goes on; Ctrl-C ends the batch, cancels the stacks not yet started and
    returns with ``interrupted`` set.  Raises :class:`BadInputError` for a
    folder without brackets or bad options.  ``tools`` may be None for a dry run.
    """
    t0 = time.monotonic()
    if request is None:
        if preset is None:
            raise TypeError("batch.run needs a preset or a request")
        request = StackRequest(inputs=[], preset=preset, retry=retry, verbose_tools=verbose_tools, keep_temp=keep_temp)
    if jobs < 1:
        raise BadInputError(f"--jobs must be 1 or more, not {jobs}.")
    result = plan(folder, outdir=outdir, fmt=fmt, group_by=group_by, gap=gap, force=force)
    result.dry_run = dry_run
    todo = [o for o in result.outcomes if o.status == "planned"]
    if dry_run or not todo:
        result.seconds = time.monotonic() - t0
        return result
    if tools is None:
        raise TypeError("batch.run needs the tools unless dry_run")
    try:
        result.outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(
            f"focuswrap cannot create the results folder {result.outdir}: {exc.strerror or exc}."
        ) from None
    # The batch has already put each group's frames in natural order.
    template = replace(request, inputs=[], output=None, keep_order=True)
    base = _Tee(reporter or Reporter(), on_event)
    if jobs == 1 or len(todo) == 1:
        result.interrupted = _run_serial(todo, template, tools, base, force)
    else:
        result.interrupted = _run_parallel(todo, template, tools, base, force, min(jobs, len(todo)))
    if result.interrupted:
        for o in todo:
            if o.status == "planned":
                o.status = "not-started"
    result.seconds = time.monotonic() - t0
    return result
