"""What the user sees: live progress, plain log lines, the result, the failure report.

Progress and errors go to stderr, results to stdout.  Rich's live display is
used only when stderr is a terminal; otherwise every event is one plain line.
Colours follow rich, which honours ``NO_COLOR``.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from focuswrap import events
from focuswrap.errors import FocuswrapError, Interrupted
from focuswrap.events import StackFinished
from focuswrap.model import HOW_TEXT, LOW_GAIN, LOW_GAIN_WARNING, Attempt, AttemptView, BatchResult, Plan, Reporter

if TYPE_CHECKING:
    from rich.progress import TaskID


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


#: A tool's warning line, e.g. libtiff's, printed by enfuse and nona for every frame they write:
#:   "TIFFWriteDirectorySec: Warning, Unknown field with tag 317 (0x13d) encountered."
_WARNING = re.compile(r"\bwarning\b", re.IGNORECASE)
#: Numbers in a warning (tags, offsets, frame numbers) do not make it another warning.
_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")


class PlainReporter(Reporter):
    """One line per event on stderr: for logs, pipes and CI.

    With ``verbose``, a tool's warning that comes again (libtiff's
    "TIFFWriteDirectorySec: Warning ..." once per frame) is shown once; the
    repeats are counted and summed up in one line when the tool's run ends.
    """

    def __init__(self, *, verbose: bool = False, stream: TextIO | None = None) -> None:
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self._last_progress: tuple[str, int] | None = None
        self._lock = threading.Lock()  # tool lines come from the tools' reader threads
        self._warnings: dict[tuple[str, str], list[Any]] = {}  # (tool, key) -> [first line, repeats]

    def _fold(self, tool: str, line: str) -> bool:
        """True if ``line`` repeats a warning already shown (it is then only counted)."""
        if not _WARNING.search(line):
            return False
        key = (tool, _NUMBERS.sub("#", line.strip()))
        with self._lock:
            seen = self._warnings.get(key)
            if seen is None:
                self._warnings[key] = [line.strip(), 0]
                return False
            seen[1] += 1
            return True

    def flush_warnings(self) -> None:
        """One line per folded warning: how many more times it came."""
        with self._lock:
            folded = [(tool, first, n) for (tool, _key), (first, n) in self._warnings.items() if n]
            self._warnings.clear()
        for tool, first, n in folded:
            self._say(f"       {tool}: (the warning above came {n} more time{'s' if n != 1 else ''}: {first})")

    def __exit__(self, *exc: object) -> None:
        self.flush_warnings()

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def step(self, name: str, detail: str = "") -> None:
        self.flush_warnings()
        self._say(f"{name:<6} {detail}".rstrip())

    def progress(self, step: str, done: int, total: int, label: str = "") -> None:
        self._say(f"{step:<6} [{done}/{total}] {label}".rstrip())

    def attempt(self, attempt: AttemptView, total: int) -> None:
        if attempt.number == 1:
            return  # the first attempt is the plain run: nothing to announce
        self._say(f"       attempt {attempt.number} of up to {total}: adding {attempt.added} ({attempt.why})")

    def attempt_failed(self, attempt: AttemptView) -> None:
        d = attempt.diagnosis
        if d is not None:
            self._say(f"       attempt {attempt.number} failed: {d.id}: {d.explanation}")

    def command(self, argv: Sequence[str]) -> None:
        if self.verbose:
            self.flush_warnings()
            self._say(f"       $ {shlex.join(argv)}")

    def tool_line(self, tool: str, stream: str, line: str) -> None:
        if self.verbose and line.strip() and not self._fold(tool, line):
            self._say(f"       {tool}: {line}")

    def note(self, text: str) -> None:
        self._say(f"       {text}")


class LiveReporter(PlainReporter):
    """A rich progress bar per step, with attempts and notes printed above it."""

    def __init__(self, *, verbose: bool = False) -> None:
        super().__init__(verbose=verbose)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[step]:<6}[/]"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=False,
        )
        self._task: TaskID | None = None

    def _say(self, text: str) -> None:
        self.bar.console.print(text, highlight=False, markup=False)

    def __enter__(self) -> LiveReporter:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush_warnings()
        if not exc or exc[0] is None:
            self._finish_step()
        self.bar.stop()

    def _finish_step(self) -> None:
        """Show the current step as complete (a step without progress has no total: give it one)."""
        if self._task is None:
            return
        task = next(t for t in self.bar.tasks if t.id == self._task)
        total = task.total or max(task.completed, 1)
        self.bar.update(self._task, total=total, completed=total)
        self.bar.stop_task(self._task)

    def step(self, name: str, detail: str = "") -> None:
        self.flush_warnings()
        self._finish_step()
        self._task = self.bar.add_task(detail, step=name, total=None)

    def progress(self, step: str, done: int, total: int, label: str = "") -> None:
        if self._task is not None:
            self.bar.update(self._task, completed=done, total=total, description=label)


class QuietReporter(Reporter):
    """--quiet: nothing at all while working."""


def make_reporter(*, quiet: bool, verbose: bool) -> Reporter:
    if quiet:
        return QuietReporter()
    if sys.stderr.isatty():
        return LiveReporter(verbose=verbose)
    return PlainReporter(verbose=verbose)


def result_dict(result: StackFinished) -> dict[str, Any]:
    """The stable JSON shape of a finished stack (documented in docs/json.md), from its event."""
    return {
        "output": result.output,
        "bytes": result.size,
        "preset": result.preset,
        "inputs": list(result.inputs),
        "attempts": [dict(a) for a in result.attempts],
        "seconds": dict(result.seconds),
        "sharpness": result.sharpness,
        "work_folder": result.work_folder,
        "cached": result.cached,
        "map": result.map_output,
        "crop": list(result.crop) if result.crop else None,
    }


class ResultCatcher:
    """An event sink that keeps the stack's final event (for the result shown once the display is done)."""

    def __init__(self) -> None:
        self.finished: StackFinished | None = None

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, StackFinished):
            self.finished = event


