"""Typed errors and the exit codes they map to.

Every failure focuswrap reports on purpose is a :class:`FocuswrapError`
subclass carrying an :class:`ExitCode`; ``cli.py`` turns them into a message
and an exit code in exactly one place.  The codes are documented in
``docs/exit-codes.md``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typing only: the model is a higher layer
    from focuswrap.model import Attempt


class ExitCode(IntEnum):
    """Process exit codes (documented in docs/exit-codes.md)."""

    OK = 0
    #: Unexpected internal error (a bug in focuswrap: please report it).
    INTERNAL = 1
    #: Bad input or usage: missing/unreadable/mismatched photos, existing output, bad option.
    BAD_INPUT = 2
    #: Hugin's align_image_stack or enfuse could not be found, or is too old.
    MISSING_TOOL = 3
    #: align_image_stack failed on every attempt of the fallback ladder.
    ALIGN_FAILED = 4
    #: enfuse failed (or wrote no usable result).
    FUSE_FAILED = 5
    #: A config file or preset file is malformed.
    BAD_CONFIG = 6
    #: The result could not be written (disk full, permission lost while writing).
    WRITE_FAILED = 7
    #: Interrupted by Ctrl-C or SIGTERM.
    INTERRUPTED = 130


class FocuswrapError(Exception):
    """Base class: a failure with a message for a person and an exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class BadInputError(FocuswrapError):
    """The photos, paths or options given cannot be used."""

    exit_code = ExitCode.BAD_INPUT


class OutputExistsError(BadInputError):
    """The output file exists and ``--force`` was not given."""


class ConfigError(FocuswrapError):
    """A config or preset file is malformed (file, field and allowed values in the message)."""

    exit_code = ExitCode.BAD_CONFIG


class MissingToolError(FocuswrapError):
    """A Hugin tool was not found (the message says where we looked)."""

    exit_code = ExitCode.MISSING_TOOL


class ToolTooOldError(MissingToolError):
    """A Hugin tool was found but is too old to take the options we pass."""


def _indent_tail(text: str, lines: int = 12) -> str:
    tail = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return "\n".join("    " + ln for ln in tail)


class ToolFailed(FocuswrapError):
    """A tool ran and failed; keeps argv and output for the report."""

    exit_code = ExitCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        returncode: int | None,
        stdout: str = "",
        stderr: str = "",
        hint: str | None = None,
        unknown: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        #: True when the failure matched no known diagnosis: the report then shows the output.
        self.unknown = unknown

    def details(self) -> str:
        """The command and the last lines of its output, indented (for --verbose and logs)."""
        parts = [f"command: {shlex.join(self.argv)}", f"exit code: {self.returncode}"]
        if self.stdout.strip():
            parts.append("stdout (last lines):\n" + _indent_tail(self.stdout))
        if self.stderr.strip():
            parts.append("stderr (last lines):\n" + _indent_tail(self.stderr))
        return "\n".join(parts)


class ToolTimeout(ToolFailed):
    """A tool ran longer than the timeout and was stopped."""


class AlignmentFailed(ToolFailed):
    """align_image_stack failed on every attempt."""

    exit_code = ExitCode.ALIGN_FAILED

    def __init__(self, message: str, *, attempts: Sequence[Attempt] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        #: The attempts made, for the final table.
        self.attempts: list[Attempt] = list(attempts)


class FusionFailed(ToolFailed):
    """enfuse failed or wrote no usable result."""

    exit_code = ExitCode.FUSE_FAILED


class WriteFailed(FocuswrapError):
    """The finished result could not be written into place."""

    exit_code = ExitCode.WRITE_FAILED


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: everything was cleaned up.

    A ``BaseException``, like ``KeyboardInterrupt`` (as OCRmyPDF and pre-commit
    treat it), so that no ``except Exception`` anywhere can swallow it; it
    carries the same ``message``/``hint``/``exit_code`` as a :class:`FocuswrapError`.
    It is not a ``KeyboardInterrupt``: Click would turn that into "Aborted!" and exit 1.
    """

    exit_code: ExitCode = ExitCode.INTERRUPTED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message
