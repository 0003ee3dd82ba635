"""The demo a new user runs first: a painted figure on its base, stacked, and where to find it.

The synthetic scene's parts are checked without Hugin; the whole demo (marked
``real``) runs the installed command with the real tools.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from focuswrap import demo
from focuswrap.sharpness import gradient_energy
from focuswrap.synthetic import SCENES, make_stack

SIZE = (400, 300)


@pytest.fixture(scope="module")
def figure(tmp_path_factory: pytest.TempPathFactory):
    return make_stack(tmp_path_factory.mktemp("figure"), frames=5, size=SIZE, seed=1, scene="figure", shake=False)


def test_the_figure_scene_is_recorded_and_deterministic(figure, tmp_path: Path) -> None:
    assert figure.scene == "figure" and "figure" in SCENES
    again = make_stack(tmp_path, frames=5, size=SIZE, seed=1, scene="figure", shake=False)
    assert [p.read_bytes() for p in again.frames] == [p.read_bytes() for p in figure.frames]
    with Image.open(figure.truth) as im:
        assert im.size == SIZE


def test_an_unknown_scene_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scene must be one of"):
        make_stack(tmp_path, frames=2, size=SIZE, scene="dragon")


def _box_in_frame(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    return max(0, left), max(0, top), min(SIZE[0], right), min(SIZE[1], bottom)


def test_the_figure_the_base_and_the_pots_are_sharp_in_their_own_frames(figure) -> None:
    # The last objects are the base (nearest) and the figure standing on it; before them the pots (far).
    *pots, base, knight = figure.objects
    assert pots and base.depth > knight.depth > max(p.depth for p in pots)
    frames = [Image.open(p) for p in figure.frames]
    try:
        for obj in (knight, pots[len(pots) // 2]):
            region = _box_in_frame(obj.box)
            energies = [gradient_energy(f.crop(region), crop=1.0) for f in frames]
            nearest = min(range(len(frames)), key=lambda k: abs(figure.focus_depths[k] - obj.depth))
            assert max(range(len(frames)), key=energies.__getitem__) == nearest, energies
    finally:
        for f in frames:
            f.close()


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("linux", "xdg-open /home/sam/focuswrap-demo/stacked.jpg"),
        ("darwin", "open /home/sam/focuswrap-demo/stacked.jpg"),
        ("win32", 'start "" "/home/sam/focuswrap-demo/stacked.jpg"'),
    ],
)
def test_the_open_command_fits_the_system(platform: str, expected: str) -> None:
    assert demo.open_command(Path("/home/sam/focuswrap-demo/stacked.jpg"), platform) == expected
    assert demo.open_command(Path("/a b/stacked.jpg"), "linux") == 'xdg-open "/a b/stacked.jpg"'


@pytest.mark.real
def test_the_demo_says_where_the_result_is_and_how_to_open_it(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "focuswrap", "demo", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = folder / "stacked.jpg"
    assert f"practice photos of a painted figure into {result}" in done.stdout
    assert re.search(
        rf"^  photos     {re.escape(str(folder / 'frames'))}  \(frame_1.jpg .. frame_5.jpg", done.stdout, re.M
    )
    assert f"To look at the result: {demo.open_command(result)}" in done.stdout
    assert "painted figure" in done.stderr  # the progress says what is being drawn
    fidelity = re.search(r"fidelity\s+([\d.]+) dB PSNR to the truth, against ([\d.]+) dB", done.stdout)
    assert fidelity and float(fidelity[1]) > float(fidelity[2]) + 2, done.stdout
    assert list((tmp_path / "tmp").iterdir()) == []
