"""Shared fixtures: isolated user folders, real-tool markers, fake Hugin binaries."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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
