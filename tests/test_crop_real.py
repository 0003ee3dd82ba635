"""With the real tools: the default crops to the area every frame covers, nona's linear response changes nothing,
and enfuse's intermediate result is cheap to read.

The synthetic bracket breathes (each frame a little more magnified), so the
later frames do not reach the first frame's corners: exactly the stacks that
got a grey border before -C became the default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import unfused_border
from PIL import Image, ImageChops

from focuswrap import synthetic
from focuswrap.hugin import pto

pytestmark = pytest.mark.real

SIZE = (480, 360)


@pytest.fixture(scope="module")
def bracket(tmp_path_factory):
    return synthetic.make_stack(tmp_path_factory.mktemp("bracket") / "shots", frames=4, size=SIZE)


def _stack(*args, cwd: Path) -> dict:
    tmp = cwd / "tmp"  # where --keep-temp keeps its work folder: inside the test's own folder
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp)}
    done = subprocess.run(
        [sys.executable, "-m", "focuswrap", "stack", *map(str, args), "--json", "-q", "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_default_crops_to_the_area_every_frame_covers(bracket, tmp_path):
    result = _stack(*bracket.frames, "-o", "out.tif", "--keep-temp", cwd=tmp_path)
    left, top, right, bottom = result["crop"]
    assert 0 < left < right < SIZE[0] and 0 < top < bottom < SIZE[1]
    work = Path(result["work_folder"])
    with Image.open(tmp_path / "out.tif") as out:
        assert out.size == (right - left, bottom - top)
        # No border: every pixel of the result is covered (enfuse's alpha is opaque everywhere).
        assert out.getchannel("A").getextrema() == (255, 255)
    # The crop is the one align_image_stack chose, and the reference frame was remapped (cropped) too.
    # The result is that area less the edge enfuse does not blend.
    crop = pto.crop((work / "debug.pto").read_text())
    b = unfused_border()
    assert (crop.left + b, crop.top + b, crop.right - b, crop.bottom - b) == (left, top, right, bottom)
    assert sorted(p.name for p in work.glob("aligned_*.tif")) == [f"aligned_{i:04d}.tif" for i in range(4)]
    with Image.open(work / "aligned_0000.tif") as first:
        assert first.size == (crop.right - crop.left, crop.bottom - crop.top)


def test_no_crop_keeps_the_whole_canvas(bracket, tmp_path):
    result = _stack(*bracket.frames, "-o", "out.tif", "--no-crop", cwd=tmp_path)
    assert result["crop"] is None
    with Image.open(tmp_path / "out.tif") as out:
        assert out.size == SIZE


def test_linear_response_gives_the_same_frames(bracket, tmp_path):
    """nona from the project as align_image_stack wrote it, and with the linear response focuswrap adds."""
    frames = [os.fspath(f) for f in bracket.frames]
    subprocess.run(
        ["align_image_stack", "-m", "-e", "--use-given-order", "-p", "as.pto", *frames],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    text = (tmp_path / "as.pto").read_text()
    linear = pto.with_linear_response(text)
    assert linear is not None
    (tmp_path / "linear.pto").write_text(linear)
    for project, prefix in (("as.pto", "as_"), ("linear.pto", "linear_")):
        subprocess.run(
            ["nona", "-m", "TIFF_m", "-z", "NONE", "-o", prefix, project],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=300,
        )
    for i in range(len(frames)):
        with Image.open(tmp_path / f"as_{i:04d}.tif") as a, Image.open(tmp_path / f"linear_{i:04d}.tif") as b:
            assert a.size == b.size and a.mode == b.mode == "RGBA"
            diff = ImageChops.difference(a, b)
            # At most one level of rounding in colour, and the same coverage.
            assert max(high for _, high in diff.getextrema()[:3]) <= 1, i
            assert diff.getchannel("A").getextrema() == (0, 0), i


@pytest.mark.parametrize(("ext", "compression"), [("jpg", "packbits"), ("png", "packbits"), ("tif", "tiff_lzw")])
def test_enfuse_writes_an_intermediate_with_packbits_and_a_delivered_tiff_with_lzw(bracket, tmp_path, ext, compression):
    # enfuse 4.2 ignores --compression=none; PACKBITS reads back in 1.5 ms instead of 40 (pcb).
    result = _stack(*bracket.frames, "-o", f"out.{ext}", "--keep-temp", cwd=tmp_path)
    with Image.open(Path(result["work_folder"]) / "fused.tif") as fused:
        assert fused.info["compression"] == compression
    if ext == "tif":
        with Image.open(tmp_path / "out.tif") as out:
            assert out.info["compression"] == "tiff_lzw"


def _nonas_in(folder: Path) -> list[int]:
    """Pids of nona processes whose working folder is inside ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "nona" and Path(os.readlink(entry / "cwd")).is_relative_to(
                folder
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.pcb
@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs Linux /proc to find the nona processes")
def test_ctrl_c_while_the_nonas_run_side_by_side_stops_them_all(pcb_photos, tmp_path):
    import signal
    import time

    from helpers import process_gone

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    run = subprocess.Popen(
        [sys.executable, "-m", "focuswrap", "stack", *map(str, pcb_photos), "-o", "out.jpg", "-q"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        nonas: list[int] = []
        while time.monotonic() < deadline and run.poll() is None and len(nonas) < 2:
            nonas = _nonas_in(tmp)
            time.sleep(0.02)
        assert len(nonas) >= 2, "never saw the nonas running side by side"
        run.send_signal(signal.SIGINT)
        _out, err = run.communicate(timeout=15)
        assert run.returncode == 130, err
        assert "focuswrap: error: Interrupted" in err and "Traceback" not in err
        assert all(process_gone(pid) for pid in nonas)
        assert list(tmp.iterdir()) == [] and not (tmp_path / "out.jpg").exists()
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
