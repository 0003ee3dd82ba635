"""The shared types of a stack: what is asked (StackRequest), what comes back (StackResult),
one alignment attempt (Attempt), a dry run's commands (Plan), and how news reaches an interface.

Interfaces learn what happens from the typed events of :mod:`focuswrap.events`;
:class:`Reporter` is the older callback protocol, kept for callers that
subclass it, and :class:`EventReporter` turns every call into an event.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from focuswrap import diagnose, events
from focuswrap.errors import AlignmentFailed, ExitCode, FocuswrapError, FusionFailed, Interrupted, ToolFailed
from focuswrap.hugin import align, enfuse, nona
from focuswrap.presets import AlignOptions, NamedPreset

if TYPE_CHECKING:
    from focuswrap.config import Config
    from focuswrap.sharpness import SharpnessReport

#: default_output names results FIRST-stacked.EXT.
STACKED_SUFFIX = "-stacked"
#: The project file align_image_stack writes with --keep-temp (opens in Hugin).
DEBUG_PTO = "debug.pto"


class Reporter:
    """An interface that follows a stack through its typed events; the default shows nothing.

    A Reporter is an :data:`~focuswrap.events.EventSink`: calling it with an
    event dispatches to the method below that shows it (``display.py``
    subclasses it for the live terminal and for plain lines; tests subclass it
    to record).  Events the methods do not cover (step finished, the result,
    the failure) go to :meth:`other`.
    """

    def __enter__(self) -> Reporter:
        """A reporter is a context: a live display starts and stops with it."""
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.StepStarted):
            self.step(event.step, event.detail)
        elif isinstance(event, events.StepProgress):
            self.progress(event.step, event.done, event.total, event.label)
        elif isinstance(event, events.AttemptStarted):
            self.attempt(AttemptView(event.number, event.added, event.why), event.limit)
        elif isinstance(event, events.AttemptFailed):
            diagnosis = diagnose.Diagnosis(event.diagnosis, bool(event.next_change), event.explanation, "")
            self.attempt_failed(AttemptView(event.number, diagnosis=diagnosis, next_change=event.next_change))
        elif isinstance(event, events.ToolCommand):
            self.command(event.argv)
        elif isinstance(event, events.ToolOutput):
            self.tool_line(event.tool, event.stream, event.line)
        elif isinstance(event, events.Notice):
            self.note(event.text)
        else:
            self.other(event)

    def step(self, name: str, detail: str = "") -> None:
        """A step starts: check, align, fuse, finish."""

    def progress(self, step: str, done: int, total: int, label: str = "") -> None:
        """Progress inside a step, parsed from the tool's own output."""

    def attempt(self, attempt: AttemptView, total: int) -> None:
        """An alignment attempt starts (attempt.added/why say what changed)."""

    def attempt_failed(self, attempt: AttemptView) -> None:
        """An alignment attempt failed with attempt.diagnosis."""

    def command(self, argv: Sequence[str]) -> None:
        """A tool is about to run with this argv."""

    def tool_line(self, tool: str, stream: str, line: str) -> None:
        """One line of a tool's output (shown with --verbose)."""

    def note(self, text: str) -> None:
        """Something worth telling the user (order used, warnings)."""

    def other(self, event: events.Event) -> None:
        """Any other event: a step finished, the result, the failure, a batch's bracket."""


@dataclass(frozen=True)
class AttemptView:
    """An attempt as an event tells it (what :meth:`Reporter.attempt` and ``attempt_failed`` get)."""

    number: int
    added: str = ""
    why: str = ""
    diagnosis: diagnose.Diagnosis | None = None
    next_change: str = ""


class EventReporter:
    """What the pipeline talks to: every call becomes one typed event, sent to every sink."""

    def __init__(self, *sinks: events.EventSink | None) -> None:
        self.sinks = [s for s in sinks if s is not None]
        self.warnings: list[str] = []

    def _emit(self, event: events.Event) -> None:
        for sink in self.sinks:
            sink(event)

    def step(self, name: str, detail: str = "", title: str = "") -> None:
        index = events.STEPS.index(name) + 1 if name in events.STEPS else 0
        self._emit(events.StepStarted(name, index, len(events.STEPS), title or detail, detail))

    def step_finished(self, name: str, seconds: float) -> None:
        self._emit(events.StepFinished(name, round(seconds, 3)))

    def progress(self, step: str, done: int, total: int, label: str = "") -> None:
        self._emit(events.StepProgress(step, done, total, label))

    def attempt(self, attempt: Attempt, total: int) -> None:
        self._emit(events.AttemptStarted(attempt.number, total, attempt.added, attempt.why))

    def attempt_failed(self, attempt: Attempt) -> None:
        d = attempt.diagnosis
        self._emit(
            events.AttemptFailed(
                attempt.number, d.id if d else "unknown", d.explanation if d else "", attempt.next_change
            )
        )

    def command(self, argv: Sequence[str]) -> None:
        self._emit(events.ToolCommand(tool_name(argv), tuple(argv)))

    def tool_line(self, tool: str, stream: str, line: str) -> None:
        self._emit(events.ToolOutput(tool, stream, line))

    def note(self, text: str) -> None:
        self._emit(events.Notice(text, "info"))

    def warn(self, text: str) -> None:
        """A warning: shown like a note, and listed in the result."""
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

    @classmethod
    def from_config(
        cls,
        config: Config,
        preset: NamedPreset,
        *,
        no_retry: bool,
        max_attempts: int | None,
        timeout: float | None,
        quiet: bool,
        no_cache: bool,
    ) -> StackRequest:
        """The request ``stack`` and ``batch`` make alike, from their options and config.toml (no photos yet)."""
        return cls(
            inputs=[],
            preset=preset,
            retry=not no_retry,
            max_attempts=max_attempts,
            timeout=timeout or config.timeout,
            verbose_tools=not quiet,
            use_cache=not no_cache,
            cache_max_bytes=config.cache_max_mb * 1024 * 1024,
        )


