"""focuswrap.pixels: the reader of the TIFFs Hugin writes that Pillow cannot open (fast, no Hugin).

The files are written here with tifffile the way nona and enfuse write them:
16-bit grey with an unassociated alpha channel, float32 RGB(A) and grey, with
no compression, LZW (enfuse's default), PackBits (focuswrap's intermediate)
and Deflate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, UnidentifiedImageError

from focuswrap import formats, inputs, photo, pixels, sharpness
from focuswrap.errors import BadInputError

COMPRESSIONS = [None, "lzw", "packbits", "zlib"]


def _ramp16(width: int = 40, height: int = 30) -> np.ndarray:
    """A 16-bit grey ramp that uses the low byte too (no value is a multiple of 257 but the ends)."""
    values = np.linspace(0, 65535, width * height).round().astype(np.uint16)
    return values.reshape(height, width)


def _grey_alpha(path: Path, grey: np.ndarray, alpha: np.ndarray, **kwargs) -> Path:
    tifffile.imwrite(path, np.dstack([grey, alpha]), photometric="minisblack", extrasamples=["unassalpha"], **kwargs)
    return path


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_16bit_grey_with_alpha_reads_as_i16_with_every_bit(tmp_path: Path, compression: str | None) -> None:
    grey = _ramp16()
    alpha = np.full_like(grey, 65535)
    alpha[0, :5] = 0
    f = _grey_alpha(tmp_path / "frame.tif", grey, alpha, compression=compression)
    with pytest.raises(UnidentifiedImageError):
        Image.open(f)  # why this module exists
    im = pixels.open_image(f)
    assert im.mode == "I;16" and im.size == (40, 30)
    assert np.array_equal(np.asarray(im), grey)
    band = pixels.alpha_band(im)
    assert band is not None and band.mode == "L" and band.size == im.size
    assert band.getpixel((0, 0)) == 0 and band.getpixel((10, 10)) == 255
    assert pixels.size_of(f) == (40, 30)
    facts = pixels.tiff_facts(f)
    assert (facts.samples, facts.bits, facts.floating, facts.alpha, facts.mode) == (2, 16, False, True, "I;16")
    assert facts.complete


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_float_rgba_reads_as_8bit_rgba_scaled_and_clipped(tmp_path: Path, compression: str | None) -> None:
    data = np.zeros((4, 5, 4), np.float32)
    data[..., 0] = 0.5
    data[..., 1] = 1.7  # brighter than white: clipped
    data[..., 2] = -0.2  # below black: clipped
    data[..., 3] = 1.0
    data[0, 0] = (np.nan, 0.25, 1.0, 0.0)
    f = tmp_path / "float.tif"
    tifffile.imwrite(f, data, photometric="rgb", extrasamples=["unassalpha"], compression=compression)
    im = pixels.open_image(f)
    assert im.mode == "RGBA" and im.size == (5, 4)
    assert im.getpixel((1, 1)) == (128, 255, 0, 255)
    assert im.getpixel((0, 0)) == (0, 64, 255, 0)  # NaN is black
    assert pixels.alpha_band(im) is not None
    assert pixels.tiff_facts(f).bits == 32 and pixels.tiff_facts(f).floating


def test_float_grey_is_i16_whether_pillow_or_tifffile_reads_it(tmp_path: Path) -> None:
    plane = np.linspace(0, 1, 60, dtype=np.float32).reshape(6, 10)
    alone = tmp_path / "alone.tif"  # Pillow opens this one itself ("F")
    tifffile.imwrite(alone, plane, photometric="minisblack")
    with Image.open(alone) as im:
        assert im.mode == "F"
    with_alpha = tmp_path / "alpha.tif"  # this one only tifffile reads
    tifffile.imwrite(
        with_alpha, np.dstack([plane, np.ones_like(plane)]), photometric="minisblack", extrasamples=["unassalpha"]
    )
    expected = (plane.astype(np.float64) * 65535 + 0.5).astype(np.uint16)
    for f in (alone, with_alpha):
        im = pixels.open_image(f)
        assert im.mode == "I;16"
        assert np.array_equal(np.asarray(im), expected), f.name
    assert pixels.alpha_band(pixels.open_image(alone)) is None
    assert pixels.alpha_band(pixels.open_image(with_alpha)).getextrema() == (255, 255)


def test_what_pillow_reads_stays_pillows(tmp_path: Path) -> None:
    rgb = tmp_path / "rgb.tif"
    Image.new("RGB", (6, 4), (10, 20, 30)).save(rgb, compression="tiff_lzw")
    im = pixels.open_image(rgb)
    assert im.mode == "RGB" and im.getpixel((0, 0)) == (10, 20, 30) and hasattr(im, "tag_v2")
    rgb16 = tmp_path / "rgb16.tif"
    formats.write_tiff(rgb16, size=(2, 1), samples=3, bits=16, data=bytes(range(12)))
    assert pixels.open_image(rgb16).mode == "RGB"  # Pillow's 8-bit reading of 16-bit colour
    png = tmp_path / "grey16.png"
    Image.fromarray(_ramp16()).save(png)
    im = pixels.open_image(png)
    assert im.mode == "I;16" and np.array_equal(np.asarray(im), _ramp16())


def test_placement_tags_place_the_frame_on_the_canvas(tmp_path: Path) -> None:
    f = tmp_path / "cropped.tif"
    grey = _ramp16(8, 6)
    # nona's way: XPosition/YPosition in the unit of the resolution (here 2 px per unit: 3.5 -> 7 px).
    _grey_alpha(
        f,
        grey,
        np.full_like(grey, 65535),
        resolution=(2, 2),
        extratags=[(286, 5, 1, (7, 2), True), (287, 5, 1, (3, 1), True)],
    )
    im = pixels.open_image(f)
    assert pixels.placement_tags(im)[286] == 3.5
    assert formats.layer_offset(im) == (7, 6)
    plain = Image.new("L", (3, 3))
    assert pixels.placement_tags(plain) == {} and formats.layer_offset(plain) == (0, 0)


def test_check_fused_sees_the_kept_aside_alpha(tmp_path: Path) -> None:
    grey = _ramp16(6, 6)
    clear = _grey_alpha(tmp_path / "clear.tif", grey, np.zeros_like(grey), compression="lzw")
    assert "fully transparent" in formats.check_fused(clear)
    part = np.zeros_like(grey)
    part[2, 3] = 65535
    assert formats.check_fused(_grey_alpha(tmp_path / "part.tif", grey, part)) is None


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow's, on the way to giving up
def test_a_damaged_tiff_is_an_oserror_and_a_non_tiff_stays_unidentified(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00" + b"\xff" * 60)
    with pytest.raises(pixels.UnreadablePicture) as caught:
        pixels.open_image(bad)
    assert isinstance(caught.value, OSError)
    with pytest.raises(pixels.UnreadablePicture):
        pixels.tiff_facts(bad)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a picture at all" * 4)
    with pytest.raises(UnidentifiedImageError):
        pixels.open_image(junk)
    with pytest.raises(UnidentifiedImageError):
        pixels.size_of(junk)


def test_input_check_accepts_float_and_grey_alpha_tiffs_and_names_a_cut_one(tmp_path: Path) -> None:
    frames = []
    for k in range(2):
        f = tmp_path / f"f{k}.tif"
        tifffile.imwrite(f, np.full((20, 30, 3), 0.25 * (k + 1), np.float32), photometric="rgb")
        frames.append(f)
    checked = inputs.check_photos(frames)
    assert [(p.width, p.height, p.bits, p.mode, p.format) for p in checked] == [(30, 20, 32, "RGB", "TIFF")] * 2
    grey = tmp_path / "g.tif"
    _grey_alpha(grey, _ramp16(), np.full_like(_ramp16(), 65535))
    one = photo.read_tiff(grey)
    assert one is not None and (one.bits, one.mode, one.orientation) == (16, "I;16", 1)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(frames[0].read_bytes()[:-500])
    assert photo.read_tiff(cut) is None
    with pytest.raises(BadInputError, match=r"cut\.tif"):
        inputs.check_photos([frames[0], cut])


def test_sharpness_measures_16bit_grey_and_float_frames(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 65535, (64, 64), dtype=np.uint16)
    sharp = _grey_alpha(tmp_path / "sharp.tif", noise, np.full_like(noise, 65535))
    flat = _grey_alpha(tmp_path / "flat.tif", np.full_like(noise, 30000), np.full_like(noise, 65535))
    floaty = tmp_path / "float.tif"
    tifffile.imwrite(floaty, np.dstack([noise / 65535.0] * 3).astype(np.float32), photometric="rgb")
    for factor in (1, 2):
        s, f, fl = sharpness.measure_all([sharp, flat, floaty], factor=factor)
        assert s > 100 and fl > 100, (factor, s, fl)
        assert f == 0


def test_camera_information_and_orientation_come_from_a_tiff_pillow_cannot_open(tmp_path: Path) -> None:
    f = tmp_path / "float.tif"
    icc = b"\x00\x00\x02\x0cfake profile" + bytes(64)
    tifffile.imwrite(
        f,
        np.full((8, 12, 3), 0.5, np.float32),
        photometric="rgb",
        extratags=[(271, "s", 0, "FocusCam", True), (274, "H", 1, 6, True), (34675, "B", len(icc), icc, True)],
    )
    exif, profile = formats.read_metadata(f)
    assert exif is not None and exif.get(271) == "FocusCam"
    assert profile == icc
    assert formats.frame_orientation(f) == 6
    one = photo.read_tiff(f)
    assert one is not None and one.orientation == 6


@pytest.mark.parametrize(
    ("dtype", "samples", "photometric"),
    [(np.uint8, 4, "rgb"), (np.uint16, 4, "rgb"), (np.uint16, 2, "minisblack"), (np.float32, 2, "minisblack")],
)
def test_trim_tiff_keeps_every_sample_the_profile_and_the_resolution(tmp_path: Path, dtype, samples, photometric):
    rng = np.random.default_rng(7)
    full = (rng.random((40, 50, samples)) * (1.0 if dtype == np.float32 else np.iinfo(dtype).max)).astype(dtype)
    source, target = tmp_path / "in.tif", tmp_path / "out.tif"
    icc = b"\0\0\0\x18fake-profile-bytes-for-test"
    tifffile.imwrite(
        source, full, photometric=photometric, extrasamples=["unassalpha"], iccprofile=icc, resolution=(300, 300)
    )
    pixels.trim_tiff(source, target, 3)
    with tifffile.TiffFile(target) as tif:
        page = tif.pages.first
        data = page.asarray()
        assert data.dtype == dtype and data.shape == (34, 44, samples)
        assert np.array_equal(data, full[3:-3, 3:-3])
        assert tuple(page.extrasamples) == (2,)  # unassociated alpha, still alpha
        assert page.tags[34675].value == icc
        assert page.tags[282].value == (300, 1) and page.compression == tifffile.COMPRESSION.LZW
