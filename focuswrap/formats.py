"""Photos Hugin cannot read as they are: orientation, HEIC/HEIF and raw files.

**Orientation.** align_image_stack and enfuse ignore the EXIF orientation tag:
they work on the pixels as stored, which is the camera sensor's way round.
Every frame of a bracket comes off the sensor the same way round, so the stack
is aligned and fused in that orientation and turned upright only when the
result is delivered (:mod:`focuswrap.output`): JPEG and PNG pixels are turned
before they are encoded (free, they are encoded anyway) and tagged 1; a TIFF,
copied as enfuse wrote it to keep 16 bits and alpha, gets its Orientation tag
set (:func:`set_tiff_orientation`), which is lossless at any bit depth.

**HEIC/HEIF and raw.** Hugin reads neither.  With the ``heif`` extra
(pillow-heif) or the ``raw`` extra (rawpy) installed, :func:`prepare_frames`
converts such photos into uncompressed TIFFs in the work folder, keeping their
EXIF, and hands those to align_image_stack; other photos are passed as they
are.  The originals are never modified.

* HEIF: libheif applies the file's rotation (``irot``/``imir``) and
  pillow-heif resets the EXIF tag to 1, so the frames come out upright.  8-bit
  photos give 8-bit TIFFs, 10- and 12-bit ones 16-bit TIFFs (scaled to the full
  16-bit range by pillow-heif): every bit the photo has, none invented.
* Raw: developed by LibRaw into 16-bit sRGB, the same way for every frame so
  the frames match (camera white balance, no automatic brightening, which would
  differ from frame to frame), in sensor orientation like camera JPEGs; the
  camera's rotation flag becomes the frame's orientation.
"""

from __future__ import annotations

import errno
import importlib
import os
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Union

from PIL import Image, UnidentifiedImageError

from focuswrap import photo as inputs  # the photo facts (Photo, extensions, hints, names)
from focuswrap import pixels
from focuswrap.errors import BadInputError, WriteFailed

# enfuse's result checks live in its tool module (kept importable from here).
from focuswrap.hugin.enfuse import check_fused, layer_offset, load_fused
from focuswrap.photo import ORIENTATION_TAG, exif_orientation, kind_of

PathLike = Union[str, "os.PathLike[str]"]

#: Photo.format of the photos this module converts.
HEIF_FORMAT = "HEIF"
RAW_FORMAT = "RAW"


@dataclass(frozen=True)
class Extra:
    """An optional dependency: the module it provides and how to install it."""

    name: str  #: the pip extra: focuswrap[name]
    module: str
    hint: str
    what: str  #: the kind of photo, for messages


EXTRAS = {
    "heif": Extra("heif", "pillow_heif", inputs.HEIF_HINT, "HEIC/HEIF photos"),
    "raw": Extra("raw", "rawpy", inputs.RAW_HINT, "raw camera files"),
}
_KIND_OF_FORMAT = {HEIF_FORMAT: "heif", RAW_FORMAT: "raw"}

#: The folder (inside the work folder) holding converted frames.
FRAMES_FOLDER = "frames"
#: Target size of one TIFF strip (libtiff reads strip by strip).
_STRIP_BYTES = 1 << 20
#: Conversions run at most this many at once (a 24 MP raw needs ~300 MB while developed).
MAX_WORKERS = 4


class MissingExtraError(BadInputError):
    """A photo needs an optional extra (pillow-heif, rawpy) that is not installed."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class DamagedPhoto(Exception):
    """A HEIF or raw photo whose header cannot be read (the reason is the message)."""


# ---------------------------------------------------------------------- extras


def _import(kind: str) -> ModuleType | None:
    try:
        return importlib.import_module(EXTRAS[kind].module)
    except ImportError:
        return None


def extra_available(kind: str) -> bool:
    """True if the extra that reads photos of ``kind`` ("heif" or "raw") can be imported."""
    return _import(kind) is not None


def require_extra(kind: str, paths: Sequence[PathLike] = ()) -> ModuleType:
    """The extra's module, or :class:`MissingExtraError` naming the photos and the pip command."""
    module = _import(kind)
    if module is not None:
        return module
    extra = EXTRAS[kind]
    package = extra.module.replace("_", "-")
    if paths:
        one = len(paths) == 1
        kind = extra.what[:-1] if one else extra.what
        what = f"{inputs.names([inputs.show(p) for p in paths])} {'is a' if one else 'are'} {kind}"
    else:
        what = f"These are {extra.what}"
    raise MissingExtraError(
        f"{what}, which focuswrap reads with the optional package {package}, not installed; "
        f"install it with {extra.hint}.",
        extra=extra.name,
    )