def print_result(result: StackFinished, *, as_json: bool) -> None:
    """The finished stack on stdout, from its StackFinished event: a few aligned lines, or one JSON object."""
    if as_json:
        print(json.dumps(result_dict(result), indent=2))
        return
    n = len(result.attempts)
    if result.cached:
        tried = "aligned frames reused from the cache"
    else:
        tried = f"{n} attempt{'s' if n != 1 else ''}"
        if n > 1:
            tried += f"; {result.attempts[-1]['added'] or 'the last rung'} made the difference"
    secs = result.seconds
    timing = "  ".join(f"{k} {secs[k]:.1f} s" for k in ("align", "fuse", "finish", "total") if k in secs)
    lines = [
        f"Stacked {len(result.inputs)} photos into {result.output}",
        f"  size       {_human_bytes(result.size)}",
        f"  preset     {result.preset} ({tried})",
        f"  time       {timing}",
    ]
    sharp = result.sharpness
    gain = None
    if sharp is not None:
        gain = float("inf") if sharp["gain"] is None else sharp["gain"]  # JSON's null: infinite
        lines.append(f"  sharpness  {gain:.2f}x the sharpest input ({sharp['sharpest_input']})")
    if result.crop_size:
        width, height = result.crop_size
        lines.append(
            f"  cropped    to {width}x{height}, the area every photo covers and enfuse blended (--no-crop keeps it all)"
        )
    if result.map_output:
        lines.append(f"  map        {result.map_output}")
    if result.work_folder:
        lines.append(f"  work folder kept: {result.work_folder}")
    print("\n".join(lines))
    if gain is not None and gain < LOW_GAIN:
        print(f"focuswrap: warning: {LOW_GAIN_WARNING}", file=sys.stderr)


def print_plan(plan: Plan) -> None:
    """``stack --dry-run``: the commands on stdout (a shell can run them), what depends on them on stderr."""
    print("\n".join(plan.shell_lines()))
    for note in plan.notes:
        print(f"# {note}", file=sys.stderr)
    print(f"# then the result is written to {plan.output}", file=sys.stderr)


