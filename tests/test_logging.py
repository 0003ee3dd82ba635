"""Logging is configured once: warnings always, focuswrap's debug log with --verbose, rich declared."""

from __future__ import annotations

import logging
from pathlib import Path

from fakehugin import Hugin
from helpers import photos

from focuswrap import logs
from focuswrap.config import read_toml

ROOT = Path(__file__).resolve().parent.parent


def test_verbose_shows_the_debug_log(run, hugin: Hugin, tmp_path: Path) -> None:
    shots = photos(tmp_path / "shots")
    quiet = run("stack", *shots, "-o", tmp_path / "a.jpg", "--hugin-dir", hugin.bin_dir)
    assert quiet.returncode == 0, quiet.stderr
    assert "DEBUG" not in quiet.stderr
    loud = run("stack", *shots, "-o", tmp_path / "b.jpg", "--hugin-dir", hugin.bin_dir, "--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "focuswrap: DEBUG: focuswrap.discovery: found align_image_stack: " in loud.stderr
    assert "focuswrap: DEBUG: focuswrap.workspace: work folder " in loud.stderr


def test_configure_twice_adds_one_handler_and_changes_the_level() -> None:
    root = logging.getLogger("focuswrap")
    before = list(root.handlers)
    try:
        root.handlers[:] = []
        logs.configure()
        logs.configure(verbose=True)
        assert len(root.handlers) == 1
        assert root.level == logging.DEBUG
        assert logging.getLogger("focuswrap.tool").level == logging.INFO  # the display shows those lines
        logs.configure()
        assert root.level == logging.WARNING
    finally:
        root.handlers[:] = before
        root.setLevel(logging.NOTSET)
        root.propagate = True


def test_rich_is_a_declared_dependency() -> None:
    project = read_toml(ROOT / "pyproject.toml")["project"]
    assert any(dep.split(">")[0].split("=")[0].strip() == "rich" for dep in project["dependencies"])
