"""The stop signals: Ctrl-C, SIGTERM (a page's Cancel, ``kill``) and SIGHUP (the terminal closed).

:func:`install` (called once by ``cli.main``) makes each of them raise
:class:`~focuswrap.errors.Interrupted` in the main thread: ``proc.run`` then
stops its child, every work folder's ``finally`` removes it, and the command
exits 130.  (Click would turn a ``KeyboardInterrupt`` into "Aborted!" and exit 1.)
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from focuswrap import proc
from focuswrap.errors import FocuswrapError, Interrupted

if TYPE_CHECKING:
    from types import FrameType

#: All three stop a stack the same way: the tools stopped, the work folder removed, exit 130.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
STOPPED = "Interrupted; the running Hugin tool was stopped and temporary files were removed."

_received = False  # set by the first stop signal


def install() -> None:
    """Handle the stop signals from now on (each command line run starts afresh)."""
    global _received
    _received = False
    proc.allow_runs()
    for name in STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stop)


def _stop(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received:
        # A second Ctrl-C (people press it repeatedly) must not break off the
        # cleanup the first one started: stopping the child takes at most a
        # few seconds (proc.TERMINATE_GRACE, then SIGKILL).
        return
    _received = True
    proc.terminate_all()  # tools of other threads too (the version probes); each run() reaps its own
    raise Interrupted(STOPPED)


def what_happened(exc: BaseException) -> FocuswrapError | Interrupted | None:
    """The failure to report for ``exc``: the interruption once a stop signal came, else ``exc`` if it is
    a known failure, else None (a bug).

    After a stop signal, whatever fails next is its consequence: a tool killed by it, or the
    Interrupted itself come back wrapped (pydantic, building a model while the signal landed,
    turns it into a SchemaError).
    """
    if isinstance(exc, Interrupted):
        return exc
    if _received:
        return Interrupted(STOPPED)
    return exc if isinstance(exc, FocuswrapError) else None
