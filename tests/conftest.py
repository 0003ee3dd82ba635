"""Shared fixtures: isolated user folders, real-tool markers, fake Hugin binaries, CLI runs.

The helpers they are built on are in ``helpers.py`` and ``fakehugin.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import fakehugin
import pytest
from helpers import Workspace

REPO = Path(__file__).resolve().parent.parent
PCB = REPO.parent / "shared" / "stacks" / "pcb"
REAL_TOOLS = ("align_image_stack", "enfuse")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own config/preset/cache folders (FOCUSWRAP_HOME) and no stray Hugin dir."""
    home = tmp_path_factory.mktemp("focuswrap-home")
    monkeypatch.setenv("FOCUSWRAP_HOME", str(home))
    monkeypatch.delenv("FOCUSWRAP_HUGIN_DIR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


def pytest_runtest_setup(item):
    # Decided at run time from PATH only: no tool is ever started at collection time.
    if item.get_closest_marker("real"):
        missing = [t for t in REAL_TOOLS if shutil.which(t) is None]
        if missing:
            msg = f"the real Hugin tools are not installed ({', '.join(missing)} missing)"
            if os.environ.get("FOCUSWRAP_REQUIRE_REAL"):
                pytest.fail(msg + " but FOCUSWRAP_REQUIRE_REAL is set")
            pytest.skip(msg)
    if item.get_closest_marker("pcb") and not PCB.is_dir():
        pytest.skip(f"the real photographs are not present at {PCB}")


@pytest.fixture
def pcb_photos() -> list[Path]:
    photos = sorted(PCB.glob("pcb_*.jpg"))
    if len(photos) < 2:
        pytest.skip(f"the real photographs are not present at {PCB}")
    return photos


@pytest.fixture
def hugin(tmp_path: Path) -> fakehugin.Hugin:
    """Both fake Hugin tools, in ``tmp_path/bin``."""
    return fakehugin.install_hugin(tmp_path / "bin")


@pytest.fixture
def tmpdir_(tmp_path: Path) -> Path:
    """The TMPDIR the focuswrap process gets (its work folders go there): it must be empty
    again after every run without --keep-temp."""
    d = tmp_path / "tmp"
    d.mkdir()
    return d


@pytest.fixture
def run(tmp_path: Path, tmpdir_: Path):
    """``python -m focuswrap ARGS`` as a user runs it, with its own TMPDIR, in ``tmp_path``."""

    def run(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "TMPDIR": str(tmpdir_), "COLUMNS": "100", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "focuswrap", *map(str, args)],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd or tmp_path,
            timeout=60,
        )

    return run


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A :class:`helpers.Workspace` in ``tmp_path``."""
    return Workspace(tmp_path)
