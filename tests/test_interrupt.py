"""Ctrl-C and SIGTERM during a stack: exit 130, the Hugin child stopped, no work folder, no output.

Each test starts ``focuswrap stack`` as a subprocess with a fake tool that
sleeps, waits until the fake has written its pid (so the tool is really
running), signals focuswrap and checks what is left.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import fakehugin
import pytest
from helpers import Workspace, kill_if_running, process_gone, wait_for_pid

from focuswrap.errors import ExitCode

#: Seconds focuswrap may take to stop after the signal (the fakes die at once on SIGTERM).
STOP_LIMIT = 10


@contextmanager
def tool_running(ws: Workspace, tool: fakehugin.Fake, *args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start ``focuswrap stack ARGS`` and wait until ``tool`` runs; yields focuswrap and the tool's pid.

    Afterwards, kills whichever of the two is still running (should focuswrap have failed to stop it)."""
    run = ws.start(*args)
    pid = None
    try:
        pid = wait_for_pid(tool)
        yield run, pid
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        kill_if_running(pid)


def _signal_and_wait(run: subprocess.Popen[str], sig: int) -> tuple[int, str, str, float]:
    sent = time.monotonic()
    run.send_signal(sig)
    try:
        out, err = run.communicate(timeout=STOP_LIMIT)
    except subprocess.TimeoutExpired:
        run.kill()
        out, err = run.communicate()
        raise AssertionError(f"focuswrap did not stop within {STOP_LIMIT} s of the signal:\n{err}") from None
    return run.returncode, out, err, time.monotonic() - sent


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_alignment_stops_the_tool_and_cleans_up(ws: Workspace, sig: int) -> None:
    ws.align.plan({"sleep": 30})
    args = ws.photos()
    before = ws.snapshot()
    with tool_running(ws, ws.align, *args, "-o", "out.jpg") as (run, pid):
        assert [f for f in ws.work_folders() if f.startswith("focuswrap.")], "no work folder while aligning"
        code, out, err, seconds = _signal_and_wait(run, sig)
        assert code == ExitCode.INTERRUPTED == 130, err
        assert seconds < 5, f"focuswrap took {seconds:.1f} s to stop"
        assert "focuswrap: error: Interrupted" in err
        assert "Traceback" not in err + out
        assert "Aborted" not in err  # Click's own Ctrl-C handling did not take over
        assert process_gone(pid), "align_image_stack is still running after focuswrap exited"
        assert ws.work_folders() == []
        assert ws.snapshot() == before  # no output, no half-written file, photos untouched
        assert ws.part_files() == []


def test_signal_during_fusion_stops_enfuse_and_removes_the_aligned_frames(ws: Workspace) -> None:
    ws.enfuse.plan({"sleep": 30})
    args = ws.photos()
    before = ws.snapshot()
    with tool_running(ws, ws.enfuse, *args, "-o", "out.tif") as (run, pid):
        code, out, err, _ = _signal_and_wait(run, signal.SIGINT)
        assert code == ExitCode.INTERRUPTED, err
        assert "Traceback" not in err + out
        assert process_gone(pid), "enfuse is still running after focuswrap exited"
        assert ws.work_folders() == []
        assert ws.snapshot() == before


def test_interrupt_leaves_an_earlier_output_exactly_as_it_was(ws: Workspace) -> None:
    ws.align.plan({"sleep": 30})
    args = ws.photos()
    (ws.shots / "out.jpg").write_bytes(b"the earlier result")
    before = ws.snapshot()
    with tool_running(ws, ws.align, *args, "-o", "out.jpg", "--force") as (run, _):
        code, _, err, _ = _signal_and_wait(run, signal.SIGINT)
        assert code == ExitCode.INTERRUPTED, err
        assert (ws.shots / "out.jpg").read_bytes() == b"the earlier result"
        assert ws.snapshot() == before
        assert ws.work_folders() == []


def test_a_second_ctrl_c_does_not_cut_the_cleanup_short(ws: Workspace) -> None:
    # A tool that ignores SIGTERM is killed after proc.TERMINATE_GRACE; people
    # press Ctrl-C again meanwhile, which must not leave the tool running.
    ws.custom_tool("align_image_stack", "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(30)")
    args = ws.photos()
    before = ws.snapshot()
    with tool_running(ws, ws.align, *args, "-o", "out.jpg") as (run, pid):
        run.send_signal(signal.SIGINT)
        time.sleep(0.5)
        code, out, err, _ = _signal_and_wait(run, signal.SIGINT)
        assert code == ExitCode.INTERRUPTED, err
        assert "Traceback" not in err + out
        assert err.count("focuswrap: error: Interrupted") == 1
        assert process_gone(pid), "a tool ignoring SIGTERM survived a double Ctrl-C"
        assert ws.work_folders() == []
        assert ws.snapshot() == before


def test_keep_temp_keeps_the_work_folder_on_interrupt_but_stops_the_tool(ws: Workspace) -> None:
    ws.align.plan({"sleep": 30})
    args = ws.photos()
    with tool_running(ws, ws.align, *args, "-o", "out.jpg", "--keep-temp") as (run, pid):
        code, _, err, _ = _signal_and_wait(run, signal.SIGINT)
        assert code == ExitCode.INTERRUPTED, err
        assert process_gone(pid)
        kept = ws.work_folders()
        assert len(kept) == 1 and kept[0].startswith("focuswrap."), kept
        assert not (ws.shots / "out.jpg").exists()


_WRAPPED = """
import sys
from focuswrap import cli, helpstyle, stops

def command(app):
    def run(**_kw):
        stops._received = True  # what the stop handler sets before it raises Interrupted
        raise {error}
    return run

helpstyle.command = command
cli.main()
"""


@pytest.mark.parametrize(
    "error",
    [
        # pydantic-core, building a model when the signal lands, wraps the Interrupted it raised
        'RuntimeError("SchemaError: Error building model validator: Interrupted")',
        # a tool killed by the stop: its failure is not the news
        'cli.FocuswrapError("enfuse exited with signal 15")',
    ],
)
def test_after_a_stop_signal_any_failure_is_the_interruption(error: str) -> None:
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _WRAPPED.format(error=error)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == ExitCode.INTERRUPTED, done.stderr
    assert done.stderr.startswith("focuswrap: error: Interrupted"), done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
