"""Ctrl-C exits 130 with no traceback in every command, also while a version probe hangs.

Issue 11 asks for 130 within 3 s. The tests allow a generous STOP_LIMIT (the machine is shared and
slow), which is still below the probe's own timeout (discovery.PROBE_TIMEOUT, 10 s): a probe left to
run out its timeout on a worker thread, as before, fails them. Each test prints how long the stop took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import Workspace, kill_if_running, process_gone

from focuswrap import discovery, synthetic
from focuswrap.errors import ExitCode

#: Seconds focuswrap may take to exit after Ctrl-C (the goal is 3; a hanging probe would take 10).
STOP_LIMIT = 8.0
assert STOP_LIMIT < discovery.PROBE_TIMEOUT


def _hanging_probe(ws: Workspace, name: str) -> Path:
    """Make the fake ``name`` hang when asked its version (writing its pid first), as a cold Flatpak can."""
    pid_file = ws.bin / f"{name}.probe.pid"
    exe = ws.bin / name
    exe.write_text(
        f"#!{sys.executable}\n"
        "import os, sys, time\n"
        f"with open({str(pid_file)!r}, 'w') as fh:\n"
        "    fh.write(str(os.getpid()))\n"
        "time.sleep(120)\n",
        encoding="utf-8",
    )
    exe.chmod(0o755)
    return pid_file


def _wait_for(pid_file: Path, within: float = 30.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pid_file.is_file() and pid_file.read_text().strip():
            return int(pid_file.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{pid_file.name}: the probe never started")


def _ctrl_c(run: subprocess.Popen[str]) -> tuple[int, str, str, float]:
    sent = time.monotonic()
    run.send_signal(signal.SIGINT)
    try:
        out, err = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        run.kill()
        out, err = run.communicate()
    seconds = time.monotonic() - sent
    print(f"exit {run.returncode} {seconds:.2f} s after Ctrl-C")
    return run.returncode, out, err, seconds


@pytest.mark.parametrize("command", ["doctor", "stack", "batch"])
def test_ctrl_c_while_a_version_probe_hangs(ws: Workspace, command: str) -> None:
    pid_file = _hanging_probe(ws, "enfuse")
    ws.photos()
    args = {
        "doctor": ["doctor"],
        "stack": ["stack", "IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg", "-o", "out.jpg"],
        "batch": ["batch", "."],
    }[command]
    run = subprocess.Popen(
        [sys.executable, "-m", "focuswrap", *args, "--hugin-dir", str(ws.bin)],
        cwd=ws.shots,
        env=ws.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid = None
    try:
        pid = _wait_for(pid_file)
        code, out, err, seconds = _ctrl_c(run)
        assert code == ExitCode.INTERRUPTED == 130, err
        assert seconds < STOP_LIMIT, f"{command} took {seconds:.1f} s to stop after Ctrl-C"
        assert "Traceback" not in out + err
        assert "NOT USABLE" not in out  # doctor did not report the interrupted probe as a broken tool
        assert "focuswrap: error: Interrupted" in err
        assert process_gone(pid), "the hanging version probe is still running"
        assert not (ws.shots / "out.jpg").exists()
        assert [f for f in os.listdir(ws.tmp) if f.startswith("focuswrap.")] == []
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        kill_if_running(pid)


def _children_named(parent: int, name: str) -> list[int]:
    """Processes named ``name`` whose parent is ``parent`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)
            comm = fields[0].split("(", 1)[1]
            ppid = int(fields[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and comm.startswith(name[:15]):
            found.append(int(entry))
    return found


@pytest.mark.real
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to see the tool running")
def test_ctrl_c_while_the_real_align_image_stack_runs(tmp_path: Path) -> None:
    stack = synthetic.make_stack(tmp_path / "shots", frames=5)
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {**os.environ, "FOCUSWRAP_HOME": str(home), "TMPDIR": str(tmp)}
    env.pop("FOCUSWRAP_HUGIN_DIR", None)
    out = tmp_path / "out.jpg"
    run = subprocess.Popen(
        [sys.executable, "-m", "focuswrap", "stack", *map(str, stack.frames), "-o", str(out), "--no-cache"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _children_named(run.pid, "align_image_stack"):
            assert run.poll() is None, run.communicate()[1]
            assert time.monotonic() < deadline, "align_image_stack never started"
            time.sleep(0.01)
        code, stdout, err, seconds = _ctrl_c(run)
        assert code == ExitCode.INTERRUPTED == 130, err
        assert seconds < STOP_LIMIT, f"took {seconds:.1f} s to stop after Ctrl-C"
        assert "Traceback" not in stdout + err
        assert _children_named(run.pid, "align_image_stack") == []
        assert not out.exists()
        assert [f for f in os.listdir(tmp) if f.startswith("focuswrap.")] == []
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()


@pytest.mark.real
def test_ctrl_c_during_doctor_with_the_real_tools(tmp_path: Path) -> None:
    # The real probes take milliseconds, so Ctrl-C comes while doctor runs its probes only by
    # luck; wrapping the real enfuse in a probe that waits first makes the moment certain.
    import shutil

    real = shutil.which("enfuse")
    align = shutil.which("align_image_stack")
    assert real and align, "the real Hugin tools are needed"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(align, bin_dir / "align_image_stack")
    started = tmp_path / "started"
    wrapper = bin_dir / "enfuse"
    wrapper.write_text(
        f'#!/bin/sh\ntouch {started}\nsleep 60\nexec {real} "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    env = {**os.environ, "FOCUSWRAP_HOME": str(tmp_path / "home")}
    run = subprocess.Popen(
        [sys.executable, "-m", "focuswrap", "doctor", "--hugin-dir", str(bin_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "doctor never probed enfuse"
            time.sleep(0.02)
        code, out, err, seconds = _ctrl_c(run)
        assert code == ExitCode.INTERRUPTED == 130, out + err
        assert seconds < STOP_LIMIT, f"doctor took {seconds:.1f} s to stop after Ctrl-C"
        assert "Traceback" not in out + err and "NOT USABLE" not in out
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
