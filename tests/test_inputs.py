"""Tests for focuswrap.inputs: checking photos and the output path before any tool runs."""

from __future__ import annotations

import hashlib
import os
import random
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageFile

from focuswrap import inputs
from focuswrap.errors import BadInputError, ExitCode, OutputExistsError
from focuswrap.inputs import (
    OUTPUT_FORMATS,
    Photo,
    check_output,
    check_photos,
    default_output,
    natural_key,
    order_photos,
    output_format,
)

PCB = Path(__file__).resolve().parents[1] / ".." / "shared" / "stacks" / "pcb"


def skip_unless_permissions_bind(tmp_path: Path) -> None:
    """Skip when file modes do not stop us: root (chmod 000 does not stop it) or Windows."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    probe.chmod(0)
    try:
        probe.open("rb").close()
    except PermissionError:
        return
    finally:
        probe.chmod(0o644)
        probe.unlink()
    pytest.skip("file permissions do not stop this user (root, or a file system without modes)")


@pytest.fixture(autouse=True)
def _without_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests describe focuswrap without its extras (tests/test_formats.py covers them installed)."""
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    monkeypatch.setitem(sys.modules, "rawpy", None)


# ------------------------------------------------------------------ helpers


def _noise(size: tuple[int, int]) -> Image.Image:
    """A small RGB picture with real detail (so a JPEG has a sizeable scan)."""
    bands = [Image.effect_noise(size, 60 + 10 * i) for i in range(3)]
    return Image.merge("RGB", bands)


def jpeg(path: Path | str, size: tuple[int, int] = (96, 64), *, orientation: int | None = None, **save: object) -> Path:
    path = Path(path)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    _noise(size).save(path, "JPEG", exif=exif, quality=90, **save)
    return path


def png(path: Path | str, size: tuple[int, int] = (96, 64), mode: str = "RGB") -> Path:
    path = Path(path)
    _noise(size).convert(mode).save(path, "PNG")
    return path


def tiff(path: Path | str, size: tuple[int, int] = (96, 64), mode: str = "RGB") -> Path:
    path = Path(path)
    im = _noise(size)
    if mode == "I;16":
        im = im.convert("L").point(lambda v: v * 256, "I").convert("I;16")
    im.save(path, "TIFF")
    return path


