"""How sharp is a picture: the one measure the tests, demo, benchmark and report share.

Pillow only (no numpy), fast enough for 2048x1536 photos (well under 0.3 s).

The measure, :func:`gradient_energy`, is the mean squared Sobel gradient of
the luminance over the central part of the picture.  A stack is a success
when the fused result has more gradient energy than the sharpest input
(:func:`compare` gives the ratio, ``gain``).  When the all-in-focus scene is
known (synthetic stacks), :func:`psnr` says how close a picture comes to it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from PIL import Image, ImageChops, ImageFilter, ImageStat, UnidentifiedImageError

from focuswrap import pixels

#: A picture given either opened or as a file name.
ImageLike = Union[Image.Image, str, "os.PathLike[str]"]

# Sobel kernels divided by 4: the central difference I(x+1) - I(x-1) of the
# picture smoothed by [1, 2, 1] / 4 across the gradient.  On 8-bit input the
# response lies in [-255, 255], so each sign fits an "L" image exactly (Pillow
# clips a kernel's output to 0..255): the positive part comes from the kernel,
# the negative part from the negated kernel, and g^2 = pos^2 + neg^2.
_SOBEL_X = (-1, 0, 1, -2, 0, 2, -1, 0, 1)
_SOBEL_Y = (-1, -2, -1, 0, 0, 0, 1, 2, 1)
_KERNELS = tuple(
    ImageFilter.Kernel((3, 3), [sign * w for w in weights], scale=4, offset=0)
    for weights in (_SOBEL_X, _SOBEL_Y)
    for sign in (1, -1)
)


def luminance(image: ImageLike) -> Image.Image:
    """The picture as an 8-bit ``"L"`` image.

    Alpha is ignored (an RGBA picture is not composited onto anything).
    16-bit pictures (``"I;16"`` and its byte-order variants) are scaled by
    1/256.  ``"I"`` pictures are scaled by 1/256 when any value exceeds 255
    (Pillow opens 16-bit PNGs as ``"I"``), otherwise taken as 8-bit values.
    ``"F"`` pictures are clipped to 0..255.
    """
    im = _open(image)
    if im.mode.startswith("I;16"):
        im = im.convert("I")
    if im.mode == "I":
        high = im.getextrema()[1]  # one band: a number
        if isinstance(high, (int, float)) and high > 255:
            im = im.point(lambda v: v / 256)
        return im.convert("L")
    if im.mode == "L":
        return im
    # convert("L") drops alpha without compositing; "F" is clipped to 0..255.
    return im.convert("L")


def crop_box(size: tuple[int, int], crop: float) -> tuple[int, int, int, int]:
    """The central ``crop`` fraction (of width and of height) of a picture of ``size``."""
    if not 0 < crop <= 1:
        raise ValueError(f"crop must be in (0, 1], got {crop}")
    width, height = size
    cw = max(1, round(width * crop))
    ch = max(1, round(height * crop))
    left = (width - cw) // 2
    top = (height - ch) // 2
    return (left, top, left + cw, top + ch)


def reduced(image: ImageLike, factor: int) -> Image.Image:
    """The picture at 1/``factor`` of its width and height (``factor`` 1: as it is).

    JPEG files are decoded straight at the smaller size (Pillow's draft mode:
    the decoder skips the fine DCT coefficients), which is several times
    faster than decoding at full size; anything else is decoded, then reduced
    by box averaging.  Used by the report at the end of every stack, where
    speed matters more than the finest detail.
    """
    if factor <= 1:
        return _open(image)
    if isinstance(image, Image.Image):
        im = image
    elif _needs_pixels(image):  # 16-bit grey with alpha, float TIFFs
        image = im = pixels.open_image(image)
    else:
        with Image.open(os.fspath(image)) as opened:
            target = (opened.width // factor, opened.height // factor)
            if opened.format == "JPEG":
                opened.draft("L", target)
            opened.load()
            im = opened
    target = (max(1, im.width // factor), max(1, im.height // factor)) if isinstance(image, Image.Image) else target
    if im.size != target:
        if im.mode.startswith("I;16"):  # Pillow cannot reduce 16-bit grey: measure its 8-bit luminance
            im = luminance(im)
        ratio = max(1, round(im.width / target[0]))
        im = im.reduce(ratio) if ratio > 1 else im
    return im


def gradient_energy(image: ImageLike, *, crop: float = 0.8) -> float:
    """Mean squared gradient of the luminance over the central ``crop`` of the picture.

    Exactly: the picture is turned into 8-bit luminance (:func:`luminance`:
    ITU-R 601 weights as in Pillow's ``convert("L")``, alpha ignored, 16-bit
    scaled by 1/256).  At every pixel of the central ``crop`` fraction of
    the width and the height (0.8: the middle 80 % x 80 %, because aligned
    and fused pictures have warped borders), ``gx`` and ``gy`` are the 3x3
    Sobel responses divided by 4 (rounded to whole levels; each lies in
    -255..255).  The result is the mean of ``gx**2 + gy**2`` in squared
    8-bit levels: 0 for a flat picture, larger for a sharper one.  Pixels
    outside the crop are used only as neighbours, and the outermost pixel
    ring of the picture is never measured (its gradient is undefined).
    """
    lum = luminance(image)
    width, height = lum.size
    left, top, right, bottom = crop_box(lum.size, crop)
    # Pillow's 3x3 filter copies the outermost pixel ring unfiltered, so filter
    # a region one pixel larger than the crop and measure only its inside.
    outer = (max(0, left - 1), max(0, top - 1), min(width, right + 1), min(height, bottom + 1))
    inner = (
        max(left, 1) - outer[0],
        max(top, 1) - outer[1],
        min(right, width - 1) - outer[0],
        min(bottom, height - 1) - outer[1],
    )
    if inner[2] <= inner[0] or inner[3] <= inner[1]:
        return 0.0  # a picture 1 or 2 pixels across has no inside
    region = lum.crop(outer)
    count = (inner[2] - inner[0]) * (inner[3] - inner[1])
    total = 0.0
    for kernel in _KERNELS:
        part = region.filter(kernel).crop(inner)
        total += ImageStat.Stat(part).sum2[0]
    return total / count


def psnr(a: ImageLike, b: ImageLike, *, crop: float = 0.8) -> float:
    """Peak signal-to-noise ratio in dB between the luminances of two same-size pictures.

    ``10 * log10(255**2 / MSE)`` over the central ``crop`` (as in
    :func:`gradient_energy`); ``math.inf`` when the pictures are identical
    there.  Higher means closer.
    """
    la, lb = luminance(a), luminance(b)
    if la.size != lb.size:
        raise ValueError(f"pictures differ in size: {la.size} and {lb.size}")
    box = crop_box(la.size, crop)
    diff = ImageChops.difference(la.crop(box), lb.crop(box))
    stat = ImageStat.Stat(diff)
    mse = stat.sum2[0] / (stat.count[0] or 1)
    if mse == 0:
        return math.inf
    return 10 * math.log10(255**2 / mse)


@dataclass(frozen=True)
class SharpnessReport:
    """Gradient energy of a fused result against the pictures it was made from."""

    result: float
    inputs: tuple[float, ...]
    names: tuple[str, ...]
    sharpest_index: int
    gain: float

    @property
    def sharpest_name(self) -> str:
        """Name of the sharpest input."""
        return self.names[self.sharpest_index]

    @property
    def sharpest(self) -> float:
        """Gradient energy of the sharpest input."""
        return self.inputs[self.sharpest_index]

    def summary(self) -> str:
        """One line for a person, e.g. ``result 412.3 vs sharpest input frame_3.jpg 301.0: x1.37``."""
        return f"result {self.result:.1f} vs sharpest input {self.sharpest_name} {self.sharpest:.1f}: x{self.gain:.2f}"


def measure_all(
    inputs: Sequence[ImageLike], *, crop: float = 0.8, factor: int = 1, border: int = 0
) -> tuple[float, ...]:
    """:func:`gradient_energy` of each input (at 1/``factor`` size), in order.

    ``border``: pixels cut from each side first, so that inputs and a result cut as much
    (the edge enfuse does not blend) are measured over the same area.
    """
    return tuple(gradient_energy(reduced(_cut(im, border), factor), crop=crop) for im in inputs)


def _cut(image: ImageLike, border: int) -> ImageLike:
    if not border:
        return image
    im = _open(image)
    return im.crop((border, border, im.width - border, im.height - border))


def report(
    result: ImageLike, energies: Sequence[float], names: Sequence[str], *, crop: float = 0.8, factor: int = 1
) -> SharpnessReport:
    """Measure ``result`` against inputs already measured (``energies``, named ``names``).

    ``gain`` is result / sharpest input (``math.inf`` if every input is
    flat and the result is not, 1.0 if all are flat).
    """
    return report_measured(gradient_energy(reduced(result, factor), crop=crop), energies, names)


def report_measured(res: float, energies: Sequence[float], names: Sequence[str]) -> SharpnessReport:
    """The report for a result and inputs already measured (see :func:`report`)."""
    if not energies:
        raise ValueError("a sharpness report needs at least one input picture")
    best = max(range(len(energies)), key=energies.__getitem__)
    top = energies[best]
    if top > 0:
        gain = res / top
    else:
        gain = math.inf if res > 0 else 1.0
    return SharpnessReport(result=res, inputs=tuple(energies), names=tuple(names), sharpest_index=best, gain=gain)


def compare(result: ImageLike, inputs: Sequence[ImageLike], *, crop: float = 0.8) -> SharpnessReport:
    """Measure ``result`` and every input with :func:`gradient_energy` (see :func:`report`).

    Inputs given as paths are named by file name, opened pictures by their
    filename or ``#n`` (1-based).
    """
    if not inputs:
        raise ValueError("compare() needs at least one input picture")
    names = [_name(im, i) for i, im in enumerate(inputs)]
    return report(result, measure_all(inputs, crop=crop), names, crop=crop)


def _needs_pixels(path: str | os.PathLike[str]) -> bool:
    """True for a picture :func:`focuswrap.pixels.open_image` reads better: float, or a TIFF Pillow cannot open."""
    try:
        with Image.open(os.fspath(path)) as im:
            return im.mode == "F"  # 0..1 floats: clipped to 0..255 they would all look black
    except UnidentifiedImageError:
        return True


def _open(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    return pixels.open_image(image)  # also 16-bit grey with alpha and float TIFFs, which Pillow cannot open


def _name(image: ImageLike, index: int) -> str:
    if isinstance(image, Image.Image):
        filename = getattr(image, "filename", "")
        return Path(filename).name if filename else f"#{index + 1}"
    return Path(os.fspath(image)).name
