"""The contribution map: which photo each part of the result came from.

Built from enfuse's own masks (``--save-masks``): with ``--hard-mask`` every
pixel of the result is taken from exactly one frame, and the hard mask of
frame *n* is 255 where that frame won.  The soft masks are the contrast
weights before the winner is chosen; where even the best frame's weight is
tiny, no frame was really sharp there (flat areas, or a depth the bracket
missed), and the map marks it with grey stripes.  A legend names the frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

#: enfuse's --save-masks templates; %n counts input images from 1.
SOFT_TEMPLATE = "softmask-%n.tif"
HARD_TEMPLATE = "hardmask-%n.tif"

#: One colour per frame (cycled after ten): distinct and readable on a dark background.
PALETTE = [
    (230, 25, 75),
    (245, 130, 48),
    (255, 225, 25),
    (60, 180, 75),
    (70, 240, 240),
    (0, 130, 200),
    (145, 30, 180),
    (240, 50, 230),
    (250, 190, 212),
    (170, 110, 40),
]
#: Below this share of the strongest weight anywhere, no frame counts as sharp.
WEAK_SHARE = 0.04


def save_masks_arg() -> str:
    """The value of enfuse's --save-masks for the work folder."""
    return f"{SOFT_TEMPLATE}:{HARD_TEMPLATE}"


def _mask_number(number: int, count: int) -> str:
    """How enfuse spells %n: zero-padded to the width of the frame count.

    enfuse 4.2 writes ``hardmask-1.tif`` .. ``hardmask-9.tif`` for up to nine
    frames but ``hardmask-01.tif`` .. ``hardmask-11.tif`` for eleven (and
    ``-001`` from a hundred on): the padding is the width of the largest number.
    """
    return str(number).zfill(len(str(count)))


def mask_files(folder: Path, count: int) -> tuple[list[Path], list[Path]]:
    """(soft, hard) mask files enfuse writes for ``count`` frames."""

    def named(template: str, i: int) -> Path:
        padded = folder / template.replace("%n", _mask_number(i + 1, count))
        plain = folder / template.replace("%n", str(i + 1))
        # Another enfuse version may not pad: take the unpadded name if only that one exists.
        return plain if not padded.exists() and plain.exists() else padded

    soft = [named(SOFT_TEMPLATE, i) for i in range(count)]
    hard = [named(HARD_TEMPLATE, i) for i in range(count)]
    return soft, hard


def _as_l(image: Image.Image, scale: float) -> Image.Image:
    """A float mask as an 8-bit image, values multiplied by ``scale``."""
    return image.point(lambda v: v * scale).convert("L")


def build(folder: Path, names: Sequence[str], output: Path, *, max_side: int = 1600, border: int = 0) -> Path:
    """Write the contribution map PNG for the frames called ``names`` (in stack order).

    ``border``: pixels cut from each side of the result (the edge enfuse did not fuse), cut here too.
    """
    from PIL import Image, ImageChops, ImageDraw

    soft_files, hard_files = mask_files(folder, len(names))
    hard = []
    for f in hard_files:
        with Image.open(f) as im:
            hard.append(_as_l(im, 1.0))  # already 0 or 255
    size = hard[0].size
    canvas = Image.new("RGB", size, (0, 0, 0))
    for i, mask in enumerate(hard):
        canvas.paste(PALETTE[i % len(PALETTE)], mask=mask.point(lambda v: 255 if v > 127 else 0))

    # Soft weights: where the best frame's weight is a small share of the strongest, no frame was sharp.
    softs = []
    for f in soft_files:
        with Image.open(f) as im:
            softs.append(im.copy())
    peak = max(s.getextrema()[1] for s in softs) or 1.0
    strongest = softs[0].point(lambda v: v * 255.0 / peak).convert("L")
    for s in softs[1:]:
        strongest = ImageChops.lighter(strongest, s.point(lambda v: v * 255.0 / peak).convert("L"))
    weak = strongest.point(lambda v: 255 if v < WEAK_SHARE * 255 else 0)
    stripes = Image.new("L", size, 0)
    draw = ImageDraw.Draw(stripes)
    for x in range(-size[1], size[0], 12):
        draw.line([(x, 0), (x + size[1], size[1])], fill=255, width=4)
    canvas.paste((110, 110, 110), mask=ImageChops.multiply(weak, stripes))
    canvas.paste((40, 40, 40), mask=ImageChops.multiply(weak, ImageChops.invert(stripes)))

    if border:
        canvas = canvas.crop((border, border, size[0] - border, size[1] - border))
        size = canvas.size
    if max(size) > max_side:
        factor = max_side / max(size)
        canvas = canvas.resize((round(size[0] * factor), round(size[1] * factor)), Image.Resampling.NEAREST)
    canvas = _with_legend(canvas, names)
    canvas.save(output, format="PNG")
    return output


def _with_legend(image: Image.Image, names: Sequence[str]) -> Image.Image:
    from PIL import Image, ImageDraw

    row = 20
    entries = list(names) + ["no frame sharp"]
    per_line = max(1, image.width // 220)
    lines = (len(entries) + per_line - 1) // per_line
    out = Image.new("RGB", (image.width, image.height + lines * row + 8), (20, 20, 20))
    out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    for k, name in enumerate(entries):
        x = 8 + (k % per_line) * 220
        y = image.height + 4 + (k // per_line) * row
        colour = PALETTE[k % len(PALETTE)] if k < len(names) else (110, 110, 110)
        draw.rectangle([x, y + 3, x + 14, y + 15], fill=colour)
        label = f"{k + 1}: {name}" if k < len(names) else name
        draw.text((x + 20, y + 3), label[:30], fill=(235, 235, 235))
    return out


def frame_at(map_image: Image.Image, xy: tuple[int, int]) -> int | None:
    """The frame index (0-based) whose colour is at ``xy`` in a map, or None."""
    pixel = map_image.getpixel(xy)
    if not isinstance(pixel, tuple):  # one channel: no frame's colour
        return None
    for i, colour in enumerate(PALETTE):
        if pixel[:3] == colour:
            return i
    return None
