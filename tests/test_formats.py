"""Orientation, 16-bit and HEIC/raw photos (focuswrap.formats and its use in focuswrap.output).

The unit tests need no Hugin.  The tests marked ``real`` run the same steps
as the pipeline with the real tools: :func:`formats.prepare_frames`, then
align_image_stack and enfuse with the default preset, then
:func:`output.deliver`.  Figures worth reading are printed (``pytest -s``).
"""

from __future__ import annotations

import hashlib
import io
import struct
import subprocess
import sys
import types
from array import array
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from focuswrap import formats, inputs, output, presets
from focuswrap.errors import BadInputError, ExitCode, WriteFailed
from focuswrap.hugin import align, enfuse
from focuswrap.sharpness import psnr
from focuswrap.synthetic import MAKE, MODEL, make_stack

ORIENTATION, MAKE_TAG, MODEL_TAG, EXIF_IFD, DATETIME_ORIGINAL = 0x0112, 0x010F, 0x0110, 0x8769, 0x9003
PIXEL_X, PIXEL_Y = 0xA002, 0xA003
SIZE = (320, 240)
#: A frame stored landscape and tagged 6 is shown turned 90 degrees clockwise.
CLOCKWISE = Image.Transpose.ROTATE_270


# ----------------------------------------------------------------- helpers


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tag_orientation(src: Path, dest: Path, orientation: int) -> Path:
    """A copy of the JPEG ``src`` with its EXIF orientation set (pixels re-encoded at high quality)."""
    with Image.open(src) as im:
        exif = im.getexif()
        exif[ORIENTATION] = orientation
        im.save(dest, quality=95, exif=exif.tobytes())
    return dest


def gradient_image(size: tuple[int, int] = (6, 4)) -> Image.Image:
    """A small RGB picture whose every pixel differs, so any turn or flip shows."""
    im = Image.new("RGB", size)
    im.putdata([(x * 40, y * 60, (x + y * size[0]) * 9) for y in range(size[1]) for x in range(size[0])])
    return im