def attempts_table(attempts: Sequence[Attempt]) -> str:
    """The table of alignment attempts shown when every attempt failed."""
    from focuswrap.hugin.align import option_flags

    rows = [("#", "flags", "diagnosis")]
    for a in attempts:
        rows.append((str(a.number), " ".join(option_flags(a.options)), a.diagnosis.id if a.diagnosis else "?"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def failure_lines(exc: FocuswrapError | Interrupted, *, verbose: bool) -> list[str]:
    """What follows a failure's one-line message: attempts table, tool output, advice.

    A failure no diagnosis explains is never swallowed: the command and the
    tool's last lines come (before the advice, which points at them "above")
    even without ``verbose``.
    """
    from focuswrap.errors import AlignmentFailed, ToolFailed

    lines: list[str] = []
    if isinstance(exc, AlignmentFailed) and exc.attempts:
        lines.append("Attempts:\n" + attempts_table(exc.attempts))
    if isinstance(exc, ToolFailed) and (verbose or exc.unknown):
        lines.append(exc.details())
    if exc.hint:
        lines.append(exc.hint)
    return lines


# ---------------------------------------------------------------- batch: the listing, the table, the report


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _table(rows: list[tuple[str, ...]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return lines


def summary_table(result: BatchResult) -> str:
    """One row per stack: stack, frames, attempts, result, time."""
    rows: list[tuple[str, ...]] = [("stack", "frames", "attempts", "result", "time")]
    for o in result.outcomes:
        ran = o.status in ("ok", "failed", "interrupted")
        rows.append(
            (
                o.group.name,
                str(len(o.group.frames)),
                str(o.attempts) if ran and o.attempts else "-",
                o.result_text,
                _seconds(o.seconds) if ran else "-",
            )
        )
    return "\n".join(_table(rows, right=(1, 2, 4)))


def _totals(result: BatchResult) -> str:
    parts = [
        f"{result.count('ok')} stacked",
        f"{result.count('up-to-date')} up to date",
        f"{result.count('single')} single photo{'s' if result.count('single') != 1 else ''} skipped",
        f"{result.count('failed')} failed",
    ]
    if result.interrupted:
        parts.append(f"{result.count('interrupted') + result.count('not-started')} not finished (interrupted)")
    return ", ".join(parts) + f" in {result.seconds:.1f} s; results in {result.outdir}"


def plan_lines(result: BatchResult) -> str:
    """The dry-run listing: each group, its frames, its result path, and whether it is skipped."""
    hows = " and ".join(sorted({HOW_TEXT[o.group.how] for o in result.outcomes}))
    found = len(result.outcomes)
    lines = [
        f"{found} bracket{'' if found == 1 else 's'} in {result.folder} (by {hows}); results go to {result.outdir}"
    ]
    rows: list[tuple[str, ...]] = []
    for o in result.outcomes:
        frames = o.group.frames
        count = f"{len(frames)} frame{'s' if len(frames) != 1 else ''}"
        span = frames[0].name if len(frames) == 1 else f"{frames[0].name} .. {frames[-1].name}"
        arrow = "->"
        if o.status == "single":
            arrow, action = "", "skip: single photo"
        elif o.status == "up-to-date":
            action = f"{o.output}  skip: up to date"
        else:
            action = f"{o.output}" + ("  (replaces the older result)" if o.output.exists() else "")
        rows.append((o.group.name, count, span, arrow, action + (f"  ({o.group.note})" if o.group.note else "")))
    lines += ["  " + line for line in _table(rows, right=(1,))]
    return "\n".join(lines)


def print_report(
    result: BatchResult, *, verbose: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> None:
    """The dry-run listing, or the summary table, on stdout; each failure's message and advice on stderr.

    As for ``focuswrap stack``, a tool's command and last output lines are
    shown with ``verbose``, and always for a failure no diagnosis explains.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    note = f"Not stacked: {result.deeper_note}." if result.deeper else ""
    if result.dry_run:
        print(plan_lines(result), file=out)
        if note:
            print(note, file=out)
        return
    print(summary_table(result), file=out)
    print(_totals(result), file=out)
    if note:
        print(note, file=out)
    for o in result.failures:
        assert o.error is not None
        print(f"focuswrap: error: {o.group.name}: {o.error.message}", file=err)
        for block in failure_lines(o.error, verbose=verbose):
            print(_indent(block), file=err)
    if result.interrupted:
        print(
            "focuswrap: interrupted; the finished results are kept, the unfinished stacks left nothing behind.",
            file=err,
        )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