@dataclass
class StackResult:
    output: Path
    size: int
    preset: str
    inputs: list[Path]
    attempts: list[Attempt]
    seconds: dict[str, float] = field(default_factory=dict)
    sharpness: SharpnessReport | None = None
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


def plural(n: int, word: str) -> str:
    """ "1 photo", "3 photos"."""
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
    return [LOW_GAIN_WARNING] if sharp is not None and sharp.gain < LOW_GAIN else []


def attempt_dict(a: Attempt) -> dict[str, Any]:
    """One attempt as plain JSON (the shape docs/json.md documents)."""
    return {
        "number": a.number,
        "flags": " ".join(align.option_flags(a.options)),
        "added": a.added,
        "why": a.why,
        "diagnosis": a.diagnosis.id if a.diagnosis else None,
        "seconds": round(a.seconds, 3),
    }


def sharpness_dict(sharp: SharpnessReport | None) -> dict[str, Any] | None:
    """The sharpness report as plain JSON (JSON has no Infinity: an infinite gain is null)."""

    if sharp is None:
        return None
    gain = sharp.gain
    return {
        "result": round(sharp.result, 3),
        "sharpest_input": sharp.sharpest_name,
        "sharpest_input_value": round(sharp.sharpest, 3),
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


def failed_event_of(exc: BaseException) -> events.StackFailed | None:
    """:func:`failed_event` for a known failure; None for anything else (a bug)."""
    return failed_event(exc) if isinstance(exc, (FocuswrapError, Interrupted)) else None


def failed_event(exc: FocuswrapError | Interrupted) -> events.StackFailed:
    """The StackFailed event of a failure: message, exit code, advice, attempts, the tool's output."""
    attempts = exc.attempts if isinstance(exc, AlignmentFailed) else []
    return events.StackFailed(
        message=exc.message,
        exit_code=int(exc.exit_code),
        hint=exc.hint or "",
        attempts=tuple(attempt_dict(a) for a in attempts),
        tool_output=exc.details() if isinstance(exc, ToolFailed) else "",
    )


# ---------------------------------------------------------------- batch

#: What put a group's frames together, in words.
HOW_TEXT = {"names": "Open Camera names", "folder": "subfolder", "time": "capture time"}


@dataclass(frozen=True)
class Group:
    """One focus bracket found in the folder: its frames in natural order."""

    name: str  #: the result is named NAME-stacked.EXT
    frames: tuple[Path, ...]
    how: str  #: "names", "folder" or "time": what put these frames together
    note: str = ""  #: e.g. "file times used: no EXIF capture time"


@dataclass
class StackOutcome:
    """What became (or would become) of one group."""

    group: Group
    output: Path
    #: planned (dry run, or not run yet), ok, up-to-date, single, failed, interrupted, not-started
    status: str
    attempts: int = 0
    seconds: float | None = None
    error: FocuswrapError | None = None
    result: StackResult | None = None

    @property
    def result_text(self) -> str:
        """The "result" column of the summary table."""
        if self.status == "failed" and self.error is not None:
            return f"failed: {failure_text(self.error)}"
        return {
            "planned": "to stack",
            "ok": "ok",
            "up-to-date": "skipped: up to date",
            "single": "skipped: single photo",
            "interrupted": "interrupted",
            "not-started": "not started",
        }.get(self.status, self.status)


@dataclass
class BatchResult:
    """Every group of one batch, in the order found."""

    folder: Path
    outdir: Path
    outcomes: list[StackOutcome]
    dry_run: bool = False
    interrupted: bool = False
    seconds: float = 0.0
    #: Folders two or more levels down that hold photos: batch looks one level deep only.
    deeper: tuple[Path, ...] = ()

    @property
    def deeper_note(self) -> str:
        """'photos two or more folder levels down, in a/b, are not looked at: ...', or ''."""
        if not self.deeper:
            return ""
        shown = [str(d.relative_to(self.folder)) if d.is_relative_to(self.folder) else str(d) for d in self.deeper]
        names = ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
        return f"photos two or more folder levels down, in {names}, are not looked at: give batch that folder"

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failures(self) -> list[StackOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def exit_code(self) -> ExitCode:
        """130 if interrupted; else ALIGN_FAILED if any alignment failed, else the first failure's code."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        errors = [o.error for o in self.failures if o.error is not None]
        if any(isinstance(e, AlignmentFailed) for e in errors):
            return ExitCode.ALIGN_FAILED
        return errors[0].exit_code if errors else ExitCode.OK


def failure_text(error: FocuswrapError) -> str:
    """A failure in a few words for the table: the last diagnosis, else the message."""
    if isinstance(error, AlignmentFailed) and error.attempts:
        diagnosis = error.attempts[-1].diagnosis
        if diagnosis is not None:
            return f"align: {diagnosis.id}"
    text = error.message.splitlines()[0] if error.message else type(error).__name__
    if isinstance(error, FusionFailed):
        text = f"fuse: {text}"
    return text if len(text) <= 60 else text[:59] + "…"
