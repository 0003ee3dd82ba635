"""The sharpness measures: gradient energy, compare() and PSNR."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from focuswrap.sharpness import SharpnessReport, compare, crop_box, gradient_energy, luminance, psnr


def texture(size: tuple[int, int] = (96, 72), seed: int = 3, mode: str = "RGB") -> Image.Image:
    """Seeded random detail, softened a little so it is not pure noise."""
    rng = random.Random(seed)
    bands = len(mode)
    im = Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * bands))
    return im.filter(ImageFilter.GaussianBlur(0.7))


def step_edge(size: int = 20, low: int = 0, high: int = 100, vertical: bool = True) -> Image.Image:
    """Left (or top) half ``low``, the rest ``high``."""
    im = Image.new("L", (size, size), low)
    im.paste(high, (size // 2, 0, size, size) if vertical else (0, size // 2, size, size))
    return im


def test_flat_picture_has_no_energy() -> None:
    # Also proves the outermost ring (which Pillow's 3x3 filter copies
    # unfiltered) is not measured: 200**2 would show up here.
    assert gradient_energy(Image.new("L", (50, 40), 200), crop=1.0) == 0.0


@pytest.mark.parametrize("vertical", [True, False])
@pytest.mark.parametrize(("low", "high"), [(0, 100), (100, 0)])
def test_step_edge_has_the_documented_value(vertical: bool, low: int, high: int) -> None:
    # Sobel/4 across a step of 100 is 100 on the two pixel columns next to
    # it; measured inside the outer ring: 18 x 18 pixels, 36 of them on the edge.
    energy = gradient_energy(step_edge(low=low, high=high, vertical=vertical), crop=1.0)
    assert energy == pytest.approx(36 * 100**2 / (18 * 18))


def test_blurred_picture_scores_lower_the_more_it_is_blurred() -> None:
    sharp = texture()
    blurred = [sharp.filter(ImageFilter.GaussianBlur(r)) for r in (1, 2, 4)]
    energies = [gradient_energy(im) for im in [sharp, *blurred]]
    assert energies == sorted(energies, reverse=True)
    assert energies[0] > 2 * energies[1]


def test_only_the_central_crop_counts() -> None:
    # Detail only near the border: the central half sees a flat picture.
    im = texture((100, 80))
    im.paste((128, 128, 128), (15, 15, 85, 65))
    assert gradient_energy(im, crop=0.5) == 0.0
    assert gradient_energy(im, crop=1.0) > 0.0


@pytest.mark.parametrize("crop", [0.0, -0.5, 1.01])
def test_crop_out_of_range_is_refused(crop: float) -> None:
    with pytest.raises(ValueError, match="crop"):
        gradient_energy(texture(), crop=crop)


def test_crop_box_is_central() -> None:
    assert crop_box((100, 50), 0.8) == (10, 5, 90, 45)
    assert crop_box((100, 50), 1.0) == (0, 0, 100, 50)


def test_tiny_pictures_do_not_crash() -> None:
    assert gradient_energy(Image.new("L", (2, 2), 9), crop=1.0) == 0.0
    assert gradient_energy(Image.new("L", (1, 1), 9)) == 0.0


def test_16_bit_picture_is_scaled_to_8_bit() -> None:
    gray = texture(mode="L")
    wide = gray.convert("I").point(lambda v: v * 257)  # 0..255 -> 0..65535
    assert gradient_energy(wide.convert("I;16")) == pytest.approx(gradient_energy(gray))
    assert gradient_energy(wide) == pytest.approx(gradient_energy(gray))


def test_16_bit_png_from_disk(tmp_path: Path) -> None:
    gray = texture(mode="L")
    path = tmp_path / "deep.png"
    gray.convert("I").point(lambda v: v * 257).convert("I;16").save(path)
    assert gradient_energy(path) == pytest.approx(gradient_energy(gray))
    assert luminance(path).mode == "L"


def test_i_mode_with_8_bit_values_is_taken_as_is() -> None:
    gray = texture(mode="L")
    assert gradient_energy(gray.convert("I")) == pytest.approx(gradient_energy(gray))


def test_alpha_is_ignored() -> None:
    rgb = texture()
    rgba = rgb.convert("RGBA")
    rgba.putalpha(0)  # fully transparent: still measured on its colour
    assert gradient_energy(rgba) == gradient_energy(rgb)
    rgba.putalpha(texture(mode="L", seed=9))
    assert gradient_energy(rgba) == gradient_energy(rgb)


def test_path_and_picture_give_the_same_value(tmp_path: Path) -> None:
    im = texture()
    path = tmp_path / "t.png"
    im.save(path)
    assert gradient_energy(path) == gradient_energy(im)
    assert gradient_energy(str(path)) == gradient_energy(im)


def test_compare_finds_the_sharpest_input_and_the_gain(tmp_path: Path) -> None:
    sharp = texture()
    inputs = []
    for name, radius in (("a.png", 3), ("b.png", 1), ("c.png", 2)):
        path = tmp_path / name
        sharp.filter(ImageFilter.GaussianBlur(radius)).save(path)
        inputs.append(path)
    report = compare(sharp, inputs)
    assert isinstance(report, SharpnessReport)
    assert report.names == ("a.png", "b.png", "c.png")
    assert report.sharpest_index == 1
    assert report.sharpest_name == "b.png"
    assert report.sharpest == max(report.inputs)
    assert report.result == gradient_energy(sharp)
    assert report.gain == pytest.approx(report.result / report.inputs[1])
    assert report.gain > 1
    assert "b.png" in report.summary()


def test_compare_names_opened_pictures_by_position() -> None:
    report = compare(texture(), [texture(seed=1), texture(seed=2)])
    assert report.names == ("#1", "#2")


def test_compare_flat_inputs() -> None:
    flat = Image.new("L", (20, 20), 50)
    assert compare(flat, [flat]).gain == 1.0
    assert compare(texture(), [flat]).gain == math.inf
    with pytest.raises(ValueError):
        compare(flat, [])


def test_psnr_identical_is_infinite() -> None:
    im = texture()
    assert psnr(im, im.copy()) == math.inf


def test_psnr_known_value() -> None:
    # A uniform difference of 10 levels: MSE 100.
    a, b = Image.new("L", (30, 30), 100), Image.new("L", (30, 30), 110)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))


def test_psnr_falls_as_noise_grows() -> None:
    clean = texture(mode="L")
    rng = random.Random(5)
    noise = Image.frombytes("L", clean.size, rng.randbytes(clean.width * clean.height))
    values = [psnr(clean, Image.blend(clean, noise, alpha)) for alpha in (0.05, 0.2, 0.5)]
    assert values == sorted(values, reverse=True)
    assert values[0] > 25


def test_psnr_only_looks_at_the_crop() -> None:
    a = Image.new("L", (100, 100), 80)
    b = a.copy()
    b.paste(255, (0, 0, 100, 5))  # a bad border, outside the central 80 %
    assert psnr(a, b) == math.inf
    assert psnr(a, b, crop=1.0) < 30


def test_psnr_needs_same_size() -> None:
    with pytest.raises(ValueError, match="size"):
        psnr(Image.new("L", (10, 10)), Image.new("L", (10, 11)))


def test_reduced_jpeg_is_decoded_at_the_smaller_size(tmp_path):
    from focuswrap.sharpness import reduced

    path = tmp_path / "big.jpg"
    Image.new("RGB", (400, 300), (120, 130, 140)).save(path, quality=90)
    assert reduced(path, 2).size == (200, 150)
    assert reduced(path, 1).size == (400, 300)
    tif = tmp_path / "big.tif"
    Image.new("RGB", (400, 300)).save(tif)
    assert reduced(tif, 2).size == (200, 150)
    assert reduced(Image.new("L", (400, 300)), 4).size == (100, 75)
