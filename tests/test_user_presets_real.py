"""With the real tools: a user's own preset, made with `presets new`, overriding a bundled one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from focuswrap import synthetic

pytestmark = pytest.mark.real


def _fw(*args: object, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FOCUSWRAP_HOME": str(home), "TMPDIR": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "focuswrap", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_presets_new_override_show_and_stack(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stack = synthetic.make_stack(tmp_path / "shots", frames=3, size=(400, 300))

    # A user preset named like a bundled one, started from 'handheld' (which adds -i).
    made = _fw("presets", "new", "miniature", "--from", "handheld", home=home, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    path = Path(made.stdout.split()[1])
    assert path.is_file() and path.parent == home / "config" / "presets"
    assert "overrides it" in path.read_text()

    listed = _fw("presets", "list", home=home, cwd=tmp_path)
    assert "miniature [default] (user, overrides bundled)" in listed.stdout

    # Edit it as a user would: a smaller contrast window.
    path.write_text(path.read_text().replace("contrast_window_size = 15", "contrast_window_size = 11"))
    shown = _fw("presets", "show", "miniature", home=home, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "user preset" in shown.stdout
    assert " -i " in shown.stdout.splitlines()[3]  # the align line
    assert "--contrast-window-size=11" in shown.stdout

    # The dry run and the real run both use the user's file.
    dry = _fw("stack", *stack.frames, "-o", tmp_path / "out.jpg", "--dry-run", home=home, cwd=tmp_path)
    assert "--contrast-window-size=11" in dry.stdout and " -i " in dry.stdout.splitlines()[0]
    run = _fw("stack", *stack.frames, "-o", tmp_path / "out.jpg", "--json", home=home, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["preset"] == "miniature"
    assert "-i" in result["attempts"][0]["flags"].split()
    assert result["sharpness"]["gain"] > 1.2
    assert (tmp_path / "out.jpg").is_file()


def test_a_broken_user_preset_is_one_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _fw("presets", "new", "mine", home=home, cwd=tmp_path).returncode == 0
    path = home / "config" / "presets" / "mine.toml"
    path.write_text(path.read_text().replace("contrast_window_size = 15", "contrast_window_size = 2"))
    stack = synthetic.make_stack(tmp_path / "shots", frames=2, size=(200, 150))
    run = _fw("stack", *stack.frames, "--preset", "mine", home=home, cwd=tmp_path)
    assert run.returncode == 6, run.stderr
    assert "mine.toml" in run.stderr and "contrast_window_size" in run.stderr
    assert "Traceback" not in run.stderr
