"""What the library tells a user interface while it works: one typed event stream.

Every interface (the live terminal display, the plain log, ``--json``,
``batch``, ``focuswrap stack --events`` and the local web page) learns what a
stack does from these events and from nothing else.  They are frozen
dataclasses whose fields are plain JSON types, so that :func:`to_dict` and
:func:`from_dict` carry them across a process boundary unchanged: ``--events``
prints ``json.dumps(to_dict(event))`` one per line, the web page reads them
back with ``from_dict(json.loads(line))``.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import IO, Any, Union, get_args

#: The steps of a stack, in order.  ``StepStarted.index``/``total`` are positions
#: in this list, fixed up front; a step that has nothing to do (``convert`` when
#: no photo is HEIF or raw) is skipped without changing the others' positions.
STEPS: tuple[str, ...] = ("check", "convert", "align", "fuse", "finish")


@dataclass(frozen=True, slots=True)
class StepStarted:
    """A step of the stack begins (``title`` in plain words, ``detail`` terse)."""

    step: str
    index: int
    total: int
    title: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StepProgress:
    """Progress inside a step, from the tool's own output ("lining up photo 3 of 7 (IMG_3.jpg)")."""

    step: str
    done: int
    total: int
    label: str


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A step ended after ``seconds``."""

    step: str
    seconds: float


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """An alignment attempt begins: ``added`` is the flags it adds (empty for the first), ``why`` the reason."""

    number: int
    limit: int
    added: str
    why: str


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    """An alignment attempt failed: the diagnosis id, its explanation, and what the next rung changes ("" if none)."""

    number: int
    diagnosis: str
    explanation: str
    next_change: str


@dataclass(frozen=True, slots=True)
class ToolCommand:
    """A Hugin tool is about to run with this argv."""

    tool: str
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """One line a tool printed on ``stream`` ("stdout" or "stderr")."""

    tool: str
    stream: str
    line: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth telling the user; ``level`` is "info" or "warning"."""

    text: str
    level: str = "info"


@dataclass(frozen=True, slots=True)
class StackFinished:
    """The stack is done: the result's facts (the JSON shape of docs/json.md where they overlap)."""

    output: str
    size: int
    preset: str
    inputs: tuple[str, ...]
    seconds: dict[str, float]
    sharpness: dict[str, Any] | None
    cached: bool
    map_output: str | None
    crop: tuple[int, ...] | None
    warnings: tuple[str, ...] = ()
    #: (width, height) of the result as shown, when cropped.
    crop_size: tuple[int, ...] | None = None
    work_folder: str | None = None
    attempts: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class StackFailed:
    """The stack failed (or was interrupted): the message, exit code, advice, attempts and the tool's output."""

    message: str
    exit_code: int
    hint: str
    attempts: tuple[dict[str, Any], ...] = ()
    tool_output: str = ""


@dataclass(frozen=True, slots=True)
class BracketStarted:
    """batch: one bracket's stack begins."""

    index: int
    total: int
    name: str
    photos: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class BracketFinished:
    """batch: one bracket's stack ended (``ok`` False: ``message`` says why)."""

    index: int
    total: int
    name: str
    ok: bool
    output: str | None
    message: str


Event = Union[  # noqa: UP007 - a runtime alias: isinstance() and mypy both read it
    StepStarted,
    StepProgress,
    StepFinished,
    AttemptStarted,
    AttemptFailed,
    ToolCommand,
    ToolOutput,
    Notice,
    StackFinished,
    StackFailed,
    BracketStarted,
    BracketFinished,
]

#: Whatever receives the events: a display, a JSON-lines writer, a recorder in a test.
EventSink = Callable[[Event], None]

_EVENT_TYPES: tuple[type[Event], ...] = get_args(Event)


def type_name(cls: type[Event]) -> str:
    """The "type" key of an event class: its name in snake_case (StepStarted -> step_started)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


_BY_NAME: dict[str, type[Event]] = {type_name(cls): cls for cls in _EVENT_TYPES}


def to_dict(event: Event) -> dict[str, Any]:
    """The event as a JSON-able dict with a "type" key (tuples become lists only when JSON-encoded)."""
    out: dict[str, Any] = {"type": type_name(type(event))}
    for f in fields(event):
        out[f.name] = getattr(event, f.name)
    return out


def _plain(value: Any) -> Any:
    # JSON has no tuples: the lists it gives back become the tuples the fields hold.
    if isinstance(value, list):
        return tuple(_plain(v) if isinstance(v, list) else v for v in value)
    return value


def from_dict(data: Mapping[str, Any]) -> Event:
    """The event :func:`to_dict` made (also after a JSON round trip); ValueError for anything else."""
    if not isinstance(data, Mapping):
        raise ValueError(f"an event is a JSON object, not {type(data).__name__}")
    name = data.get("type")
    cls = _BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown event type {name!r}")
    known = {f.name for f in fields(cls)}
    extra = set(data) - known - {"type"}
    if extra:
        raise ValueError(f"{name} has no field {sorted(extra)[0]!r}")
    try:
        return cls(**{k: _plain(v) for k, v in data.items() if k != "type"})
    except TypeError as exc:
        raise ValueError(f"{name}: {exc}") from None


def dump(event: Event) -> str:
    """One JSON line (no newline) for ``--events``."""
    return json.dumps(to_dict(event), ensure_ascii=False, allow_nan=False)


@contextlib.contextmanager
def json_lines(enabled: bool, failed: Callable[[BaseException], Event | None]) -> Iterator[JsonLines | None]:
    """``stack --events``: the JSON-lines writer on stdout, or None when not ``enabled``.

    A failure before the stream ended (also one before the stack began) still ends it, with the
    event ``failed`` makes of it (None: not a failure focuswrap knows), then goes on to the caller.
    """
    if not enabled:
        yield None
        return
    sink = JsonLines()
    try:
        yield sink
    except BaseException as exc:
        last = None if sink.ended else failed(exc)
        if last is not None:
            sink(last)
        raise


class JsonLines:
    """``--events``: every event as one JSON object per line, flushed at once (read back with from_dict)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        #: True once the final event (stack_finished or stack_failed) is out.
        self.ended = False
        # The tools' stdout and stderr are read on two threads: one whole line at a time.
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = dump(event) + "\n"
        with self._lock:
            self.stream.write(line)
            self.stream.flush()
            if isinstance(event, (StackFinished, StackFailed)):
                self.ended = True
