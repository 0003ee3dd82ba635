"""With the real tools: instant re-fuse from the cache, and the contribution map (--map)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from focuswrap import contribution, synthetic

pytestmark = pytest.mark.real


def _run(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FOCUSWRAP_HOME": str(home), "TMPDIR": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "focuswrap", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _mean_frame(map_image: Image.Image, rows: range) -> float:
    """Mean 0-based frame index over the coloured pixels of some rows (weak/no-frame pixels skipped)."""
    idx = []
    for y in rows:
        for x in range(0, map_image.width, 4):
            i = contribution.frame_at(map_image, (x, y))
            if i is not None:
                idx.append(i)
    assert idx, "no coloured pixel in those rows"
    return sum(idx) / len(idx)


@pytest.fixture(scope="module")
def bracket(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bracket")
    return synthetic.make_stack(folder / "shots", frames=4, size=(480, 360))


def test_second_run_with_other_fuse_preset_reuses_aligned_frames(bracket, tmp_path):
    home = tmp_path / "home"
    first = _run("stack", *map(str, bracket.frames), "-o", "a.jpg", "--json", cwd=tmp_path, home=home)
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    assert one["cached"] is False and len(one["attempts"]) == 1
    # Another fusion setting with the same align options: alignment is skipped.
    (home / "config" / "presets").mkdir(parents=True)
    (home / "config" / "presets" / "smooth.toml").write_text(
        'description = "test"\n[align]\nfisheye = true\nremap = "nona"\ncrop = true\n[fuse]\ncontrast_window_size = 5\n'
    )
    second = _run(
        "stack", *map(str, bracket.frames), "-o", "b.jpg", "--preset", "smooth", "--json", cwd=tmp_path, home=home
    )
    assert second.returncode == 0, second.stderr
    two = json.loads(second.stdout)
    assert two["cached"] is True and two["attempts"] == []
    assert two["sharpness"]["gain"] > 1.5
    # --no-cache aligns again.
    third = _run("stack", *map(str, bracket.frames), "-o", "c.jpg", "--no-cache", "--json", cwd=tmp_path, home=home)
    assert json.loads(third.stdout)["cached"] is False
    info = _run("cache", "info", cwd=tmp_path, home=home)
    assert "1 stack(s)" in info.stdout
    assert "Removed 1" in _run("cache", "clear", cwd=tmp_path, home=home).stdout


def test_map_colours_follow_depth_on_the_synthetic_bracket(bracket, tmp_path):
    res = _run(
        "stack", *map(str, bracket.frames), "-o", "out.tif", "--map", "map.png", cwd=tmp_path, home=tmp_path / "h"
    )
    assert res.returncode == 0, res.stderr
    with Image.open(tmp_path / "map.png") as m:
        m = m.convert("RGB")
        h = 360  # the legend sits below the picture
        bottom = _mean_frame(m, range(int(h * 0.85), int(h * 0.95)))
        top = _mean_frame(m, range(int(h * 0.05), int(h * 0.15)))
    # frame_1 is focused nearest (bottom of the scene), the last frame farthest (top).
    assert bottom < 0.8
    assert top > 2.2


@pytest.mark.pcb
def test_map_on_pcb_front_from_early_frames_back_from_late(pcb_photos, tmp_path):
    res = _run(
        "stack",
        *map(str, pcb_photos),
        "-o",
        "out.tif",
        "--map",
        "map.png",
        "--no-cache",
        cwd=tmp_path,
        home=tmp_path / "h",
    )
    assert res.returncode == 0, res.stderr
    with Image.open(tmp_path / "map.png") as m:
        m = m.convert("RGB")
        h = round(1536 * m.width / 2048)  # picture height inside the (scaled) map
        front = _mean_frame(m, range(int(h * 0.85), int(h * 0.95), 2))
        back = _mean_frame(m, range(int(h * 0.05), int(h * 0.15), 2))
    print(f"pcb map: mean frame index front {front + 1:.2f}, back {back + 1:.2f} (1-based)")
    # The board's front edge (bottom of the picture) is sharp in the first photos, its back in the last.
    assert front < 1.5
    assert back > 3.5
