"""The one place where focuswrap starts a process.

:func:`run` logs the command, streams the child's output line by line to an
optional callback (for progress), returns ``(returncode, stdout, stderr)`` and
never lets ``OSError`` escape untyped.  On Ctrl-C or SIGTERM (any exception
raised while it waits: ``KeyboardInterrupt``, or the ``Interrupted`` that
``cli.main``'s signal handler raises) or a timeout it terminates the child's
process group, then kills it if it does not go, and only then re-raises: no
Hugin process keeps burning CPU after focuswrap is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import IO, Any

from focuswrap.errors import MissingToolError, ToolTimeout

log = logging.getLogger("focuswrap.proc")

#: Called with ("stdout" | "stderr", line without newline) as the child prints.
LineCallback = Callable[[str, str], None]

#: Seconds a child gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE = 3.0


@dataclass(frozen=True)
class Completed:
    """What a finished child left: exit code (negative: killed by that signal) and output."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    #: run_together stopped it because a command beside it failed (its exit code says nothing).
    stopped: bool = False


def _pump(stream: IO[str], name: str, sink: list[str], on_line: LineCallback | None, logger: logging.Logger) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)
        text = line.rstrip("\r\n")
        if name == "stderr":
            logger.debug("%s", text)
        if on_line is not None:
            try:
                on_line(name, text)
            except Exception:  # a progress display must never break a run
                log.debug("progress callback failed", exc_info=True)
    stream.close()


def _signal(child: subprocess.Popen[str], *, kill: bool) -> None:
    """Terminate (or kill) the child and, on POSIX, every process of its group.

    The child leads its own process group (``start_new_session``): signalling
    the group also reaches what it started itself, e.g. the tool behind
    ``flatpak run``, which would otherwise keep running.
    """
    if sys.platform != "win32":
        try:
            os.killpg(child.pid, signal.SIGKILL if kill else signal.SIGTERM)
            return
        except OSError:  # no such group (not a group leader after all): the child alone
            pass
    try:
        if kill:
            child.kill()
        else:
            child.terminate()
    except OSError:  # already gone
        pass


# Children started by run() and not yet finished, from any thread: a Ctrl-C
# reaches only the main thread, so a batch running stacks on worker threads
# stops their tools through stop_all().
_LIVE: set[subprocess.Popen[str]] = set()
_LIVE_LOCK = threading.Lock()


def stop_all() -> None:
    """Stop every tool that run() started and that is still running (any thread)."""
    with _LIVE_LOCK:
        children = list(_LIVE)
    for child in children:
        stop(child)


#: Set by terminate_all(): a child that starts afterwards (its thread had not yet
#: registered it when the signal came) is stopped the moment it is registered.
_stopping = False


def allow_runs() -> None:
    """Forget an earlier terminate_all() (each command line run starts afresh)."""
    global _stopping
    _stopping = False


def terminate_all() -> None:
    """Ask every tool run() started, in any thread, to stop (SIGTERM to its group), without waiting.

    Safe in a signal handler (takes no lock): the Ctrl-C handler calls it so
    that a tool run from a worker thread (the version probes, batch's stacks)
    stops at once instead of running on until its timeout while the main
    thread waits for that thread.  Each run() then reaps its own child.
    """
    global _stopping
    _stopping = True
    for _ in range(3):
        try:
            children = list(_LIVE)
            break
        except RuntimeError:  # the set changed while copied
            continue
    else:
        return
    for child in children:
        if child.poll() is None:
            _signal(child, kill=False)


def stop(child: subprocess.Popen[str], grace: float = TERMINATE_GRACE) -> None:
    """Terminate ``child`` (and its process group), wait up to ``grace`` seconds, then kill it."""
    if child.poll() is not None:
        return
    _signal(child, kill=False)
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal(child, kill=True)
        child.wait()


class _Deadline:
    """The timeout of one run: a timer that stops the child, unless the child finished first."""

    def __init__(self, child: subprocess.Popen[str], timeout: float | None) -> None:
        self.child = child
        self.lock = threading.Lock()
        self.finished = False
        self.expired = False
        self.timer = None
        # No timer for "no limit", nor beyond what threading.Timer can wait (inf, 1e10 s).
        if timeout is not None and timeout < threading.TIMEOUT_MAX:
            self.timer = threading.Timer(timeout, self._expire)
            self.timer.daemon = True
            self.timer.start()

    def _expire(self) -> None:
        with self.lock:
            if self.finished:
                return
            self.expired = True
        stop(self.child)  # the waiting thread then returns

    def done(self) -> bool:
        """The child has exited: True if that was the timer's doing."""
        with self.lock:
            self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        return self.expired