def png_bytes(width: int, height: int, *, bit_depth: int = 8, color_type: int = 2, idat: bytes | None = None) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB PNGs)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    if idat is None:
        channels = {0: 1, 2: 3, 6: 4}[color_type]
        row = b"\x00" + bytes(width * channels * bit_depth // 8)
        idat = zlib.compress(row * height)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def cut(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def hashes(root: Path) -> dict[str, str]:
    """sha256 of every regular file under root (links and FIFOs are not followed)."""
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            if p.is_file() and not p.is_symlink():
                found[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def assert_one_line(message: str) -> None:
    assert message
    assert "\n" not in message and "\r" not in message


# ---------------------------------------------------------- bad photo table
#
# Each case builds files in the current folder (tmp_path) and returns the
# arguments for check_photos, as a user would type them.

Builder = Callable[[Path, pytest.MonkeyPatch], list]


def _pair(*names: str) -> list[str]:
    for name in names:
        jpeg(name)
    return list(names)


def _fifo(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    if not hasattr(os, "mkfifo"):
        pytest.skip("this platform has no FIFOs")
    jpeg("a.jpg")
    os.mkfifo("pipe.jpg")
    return ["a.jpg", "pipe.jpg"]


def _unreadable_injected(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    # Tests run as root, which chmod 000 does not stop: inject the failure.
    _pair("a.jpg", "b.jpg")
    real = inputs._open_binary

    def fake_open(path: object):
        if os.fspath(path) == "b.jpg":
            raise PermissionError(13, "Permission denied", "b.jpg")
        return real(path)

    mp.setattr(inputs, "_open_binary", fake_open)
    return ["a.jpg", "b.jpg"]


def _broken_link(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    jpeg("a.jpg")
    os.symlink("gone.jpg", "b.jpg")
    return ["a.jpg", "b.jpg"]


def _symlink_same(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    _pair("a.jpg", "b.jpg")
    os.symlink("a.jpg", "link.jpg")
    return ["a.jpg", "b.jpg", "link.jpg"]


def _hardlink_same(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    _pair("a.jpg", "b.jpg")
    os.link("a.jpg", "copy.jpg")
    return ["a.jpg", "b.jpg", "copy.jpg"]


def _heic_bytes(name: str) -> str:
    # The start of an iPhone photo: an ISO-BMFF "ftyp" box with brand "heic".
    Path(name).write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200))
    return name


BAD_PHOTOS: list[tuple[str, Builder, list[str]]] = [
    ("none", lambda t, m: [], ["at least two photos", "got none"]),
    ("one", lambda t, m: _pair("a.jpg"), ["focuswrap needs at least two photos to stack; got 1: a.jpg."]),
    ("missing", lambda t, m: _pair("a.jpg") + ["b.jpg"], ["b.jpg does not exist", "check the file name"]),
    ("two missing", lambda t, m: _pair("a.jpg") + ["b.jpg", "c.jpg"], ["b.jpg and c.jpg do not exist"]),
    ("file used as folder", lambda t, m: _pair("a.jpg", "b.jpg") + ["a.jpg/x.jpg"], ["a.jpg/x.jpg does not exist"]),
    ("broken link", _broken_link, ["b.jpg is a link", "does not exist"]),
    (
        "folder",
        lambda t, m: _pair("a.jpg") + [os.mkdir("shots") or "shots"],
        ["shots is a folder", os.path.join("shots", "*.jpg")],
    ),
    ("fifo", _fifo, ["pipe.jpg is not a regular file"]),
    ("unreadable", _unreadable_injected, ["b.jpg cannot be read", "permission denied", "permissions"]),
    ("empty", lambda t, m: _pair("a.jpg") + [Path("b.jpg").touch() or "b.jpg"], ["b.jpg is an empty file"]),
    (
        "text file",
        lambda t, m: _pair("a.jpg") + [Path("b.jpg").write_text("hello") and "b.jpg"],
        ["b.jpg is not an image", "JPEG, TIFF or PNG"],
    ),
    (
        "jpeg header cut",
        lambda t, m: _pair("a.jpg") + [cut(jpeg("b.jpg"), 0.02).name],
        ["b.jpg is damaged (its header cannot be read"],
    ),
    (
        "two headers cut",
        lambda t, m: (
            _pair("a.jpg")
            + [cut(jpeg("b.jpg"), 0.02).name, Path("c.png").write_bytes(png_bytes(8, 8)[:20]) and "c.png"]
        ),
        ["b.jpg and c.png are damaged (their headers cannot be read)"],
    ),
    (
        "truncated jpeg",
        lambda t, m: _pair("a.jpg") + [cut(jpeg("b.jpg")).name],
        ["b.jpg is incomplete", "copy the photos again"],
    ),
    (
        "truncated progressive jpeg",
        lambda t, m: _pair("a.jpg") + [cut(jpeg("b.jpg", progressive=True)).name],
        ["b.jpg is incomplete"],
    ),
    ("truncated png", lambda t, m: [png("a.png"), cut(png("b.png")).name], ["b.png is incomplete"]),
    ("truncated tiff", lambda t, m: [tiff("a.tif"), cut(tiff("b.tif"), 0.8).name], ["b.tif is incomplete"]),
    (
        "two truncated",
        lambda t, m: _pair("a.jpg") + [cut(jpeg("b.jpg")).name, cut(jpeg("c.jpg")).name],
        ["b.jpg and c.jpg are incomplete"],
    ),
    (
        "gif",
        lambda t, m: _pair("a.jpg") + [_noise((96, 64)).save("b.gif") or "b.gif"],
        ["b.gif is a GIF image", "Hugin cannot read", "convert"],
    ),
    ("bmp", lambda t, m: _pair("a.jpg") + [_noise((96, 64)).save("b.bmp") or "b.bmp"], ["b.bmp is a BMP image"]),
    (
        "heic by name",
        lambda t, m: _pair("a.jpg") + [_heic_bytes("b.heic")],
        ["b.heic is a HEIC/HEIF photo", "pipx inject focuswrap pillow-heif"],
    ),
    ("heic named jpg", lambda t, m: _pair("a.jpg") + [_heic_bytes("b.jpg")], ["pipx inject focuswrap pillow-heif"]),
    (
        "same path twice",
        lambda t, m: _pair("a.jpg", "b.jpg") + ["a.jpg"],
        ["a.jpg is given twice; give each photo once."],
    ),
    (
        "same file spelt differently",
        lambda t, m: _pair("a.jpg", "b.jpg") + [os.path.join(".", "a.jpg")],
        [f"a.jpg and {os.path.join('.', 'a.jpg')} are the same file", "give each photo once"],
    ),
    ("symlink to another input", _symlink_same, ["a.jpg and link.jpg are the same file"]),
    ("hard link to another input", _hardlink_same, ["a.jpg and copy.jpg are the same file"]),
    (
        "two repeats",
        lambda t, m: _pair("a.jpg", "b.jpg") + ["a.jpg", "b.jpg", "b.jpg"],
        ["given more than once (a.jpg is given twice; b.jpg is given 3 times)"],
    ),
    (
        "different size",
        lambda t, m: [jpeg("a.jpg"), jpeg("b.jpg"), jpeg("c.jpg", (48, 32)).name],
        ["c.jpg is 48x32 but the other photos are 96x64", "same size"],
    ),
    (
        "two different sizes",
        lambda t, m: [
            jpeg("a.jpg"),
            jpeg("b.jpg"),
            jpeg("c.jpg"),
            jpeg("d.jpg", (48, 32)),
            jpeg("e.jpg", (64, 96)).name,
        ],
        ["d.jpg is 48x32 and e.jpg is 64x96 but the other photos are 96x64"],
    ),
    (
        "portrait among landscape",
        lambda t, m: [jpeg("a.jpg", orientation=1), jpeg("b.jpg"), jpeg("c.jpg", orientation=6).name],
        ["c.jpg is portrait (EXIF orientation 6)", "a.jpg and b.jpg are landscape", "same way round"],
    ),
    (
        "turned left and right",
        lambda t, m: [jpeg("a.jpg", orientation=6), jpeg("b.jpg", orientation=6), jpeg("c.jpg", orientation=8).name],
        ["c.jpg is portrait (EXIF orientation 8)", "a.jpg and b.jpg are portrait (EXIF orientation 6)"],
    ),
    (
        "upside down",
        lambda t, m: [jpeg("a.jpg"), jpeg("b.jpg"), jpeg("c.jpg", orientation=3).name],
        ["c.jpg is landscape (EXIF orientation 3)"],
    ),
    (
        "mixed bit depth",
        lambda t, m: [png("a.png", mode="L"), png("b.png", mode="L"), tiff("c.tif", mode="I;16").name],
        ["c.tif (16-bit)", "other photos (8-bit)", "same bit depth"],
    ),
]


@pytest.mark.parametrize(("build", "words"), [pytest.param(b, w, id=i) for i, b, w in BAD_PHOTOS])
def test_bad_photos_are_rejected_with_one_clear_line(
    build: Builder, words: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = build(tmp_path, monkeypatch)
    before = hashes(tmp_path)
    with pytest.raises(BadInputError) as caught:
        check_photos(args)
    assert type(caught.value) is BadInputError
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    message = str(caught.value)
    assert_one_line(message)
    for word in words:
        assert word in message
    assert hashes(tmp_path) == before


RAW_NAMES = ["a.dng", "a.DNG", "a.cr2", "a.cr3", "a.nef", "a.arw", "a.raf", "a.orf", "a.rw2"]


@pytest.mark.parametrize("name", RAW_NAMES)
def test_raw_files_point_to_the_raw_extra(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tiff(name)  # DNG and most raws are TIFF inside: Pillow would happily open their preview
    jpeg("b.jpg")
    before = hashes(tmp_path)
    with pytest.raises(BadInputError) as caught:
        check_photos(["b.jpg", name])
    message = str(caught.value)
    assert_one_line(message)
    assert f"{name} is a raw camera file" in message
    assert "pipx inject focuswrap rawpy" in message
    assert hashes(tmp_path) == before


@pytest.mark.parametrize("name", ["a.heic", "a.HEIC", "a.heif", "a.hif"])
def test_heif_files_point_to_the_heif_extra(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _heic_bytes(name)
    jpeg("b.jpg")
    with pytest.raises(BadInputError, match="pipx inject focuswrap pillow-heif"):
        check_photos([name, "b.jpg"])


def test_unreadable_photo_for_real(tmp_path: Path) -> None:
    skip_unless_permissions_bind(tmp_path)
    a, b = jpeg(tmp_path / "a.jpg"), jpeg(tmp_path / "b.jpg")
    b.chmod(0)
    try:
        with pytest.raises(BadInputError, match="cannot be read"):
            check_photos([a, b])
    finally:
        b.chmod(0o644)


def test_problems_of_the_same_kind_are_named_together_up_to_a_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInputError) as caught:
        check_photos([f"m{i}.jpg" for i in range(7)])
    assert str(caught.value) == (
        "m0.jpg, m1.jpg, m2.jpg, m3.jpg and 3 more do not exist; check the file names and folder."
    )


def test_file_problems_come_before_the_photo_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkdir("shots")
    with pytest.raises(BadInputError, match="shots is a folder"):
        check_photos(["shots"])


@pytest.mark.parametrize(
    "name",
    ["bad\nname.jpg", "tab\there.jpg", os.fsdecode(b"latin1-\xe9.jpg") if sys.platform != "win32" else "x\x1b.jpg"],
)
def test_unprintable_names_keep_the_message_on_one_line(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    jpeg("a.jpg")
    with pytest.raises(BadInputError) as caught:
        check_photos(["a.jpg", name])
    message = str(caught.value)
    assert_one_line(message)
    assert message.isprintable()
    assert "does not exist" in message


# --------------------------------------------------------------- good photos


def test_good_stack_is_returned_in_the_order_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _pair("b.jpg", "a.jpg")
    photos = check_photos(["b.jpg", Path("a.jpg")])
    assert photos == [
        Photo(path=tmp_path / "b.jpg", width=96, height=64, orientation=1, mode="RGB", format="JPEG", bits=8),
        Photo(path=tmp_path / "a.jpg", width=96, height=64, orientation=1, mode="RGB", format="JPEG", bits=8),
    ]
    assert all(p.path.is_absolute() for p in photos)


ODD_NAMES = ["-a.jpg", "@b.jpg", "with space.jpg", "naïve é.jpg", "日本語 写真.jpg", "--version.jpg"]


def test_odd_file_names_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _pair(*ODD_NAMES)
    photos = check_photos(ODD_NAMES)
    assert [p.path for p in photos] == [tmp_path / n for n in ODD_NAMES]
    # Absolute paths can never be mistaken for options by Hugin's tools.
    assert not any(os.fspath(p.path).startswith(("-", "@")) for p in photos)


def test_odd_file_names_appear_in_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    jpeg("-a.jpg")
    with pytest.raises(BadInputError, match=r"@b c é\.jpg does not exist"):
        check_photos(["-a.jpg", "@b c é.jpg"])


def test_symlinked_photo_keeps_the_users_path(tmp_path: Path) -> None:
    a = jpeg(tmp_path / "a.jpg")
    jpeg(tmp_path / "b.jpg")
    (tmp_path / "link.jpg").symlink_to(a)
    photos = check_photos([tmp_path / "link.jpg", tmp_path / "b.jpg"])
    assert photos[0].path == tmp_path / "link.jpg"


def test_formats_modes_and_bit_depths(tmp_path: Path) -> None:
    (tmp_path / "rgb16a.png").write_bytes(png_bytes(40, 30, bit_depth=16))
    (tmp_path / "rgb16b.png").write_bytes(png_bytes(40, 30, bit_depth=16))
    rgb16 = check_photos([tmp_path / "rgb16a.png", tmp_path / "rgb16b.png"])
    assert (rgb16[0].format, rgb16[0].mode, rgb16[0].bits) == ("PNG", "RGB", 16)

    grey16 = check_photos([tiff(tmp_path / "a.tif", mode="I;16"), tiff(tmp_path / "b.tif", mode="I;16")])
    assert (grey16[0].format, grey16[0].mode, grey16[0].bits) == ("TIFF", "I;16", 16)

    rgba = check_photos([png(tmp_path / "a.png", mode="RGBA"), png(tmp_path / "b.png", mode="RGBA")])
    assert (rgba[0].format, rgba[0].mode, rgba[0].bits) == ("PNG", "RGBA", 8)

    mixed = check_photos([jpeg(tmp_path / "c.jpg"), tiff(tmp_path / "c.tif"), png(tmp_path / "c.png")])
    assert [p.format for p in mixed] == ["JPEG", "TIFF", "PNG"]


def test_a_stack_turned_the_same_way_is_fine(tmp_path: Path) -> None:
    photos = check_photos([jpeg(tmp_path / f"{i}.jpg", orientation=6) for i in range(3)])
    assert {p.orientation for p in photos} == {6}
    assert (photos[0].width, photos[0].height) == (96, 64)  # as stored, not as displayed


@pytest.mark.parametrize("value", [0, 9, 255])
def test_invalid_orientation_counts_as_1(value: int, tmp_path: Path) -> None:
    photos = check_photos([jpeg(tmp_path / "a.jpg", orientation=value), jpeg(tmp_path / "b.jpg")])
    assert [p.orientation for p in photos] == [1, 1]


@pytest.mark.parametrize(
    "trailer",
    [
        pytest.param(bytes(100), id="zero padding"),
        pytest.param(bytes(10_000), id="long zero padding"),
        pytest.param(b"\x00\x00\x00\x18ftypmp42" + os.urandom(20_000), id="motion photo video"),
        pytest.param(b"SEFH" + os.urandom(300) + b"SEFT", id="samsung trailer"),
    ],
)
def test_complete_jpeg_with_data_after_the_image(trailer: bytes, tmp_path: Path) -> None:
    a = jpeg(tmp_path / "a.jpg")
    b = jpeg(tmp_path / "b.jpg")
    b.write_bytes(b.read_bytes() + trailer)
    assert len(check_photos([a, b])) == 2


def test_truncated_jpeg_with_a_complete_thumbnail_is_still_caught(tmp_path: Path) -> None:
    # The EXIF thumbnail ends with FF D9 too: it must not pass for the image's end.
    thumb = tmp_path / "thumb.jpg"
    _noise((16, 16)).save(thumb, "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 1
    im = _noise((256, 192))
    big = tmp_path / "b.jpg"
    im.save(big, "JPEG", exif=exif.tobytes())
    data = big.read_bytes()
    # Splice the thumbnail into an APP2 segment right after SOI, then cut the scan.
    app = b"\xff\xe2" + struct.pack(">H", len(thumb.read_bytes()) + 2) + thumb.read_bytes()
    big.write_bytes((data[:2] + app + data[2:])[: -len(data) // 3])
    with pytest.raises(BadInputError, match="incomplete"):
        check_photos([jpeg(tmp_path / "a.jpg", (256, 192)), big])


def test_photos_are_never_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("check_photos decoded an image")

    stacks = [
        [jpeg(tmp_path / "a.jpg", orientation=6), jpeg(tmp_path / "b.jpg", orientation=6)],
        [png(tmp_path / "a.png"), png(tmp_path / "b.png")],
        [tiff(tmp_path / "a.tif", mode="I;16"), tiff(tmp_path / "b.tif", mode="I;16")],
    ]
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    for stack in stacks:
        assert len(check_photos(stack)) == 2


def test_very_large_photos_are_not_refused(tmp_path: Path) -> None:
    # 400 megapixels is over Pillow's decompression-bomb limit, which guards
    # decoding; we only read the header, and Hugin decides what it can load.
    limit = Image.MAX_IMAGE_PIXELS
    header_only = png_bytes(20_000, 20_000, color_type=0, idat=zlib.compress(b""))
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(header_only)
    photos = check_photos([tmp_path / "a.png", tmp_path / "b.png"])
    assert (photos[0].width, photos[0].height) == (20_000, 20_000)
    assert Image.MAX_IMAGE_PIXELS == limit


@pytest.mark.pcb
@pytest.mark.skipif(not PCB.is_dir(), reason="the real photographs are not in ../shared/stacks/pcb")
def test_real_pcb_stack() -> None:
    files = sorted(PCB.glob("pcb_*.jpg"))
    before = hashes(PCB)
    photos = check_photos(files)
    assert len(photos) == 7
    assert {(p.width, p.height, p.orientation, p.format, p.bits) for p in photos} == {(2048, 1536, 1, "JPEG", 8)}
    assert hashes(PCB) == before


# ------------------------------------------------------------------- output

OutputBuilder = Callable[[pytest.MonkeyPatch], tuple[str, bool]]


def _unwritable_injected(mp: pytest.MonkeyPatch) -> tuple[str, bool]:
    real = os.access
    mp.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real(p, mode, **kw))
    return "out.jpg", False


def _symlinked_folder(mp: pytest.MonkeyPatch) -> tuple[str, bool]:
    os.symlink(".", "here")
    return os.path.join("here", "a.jpg"), True


def _hardlinked_input(mp: pytest.MonkeyPatch) -> tuple[str, bool]:
    os.link("a.jpg", "same.jpg")
    return "same.jpg", True


BAD_OUTPUTS: list[tuple[str, OutputBuilder, type[BadInputError], list[str]]] = [
    (
        "existing folder",
        lambda m: (os.mkdir("outdir") or "outdir", True),
        BadInputError,
        ["outdir is a folder", os.path.join("outdir", "stacked.tif")],
    ),
    ("is an input", lambda m: ("a.jpg", False), BadInputError, ["a.jpg is also one of the input photos"]),
    ("is an input, even with force", lambda m: ("a.jpg", True), BadInputError, ["one of the input photos"]),
    (
        "is an input spelt differently",
        lambda m: (os.path.join(".", "a.jpg"), True),
        BadInputError,
        ["one of the input photos"],
    ),
    ("is an input through a linked folder", _symlinked_folder, BadInputError, ["one of the input photos"]),
    ("is a hard link to an input", _hardlinked_input, BadInputError, ["same.jpg is also one of the input photos"]),
    (
        "unknown extension",
        lambda m: ("out.webp", False),
        BadInputError,
        ["cannot write .webp files", ".tif, .tiff, .jpg, .jpeg, .png"],
    ),
    ("raw extension", lambda m: ("out.dng", False), BadInputError, ["cannot write .dng files"]),
    ("no extension", lambda m: ("out", False), BadInputError, ["needs an extension", ".tif"]),
    (
        "file used as folder",
        lambda m: (os.path.join("a.jpg", "out.tif"), False),
        BadInputError,
        [f"a.jpg is a file, not a folder, so {os.path.join('a.jpg', 'out.tif')} cannot"],
    ),
    (
        "file used as folder, deeper",
        lambda m: (os.path.join("a.jpg", "sub", "out.tif"), False),
        BadInputError,
        ["a.jpg is a file, not a folder"],
    ),
    ("folder not writable", _unwritable_injected, BadInputError, ["cannot write into the folder", "permission denied"]),
    (
        "exists",
        lambda m: (Path("out.jpg").write_bytes(b"old") and "out.jpg", False),
        OutputExistsError,
        ["out.jpg already exists; use --force to replace it."],
    ),
]


@pytest.mark.parametrize(("build", "error", "words"), [pytest.param(b, e, w, id=i) for i, b, e, w in BAD_OUTPUTS])
def test_bad_outputs_are_rejected_with_one_clear_line(
    build: OutputBuilder, error: type[BadInputError], words: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    photos = _pair("a.jpg", "b.jpg")
    output, force = build(monkeypatch)
    before = hashes(tmp_path)
    with pytest.raises(error) as caught:
        check_output(Path(output), photos, force=force)
    assert type(caught.value) is error
    message = str(caught.value)
    assert_one_line(message)
    for word in words:
        assert word in message
    assert hashes(tmp_path) == before


def test_existing_output_message_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("out.jpg").write_bytes(b"old")
    with pytest.raises(OutputExistsError) as caught:
        check_output(Path("out.jpg"), [Path("a.jpg")], force=False)
    assert str(caught.value) == "out.jpg already exists; use --force to replace it."


def test_force_allows_replacing_an_existing_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("out.jpg").write_bytes(b"old")
    assert check_output(Path("out.jpg"), [Path("a.jpg")], force=True) == tmp_path / "out.jpg"
    assert Path("out.jpg").read_bytes() == b"old"  # checking never writes


@pytest.mark.parametrize("name", ["-out.jpg", "@out.tif", "with space.png", "résultat é.TIFF", "結果.jpeg"])
def test_good_outputs_are_returned_absolute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    photos = _pair("a.jpg", "b.jpg")
    out = check_output(Path(name), photos, force=False)
    assert out == tmp_path / name
    assert out.is_absolute()
    assert not out.exists()


def test_output_in_another_folder(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    photos = [jpeg(tmp_path / "a.jpg"), jpeg(tmp_path / "b.jpg")]
    assert check_output(tmp_path / "results" / "a.jpg", photos, force=False) == tmp_path / "results" / "a.jpg"


def test_unwritable_folder_for_real(tmp_path: Path) -> None:
    skip_unless_permissions_bind(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(BadInputError, match="cannot write into the folder"):
            check_output(locked / "out.jpg", [tmp_path / "a.jpg"], force=False)
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize(("ext", "fmt"), list(OUTPUT_FORMATS.items()))
def test_output_format(ext: str, fmt: str) -> None:
    assert output_format(Path(f"out{ext}")) == fmt
    assert output_format(Path(f"OUT{ext.upper()}")) == fmt


@pytest.mark.parametrize("name", ["out.webp", "out.heic", "out.gif", "out", "out.jpg.bak"])
def test_output_format_rejects_what_we_cannot_write(name: str) -> None:
    with pytest.raises(BadInputError) as caught:
        output_format(Path(name))
    assert_one_line(str(caught.value))
    assert ".tif, .tiff, .jpg, .jpeg, .png" in str(caught.value)


@pytest.mark.parametrize(
    ("first", "ext", "expected"),
    [
        ("IMG_1.jpg", None, "IMG_1-stacked.jpg"),
        ("IMG_1.JPG", None, "IMG_1-stacked.JPG"),
        ("scan.tiff", None, "scan-stacked.tiff"),
        ("a.png", None, "a-stacked.png"),
        ("IMG_1.heic", None, "IMG_1-stacked.tif"),
        ("DSC_1.NEF", None, "DSC_1-stacked.tif"),
        ("IMG_1.jpg", "png", "IMG_1-stacked.png"),
        ("IMG_1.jpg", ".tif", "IMG_1-stacked.tif"),
        ("-odd name é.jpg", None, "-odd name é-stacked.jpg"),
    ],
)
def test_default_output(
    first: str, ext: str | None, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_output(Path("shots") / first, ext) == tmp_path / "shots" / expected


def test_default_output_rejects_an_extension_we_cannot_write() -> None:
    with pytest.raises(BadInputError, match=r"cannot write \.webp"):
        default_output(Path("IMG_1.jpg"), "webp")


# ------------------------------------------------------------------ ordering

OPEN_CAMERA = [f"IMG_20240101_120000_{i}.jpg" for i in range(13)]


def test_open_camera_focus_bracket_sorts_naturally() -> None:
    shuffled = OPEN_CAMERA[:]
    random.Random(4).shuffle(shuffled)
    assert sorted(shuffled, key=natural_key) == OPEN_CAMERA
    assert sorted(OPEN_CAMERA)[:3] == OPEN_CAMERA[:2] + [OPEN_CAMERA[10]]  # plain sort gets it wrong


def test_natural_order_with_suffixes_case_and_leading_zeros() -> None:
    names = [
        "IMG_20240101_120000_2.jpg",
        "IMG_20240101_120000_3.jpg",
        "IMG_20240101_120000_3Z.jpg",
        "img_20240101_120000_4.JPG",
        "IMG_20240101_120000_10.jpg",
        "IMG_20240101_120001_0.jpg",
    ]
    assert sorted(reversed(names), key=natural_key) == names
    assert sorted(["b.jpg", "A.jpg", "a10.jpg", "a9.jpg"], key=natural_key) == ["A.jpg", "a9.jpg", "a10.jpg", "b.jpg"]
    assert natural_key("x_002.jpg") < natural_key("x_10.jpg")
    assert natural_key("x_01.jpg") != natural_key("x_1.jpg")
    assert natural_key(Path("a/IMG_2.jpg")) == natural_key("a/IMG_2.jpg")


def test_order_photos() -> None:
    given = [Path("IMG_10.jpg"), Path("IMG_2.jpg"), Path("IMG_1.jpg")]
    assert order_photos(given, keep_order=False) == [Path("IMG_1.jpg"), Path("IMG_2.jpg"), Path("IMG_10.jpg")]
    assert order_photos(given, keep_order=True) == given
    assert order_photos(["b.jpg", "a.jpg"], keep_order=True) == [Path("b.jpg"), Path("a.jpg")]


names_text = st.text(alphabet=st.one_of(st.sampled_from("0123456789_-. aAbBzZé٣"), st.characters()), max_size=24)


@given(st.lists(names_text, max_size=12), st.randoms(use_true_random=False))
def test_natural_sort_is_a_total_order(names: list[str], rnd: random.Random) -> None:
    once = sorted(names, key=natural_key)
    shuffled = names[:]
    rnd.shuffle(shuffled)
    # A total order sorts any permutation of the input the same way.
    assert sorted(shuffled, key=natural_key) == once
    assert sorted(once, key=natural_key) == once


@given(names_text, names_text, names_text)
def test_natural_key_compares_consistently(a: str, b: str, c: str) -> None:
    ka, kb, kc = natural_key(a), natural_key(b), natural_key(c)
    assert (ka == kb) == (a == b)
    assert sum([ka < kb, ka == kb, ka > kb]) == 1
    if ka <= kb and kb <= kc:
        assert ka <= kc
