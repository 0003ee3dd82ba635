"""Faults while stacking: a hanging, crashing or silent tool, a full disk, two runs at once.

Each is reported with its own clear message and documented exit code, stops
every process it started, removes its work folder and never leaves a
half-written result or touches an earlier one.
"""

from __future__ import annotations

import errno
import signal
import sys
import time
from pathlib import Path

import fakehugin
import pytest
from fakehugin import ALIGN, ENFUSE
from helpers import Workspace, assert_clean_failure, kill_if_running, process_gone, stack_fails, unfused_border
from PIL import Image

from focuswrap import cli, output, proc, stops
from focuswrap.errors import ExitCode, Interrupted, MissingToolError, ToolTimeout

CRASH = "os.kill(os.getpid(), signal.SIGSEGV)\ntime.sleep(5)"


# ------------------------------------------------------------------ timeouts


def test_a_hanging_align_is_stopped_after_the_config_timeout(ws: Workspace) -> None:
    (ws.home / "config").mkdir()
    (ws.home / "config" / "config.toml").write_text("timeout = 1\n")
    ws.align.plan({"sleep": 30})
    args = ws.photos()
    before = ws.snapshot()
    started = time.monotonic()
    result = ws.run(*args, "-o", "out.jpg")
    kill_if_running(ws.align.pid)
    assert time.monotonic() - started < 15
    assert result.returncode == ExitCode.ALIGN_FAILED, result.stderr
    line = assert_clean_failure(ws, result, before)
    assert line == (
        "focuswrap: error: Alignment failed after 1 attempt: align_image_stack ran for more than 1 s and was stopped."
    )
    assert "raise --timeout" in result.stderr
    assert len(ws.align.calls) == 1, "a timeout is not worth another ladder rung"
    assert process_gone(ws.align.pid)
    assert ws.enfuse.calls == []


def test_a_hanging_enfuse_is_stopped_after_the_timeout_option(ws: Workspace) -> None:
    ws.enfuse.plan({"sleep": 30})
    args = ws.photos()
    before = ws.snapshot()
    result = ws.run(*args, "-o", "out.jpg", "--timeout", "1")
    kill_if_running(ws.enfuse.pid)
    assert result.returncode == ExitCode.FUSE_FAILED, result.stderr
    line = assert_clean_failure(ws, result, before)
    assert line == "focuswrap: error: enfuse ran for more than 1 s and was stopped."
    assert "Raise the limit with --timeout" in result.stderr
    assert process_gone(ws.enfuse.pid)


def test_a_timeout_stops_what_the_tool_started_too(tmp_path: Path) -> None:
    # ``flatpak run`` starts the real tool as its own child: stopping only the
    # direct child would leave the tool running.
    grandchild_pid = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        f"open({str(grandchild_pid)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    with pytest.raises(ToolTimeout, match=r"ran for more than 1 s and was stopped"):
        proc.run([sys.executable, "-c", script], cwd=tmp_path, timeout=1)
    pid = int(grandchild_pid.read_text())
    try:
        assert process_gone(pid), "the tool's own child outlived the timeout"
        assert time.monotonic() - started < 6
    finally:
        kill_if_running(pid)


def _sleeper(pid_file: Path, seconds: float, code: int = 0) -> list[str]:
    """A command that writes its pid, sleeps, then exits with ``code``."""
    script = (
        f"import os, sys, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        f"time.sleep({seconds}); sys.exit({code})"
    )
    return [sys.executable, "-c", script]


def _printer(word: str, seconds: float) -> list[str]:
    """A command that sleeps, then prints ``word``."""
    return [sys.executable, "-c", f"import time; time.sleep({seconds}); print({word!r})"]


def test_commands_run_together_side_by_side_and_report_in_order(tmp_path: Path) -> None:
    # nona's parts run like this: both at once, results in the order given.
    started = time.monotonic()
    done = proc.run_together([_printer("first", 1.0), _printer("second", 1.0)], cwd=tmp_path, timeout=30)
    assert [(d.returncode, d.stdout, d.stopped) for d in done] == [(0, "first\n", False), (0, "second\n", False)]
    assert time.monotonic() - started < 1.9  # side by side, not one after the other


def test_one_failing_command_stops_the_commands_run_beside_it(tmp_path: Path) -> None:
    # No timeout at all: only the failure of the first can end the second early.
    started = time.monotonic()
    done = proc.run_together([_sleeper(tmp_path / "fails", 0.2, 2), _sleeper(tmp_path / "long", 60)], cwd=tmp_path)
    pid = int((tmp_path / "long").read_text())
    try:
        assert next(d.returncode for d in done) == 2 and done[1].returncode != 0
        assert [d.stopped for d in done] == [False, True]  # the second did not fail: it was stopped
        assert process_gone(pid) and time.monotonic() - started < 8
    finally:
        kill_if_running(pid)


