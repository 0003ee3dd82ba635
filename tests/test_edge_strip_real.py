"""With the real tools, on the pcb photos: no blurred strip along the result's edges.

enfuse gives the pixels within half a contrast window of its picture's edge
to the first frame whatever its focus (``enfuse.unfused_border``); on pcb that
frame's left edge is out of focus, so the uncut result had a 7-pixel blurred
strip there.  Cutting that border is not done yet (it means writing the
result again, 16-bit and float TIFFs included, and cutting the contribution
map to match): until it is, the real check below is expected to fail
(strict: it must be unmarked when the border is cut).  The check compares the detail (squared differences of
neighbouring pixels) of the outer 4 columns or rows on each side with a band
a little further in: before the cut it was 0.03-0.21 of it, after it 0.54-0.95.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

OUTER = 4  # pixels along the edge
INNER = (12, 44)  # the band compared with it, counted from the edge
MIN_RATIO = 0.4


def _detail(lum: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Mean squared difference between each pixel of ``box`` and its right and lower neighbours."""
    left, top, right, bottom = box
    here = lum.crop(box)
    across = ImageChops.difference(here, lum.crop((left + 1, top, right + 1, bottom)))
    down = ImageChops.difference(here, lum.crop((left, top + 1, right, bottom + 1)))
    return sum(ImageStat.Stat(d).sum2[0] for d in (across, down)) / (2 * here.width * here.height)


def edge_ratios(path: Path) -> dict[str, float]:
    """Each side's outer band's detail over the detail of a band just inside it."""
    with Image.open(path) as im:
        lum = im.convert("L")
    w, h = lum.size
    a, b = INNER
    bands = {
        "left": ((0, 0, OUTER, h - 1), (a, 0, b, h - 1)),
        "right": ((w - 1 - OUTER, 0, w - 1, h - 1), (w - 1 - b, 0, w - 1 - a, h - 1)),
        "top": ((0, 0, w - 1, OUTER), (0, a, w - 1, b)),
        "bottom": ((0, h - 1 - OUTER, w - 1, h - 1), (0, h - 1 - b, w - 1, h - 1 - a)),
    }
    return {side: _detail(lum, outer) / _detail(lum, inner) for side, (outer, inner) in bands.items()}


def test_the_measure_sees_a_blurred_strip(tmp_path):
    """The check itself: a picture whose left 7 columns are blurred fails it, the sharp one passes."""
    pcb = Path(__file__).resolve().parents[2] / "shared" / "stacks" / "pcb" / "reference-focus-stack.jpg"
    if not pcb.is_file():
        pytest.skip(f"the real photographs are not present at {pcb.parent}")
    from PIL import ImageFilter

    with Image.open(pcb) as im:
        sharp = im.convert("RGB")
    blurred = sharp.copy()
    blurred.paste(sharp.crop((0, 0, 7, sharp.height)).filter(ImageFilter.GaussianBlur(3)), (0, 0))
    sharp.save(tmp_path / "sharp.png")
    blurred.save(tmp_path / "blurred.png")
    assert edge_ratios(tmp_path / "sharp.png")["left"] >= MIN_RATIO
    assert edge_ratios(tmp_path / "blurred.png")["left"] < MIN_RATIO


@pytest.mark.real
@pytest.mark.pcb
@pytest.mark.parametrize("preset", ["miniature", "halo-safe"])
def test_no_blurred_strip_along_the_edges(pcb_photos, tmp_path, preset):
    done = subprocess.run(
        [sys.executable, "-m", "focuswrap", "stack", *map(str, pcb_photos), "-o", "out.tif"]
        + ["--preset", preset, "--json", "-q", "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    ratios = edge_ratios(tmp_path / "out.tif")
    assert min(ratios.values()) >= MIN_RATIO, ratios
    # And the result says it was cropped, to its real size.
    with Image.open(tmp_path / "out.tif") as out:
        size = out.size
    left, top, right, bottom = result["crop"]
    assert (right - left, bottom - top) == size
