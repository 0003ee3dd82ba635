"""Standard output and error that can never fail a stack.

What focuswrap prints is a report on work already done or under way: when
the terminal is closed (``2>&-``), the reader went away (``| head -3``), the
device is full (``>/dev/full``) or cannot show a character (``LC_ALL=C``,
``PYTHONIOENCODING=ascii``), the display goes quiet and the work goes on.
:func:`install` wraps ``sys.stdout`` and ``sys.stderr`` once at start-up:

* characters the stream's encoding cannot show are replaced (``?``);
* the first write or flush that fails silences that stream for good, and its
  file descriptor is pointed at the null device, so that neither a later
  write nor Python's own flush at exit can fail again (the exit code stays
  the one the work earned, not 120 with "Exception ignored ... Errno 28");
* a missing stream (``None``, as Python leaves a closed descriptor) is a
  silent one.

:func:`clean` strips control characters (terminal escape codes) from text
that came from a user's file before it is shown.
"""

from __future__ import annotations

import io
import os
import re
import sys
from typing import TextIO

#: C0 and C1 control characters except tab and newline, and DEL: escape codes,
#: bells, carriage returns that would redraw the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` without control characters (escape sequences lose their ESC and show as plain text)."""
    return _CONTROL.sub("", text)


class SafeStream(io.TextIOBase):
    """A text stream that forwards to ``target`` until the first failure, then swallows everything."""

    def __init__(self, target: TextIO | None, fd: int) -> None:
        super().__init__()
        self._target = target
        self._fd = fd

    @property
    def broken(self) -> bool:
        """True once the stream failed (or was missing from the start): everything is swallowed."""
        return self._target is None

    # -- what callers use

    # The stubs declare these two as plain attributes; on io.TextIOBase they are read-only
    # properties, which only a property can override.
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "replace"

    def isatty(self) -> bool:
        target = self._target
        if target is None:
            return False
        try:
            return bool(target.isatty())
        except (OSError, ValueError, AttributeError):
            return False

    def fileno(self) -> int:
        if self._target is None:
            raise io.UnsupportedOperation("no file descriptor")
        return self._target.fileno()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        target = self._target
        if target is None:
            return len(text)
        try:
            target.write(self._showable(text))
            if "\n" in text and getattr(target, "line_buffering", False):
                target.flush()
        except (OSError, ValueError, AttributeError):
            self._silence()
        return len(text)

    def flush(self) -> None:
        target = self._target
        if target is None:
            return
        try:
            target.flush()
        except (OSError, ValueError, AttributeError):
            self._silence()

    # -- inside

    def _showable(self, text: str) -> str:
        encoding = self.encoding
        try:
            text.encode(encoding)
            return text
        except (UnicodeEncodeError, LookupError):
            return text.encode(encoding, "replace").decode(encoding, "replace")
        except UnicodeError:
            return text.encode("ascii", "replace").decode("ascii")

    def _silence(self) -> None:
        target, self._target = self._target, None
        # Point the descriptor at the null device: the buffered TextIOWrapper
        # Python flushes at exit then succeeds instead of printing
        # "Exception ignored ... BrokenPipeError" and exiting 120.
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self._fd)
            finally:
                os.close(null)
        except OSError:
            pass
        if target is not None:
            try:
                target.flush()
            except (OSError, ValueError):
                pass


def _hold_standard_descriptors() -> None:
    """Put the null device on any of descriptors 0-2 that is closed (``2>&-``).

    Otherwise the next file focuswrap opens would get that number, and
    whatever writes to "stderr" (a tool it starts, a library's warning) would
    write into that file.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                got = os.open(os.devnull, os.O_RDWR)
            except OSError:
                return
            if got != fd:  # a lower one was free after all: keep the numbers as they were
                os.dup2(got, fd)
                os.close(got)


def install() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in :class:`SafeStream` (once; idempotent)."""
    _hold_standard_descriptors()
    if not isinstance(sys.stdout, SafeStream):
        sys.stdout = SafeStream(sys.stdout, 1)
    if not isinstance(sys.stderr, SafeStream):
        sys.stderr = SafeStream(sys.stderr, 2)
