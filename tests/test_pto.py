"""Reading Hugin's project file: the crop -C chose, and when a linear response cannot change pixels.

The two projects in tests/data are the p and i lines align_image_stack 2022.0.0
wrote with ``-p``: the pcb stack (``-m -e --use-given-order``, nothing to crop)
and a bracket whose later frames zoom in (``... -C``, a border to cut).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from focuswrap.hugin import pto

DATA = Path(__file__).parent / "data"
PCB = (DATA / "pcb-project.pto").read_text()
ZOOMED = (DATA / "zoomed-cropped-project.pto").read_text()


def _set(text: str, index: int, name: str, value: str) -> str:
    """``text`` with parameter ``name`` of image ``index`` set to ``value`` (unlinked)."""
    lines = text.splitlines()
    images = [i for i, line in enumerate(lines) if line.startswith("i ")]
    at = images[index]
    lines[at] = re.sub(rf"\b{name}=?[^\s]*", f"{name}{value}", lines[at], count=1)
    return "\n".join(lines) + "\n"


def test_crop_is_read_from_the_p_line():
    crop = pto.crop(ZOOMED)
    assert crop == pto.Crop(left=123, top=43, right=2002, bottom=1450)
    assert crop.size == (1879, 1407)


def test_no_crop_without_s_or_when_it_is_the_whole_canvas():
    assert pto.crop(PCB) is None
    whole = PCB.replace(" R0 ", " R0 S0,2048,0,1536 ", 1)
    assert "S0,2048" in whole and pto.crop(whole) is None
    assert pto.crop("") is None


def test_linear_response_goes_on_every_image_of_an_even_bracket():
    linear = pto.with_linear_response(PCB)
    assert linear is not None
    images = [line for line in linear.splitlines() if line.startswith("i ")]
    assert len(images) == 7 and all(" Rt1 " in line for line in images)
    # Nothing else changes: drop the added parameter and the text is the original.
    assert linear.replace("i Rt1 ", "i ") == PCB
    # Already linear: not edited twice.
    assert pto.with_linear_response(linear) is None


def test_linear_response_also_for_an_unlinked_even_bracket():
    # The zoomed project writes Eev0 on every image instead of linking them.
    assert pto.with_linear_response(ZOOMED) is not None


@pytest.mark.parametrize(
    ("index", "name", "value", "why"),
    [
        (3, "Eev", "10.2", "one frame exposed differently"),
        (0, "Eev", "9.5", "the reference itself exposed differently from the output"),
        (2, "Er", "1.1", "white balance (red)"),
        (2, "Eb", "0.9", "white balance (blue)"),
        (0, "Vb", "-0.2", "vignetting correction (linked by the others)"),
        (5, "Va", "0.8", "vignetting correction on one frame"),
        (0, "Vm", "7", "flat-field correction"),
    ],
)
def test_linear_response_refused_where_it_could_change_pixels(index, name, value, why):
    changed = _set(PCB, index, name, value)
    assert changed != PCB
    assert pto.with_linear_response(changed) is None, why


def test_linear_response_refused_for_hdr_output_or_an_unreadable_project():
    assert pto.with_linear_response(PCB.replace(" R0 ", " R1 ", 1)) is None
    assert pto.with_linear_response(PCB.replace("Eev9.67327357686899", "Eev", 1)) is None
    assert pto.with_linear_response("p f3 w10 h10\n") is None
    assert pto.with_linear_response("") is None