def _heif() -> ModuleType:
    module = require_extra("heif")
    module.register_heif_opener()  # lets Pillow open HEIF too (metadata, sharpness report)
    return module


# ---------------------------------------------------------------- orientation

#: LibRaw's rotation flag (dcraw's ``flip``) -> EXIF orientation.  dcraw maps
#: EXIF to flip with "50132467"[tag & 7]; this is its inverse.
_FLIP_TO_EXIF = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}

#: EXIF orientation -> the Pillow transposition that turns the pixels upright
#: (the table of ``ImageOps.exif_transpose``).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(im: Image.Image, orientation: int) -> Image.Image:
    """``im`` turned the way EXIF ``orientation`` says it is shown (1 or unknown: unchanged)."""
    method = _UPRIGHT.get(orientation)
    return im if method is None else im.transpose(method)


def frame_orientation(path: PathLike) -> int:
    """The EXIF orientation of the pixels :func:`prepare_frames` gives Hugin for this photo.

    1 for HEIF (libheif turns them upright); the camera's flag for raw files
    (developed in sensor orientation); otherwise the photo's EXIF tag.
    """
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
        kind = kind_of(path, header)
        if kind == "heif":
            return 1
        if kind == "raw":
            rawpy = require_extra("raw", [path])
            with rawpy.imread(os.fspath(path)) as raw:
                return _FLIP_TO_EXIF.get(int(raw.sizes.flip), 1)
        if pixels.is_tiff(header) and not _pillow_opens(path):  # 16-bit grey with alpha, float colour
            return pixels.tiff_facts(path).orientation
        with Image.open(path) as im:
            return exif_orientation(im)
    except Exception:  # noqa: BLE001 - unreadable metadata: the pixels are shown as stored (Ctrl-C passes)
        return 1


# ------------------------------------------------------------------ reading


def needs_conversion(photo: inputs.Photo) -> bool:
    """True for photos Hugin cannot read (HEIF, raw): :func:`prepare_frames` converts them."""
    return photo.format in _KIND_OF_FORMAT


def read_photo(path: PathLike, kind: str) -> inputs.Photo:
    """The :class:`~focuswrap.inputs.Photo` of a HEIF or raw photo, describing the frame it converts to.

    Raises :class:`MissingExtraError` without the extra and :class:`DamagedPhoto`
    when the file cannot be read.  Only the header is read.
    """
    module = require_extra(kind, [path])
    if kind == "heif":
        try:
            heif = module.open_heif(os.fspath(path), convert_hdr_to_8bit=False)
            mode, (width, height) = heif.mode, heif.size
            bits = _HEIF_LAYOUTS.get(mode, (0, 8))[1]  # what _decode_heif will write
        except _decode_errors(module) as exc:
            raise DamagedPhoto(_reason(exc)) from None
        return inputs.Photo(
            path=Path(path).absolute(),
            width=width,
            height=height,
            orientation=1,
            mode=mode.split(";")[0],
            format=HEIF_FORMAT,
            bits=bits,
        )
    try:
        with module.imread(os.fspath(path)) as raw:
            sizes = raw.sizes
            width, height, flip = int(sizes.width), int(sizes.height), int(sizes.flip)
    except _decode_errors(module) as exc:
        raise DamagedPhoto(_reason(exc)) from None
    return inputs.Photo(
        path=Path(path).absolute(),
        width=width,
        height=height,
        orientation=_FLIP_TO_EXIF.get(flip, 1),
        mode="RGB",
        format=RAW_FORMAT,
        bits=16,
    )


def _decode_errors(module: ModuleType) -> tuple[type[BaseException], ...]:
    """What pillow-heif or rawpy raise for a file they cannot read (not our own bugs)."""
    own = tuple(e for e in (getattr(module, "LibRawError", None), getattr(module, "NotSupportedError", None)) if e)
    return (ValueError, RuntimeError, OSError, EOFError, SyntaxError) + own