def run(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    on_line: LineCallback | None = None,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
) -> Completed:
    """Run ``argv`` (never through a shell) and return its exit code and output.

    Raises :class:`MissingToolError` when the program cannot be started and
    :class:`ToolTimeout` when it runs longer than ``timeout`` seconds.
    ``KeyboardInterrupt`` stops the child and is re-raised.  ``on_start`` is
    told the child as soon as it runs (:func:`run_together` uses it).
    """
    argv = [os.fspath(a) for a in argv]
    name = os.path.basename(argv[0]) if argv else "?"
    logger = logging.getLogger(f"focuswrap.tool.{name}")
    logger.debug("Running: %s", argv)
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        # Our own session: the terminal's Ctrl-C reaches only focuswrap, which
        # then stops the child itself (and knows it did).
        kwargs["start_new_session"] = True
    started = time.monotonic()
    try:
        child = subprocess.Popen(
            argv,
            cwd=os.fspath(cwd) if cwd is not None else None,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            **kwargs,
        )
    except OSError as exc:
        raise MissingToolError(f"Could not start {argv[0]}: {exc.strerror or exc}.") from exc
    out: list[str] = []
    err: list[str] = []
    pumps = [
        threading.Thread(target=_pump, args=(child.stdout, "stdout", out, on_line, logger), daemon=True),
        threading.Thread(target=_pump, args=(child.stderr, "stderr", err, on_line, logger), daemon=True),
    ]
    try:
        # Everything after Popen is inside this ``try``: a Ctrl-C arriving even
        # while the reader threads start still stops the child.
        with _LIVE_LOCK:
            _LIVE.add(child)
        if _stopping:  # Ctrl-C came while this thread was starting the child
            _signal(child, kill=False)
        if on_start is not None:
            on_start(child)
        for t in pumps:
            t.start()
        # A blocking wait returns the moment the child exits (Popen.wait(timeout)
        # polls with sleeps of up to 50 ms, which every run would pay); the
        # deadline's timer stops the child if it runs too long.
        deadline = _Deadline(child, timeout)
        try:
            returncode = child.wait()
        finally:
            timed_out = deadline.done()
        if timed_out:
            for t in pumps:
                t.join(timeout=2)
            raise ToolTimeout(
                f"{name} ran for more than {timeout:g} s and was stopped.",
                argv=argv,
                returncode=None,
                stdout="".join(out),
                stderr="".join(err),
                hint="Raise the limit with --timeout if your photos are very large.",
            ) from None
    except BaseException:  # KeyboardInterrupt, SystemExit, ToolTimeout
        stop(child)
        raise
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(child)
    for t in pumps:
        t.join()
    seconds = time.monotonic() - started
    logger.debug("exit code %s after %.2f s", returncode, seconds)
    return Completed(returncode, "".join(out), "".join(err), seconds)


def run_together(
    commands: Sequence[Sequence[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    on_line: LineCallback | None = None,
) -> list[Completed]:
    """Run several commands side by side, each through :func:`run`; their results in order.

    The first command to fail ends the others: one that exits non-zero gets
    the rest stopped (their results say ``stopped``); one that raises
    (timeout, cannot start) or an interrupted wait (Ctrl-C, SIGTERM) stops
    them all before the exception goes on.
    """
    if len(commands) == 1:
        return [run(commands[0], cwd=cwd, env=env, timeout=timeout, on_line=on_line)]
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    started: list[subprocess.Popen[str]] = []
    lock = threading.Lock()
    stopping = threading.Event()

    def track(child: subprocess.Popen[str]) -> None:
        with lock:
            started.append(child)
            late = stopping.is_set()
        if late:  # started just after the others were stopped
            stop(child)

    def stop_the_rest() -> None:
        with lock:
            stopping.set()
            children = list(started)
        for child in children:
            stop(child)

    pool = ThreadPoolExecutor(max_workers=len(commands), thread_name_prefix="focuswrap-run")
    try:
        futures = [
            pool.submit(run, argv, cwd=cwd, env=env, timeout=timeout, on_line=on_line, on_start=track)
            for argv in commands
        ]
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            failed = [f for f in finished if f.exception() is not None or f.result().returncode != 0]
            if failed and not stopping.is_set():
                for f in failed:
                    error = f.exception()
                    if error is not None:
                        raise error
                stop_the_rest()
                stopped_by_us = pending
        results = [f.result() for f in futures]
        if stopping.is_set():
            results = [
                replace(r, stopped=True) if f in stopped_by_us else r for f, r in zip(futures, results, strict=True)
            ]
        return results
    except BaseException:
        stop_the_rest()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