def to_16bit(im: Image.Image) -> bytes:
    """8-bit RGB as 16-bit little-endian with real low bytes: v*256 + (x mod 256)."""
    width = im.size[0]
    values = array("H", (v * 256 + (i // 3) % width % 256 for i, v in enumerate(im.convert("RGB").tobytes())))
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def lzw_decode(data: bytes) -> bytes:
    """TIFF's LZW (MSB-first codes of 9 to 12 bits, one code early), for reading enfuse's TIFFs."""
    out = bytearray()
    table = [bytes([i]) for i in range(256)] + [b"", b""]
    prev = b""
    pos, nbits, total = 0, 9, len(data) * 8
    while pos + nbits <= total:
        chunk = int.from_bytes(data[pos >> 3 : (pos >> 3) + 3].ljust(3, b"\0"), "big")
        code = (chunk >> (24 - (pos & 7) - nbits)) & ((1 << nbits) - 1)
        pos += nbits
        if code == 256:  # clear
            del table[258:]
            nbits, prev = 9, b""
            continue
        if code == 257:  # end of information
            break
        if not prev:
            entry = table[code]
        else:
            entry = table[code] if code < len(table) else prev + prev[:1]
            table.append(prev + entry[:1])
        out += entry
        prev = entry
        if len(table) >= (1 << nbits) - 1 and nbits < 12:
            nbits += 1
    return bytes(out)


def tiff_samples(path: Path) -> tuple[tuple[int, int], int, int, array]:
    """(size, samples per pixel, bits, every sample) of an uncompressed or LZW TIFF, at full depth."""
    with Image.open(path) as im:
        tags = im.tag_v2
        # Stored size: newer Pillow reports a TIFF tagged 5..8 with width and height swapped.
        size, order = (tags[256], tags[257]), "<" if tags.prefix == b"II" else ">"
        compression, samples = tags.get(259, 1), tags.get(277, 1)
        bits = tags[258][0]
        assert tags.get(317, 1) == 1, "horizontal predictor not handled"
        offsets, counts = tags[273], tags[279]
    raw = path.read_bytes()
    strips = [raw[o : o + c] for o, c in zip(offsets, counts, strict=False)]
    assert compression in (1, 5), compression
    data = b"".join(lzw_decode(s) if compression == 5 else s for s in strips)
    values = array("H" if bits == 16 else "B")
    values.frombytes(data[: size[0] * size[1] * samples * bits // 8])
    if bits == 16 and (order == "<") != (sys.byteorder == "little"):
        values.byteswap()
    return size, samples, bits, values


def stack_with_hugin(frames: list[Path], work: Path, *, fuse_extra: list[str] = ()) -> Path:
    """align_image_stack + enfuse with the default preset, as the pipeline calls them; returns fused.tif."""
    preset = presets.get(presets.DEFAULT_PRESET).preset
    work.mkdir(parents=True, exist_ok=True)
    prefix = work / align.PREFIX
    # Without -C: the whole canvas, so that results compare with the truth pixel for pixel.
    options = preset.align.model_copy(update={"crop": False})
    argv = align.build_argv(command=["align_image_stack"], options=options, inputs=frames, prefix=prefix)
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    fused = work / enfuse.FUSED
    argv = enfuse.build_argv(
        command=["enfuse", *fuse_extra],
        options=preset.fuse,
        inputs=align.expected_outputs(prefix, len(frames)),
        output=fused,
    )
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return fused


def without_heif(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import pillow_heif`` fail, as when the extra is not installed."""
    monkeypatch.setitem(sys.modules, "pillow_heif", None)


# ---------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_turns_like_pillows_exif_transpose(orientation: int) -> None:
    im = gradient_image()
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    buf = io.BytesIO()
    im.save(buf, format="PNG", exif=exif.tobytes())
    with Image.open(buf) as tagged:
        expected = ImageOps.exif_transpose(tagged)
    assert formats.upright(im, orientation).tobytes() == expected.tobytes()
    assert formats.upright(im, orientation).size == expected.size


@pytest.mark.parametrize("orientation", range(1, 9))
def test_deliver_turns_jpeg_and_png_pixels_upright_and_tags_them_1(tmp_path: Path, orientation: int) -> None:
    first = tmp_path / "first.jpg"
    exif = Image.Exif()
    exif[ORIENTATION], exif[MAKE_TAG] = orientation, "Camera Co"
    gradient_image().save(first, quality=95, exif=exif.tobytes())
    fused = tmp_path / "fused.tif"
    gradient_image().convert("RGBA").save(fused)
    expected = ImageOps.exif_transpose(Image.open(first))
    for ext in ("png", "jpg"):
        out = tmp_path / f"out.{ext}"
        output.deliver(fused, out, fmt=inputs.output_format(out), first_input=first, force=False)
        with Image.open(out) as im:
            assert im.size == expected.size
            assert im.getexif()[ORIENTATION] == 1
            assert im.getexif()[MAKE_TAG] == "Camera Co"
            if ext == "png":  # lossless: exactly the upright pixels
                assert im.convert("RGB").tobytes() == formats.upright(gradient_image(), orientation).tobytes()


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_deliver_tags_a_tiff_and_changes_nothing_else(tmp_path: Path, orientation: int) -> None:
    first = tag_orientation_from_scratch(tmp_path / "first.jpg", orientation)
    fused = tmp_path / "fused.tif"
    gradient_image().convert("RGBA").save(fused, compression="tiff_lzw")
    out = tmp_path / "out.tif"
    output.deliver(fused, out, fmt="TIFF", first_input=first, force=False, orientation=orientation)
    with Image.open(out) as im:
        tags = dict(im.tag_v2)
        # Newer Pillow turns a tagged TIFF upright on load, older needs exif_transpose: either way upright.
        shown = ImageOps.exif_transpose(im).convert("RGB")
    assert tags[ORIENTATION] == orientation
    assert (tags[256], tags[257]) == gradient_image().size  # the pixels stay as stored...
    assert shown.tobytes() == formats.upright(gradient_image(), orientation).tobytes()  # ...shown upright
    assert stored_pixels(out) == stored_pixels(fused)


def stored_pixels(path: Path) -> bytes:
    return tiff_samples(path)[3].tobytes()


def tag_orientation_from_scratch(path: Path, orientation: int) -> Path:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    gradient_image().save(path, quality=95, exif=exif.tobytes())
    return path


def test_deliver_reads_the_orientation_from_the_first_photo_when_not_given(tmp_path: Path) -> None:
    first = tag_orientation_from_scratch(tmp_path / "first.jpg", 6)
    fused = tmp_path / "fused.tif"
    gradient_image().save(fused)
    out = tmp_path / "out.png"
    output.deliver(fused, out, fmt="PNG", first_input=first, force=False)
    assert Image.open(out).size == (4, 6)


def test_exif_sizes_follow_the_result_and_the_unique_id_is_dropped(tmp_path: Path) -> None:
    first = tmp_path / "first.jpg"
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif.get_ifd(EXIF_IFD).update(
        {PIXEL_X: 6, PIXEL_Y: 4, 0xA420: "frame-1-id", DATETIME_ORIGINAL: "2024:06:01 12:00:00"}
    )
    gradient_image().save(first, exif=exif.tobytes())
    fused = tmp_path / "fused.tif"
    gradient_image().save(fused)
    out = tmp_path / "out.jpg"
    output.deliver(fused, out, fmt="JPEG", first_input=first, force=False, orientation=6)
    sub = Image.open(out).getexif().get_ifd(EXIF_IFD)
    assert (sub[PIXEL_X], sub[PIXEL_Y]) == (4, 6)
    assert 0xA420 not in sub
    assert sub[DATETIME_ORIGINAL] == "2024:06:01 12:00:00"


# Not big-endian BigTIFF: Pillow 13 cannot read its own (it writes StripOffsets
# as 8 bytes under a 4-byte type, and fails on a directory it did not place).
@pytest.mark.parametrize(("byteorder", "big_tiff"), [("II", False), ("MM", False), ("II", True)])
def test_set_tiff_orientation_adds_the_tag_when_absent(tmp_path: Path, byteorder: str, big_tiff: bool) -> None:
    path = tmp_path / "plain.tif"
    # Pillow writes "I;16B" big-endian ("MM") and "I;16" little-endian ("II").
    im = Image.new("I;16B" if byteorder == "MM" else "I;16", (5, 3))
    im.putdata([i * 3000 for i in range(15)])
    im.save(path, big_tiff=big_tiff)
    with Image.open(path) as before:
        assert ORIENTATION not in before.tag_v2 and before.tag_v2.prefix == byteorder.encode()
        mode = before.mode
    pixels = stored_pixels(path)
    formats.set_tiff_orientation(path, 8)
    with Image.open(path) as after:
        assert (after.tag_v2[ORIENTATION], after.mode) == (8, mode)
    assert stored_pixels(path) == pixels


def test_set_tiff_orientation_overwrites_two_bytes_when_present(tmp_path: Path) -> None:
    path = tmp_path / "tagged.tif"
    exif = Image.Exif()
    exif[ORIENTATION] = 1
    gradient_image().save(path, exif=exif)
    before = path.read_bytes()
    formats.set_tiff_orientation(path, 6)
    after = path.read_bytes()
    assert len(after) == len(before)
    assert sum(a != b for a, b in zip(before, after, strict=False)) == 1  # 1 -> 6 in one byte of the entry
    assert Image.open(path).tag_v2[ORIENTATION] == 6


def test_set_tiff_orientation_refuses_what_is_not_a_tiff(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    gradient_image().save(path)
    with pytest.raises(ValueError, match="not a TIFF"):
        formats.set_tiff_orientation(path, 6)


# ----------------------------------------------------------------- 16 bit


def test_write_tiff_16bit_rgb_round_trips_every_bit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_STRIP_BYTES", 1000)  # several strips
    im = gradient_image((40, 30))
    data = to_16bit(im)
    path = tmp_path / "x.tif"
    formats.write_tiff(path, size=im.size, samples=3, bits=16, data=data)
    with Image.open(path) as back:
        assert (back.mode, back.size, back.tag_v2[258], back.tag_v2[339]) == ("RGB", (40, 30), (16,) * 3, (1,) * 3)
        assert len(back.tag_v2[273]) > 1
        assert back.tobytes() == im.tobytes()  # Pillow narrows to the high byte: v
    size, samples, bits, values = tiff_samples(path)
    assert (size, samples, bits) == ((40, 30), 3, 16)
    assert values.tobytes() == array("H", struct.unpack(f"<{len(data) // 2}H", data)).tobytes()


@pytest.mark.parametrize(("mode", "samples"), [("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4)])
def test_write_tiff_8bit_modes(tmp_path: Path, mode: str, samples: int) -> None:
    im = gradient_image((7, 5)).convert(mode)
    path = tmp_path / f"{mode}.tif"
    formats.write_tiff(path, size=im.size, samples=samples, bits=8, data=im.tobytes())
    with Image.open(path) as back:
        assert back.mode == mode
        assert back.tobytes() == im.tobytes()


def test_write_tiff_rejects_the_wrong_amount_of_pixels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected 36 bytes"):
        formats.write_tiff(tmp_path / "x.tif", size=(3, 2), samples=3, bits=16, data=b"\0" * 35)


def test_write_tiff_keeps_descriptive_exif_and_icc_but_not_the_source_layout(tmp_path: Path) -> None:
    src = tmp_path / "src.tif"  # a TIFF's IFD0 holds its strip offsets, compression...
    exif = Image.Exif()
    exif[MAKE_TAG], exif[MODEL_TAG], exif[ORIENTATION] = "Camera Co", "Model 1", 6
    exif.get_ifd(EXIF_IFD)[0x920A] = 50.0  # FocalLength: Hugin reads it for the field of view
    formats.write_tiff(src, size=(9, 9), samples=3, bits=8, data=gradient_image((9, 9)).tobytes(), exif=exif)
    meta, _ = formats.read_metadata(src)
    assert 273 in meta and 259 in meta
    icc = b"fake icc profile"
    out = tmp_path / "out.tif"
    im = gradient_image((3, 2))
    formats.write_tiff(out, size=(3, 2), samples=3, bits=8, data=im.tobytes(), exif=meta, icc=icc, orientation=6)
    with Image.open(out) as back:
        ex = back.getexif()
        assert (ex[MAKE_TAG], ex[MODEL_TAG], ex[ORIENTATION]) == ("Camera Co", "Model 1", 6)
        assert ex.get_ifd(EXIF_IFD)[0x920A] == 50.0
        assert back.info["icc_profile"] == icc
        assert (back.tag_v2[259], back.tag_v2[256], back.tag_v2[257]) == (1, 3, 2)
    assert stored_pixels(out) == im.tobytes()


def test_16bit_grey_result_stays_16_bit_in_a_png_and_is_scaled_not_clipped_in_a_jpeg(tmp_path: Path) -> None:
    fused = tmp_path / "fused.tif"
    im = Image.new("I;16", (4, 1))
    im.putdata([0, 257 * 100, 32896, 65535])
    im.save(fused)
    first = tag_orientation_from_scratch(tmp_path / "first.jpg", 1)
    png = tmp_path / "out.png"
    output.deliver(fused, png, fmt="PNG", first_input=first, force=False)
    with Image.open(png) as got:
        assert got.mode == "I;16" and [got.getpixel((x, 0)) for x in range(4)] == [0, 257 * 100, 32896, 65535]
    jpeg = tmp_path / "out.jpg"
    output.deliver(fused, jpeg, fmt="JPEG", first_input=first, force=False)
    with Image.open(jpeg) as got:
        assert got.mode == "L"
        assert [abs(got.getpixel((x, 0)) - v) <= 1 for x, v in enumerate([0, 100, 128, 255])] == [True] * 4


def test_16bit_rgb_result_gives_8bit_jpeg_and_png_of_the_high_bytes(tmp_path: Path) -> None:
    src = gradient_image((12, 8))
    fused = tmp_path / "fused.tif"
    formats.write_tiff(fused, size=src.size, samples=3, bits=16, data=to_16bit(src))
    first = tag_orientation_from_scratch(tmp_path / "first.jpg", 1)
    out = tmp_path / "out.png"
    output.deliver(fused, out, fmt="PNG", first_input=first, force=False)
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.tobytes() == src.tobytes()


def test_check_fused_catches_an_all_zero_alpha(tmp_path: Path) -> None:
    clear = tmp_path / "clear.tif"
    Image.new("RGBA", (4, 4), (200, 100, 50, 0)).save(clear)
    assert "fully transparent" in formats.check_fused(clear)
    part = tmp_path / "part.tif"
    im = Image.new("RGBA", (4, 4), (200, 100, 50, 0))
    im.putpixel((1, 1), (1, 2, 3, 255))
    im.save(part)
    assert formats.check_fused(part) is None
    opaque = tmp_path / "rgb.tif"
    Image.new("RGB", (4, 4)).save(opaque)
    assert formats.check_fused(opaque) is None


# -------------------------------------------------------- extras missing


def test_without_pillow_heif_the_message_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_heif(monkeypatch)
    assert not formats.extra_available("heif")
    photo = tmp_path / "IMG_0001.HEIC"
    photo.write_bytes(b"\0\0\0\x18ftypheic")
    with pytest.raises(formats.MissingExtraError) as info:
        formats.read_photo(photo, "heif")
    message = str(info.value)
    assert "pipx inject focuswrap pillow-heif" in message and "IMG_0001.HEIC is a HEIC/HEIF photo" in message
    assert info.value.extra == "heif"
    assert isinstance(info.value, BadInputError) and info.value.exit_code == ExitCode.BAD_INPUT


def test_without_rawpy_the_message_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rawpy", None)
    assert not formats.extra_available("raw")
    photos = [tmp_path / "a.NEF", tmp_path / "b.NEF"]
    with pytest.raises(
        formats.MissingExtraError, match=r"a\.NEF and \S*b\.NEF are raw camera files, .*pipx inject focuswrap rawpy"
    ):
        formats.require_extra("raw", photos)


def test_prepare_frames_without_the_extra_converts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_heif(monkeypatch)
    heic = inputs.Photo(tmp_path / "a.heic", 4, 4, 1, "RGB", formats.HEIF_FORMAT, 8)
    with pytest.raises(formats.MissingExtraError, match="pipx inject focuswrap pillow-heif"):
        formats.prepare_frames([heic, heic], tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_metadata_of_a_heic_without_the_extra_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_heif(monkeypatch)
    photo = tmp_path / "a.heic"
    photo.write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 20)
    assert formats.read_metadata(photo) == (None, None)


# ----------------------------------------------------------- which frames


def test_photos_hugin_reads_are_given_as_they_are(tmp_path: Path) -> None:
    stack = make_stack(tmp_path / "s", frames=2, size=(64, 64))
    photos = inputs.check_photos(stack.frames)
    before = [sha(p) for p in stack.frames]
    work = tmp_path / "work"
    work.mkdir()
    assert not any(formats.needs_conversion(p) for p in photos)
    assert formats.prepare_frames(photos, work) == stack.frames
    assert list(work.iterdir()) == []
    assert [sha(p) for p in stack.frames] == before


def test_frame_paths_keep_the_photo_name_in_a_numbered_folder(tmp_path: Path) -> None:
    jpeg = inputs.Photo(tmp_path / "a" / "IMG_1.jpg", 4, 4, 1, "RGB", "JPEG", 8)
    heic = inputs.Photo(tmp_path / "b" / "IMG_1.HEIC", 4, 4, 1, "RGB", formats.HEIF_FORMAT, 8)
    raw = inputs.Photo(tmp_path / "c" / "IMG_1.dng", 4, 4, 1, "RGB", formats.RAW_FORMAT, 16)
    work = tmp_path / "w"
    assert formats.frame_paths([jpeg, heic, raw], work) == [
        jpeg.path,
        work / "frames" / "0002" / "IMG_1.tif",
        work / "frames" / "0003" / "IMG_1.tif",
    ]


def test_kind_of_knows_extensions_and_heif_renamed_jpg(tmp_path: Path) -> None:
    assert formats.kind_of("x.HEIC") == "heif" and formats.kind_of("x.hif") == "heif"
    assert formats.kind_of("x.CR3") == "raw" and formats.kind_of("x.dng") == "raw"
    assert formats.kind_of("x.jpg", b"\0\0\0\x18ftypheic\0\0\0\0") == "heif"
    assert formats.kind_of("x.jpg", b"\xff\xd8\xff\xe0") is None


# ------------------------------------------------------------ raw (mocked)


class FakeArray:
    """What the code uses of the numpy array rawpy returns: shape, astype, tobytes."""

    def __init__(self, width: int, height: int, values: array) -> None:
        self.shape = (height, width, 3)
        self.values = values

    def astype(self, dtype: str, copy: bool = True) -> FakeArray:
        assert dtype == "<u2"
        return self

    def tobytes(self) -> bytes:
        values = array("H", self.values)
        if sys.byteorder == "big":
            values.byteswap()
        return values.tobytes()


def fake_rawpy(
    monkeypatch: pytest.MonkeyPatch, *, width: int = 6, height: int = 4, flip: int = 6, fail: str | None = None
) -> list[dict]:
    """Install a stand-in for rawpy (which cannot write raw files to test with); returns the postprocess calls."""
    calls: list[dict] = []

    class Raw:
        sizes = types.SimpleNamespace(width=width, height=height, flip=flip)

        def __enter__(self) -> Raw:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def postprocess(self, **kwargs: object) -> FakeArray:
            calls.append(kwargs)
            return FakeArray(width, height, array("H", range(0, width * height * 3 * 900, 900)))

    def imread(path: str) -> Raw:
        assert isinstance(path, str)
        if fail:
            raise RuntimeError(fail)
        return Raw()

    monkeypatch.setitem(sys.modules, "rawpy", types.SimpleNamespace(imread=imread))
    return calls


def raw_file(path: Path, *, magic: bytes | None = None) -> Path:
    """A TIFF-structured raw stand-in with EXIF (Make, Model, an Exif IFD), optionally with ORF/RW2 magic."""
    exif = Image.Exif()
    exif[MAKE_TAG], exif[MODEL_TAG], exif[ORIENTATION] = "Nikon", "D850", 6
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = "2024:06:01 12:00:00"
    # Pillow's TIFF writer leaves the Exif sub-IFD out; ours writes it, as cameras do.
    formats.write_tiff(path, size=(6, 4), samples=3, bits=8, data=gradient_image().tobytes(), exif=exif, orientation=6)
    if magic:
        data = bytearray(path.read_bytes())
        data[:4] = magic
        path.write_bytes(bytes(data))
    return path


def test_raw_photo_is_described_in_sensor_orientation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_rawpy(monkeypatch, width=6000, height=4000, flip=6)
    photo = formats.read_photo(raw_file(tmp_path / "DSC_1.NEF"), "raw")
    assert (photo.width, photo.height, photo.orientation, photo.bits, photo.format) == (6000, 4000, 6, 16, "RAW")
    assert formats.needs_conversion(photo)


@pytest.mark.parametrize(("flip", "orientation"), [(0, 1), (3, 3), (5, 8), (6, 6)])
def test_libraw_flip_becomes_exif_orientation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flip: int, orientation: int
) -> None:
    fake_rawpy(monkeypatch, flip=flip)
    path = raw_file(tmp_path / "a.dng")
    assert formats.read_photo(path, "raw").orientation == orientation
    assert formats.frame_orientation(path) == orientation


def test_raw_is_developed_into_a_16bit_tiff_with_its_exif(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_rawpy(monkeypatch, width=6, height=4, flip=6)
    originals = [raw_file(tmp_path / "DSC_1.NEF"), raw_file(tmp_path / "P1.ORF", magic=b"IIRO")]
    before = [sha(p) for p in originals]
    photos = [formats.read_photo(p, "raw") for p in originals]
    done: list[tuple[int, int, str]] = []
    frames = formats.prepare_frames(photos, tmp_path / "work", on_frame=lambda i, n, p: done.append((i, n, p.name)))
    assert [sha(p) for p in originals] == before
    assert [(i, n) for i, n, _ in done] == [(1, 2), (2, 2)]
    assert sorted(name for _, _, name in done) == ["DSC_1.NEF", "P1.ORF"]
    assert calls == [dict(output_bps=16, use_camera_wb=True, no_auto_bright=True, user_flip=0)] * 2
    for frame in frames:
        size, samples, bits, values = tiff_samples(frame)
        assert (size, samples, bits) == ((6, 4), 3, 16)
        assert list(values) == list(range(0, 6 * 4 * 3 * 900, 900))
        ex = Image.open(frame).getexif()
        assert (ex[MAKE_TAG], ex[MODEL_TAG], ex[ORIENTATION]) == ("Nikon", "D850", 6)
        assert ex.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] == "2024:06:01 12:00:00"
        assert 273 in Image.open(frame).tag_v2  # its own strips, not the raw's


def test_a_raw_libraw_cannot_read_is_reported_as_damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_rawpy(monkeypatch, fail="Unsupported file format or not RAW file")
    path = raw_file(tmp_path / "a.cr2")
    with pytest.raises(formats.DamagedPhoto, match="Unsupported file format"):
        formats.read_photo(path, "raw")
    photo = inputs.Photo(path, 6, 4, 1, "RGB", formats.RAW_FORMAT, 16)
    with pytest.raises(BadInputError, match=r"a\.cr2 cannot be decoded \(Unsupported file format"):
        formats.prepare_frames([photo, photo], tmp_path / "work")


def test_a_full_disk_while_converting_is_a_write_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    fake_rawpy(monkeypatch)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    photo = formats.read_photo(raw_file(tmp_path / "a.dng"), "raw")
    monkeypatch.setattr(formats, "write_tiff", full)
    with pytest.raises(WriteFailed, match="is full"):
        formats.prepare_frames([photo], tmp_path / "work")


def test_exif_of_a_cr3_is_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "a.CR3"
    path.write_bytes(b"\0\0\0\x18ftypcrx " + b"\0" * 100)
    assert formats.read_metadata(path) == (None, None)


# --------------------------------------------------------- HEIF (pillow-heif)


@pytest.fixture
def heif():
    module = pytest.importorskip("pillow_heif", reason='pillow-heif is not installed (pip install "focuswrap[heif]")')
    module.register_heif_opener()
    return module


def test_heic_photo_is_described_upright(tmp_path: Path, heif) -> None:
    src = tag_orientation_from_scratch(tmp_path / "a.jpg", 6)
    heic = tmp_path / "IMG_0001.HEIC"
    with Image.open(src) as im:
        im.save(heic, format="HEIF", exif=im.getexif().tobytes(), quality=95)
    photo = formats.read_photo(heic, "heif")
    # libheif turns the pixels (irot) and pillow-heif sets the EXIF tag to 1.
    assert (photo.width, photo.height, photo.orientation, photo.bits, photo.format) == (4, 6, 1, 8, "HEIF")
    assert formats.frame_orientation(heic) == 1


def test_10bit_heic_becomes_a_16bit_tiff(tmp_path: Path, heif) -> None:
    # Grey and smooth, so HEVC's 4:2:0 colour subsampling cannot move it far;
    # the quarter steps (64 in 16 bits) exist only at 10 bits.
    width, height = 16, 8
    grey = [y * 2000 + x * 64 for y in range(height) for x in range(width)]
    heic = tmp_path / "hdr.heic"
    heif.from_bytes(
        "RGB;16", (width, height), struct.pack(f"<{3 * len(grey)}H", *(v for g in grey for v in (g, g, g)))
    ).save(
        heic,
        quality=-1,  # lossless
    )
    photo = formats.read_photo(heic, "heif")
    assert (photo.bits, photo.mode) == (16, "RGB")
    (frame,) = formats.prepare_frames([photo], tmp_path / "work")
    size, samples, bits, values = tiff_samples(frame)
    assert (size, samples, bits) == ((width, height), 3, 16)
    assert max(abs(v - g) for v, g in zip(values[0::3], grey, strict=False)) <= 3 * 64  # a few 10-bit steps
    assert len({v & 0xFF for v in values}) >= 4  # the bits below 8 are there


def test_a_damaged_heic_is_reported(tmp_path: Path, heif) -> None:
    path = tmp_path / "bad.heic"
    path.write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 64)
    with pytest.raises(formats.DamagedPhoto):
        formats.read_photo(path, "heif")


# ------------------------------------------------------- with the real tools


@pytest.fixture(scope="module")
def bracket(tmp_path_factory: pytest.TempPathFactory):
    return make_stack(tmp_path_factory.mktemp("bracket"), frames=4, size=SIZE, seed=5)


def upright_truth(bracket) -> Image.Image:
    with Image.open(bracket.truth) as truth:
        return truth.transpose(CLOCKWISE)


@pytest.fixture(scope="module")
def portrait(bracket, tmp_path_factory: pytest.TempPathFactory):
    """The bracket tagged orientation 6 (a phone held upright), stacked once with the real tools."""
    base = tmp_path_factory.mktemp("portrait")
    frames = [tag_orientation(f, base / f.name, 6) for f in bracket.frames]
    photos = inputs.check_photos(frames)
    fused = stack_with_hugin(formats.prepare_frames(photos, base / "work"), base / "work")
    return photos, fused, base


@pytest.mark.real
def test_hugin_ignores_the_orientation_tag(portrait) -> None:
    photos, fused, _ = portrait
    assert Image.open(fused).size == SIZE  # stored orientation: landscape pixels
    assert photos[0].orientation == 6 and (photos[0].width, photos[0].height) == SIZE


@pytest.mark.real
@pytest.mark.parametrize("ext", ["jpg", "png", "tif"])
def test_portrait_stack_is_delivered_upright(portrait, bracket, ext: str) -> None:
    photos, fused, base = portrait
    out = base / f"result.{ext}"
    out.unlink(missing_ok=True)
    output.deliver(
        fused,
        out,
        fmt=inputs.output_format(out),
        first_input=photos[0].path,
        force=False,
        orientation=photos[0].orientation,
    )
    truth = upright_truth(bracket)
    with Image.open(out) as im:
        tag = im.getexif().get(ORIENTATION, 1)
        stored = (im.tag_v2[256], im.tag_v2[257]) if ext == "tif" else im.size
        shown = ImageOps.exif_transpose(im).convert("RGB")
        if ext == "tif":
            assert (tag, stored) == (6, SIZE)  # tagged, pixels as enfuse wrote them
        else:
            assert (tag, stored) == (1, (SIZE[1], SIZE[0]))  # pixels turned, tag 1
        if ext == "jpg":
            assert (im.getexif()[MAKE_TAG], im.getexif()[MODEL_TAG]) == (MAKE, MODEL)
    assert shown.size == truth.size
    result = psnr(shown, truth)
    frames = [psnr(ImageOps.exif_transpose(Image.open(p.path)), truth) for p in photos]
    wrong_way = psnr(shown.transpose(Image.Transpose.ROTATE_180), truth)
    print(
        f"\nportrait .{ext}: {result:.1f} dB to the upright truth (best frame {max(frames):.1f}, "
        f"turned the wrong way {wrong_way:.1f})"
    )
    assert result > max(frames) + 3.0
    assert wrong_way < result - 10


@pytest.fixture(scope="module")
def stack16(bracket, tmp_path_factory: pytest.TempPathFactory):
    """The bracket as 16-bit RGB TIFFs (low bytes carry a ramp), stacked once with the real tools."""
    base = tmp_path_factory.mktemp("sixteen")
    frames = []
    for f in bracket.frames:
        with Image.open(f) as im:
            path = base / f"{f.stem}.tif"
            formats.write_tiff(path, size=im.size, samples=3, bits=16, data=to_16bit(im), exif=im.getexif())
            frames.append(path)
    photos = inputs.check_photos(frames)
    assert {p.bits for p in photos} == {16}
    return photos, stack_with_hugin(formats.prepare_frames(photos, base / "work"), base / "work"), base


@pytest.mark.real
def test_16bit_stack_gives_a_16bit_tiff_with_a_visible_alpha(stack16, bracket) -> None:
    photos, fused, base = stack16
    out = base / "result.tif"
    output.deliver(fused, out, fmt="TIFF", first_input=photos[0].path, force=False, orientation=photos[0].orientation)
    assert formats.check_fused(out) is None
    size, samples, bits, values = tiff_samples(out)
    assert (size, bits) == (SIZE, 16)
    assert samples in (3, 4)
    if samples == 4:
        alpha = values[3::4]
        assert max(alpha) == 65535
        print(f"\n16-bit result: alpha opaque on {sum(a == 65535 for a in alpha) / len(alpha):.1%} of the pixels")
    colour = [v for i, v in enumerate(values) if samples == 3 or i % 4 != 3]
    low = {v & 0xFF for v in colour}
    # Narrowed on the way and widened again, a sample would read h*256 or h*257.
    widened = sum((v & 0xFF) in (0, v >> 8) for v in colour) / len(colour)
    assert len(low) > 200 and widened < 0.05, f"the low bytes were lost ({widened:.1%} look widened from 8 bits)"
    # Its high bytes as an 8-bit picture, scored against the truth.
    rgb = bytes(v >> 8 for i, v in enumerate(values) if samples == 3 or i % 4 != 3)
    high = Image.frombytes("RGB", SIZE, rgb)
    result = psnr(high, bracket.truth)
    best = max(psnr(f, bracket.truth) for f in bracket.frames)
    print(
        f"16-bit result: {result:.1f} dB to the truth, best frame {best:.1f} dB, {len(low)} distinct low bytes, "
        f"{widened:.1%} of samples h*256 or h*257"
    )
    assert result > best + 3.0


@pytest.mark.real
@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_16bit_stack_gives_8bit_jpeg_and_png_not_clipped(stack16, bracket, ext: str) -> None:
    photos, fused, base = stack16
    out = base / f"result.{ext}"
    out.unlink(missing_ok=True)
    output.deliver(fused, out, fmt=inputs.output_format(out), first_input=photos[0].path, force=False)
    with Image.open(out) as im:
        assert im.mode in ("RGB", "RGBA")
        result = psnr(im, bracket.truth)  # a clipped (all white) picture scores about 5 dB
    best = max(psnr(f, bracket.truth) for f in bracket.frames)
    print(f"\n16-bit stack as .{ext}: {result:.1f} dB to the truth (best frame {best:.1f})")
    assert result > best + 3.0


@pytest.mark.real
def test_enfuse_narrowing_16bit_to_8bit_writes_a_transparent_result_and_is_caught(stack16) -> None:
    photos, _, base = stack16
    fused = stack_with_hugin([p.path for p in photos], base / "narrow", fuse_extra=["--depth=8"])
    with Image.open(fused) as im:
        assert im.tag_v2[258][0] == 8
    assert "fully transparent" in (formats.check_fused(fused) or "")


@pytest.mark.real
def test_heic_stack_is_converted_stacked_and_keeps_its_exif(bracket, tmp_path: Path, heif) -> None:
    heics = []
    for f in bracket.frames:
        with Image.open(f) as im:
            exif = im.getexif()
            exif[ORIENTATION] = 6  # an iPhone held upright: HEIF stores it as a rotation (irot)
            path = tmp_path / f"IMG_{f.stem}.HEIC"
            im.save(path, format="HEIF", exif=exif.tobytes(), quality=95)
            heics.append(path)
    before = [sha(p) for p in heics]
    photos = [formats.read_photo(p, "heif") for p in heics]
    work = tmp_path / "work"
    frames = formats.prepare_frames(photos, work)
    assert all(f.is_relative_to(work) and f.suffix == ".tif" for f in frames)
    assert [sha(p) for p in heics] == before
    fused = stack_with_hugin(frames, work)
    out = tmp_path / "result.jpg"
    output.deliver(fused, out, fmt="JPEG", first_input=heics[0], force=False, orientation=photos[0].orientation)
    truth = upright_truth(bracket)
    with Image.open(out) as im:
        exif = im.getexif()
        assert (exif[MAKE_TAG], exif[MODEL_TAG], exif.get(ORIENTATION)) == (MAKE, MODEL, 1)
        assert DATETIME_ORIGINAL in exif.get_ifd(EXIF_IFD)
        assert im.size == truth.size
        result = psnr(im, truth)
    best = max(psnr(f, truth) for f in frames)
    print(f"\nHEIC stack: {result:.1f} dB to the upright truth, best converted frame {best:.1f} dB")
    assert result > best + 3.0


# ------------------------------------ the same through `focuswrap stack` (default preset, nona)


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    # --no-crop: the whole canvas, so that results compare with the truth pixel for pixel.
    return subprocess.run(
        [sys.executable, "-m", "focuswrap", "stack", *map(str, args), "-q", "--no-cache", "--no-crop"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.real
def test_cli_portrait_stack_comes_out_upright(bracket, tmp_path: Path) -> None:
    frames = [tag_orientation(f, tmp_path / f.name, 8) for f in bracket.frames]
    done = _cli(*frames, "-o", tmp_path / "up.jpg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    truth = Image.open(bracket.truth).transpose(Image.Transpose.ROTATE_90)  # what orientation 8 shows
    with Image.open(tmp_path / "up.jpg") as im:
        assert im.getexif().get(ORIENTATION, 1) == 1 and im.size == (SIZE[1], SIZE[0])
        assert (
            psnr(im.convert("RGB"), truth)
            > max(psnr(ImageOps.exif_transpose(Image.open(f)), truth) for f in frames) + 3
        )


@pytest.mark.real
def test_cli_16bit_stack_gives_a_16bit_opaque_tiff(bracket, tmp_path: Path) -> None:
    frames = []
    for f in bracket.frames:
        with Image.open(f) as im:
            path = tmp_path / f"{f.stem}.tif"
            formats.write_tiff(path, size=im.size, samples=3, bits=16, data=to_16bit(im), exif=im.getexif())
            frames.append(path)
    done = _cli(*frames, "-o", tmp_path / "deep.tif", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "deep.tif") as im:
        assert set(im.tag_v2[258]) == {16}  # BitsPerSample: not narrowed
    assert formats.check_fused(tmp_path / "deep.tif") is None  # None: no all-zero alpha, nothing narrowed


@pytest.mark.real
def test_cli_heic_stack_keeps_its_exif(bracket, tmp_path: Path, heif) -> None:
    frames = []
    for f in bracket.frames:
        with Image.open(f) as im:
            path = tmp_path / f"{f.stem}.heic"
            im.save(path, format="HEIF", quality=95, exif=im.getexif().tobytes())
            frames.append(path)
    done = _cli(*frames, "-o", tmp_path / "phone.jpg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "phone.jpg") as im:
        exif = im.getexif()
        assert (exif.get(MAKE_TAG), exif.get(MODEL_TAG)) == (MAKE, MODEL)
        assert psnr(im.convert("RGB"), Image.open(bracket.truth)) > 20
