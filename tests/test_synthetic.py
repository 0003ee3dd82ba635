"""The synthetic focus bracket, and (marked ``real``) that Hugin's tools stack it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from focuswrap.sharpness import compare, gradient_energy, psnr
from focuswrap.synthetic import MAKE, MODEL, SyntheticStack, make_stack

SMALL = (192, 144)


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStack:
    return make_stack(tmp_path_factory.mktemp("stack"), frames=4, size=SMALL, seed=7)


def test_files_exist_with_the_right_names_and_sizes(small_stack: SyntheticStack) -> None:
    assert [p.name for p in small_stack.frames] == ["frame_1.jpg", "frame_2.jpg", "frame_3.jpg", "frame_4.jpg"]
    assert small_stack.truth.name == "truth.png"
    for path in small_stack.frames:
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", SMALL)
    with Image.open(small_stack.truth) as im:
        assert (im.format, im.mode, im.size) == ("PNG", "RGB", SMALL)


def test_parameters_are_recorded(small_stack: SyntheticStack) -> None:
    assert small_stack.size == SMALL
    assert small_stack.seed == 7
    assert small_stack.focus_depths == (0.875, 0.625, 0.375, 0.125)
    assert small_stack.magnifications[0] == 1.0
    assert small_stack.shifts[0] == (0.0, 0.0)
    steps = [b - a for a, b in zip(small_stack.magnifications, small_stack.magnifications[1:], strict=False)]
    assert all(0.003 <= step <= 0.006 for step in steps)
    assert all(abs(dx) <= 4 and abs(dy) <= 4 for dx, dy in small_stack.shifts)
    assert len(small_stack.objects) == 2
    for obj in small_stack.objects:
        left, top, right, bottom = obj.box
        assert 0 <= left < right <= SMALL[0] and 0 <= top < bottom <= SMALL[1]


def test_same_seed_same_bytes_other_seed_other_scene(tmp_path: Path) -> None:
    a = make_stack(tmp_path / "a", frames=3, size=SMALL, seed=11)
    b = make_stack(tmp_path / "b", frames=3, size=SMALL, seed=11)
    c = make_stack(tmp_path / "c", frames=3, size=SMALL, seed=12)
    for x, y in zip([*a.frames, a.truth], [*b.frames, b.truth], strict=False):
        assert x.read_bytes() == y.read_bytes()
    assert a.truth.read_bytes() != c.truth.read_bytes()
    assert a.shifts == b.shifts


def test_exif_is_written(small_stack: SyntheticStack) -> None:
    stamps = []
    for path in small_stack.frames:
        with Image.open(path) as im:
            exif = im.getexif()
        assert exif[0x010F] == MAKE
        assert exif[0x0110] == MODEL
        stamps.append(exif.get_ifd(0x8769)[0x9003])  # DateTimeOriginal
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    return ImageStat.Stat(ImageChops.difference(a.convert("L"), b.convert("L"))).mean[0]


def test_frame_1_is_in_the_truth_geometry(small_stack: SyntheticStack) -> None:
    # The bottom strip is in focus in frame 1 (the nearest band): it matches
    # the truth in place, and worse as soon as it is moved by a pixel.
    width, height = SMALL
    with Image.open(small_stack.frames[0]) as frame, Image.open(small_stack.truth) as truth:
        strip = (8, height - 20, width - 8, height - 4)
        in_place = _mean_difference(frame.crop(strip), truth.crop(strip))
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (2, 2)):
            moved = (strip[0] + dx, strip[1] + dy, strip[2] + dx, strip[3] + dy)
            assert in_place < _mean_difference(frame.crop(strip), truth.crop(moved)) - 2


def test_without_shake_frames_do_not_move(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, frames=3, size=SMALL, seed=3, shake=False)
    assert stack.magnifications == (1.0, 1.0, 1.0)
    assert stack.shifts == ((0.0, 0.0),) * 3


def _free_columns(stack: SyntheticStack, top: int, bottom: int) -> tuple[int, int]:
    """The widest run of columns in rows top..bottom that no raised object covers."""
    covered = [False] * stack.size[0]
    for obj in stack.objects:
        left, otop, right, obottom = obj.box
        if otop < bottom and obottom > top:
            for x in range(max(0, left - 8), min(stack.size[0], right + 8)):
                covered[x] = True
    best, start = (0, 0), None
    for x, c in enumerate([*covered, True]):
        if not c and start is None:
            start = x
        elif c and start is not None:
            best = max(best, (start, x), key=lambda run: run[1] - run[0])
            start = None
    return best


def test_each_frame_is_sharpest_in_its_own_depth_band(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, frames=4, size=(320, 240), seed=5, shake=False)
    width, height = stack.size
    frames = [Image.open(p) for p in stack.frames]
    try:
        for k, focus in enumerate(stack.focus_depths):
            row = round(focus * height)
            top, bottom = max(0, row - 10), min(height, row + 10)
            left, right = _free_columns(stack, top, bottom)
            assert right - left >= width // 4
            energies = [gradient_energy(f.crop((left, top, right, bottom)), crop=1.0) for f in frames]
            assert max(range(len(energies)), key=energies.__getitem__) == k, energies
    finally:
        for f in frames:
            f.close()


@pytest.mark.parametrize(("frames", "size", "message"), [(1, (100, 100), "2 frames"), (3, (32, 100), "64x64")])
def test_bad_parameters_are_refused(tmp_path: Path, frames: int, size: tuple[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_stack(tmp_path, frames=frames, size=size)


def _missing_tools() -> str | None:
    missing = [tool for tool in ("align_image_stack", "enfuse") if shutil.which(tool) is None]
    return f"needs Hugin's {' and '.join(missing)} on PATH" if missing else None


@pytest.mark.real
@pytest.mark.skipif(_missing_tools() is not None, reason=_missing_tools() or "")
@pytest.mark.parametrize("fisheye", [True, False], ids=["with-e", "without-e"])
def test_real_tools_stack_the_synthetic_bracket(tmp_path: Path, fisheye: bool) -> None:
    stack = make_stack(tmp_path, frames=5, size=(640, 480), seed=1)
    names = [p.name for p in stack.frames]
    align = ["align_image_stack", "-m"] + (["-e"] if fisheye else []) + ["--use-given-order", "-a", "aligned_", *names]
    done = subprocess.run(align, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    aligned = sorted(p.name for p in tmp_path.glob("aligned_*.tif"))
    assert len(aligned) == len(names), done.stdout + done.stderr

    fuse = [
        "enfuse",
        "--exposure-weight=0",
        "--saturation-weight=0",
        "--contrast-weight=1",
        "--hard-mask",
        "--gray-projector=luminance",
        "--contrast-window-size=15",
        "--output=out.tif",
        *aligned,
    ]
    done = subprocess.run(fuse, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = tmp_path / "out.tif"
    assert result.is_file()  # enfuse exiting 0 is not enough

    report = compare(result, stack.frames)
    assert report.gain > 1.5, report.summary()  # measured about 2.7
    closest_frame = max(psnr(frame, stack.truth) for frame in stack.frames)
    assert psnr(result, stack.truth) > psnr(stack.frames[report.sharpest_index], stack.truth)
    assert psnr(result, stack.truth) > closest_frame + 3  # measured 25.7 dB against 18.0
