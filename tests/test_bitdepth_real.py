"""16-bit greyscale and 32-bit float brackets through the real Hugin tools (issue 13 item 4).

Each kind of bracket is made from the synthetic focus bracket (8-bit JPEGs,
shifted and magnified a little frame to frame), converted to the kind under
test, and stacked once per kind by ``python -m focuswrap stack`` as a user
runs it.  The results are then read back: greyscale stacks must deliver
greyscale at their own bit depth (16-bit TIFF and PNG; 8-bit grey JPEG),
float TIFF stacks a float TIFF, and every result must be a real picture (not
blank, with fine 16-bit steps where the stack had them), with the sharpness
report and the contribution map made as for any stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from focuswrap import synthetic

pytestmark = pytest.mark.real

SIZE = (360, 270)
#: Generous: two cores shared by several test runs.
TIMEOUT = 900


@dataclass(frozen=True)
class Kind:
    name: str
    suffix: str  #: of the frames
    outputs: tuple[str, ...]  #: the result formats stacked


KINDS = {
    "grey16-tiff": Kind("grey16-tiff", ".tif", (".tif", ".jpg")),
    "grey16-png": Kind("grey16-png", ".png", (".png",)),
    "float32-rgb-tiff": Kind("float32-rgb-tiff", ".tif", (".tif", ".png")),
    "float32-grey-tiff": Kind("float32-grey-tiff", ".tif", (".tif", ".png")),
}


def _convert(kind: str, rgb8: np.ndarray, dest: Path) -> None:
    rgb = rgb8.astype(np.float32) / 255.0
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    if kind == "grey16-tiff":
        tifffile.imwrite(dest, (grey * 65535 + 0.5).astype(np.uint16), photometric="minisblack")
    elif kind == "grey16-png":
        Image.fromarray((grey * 65535 + 0.5).astype(np.uint16)).save(dest)
    elif kind == "float32-rgb-tiff":
        tifffile.imwrite(dest, rgb, photometric="rgb")
    else:
        tifffile.imwrite(dest, grey, photometric="minisblack")


@dataclass
class Stacked:
    kind: Kind
    frames: list[Path]
    results: dict[str, Path]
    runs: dict[str, subprocess.CompletedProcess]
    map_png: Path
    tmpdir: Path


def _stack(args: list[object], *, cwd: Path, home: Path, tmpdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmpdir), "FOCUSWRAP_HOME": str(home), "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "focuswrap", "stack", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def bracket(tmp_path_factory) -> list[np.ndarray]:
    made = synthetic.make_stack(tmp_path_factory.mktemp("synthetic"), frames=3, size=SIZE, seed=4)
    frames = []
    for f in made.frames:
        with Image.open(f) as im:
            frames.append(np.asarray(im.convert("RGB")))
    return frames


@pytest.fixture(scope="module", params=sorted(KINDS))
def stacked(request, bracket, tmp_path_factory) -> Stacked:
    kind = KINDS[request.param]
    folder = tmp_path_factory.mktemp(kind.name)
    tmpdir, home = folder / "tmp", folder / "home"
    tmpdir.mkdir()
    frames = []
    for k, rgb8 in enumerate(bracket, start=1):
        dest = folder / f"frame_{k}{kind.suffix}"
        _convert(kind.name, rgb8, dest)
        frames.append(dest)
    results, runs = {}, {}
    map_png = folder / "map.png"
    for i, suffix in enumerate(kind.outputs):
        out = folder / f"stacked{suffix}"
        extra: list[object] = ["--map", map_png] if i == 0 else []
        runs[suffix] = _stack([*frames, "-o", out, *extra], cwd=folder, home=home, tmpdir=tmpdir)
        results[suffix] = out
    return Stacked(kind, frames, results, runs, map_png, tmpdir)


def _ok(s: Stacked, suffix: str) -> Path:
    run = s.runs[suffix]
    assert run.returncode == 0, f"{s.kind.name} -> {suffix}: exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stdout + run.stderr
    assert s.results[suffix].is_file()
    return s.results[suffix]


def _fine_16bit(values: np.ndarray) -> bool:
    """True if the picture uses the low byte: not 8-bit values stretched to 16 bits."""
    return bool(np.count_nonzero(values % 257)) and len(np.unique(values)) > 256


def _size_ok(size: tuple[int, int]) -> None:
    # align_image_stack may crop the shaken border off (-C): a little smaller, never larger.
    assert SIZE[0] * 0.8 <= size[0] <= SIZE[0] and SIZE[1] * 0.8 <= size[1] <= SIZE[1], size


def _not_blank(values: np.ndarray, full_scale: float) -> None:
    assert float(values.std()) > 0.05 * full_scale, float(values.std())


def test_every_stack_succeeds_and_leaves_no_work_folder(stacked: Stacked) -> None:
    for suffix in stacked.kind.outputs:
        _ok(stacked, suffix)
    assert not list(stacked.tmpdir.glob("focuswrap.*"))


def _check_tiff(kind: str, result: Path) -> None:
    with tifffile.TiffFile(result) as tif:
        page = tif.pages.first
        data = page.asarray()
        samples, dtype = page.samplesperpixel, page.dtype
    assert samples == (4 if kind == "float32-rgb-tiff" else 2), samples  # enfuse keeps the alpha channel
    _size_ok((data.shape[1], data.shape[0]))
    if kind.startswith("float32"):
        assert dtype == np.float32, dtype
        _not_blank(data[..., :-1], 1.0)
    else:
        assert dtype == np.uint16, dtype
        _not_blank(data[..., 0], 65535)
        assert _fine_16bit(data[..., 0])


def _check_png(kind: str, result: Path) -> None:
    with Image.open(result) as im:
        mode, size = im.mode, im.size
        values = np.asarray(im)
    _size_ok(size)
    if kind == "float32-rgb-tiff":
        assert mode in ("RGB", "RGBA"), mode  # Pillow writes 8-bit colour PNGs only: the float TIFF is the faithful one
        _not_blank(values[..., :3], 255)
        return
    assert mode == "I;16", mode  # 16-bit grey, also from float grey frames
    _not_blank(values, 65535)
    assert _fine_16bit(values)


def _check_jpeg(kind: str, result: Path) -> None:
    with Image.open(result) as im:
        assert im.mode == "L", im.mode  # a greyscale stack stays greyscale, at JPEG's 8 bits
        _size_ok(im.size)
        _not_blank(np.asarray(im), 255)


def test_each_result_is_of_the_stacks_kind_and_bit_depth(stacked: Stacked) -> None:
    checks = {".tif": _check_tiff, ".png": _check_png, ".jpg": _check_jpeg}
    for suffix in stacked.kind.outputs:
        checks[suffix](stacked.kind.name, _ok(stacked, suffix))


def test_the_sharpness_report_and_the_map_are_made(stacked: Stacked) -> None:
    first = stacked.kind.outputs[0]
    run = stacked.runs[first]
    _ok(stacked, first)
    text = run.stdout + run.stderr
    assert "Could not measure sharpness" not in text
    assert "sharpness" in text and "the sharpest input" in text, text
    assert "infx" not in text  # the inputs measured flat: their pixels were not read as they are
    with Image.open(stacked.map_png) as im:
        assert im.mode == "RGB" and im.width > 0
        colours = {tuple(px) for px in np.asarray(im).reshape(-1, 3)[::97].tolist()}
        assert len(colours) > 2  # frames in colours, not one flat fill