def _reason(exc: BaseException) -> str:
    first = exc.args[0] if len(exc.args) == 1 else None
    # rawpy's errors carry LibRaw's message as bytes: b'Unsupported file format or not RAW file'.
    text = (first.decode(errors="replace") if isinstance(first, bytes) else str(exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ---------------------------------------------------------------- converting


def frame_paths(photos: Sequence[inputs.Photo], work: Path) -> list[Path]:
    """What align_image_stack will read for each photo: the original, or its TIFF in the work folder.

    Pure (nothing is written), so a dry run can show the real command.  Each
    converted frame sits in its own numbered folder under its own name, so
    reports still show ``IMG_1234.tif`` and two ``IMG_1.HEIC`` from different
    folders cannot collide.
    """
    return [
        work / FRAMES_FOLDER / f"{i:04d}" / f"{p.path.stem}.tif" if needs_conversion(p) else p.path
        for i, p in enumerate(photos, start=1)
    ]


def prepare_frames(
    photos: Sequence[inputs.Photo],
    work: Path,
    *,
    on_frame: Callable[[int, int, Path], None] | None = None,
) -> list[Path]:
    """The files to give align_image_stack: originals Hugin reads, TIFFs converted from the rest.

    Conversions run in parallel (at most :data:`MAX_WORKERS`); ``on_frame(done,
    total, photo)`` is called after each one.  The originals are never
    modified.  Raises :class:`MissingExtraError`, :class:`BadInputError` for a
    photo that cannot be decoded, :class:`WriteFailed` when the work folder's
    disk is full.
    """
    targets = frame_paths(photos, work)
    todo = [(p, t) for p, t in zip(photos, targets, strict=True) if needs_conversion(p)]
    if not todo:
        return targets
    for kind in sorted({_KIND_OF_FORMAT[p.format] for p, _ in todo}):
        require_extra(kind, [p.path for p, _ in todo if _KIND_OF_FORMAT[p.format] == kind])
    workers = max(1, min(MAX_WORKERS, len(todo), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="focuswrap-convert") as pool:
        futures = {pool.submit(convert, p, t): p for p, t in todo}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                future.result()
                if on_frame is not None:
                    on_frame(done, len(todo), futures[future].path)
        except BaseException:
            for f in futures:
                f.cancel()  # Ctrl-C or a bad photo: start no more conversions
            raise
    return targets


def convert(photo: inputs.Photo, target: Path) -> Path:
    """Write ``photo`` (HEIF or raw) as an uncompressed TIFF at ``target``, with its EXIF."""
    kind = _KIND_OF_FORMAT[photo.format]
    module = require_extra(kind, [photo.path])
    try:
        if kind == "heif":
            size, samples, bits, data, orientation = _decode_heif(photo.path)
        else:
            size, samples, bits, data, orientation = _decode_raw(photo.path)
    except _decode_errors(module) as exc:
        raise BadInputError(
            f"{inputs.show(photo.path)} cannot be decoded ({_reason(exc)}); copy the photo again from the camera."
        ) from None
    exif, icc = read_metadata(photo.path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_tiff(
            target, size=size, samples=samples, bits=bits, data=data, exif=exif, icc=icc, orientation=orientation
        )
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise WriteFailed(
                f"The disk holding the work folder {target.parents[2]} is full; "
                f"{inputs.show(photo.path)} could not be converted for Hugin."
            ) from None
        raise WriteFailed(f"Could not write {target}: {exc.strerror or exc}.") from None
    return target


#: pillow-heif modes -> (samples, bits).  10- and 12-bit photos come as ";16",
#: scaled to the full 16-bit range, little-endian.
_HEIF_LAYOUTS = {
    "RGB": (3, 8),
    "RGBA": (4, 8),
    "L": (1, 8),
    "LA": (2, 8),
    "RGB;16": (3, 16),
    "RGBA;16": (4, 16),
    "L;16": (1, 16),
    "I;16": (1, 16),
    "I;16L": (1, 16),
}


def _decode_heif(path: Path) -> tuple[tuple[int, int], int, int, bytes, int]:
    """(size, samples, bits, little-endian interleaved rows, orientation) of a HEIF's primary image."""
    heif = _heif().open_heif(os.fspath(path), convert_hdr_to_8bit=False)
    layout = _HEIF_LAYOUTS.get(heif.mode)
    if layout is None:  # anything unusual: let pillow-heif make 8-bit RGB(A) of it
        im = heif.to_pillow()
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        return im.size, len(im.getbands()), 8, im.tobytes(), 1
    samples, bits = layout
    width, height = heif.size
    row = width * samples * bits // 8
    data, stride = heif.data, heif.stride
    if stride != row:  # libheif pads rows; TIFF rows are packed
        view = memoryview(data)
        data = b"".join(view[y * stride : y * stride + row] for y in range(height))
    return (width, height), samples, bits, bytes(data), 1


def _decode_raw(path: Path) -> tuple[tuple[int, int], int, int, bytes, int]:
    """(size, samples, bits, little-endian interleaved rows, orientation) of a developed raw file."""
    rawpy = require_extra("raw", [path])
    with rawpy.imread(os.fspath(path)) as raw:
        flip = int(raw.sizes.flip)
        rgb = raw.postprocess(
            output_bps=16,
            use_camera_wb=True,
            no_auto_bright=True,  # per-frame brightening would make the frames differ
            user_flip=0,  # sensor orientation, like camera JPEGs; the tag says how to show it
        )
    height, width, samples = rgb.shape
    return (width, height), samples, 16, rgb.astype("<u2", copy=False).tobytes(), _FLIP_TO_EXIF.get(flip, 1)


# ---------------------------------------------------------------- metadata

_ORIENTATION = ORIENTATION_TAG
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_INTEROP_IFD = 0xA005
_PIXEL_X = 0xA002
_PIXEL_Y = 0xA003
_IMAGE_UNIQUE_ID = 0xA420
#: IFD0 tags that describe the photo, not how its pixels are stored: the only
#: ones carried over (a TIFF or raw input's IFD0 also holds strip offsets,
#: DNG colour matrices and sub-IFDs that would be wrong in the result).
_IFD0_KEEP = frozenset(
    {
        0x010E,  # ImageDescription
        0x010F,  # Make
        0x0110,  # Model
        ORIENTATION_TAG,  # Orientation (set anew)
        0x011A,
        0x011B,
        0x0128,  # XResolution, YResolution, ResolutionUnit
        0x0131,  # Software
        0x0132,  # DateTime
        0x013B,  # Artist
        0x0213,  # YCbCrPositioning
        0x4746,
        0x4749,  # Rating, RatingPercent
        0x8298,  # Copyright
        0x9C9B,
        0x9C9C,
        0x9C9D,
        0x9C9E,
        0x9C9F,  # Windows XPTitle, XPComment, XPAuthor, XPKeywords, XPSubject
        _EXIF_IFD,
        _GPS_IFD,
    }
)
#: Raw files that are TIFFs under another magic number (Olympus ORF, Panasonic RW2).
_TIFF_LIKE_MAGIC = (b"IIRO", b"IIRS", b"MMOR", b"IIU\x00")


def read_metadata(path: PathLike) -> tuple[Image.Exif | None, bytes | None]:
    """The EXIF (as Pillow reads it) and ICC profile of a photo, either None if absent or unreadable.

    Reads JPEG/TIFF/PNG with Pillow, HEIF through pillow-heif's Pillow plugin,
    and the EXIF of TIFF-based raw files (DNG, NEF, CR2, ARW, PEF, ORF, RW2...).
    Metadata is a courtesy: a broken block never stops a stack.
    """
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
        kind = kind_of(path, header)
        if kind == "heif":
            if not extra_available("heif"):
                return None, None
            _heif()
        if kind == "raw":
            return _raw_exif(path, header), None
        if pixels.is_tiff(header) and not _pillow_opens(path):  # 16-bit grey with alpha, float colour
            return _raw_exif(path, header), _tiff_icc(path)
        with Image.open(path) as im:
            exif = im.getexif()
            icc = im.info.get("icc_profile")
            if len(exif):
                exif.get_ifd(_EXIF_IFD)  # load the sub-IFDs while the file is open
                exif.get_ifd(_GPS_IFD)
            return (exif if len(exif) else None), icc
    except Exception:  # noqa: BLE001 - any broken metadata: carry none (Ctrl-C, a BaseException, passes)
        return None, None


def _pillow_opens(path: PathLike) -> bool:
    try:
        with Image.open(path):
            return True
    except UnidentifiedImageError:
        return False


def _tiff_icc(path: PathLike) -> bytes | None:
    """The ICC profile (tag 34675) of a TIFF's first image, None if it has none."""
    import tifffile

    with tifffile.TiffFile(os.fspath(path)) as tif:
        tag = tif.pages.first.tags.get(34675)
        return bytes(tag.value) if tag is not None and isinstance(tag.value, (bytes, bytearray)) else None


def _raw_exif(path: PathLike, header: bytes) -> Image.Exif | None:
    if header[:4] not in _TIFF_LIKE_MAGIC and header[:4] not in (b"II*\x00", b"MM\x00*"):
        return None  # CR3, RAF, CRW, X3F...: not a TIFF structure
    data = Path(path).read_bytes()
    if header[:4] in _TIFF_LIKE_MAGIC:
        data = data[:2] + (b"*\x00" if data[:2] == b"II" else b"\x00*") + data[4:]
    exif = Image.Exif()
    exif.load(data)
    exif.get_ifd(_EXIF_IFD)
    exif.get_ifd(_GPS_IFD)
    return exif if len(exif) else None


def exif_tags(exif: Image.Exif | None, *, orientation: int = 1, size: tuple[int, int] | None = None) -> dict[int, Any]:
    """The EXIF worth carrying into a new image, as IFD0 tags with the Exif/GPS IFDs as nested dicts.

    Keeps what describes the photo (camera, lens, exposure, date, GPS, author),
    drops how the source stored its pixels, sets Orientation to
    ``orientation``, PixelXDimension/PixelYDimension to ``size``, and drops
    ImageUniqueID (the result is not the first frame).
    """
    tags: dict[int, Any] = {}
    if exif is not None:
        tags.update((t, v) for t, v in exif.items() if t in _IFD0_KEEP and t not in (_EXIF_IFD, _GPS_IFD))
        # get_ifd, not items(): an Exif built in memory keeps its sub-IFDs out of items().
        for tag in (_EXIF_IFD, _GPS_IFD):
            value = dict(exif.get_ifd(tag))
            if tag == _EXIF_IFD:
                value.pop(_IMAGE_UNIQUE_ID, None)
                if _INTEROP_IFD in value and not isinstance(value[_INTEROP_IFD], dict):
                    interop = dict(exif.get_ifd(_INTEROP_IFD))
                    if interop:
                        value[_INTEROP_IFD] = interop
                    else:
                        del value[_INTEROP_IFD]
            if value:
                tags[tag] = value
    tags[_ORIENTATION] = orientation
    if size is not None and _EXIF_IFD in tags:
        tags[_EXIF_IFD][_PIXEL_X], tags[_EXIF_IFD][_PIXEL_Y] = size
    return tags


def exif_bytes(tags: dict[int, Any]) -> bytes:
    """``tags`` (from :func:`exif_tags`) as the EXIF block Pillow's JPEG/PNG writers take."""
    from PIL import TiffImagePlugin

    head = b"II*\x00\x08\x00\x00\x00"
    ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=head)
    for tag, value in tags.items():
        ifd[tag] = value
    return b"Exif\x00\x00" + head + ifd.tobytes(8)


# ------------------------------------------------------------------- TIFF


def write_tiff(
    path: PathLike,
    *,
    size: tuple[int, int],
    samples: int,
    bits: int,
    data: bytes,
    exif: Image.Exif | None = None,
    icc: bytes | None = None,
    orientation: int = 1,
) -> None:
    """Write an uncompressed, interleaved, little-endian TIFF of ``samples`` x ``bits`` (8 or 16).

    Pillow cannot write 16-bit RGB, so this writes the image itself and lets
    Pillow lay out the tag directory.  ``data`` is the rows top to bottom,
    16-bit samples little-endian.  1-2 samples are grey (+alpha), 3-4 RGB
    (+alpha).  The EXIF goes in as IFD0 tags and an Exif sub-IFD, where Hugin
    (exiv2) finds the focal length as it does in a JPEG.
    """
    from PIL import TiffImagePlugin, TiffTags

    width, height = size
    if samples not in (1, 2, 3, 4) or bits not in (8, 16):
        raise ValueError(f"cannot write {samples} samples of {bits} bits")
    row = width * samples * bits // 8
    if len(data) != row * height:
        raise ValueError(f"expected {row * height} bytes of pixels for {width}x{height}, got {len(data)}")
    rows_per_strip = max(1, min(height, _STRIP_BYTES // max(row, 1)))
    starts = range(0, height, rows_per_strip)
    head = b"II*\x00\x08\x00\x00\x00"
    ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=head)
    for tag, value in exif_tags(exif, orientation=orientation, size=size).items():
        ifd[tag] = value
    structure: dict[int, tuple[int, Any]] = {
        256: (TiffTags.LONG, width),
        257: (TiffTags.LONG, height),
        258: (TiffTags.SHORT, (bits,) * samples),
        259: (TiffTags.SHORT, 1),  # no compression
        262: (TiffTags.SHORT, 2 if samples >= 3 else 1),  # RGB or black-is-zero
        277: (TiffTags.SHORT, samples),
        278: (TiffTags.LONG, rows_per_strip),
        284: (TiffTags.SHORT, 1),  # interleaved
        339: (TiffTags.SHORT, (1,) * samples),  # unsigned integers (vigra warns when this is missing)
        # Pillow adds the end of the directory to StripOffsets: they are relative to the pixels.
        273: (TiffTags.LONG, tuple(y * row for y in starts)),
        279: (TiffTags.LONG, tuple(min(rows_per_strip, height - y) * row for y in starts)),
    }
    if samples in (2, 4):
        structure[338] = (TiffTags.SHORT, 2)  # ExtraSamples: unassociated alpha
    if icc:
        structure[34675] = (TiffTags.UNDEFINED, icc)
    for tag, (typ, value) in structure.items():
        ifd.tagtype[tag] = typ
        ifd[tag] = value
    directory = ifd.tobytes(8)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.write(directory)
        fh.write(data)


def set_tiff_orientation(path: PathLike, orientation: int) -> None:
    """Set the Orientation tag of a TIFF's first image in place (added if absent).

    Two bytes change when the tag is there (vigra, under enfuse, always writes
    it); otherwise the first directory is copied to the end of the file with
    the tag added.  Pixels, compression, bit depth and alpha are untouched.
    """
    with open(path, "r+b") as fh:
        head = fh.read(16)
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None:
            raise ValueError(f"{path} is not a TIFF")
        magic = struct.unpack(order + "H", head[2:4])[0]
        if magic == 42:
            count_fmt, off_fmt, entry_size, at = "H", "L", 12, 4
        elif magic == 43:  # BigTIFF
            count_fmt, off_fmt, entry_size, at = "Q", "Q", 20, 8
        else:
            raise ValueError(f"{path} is not a TIFF")
        first = struct.unpack(order + off_fmt, head[at : at + struct.calcsize(order + off_fmt)])[0]
        fh.seek(first)
        count = struct.unpack(order + count_fmt, fh.read(struct.calcsize(order + count_fmt)))[0]
        table = fh.read(count * entry_size)
        following = fh.read(struct.calcsize(order + off_fmt))
        entries = [table[i * entry_size : (i + 1) * entry_size] for i in range(count)]
        value_size = entry_size - 4 - struct.calcsize(order + off_fmt)
        ours = (
            struct.pack(order + "HH", _ORIENTATION, 3)
            + struct.pack(order + off_fmt, 1)
            + struct.pack(order + "H", orientation).ljust(value_size, b"\x00")
        )
        for i, entry in enumerate(entries):
            if struct.unpack(order + "H", entry[:2])[0] == _ORIENTATION:
                fh.seek(first + struct.calcsize(order + count_fmt) + i * entry_size)
                fh.write(ours)
                return
        entries.append(ours)
        entries.sort(key=lambda e: struct.unpack(order + "H", e[:2])[0])  # TIFF wants tags in order
        end = fh.seek(0, os.SEEK_END)
        if end % 2:
            fh.write(b"\x00")  # directories start on a word boundary
            end += 1
        fh.write(struct.pack(order + count_fmt, len(entries)) + b"".join(entries) + following)
        fh.seek(at)
        fh.write(struct.pack(order + off_fmt, end))


# ------------------------------------------------------------------ checks


__all__ = ["check_fused", "kind_of", "layer_offset", "load_fused"]