def test_a_command_that_cannot_start_stops_the_ones_already_running(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(MissingToolError):
        proc.run_together([_sleeper(tmp_path / "long", 60), [str(tmp_path / "no-such-tool")]], cwd=tmp_path)
    # Not after the first command's 60 s: it was stopped (maybe before it even wrote its pid).
    assert time.monotonic() - started < 8
    written = (tmp_path / "long").read_text().strip() if (tmp_path / "long").exists() else ""
    if written:
        pid = int(written)
        try:
            assert process_gone(pid)
        finally:
            kill_if_running(pid)


@pytest.mark.parametrize("limit", [float("inf"), 1e10])
def test_a_limit_beyond_what_a_timer_can_wait_means_no_limit(tmp_path: Path, limit: float, capfd) -> None:
    done = proc.run([sys.executable, "-c", "print('ok')"], cwd=tmp_path, timeout=limit)
    assert (done.returncode, done.stdout) == (0, "ok\n")
    assert "Traceback" not in capfd.readouterr().err


# ------------------------------------------------------------------- crashes


def test_align_killed_by_a_signal_is_reported_as_a_crash(ws: Workspace) -> None:
    ws.custom_tool(ALIGN, CRASH)
    result, line = stack_fails(ws, "-o", "out.jpg", code=ExitCode.ALIGN_FAILED)
    assert "The tool was killed by a signal before it finished (SIGSEGV)" in line
    assert "crashed" in result.stderr  # the attempts table
    assert "The tool crashed: try fewer or smaller photos, or update Hugin." in result.stderr


def test_enfuse_killed_by_a_signal_is_reported_as_a_crash(ws: Workspace) -> None:
    ws.custom_tool(ENFUSE, CRASH)
    _, line = stack_fails(ws, "-o", "out.jpg", code=ExitCode.FUSE_FAILED)
    assert line == "focuswrap: error: Fusion failed: The tool was killed by a signal before it finished (SIGSEGV)."


# ----------------------------------------------------- exit 0 without output


def test_align_exiting_0_without_writing_its_frames(ws: Workspace) -> None:
    ws.align.plan({"transcript": fakehugin.transcript(ALIGN, "success"), "write": False})
    _, line = stack_fails(ws, "-o", "out.jpg", code=ExitCode.ALIGN_FAILED)
    assert "align_image_stack exited 0 but" in line and "was not written" in line
    assert ws.enfuse.calls == []


def test_enfuse_exiting_0_without_writing_the_result(ws: Workspace) -> None:
    ws.enfuse.plan({"transcript": fakehugin.transcript(ENFUSE, "success"), "write": False})
    _, line = stack_fails(ws, "-o", "out.jpg", code=ExitCode.FUSE_FAILED)
    assert line == "focuswrap: error: enfuse exited 0 but fused.tif was not written."


def test_hugin_missing(ws: Workspace, tmp_path: Path) -> None:
    empty = tmp_path / "no-hugin-here"
    empty.mkdir()
    _, line = stack_fails(ws, hugin_dir=empty, code=ExitCode.MISSING_TOOL)
    assert f"align_image_stack not found in {empty}" in line


# ------------------------------------------------------------------ full disk


@pytest.fixture
def in_process(ws: Workspace, monkeypatch: pytest.MonkeyPatch):
    """Run ``cli.main()`` in this process (so a test can patch the library), in the photo folder."""
    import tempfile

    monkeypatch.chdir(ws.shots)
    monkeypatch.setenv("FOCUSWRAP_HOME", str(ws.home))
    monkeypatch.setattr(tempfile, "tempdir", str(ws.tmp))
    monkeypatch.setattr(stops, "_received", False)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def main(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["focuswrap", "stack", *args, "--hugin-dir", str(ws.bin)])
        with pytest.raises(SystemExit) as info:
            cli.main()
        return info.value.code or 0

    yield main
    for s, handler in saved.items():
        signal.signal(s, handler)


def _disk_fills_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up half-way through writing the result."""

    def encode(fused: Path, dest: Path, *args: object, **kwargs: object) -> None:
        with open(dest, "wb") as fh:
            fh.write(b"\xff\xd8 the first half of a JPEG")
        raise OSError(errno.ENOSPC, "No space left on device", str(dest))

    monkeypatch.setattr(output, "_encode", encode)


def test_full_disk_while_writing_keeps_the_earlier_output(ws: Workspace, in_process, monkeypatch, capsys) -> None:
    args = ws.photos()
    (ws.shots / "out.jpg").write_bytes(b"the earlier result")
    before = ws.snapshot()
    _disk_fills_up(monkeypatch)
    code = in_process(*args, "-o", "out.jpg", "--force", "--quiet")
    err = capsys.readouterr().err
    assert code == ExitCode.WRITE_FAILED, err
    assert err.splitlines() == [
        f"focuswrap: error: The disk holding {ws.shots} is full; out.jpg was not written.",
        "Free some space or choose another output folder, then run again.",
    ]
    assert (ws.shots / "out.jpg").read_bytes() == b"the earlier result"
    assert ws.snapshot() == before
    assert ws.part_files() == []
    assert ws.work_folders() == []


def test_full_disk_without_an_earlier_output_leaves_nothing(ws: Workspace, in_process, monkeypatch, capsys) -> None:
    args = ws.photos()
    before = ws.snapshot()
    _disk_fills_up(monkeypatch)
    code = in_process(*args, "-o", "out.png", "--quiet")
    err = capsys.readouterr().err
    assert code == ExitCode.WRITE_FAILED, err
    assert "Traceback" not in err
    assert ws.snapshot() == before
    assert ws.work_folders() == []


def test_in_process_runs_succeed_unpatched(ws: Workspace, in_process, capsys) -> None:
    # The harness above is sound: the same run without the fault writes the result.
    assert in_process(*ws.photos(), "-o", "out.jpg", "--quiet") == ExitCode.OK, capsys.readouterr().err
    assert (ws.shots / "out.jpg").is_file()
    assert ws.work_folders() == []


def test_ctrl_c_while_the_sharpness_is_measured_is_not_swallowed(
    ws: Workspace, in_process, monkeypatch, capsys
) -> None:
    # The last wait of a stack: a Ctrl-C (cli raises Interrupted) there must stop
    # the run with 130, not become a note "Could not measure sharpness".
    from focuswrap import sharpness

    def interrupted(*args, **kwargs):
        raise Interrupted("Interrupted; the running Hugin tool was stopped and temporary files were removed.")

    monkeypatch.setattr(sharpness, "measure_all", interrupted)
    code = in_process(*ws.photos(), "-o", "out.jpg")
    captured = capsys.readouterr()
    assert code == ExitCode.INTERRUPTED, captured.err
    assert "Could not measure sharpness" not in captured.out + captured.err
    assert ws.work_folders() == []


def test_output_folder_removed_before_delivery_is_a_write_failure(
    ws: Workspace, in_process, monkeypatch, capsys
) -> None:
    # The folder existed when the inputs were checked, then went away while
    # the tools ran (an unplugged drive): not even the temporary file can be made.
    import shutil

    from focuswrap import pipeline

    (ws.shots / "results").mkdir()
    fuse = pipeline.run_fusion

    def fuse_then_unplug(*args, **kwargs):
        fused = fuse(*args, **kwargs)
        shutil.rmtree(ws.shots / "results")
        return fused

    monkeypatch.setattr(pipeline, "run_fusion", fuse_then_unplug)
    code = in_process(*ws.photos(), "-o", "results/out.jpg", "--quiet")
    err = capsys.readouterr().err
    assert code == ExitCode.WRITE_FAILED, err
    assert err.splitlines() == [
        f"focuswrap: error: Could not write {ws.shots / 'results' / 'out.jpg'}: No such file or directory."
    ]
    assert ws.work_folders() == []


# ---------------------------------------------------------------- two at once


def test_two_runs_in_one_folder_with_different_outputs_both_succeed(ws: Workspace) -> None:
    ws.align.plan({"sleep": 0.5, **fakehugin.success(ALIGN)})
    args = ws.photos()
    runs = [ws.start(*args, "-o", name, "--quiet") for name in ("first.jpg", "second.tif")]
    results = [run.communicate(timeout=60) for run in runs]
    for run, (_, err) in zip(runs, results, strict=False):
        assert run.returncode == ExitCode.OK, err
    for name in ("first.jpg", "second.tif"):
        with Image.open(ws.shots / name) as im:
            im.load()
            b = unfused_border()  # the edge enfuse does not blend is cut
            assert im.size == (96 - 2 * b, 64 - 2 * b)
    assert ws.work_folders() == [] and ws.part_files() == []


def test_two_runs_racing_for_one_name_one_wins_and_its_file_is_intact(ws: Workspace) -> None:
    # Both pass the "output exists?" check while aligning; the second to
    # finish must not replace the first one's result (no --force).
    ws.align.plan({"sleep": 1.0, **fakehugin.success(ALIGN)})
    sets = {"A": ws.photos(prefix="A_"), "B": ws.photos(prefix="B_")}
    before = ws.snapshot()
    runs = {key: ws.start(*names, "-o", "same.tif", "--quiet") for key, names in sets.items()}
    done = {key: run.communicate(timeout=60) for key, run in runs.items()}
    codes = {key: runs[key].returncode for key in runs}
    winners = [key for key, code in codes.items() if code == ExitCode.OK]
    assert len(winners) == 1, (codes, done)
    winner = winners[0]
    loser = "B" if winner == "A" else "A"
    assert codes[loser] == ExitCode.BAD_INPUT, done[loser][1]
    err = done[loser][1]
    assert "Traceback" not in err
    assert err.startswith(
        (
            "focuswrap: error: same.tif already exists; use --force",
            f"focuswrap: error: {ws.shots / 'same.tif'} appeared while focuswrap was working; use --force",
        )
    ), err
    # The fake enfuse's result is the last aligned frame: the winner's last photo.
    with Image.open(ws.shots / "same.tif") as result, Image.open(ws.shots / sets[winner][-1]) as last:
        b = unfused_border()  # less the edge enfuse does not blend
        kept = last.crop((b, b, last.width - b, last.height - b))
        assert result.convert("RGBA").tobytes() == kept.convert("RGBA").tobytes()
    after = ws.snapshot()
    assert set(after) - set(before) == {"same.tif"}
    assert {k: v for k, v in after.items() if k != "same.tif"} == before
    assert ws.work_folders() == [] and ws.part_files() == []
