"""Reading any picture the Hugin tools write, including the TIFFs Pillow cannot open.

nona and enfuse write 16-bit greyscale frames with an alpha channel and, for
float photos, 32-bit floating-point frames (RGB or grey, with alpha).  Pillow
has no mode for either, so those TIFFs are read with ``tifffile`` (which
decodes LZW, enfuse's default compression, through ``imagecodecs``) and handed
on as the Pillow picture closest to them:

================================  =====================================================
what the file holds               the Pillow picture
================================  =====================================================
8-bit anything                    as Pillow reads it (L, LA, RGB, RGBA...)
16-bit RGB(A)                     as Pillow reads it: 8-bit RGB(A), by the high byte
16-bit grey, with alpha or not    ``I;16`` (all 16 bits; alpha, if any, kept aside)
float grey, with alpha or not     ``I;16``: 0..1 scaled to 0..65535, outside clipped
float RGB(A)                      8-bit RGB(A): 0..1 scaled to 0..255, outside clipped
================================  =====================================================

An alpha channel that the picture's mode cannot carry (``I;16`` has none) is
kept aside as an 8-bit ``L`` picture (:func:`alpha_band` finds either kind),
and the TIFF tags that place a frame on the canvas stay readable
(:func:`placement_tags`), as they are for a TIFF Pillow opened itself.

Only what this module reads goes through ``tifffile``: every picture Pillow
opens is Pillow's, unchanged, except a float grey one (Pillow's ``F``), which
becomes ``I;16`` as above so that the same picture always looks the same.
What each kind of stack delivers is in docs/formats.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import SupportsFloat, Union

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

PathLike = Union[str, "os.PathLike[str]"]

#: ``Image.info`` key of the 8-bit alpha picture kept aside (see :func:`alpha_band`).
ALPHA_INFO = "focuswrap_alpha"
#: ``Image.info`` key of the placement tags of a TIFF this module read (see :func:`placement_tags`).
TAGS_INFO = "focuswrap_tiff_tags"

#: The TIFF tags kept: XResolution, YResolution, XPosition, YPosition, ResolutionUnit.
_PLACEMENT_TAGS = (282, 283, 286, 287, 296)
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class UnreadablePicture(OSError):
    """A TIFF that neither Pillow nor tifffile can read (an OSError, like Pillow's own failures)."""


@dataclass(frozen=True)
class TiffFacts:
    """What a TIFF's first image holds, from its header (nothing decoded)."""

    width: int
    height: int
    samples: int  #: channels per pixel, alpha included
    bits: int  #: bits per sample: 8, 16, 32...
    floating: bool  #: IEEE floating-point samples
    alpha: bool  #: the last sample is alpha (an ExtraSample)
    mode: str  #: the Pillow mode of the picture :func:`open_image` gives: "I;16", "RGB", "RGBA"...
    complete: bool  #: every strip or tile lies inside the file
    orientation: int  #: the Orientation tag (1..8), 1 if missing or invalid


def is_tiff(header: bytes) -> bool:
    """True if ``header`` (a file's first bytes) starts like a TIFF or BigTIFF."""
    return header[:4] in _TIFF_MAGIC


def _header(path: PathLike) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(4)


def _tifffile_errors() -> tuple[type[BaseException], ...]:
    import tifffile

    # ValueError: a compression without its codec, an unknown layout; the rest: a damaged file.
    return (tifffile.TiffFileError, ValueError, KeyError, IndexError, EOFError, MemoryError)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _mode_for(samples: int, bits: int, floating: bool) -> str:
    colour = samples >= 3
    if bits == 16 and not floating and not colour:
        return "I;16"
    if floating and not colour:
        return "I;16"
    if colour:
        return "RGBA" if samples >= 4 else "RGB"
    return "LA" if samples == 2 else "L"


def tiff_facts(path: PathLike) -> TiffFacts:
    """The :class:`TiffFacts` of a TIFF's first image; :class:`UnreadablePicture` if its header cannot be read."""
    import tifffile

    try:
        size = os.path.getsize(path)
        with tifffile.TiffFile(os.fspath(path)) as tif:
            page = tif.pages.first
            samples = int(page.samplesperpixel)
            bits = int(page.bitspersample)
            floating = page.sampleformat == tifffile.SAMPLEFORMAT.IEEEFP
            extras = tuple(page.extrasamples)
            offsets = tuple(int(o) for o in page.dataoffsets)
            counts = tuple(int(c) for c in page.databytecounts)
            width, height = int(page.imagewidth), int(page.imagelength)
            tag = page.tags.get(274)  # Orientation
            orientation = int(tag.value) if tag is not None and isinstance(tag.value, int) else 1
    except _tifffile_errors() as exc:
        raise UnreadablePicture(_reason(exc)) from None
    complete = not offsets or max(o + c for o, c in zip(offsets, counts, strict=False)) <= size
    return TiffFacts(
        width=width,
        height=height,
        samples=samples,
        bits=bits,
        floating=bool(floating),
        alpha=bool(extras) and samples in (2, 4),
        mode=_mode_for(samples, bits, bool(floating)),
        complete=complete,
        orientation=orientation if 1 <= orientation <= 8 else 1,
    )


def size_of(path: PathLike) -> tuple[int, int]:
    """(width, height) of a picture from its header: Pillow's, or tifffile's for a TIFF Pillow cannot open."""
    try:
        with Image.open(path) as im:
            return im.size
    except UnidentifiedImageError:
        if not is_tiff(_header(path)):
            raise
    facts = tiff_facts(path)
    return (facts.width, facts.height)


def open_image(path: PathLike) -> Image.Image:
    """The picture in ``path``, decoded (see the table at the top of this module).

    Raises OSError (Pillow's, or :class:`UnreadablePicture`) for a file that
    cannot be read, ``Image.DecompressionBombError`` as Pillow does.
    """
    try:
        with Image.open(path) as im:
            im.load()
            picture: Image.Image = im
    except UnidentifiedImageError:
        if not is_tiff(_header(path)):
            raise
        return _read_tiff(path)
    if picture.mode == "F":  # a float grey TIFF: the same picture as when tifffile reads it
        grey = _grey16(np.asarray(picture, dtype=np.float32))
        grey.info.update(picture.info)
        tags = getattr(picture, "tag_v2", None)
        if tags is not None:
            grey.info[TAGS_INFO] = _placement(tags)
        return grey
    return picture


def alpha_band(image: Image.Image) -> Image.Image | None:
    """The picture's alpha as an ``L`` picture (its own band, or the one kept aside), None without alpha."""
    if "A" in image.getbands():
        return image.getchannel("A")
    kept = image.info.get(ALPHA_INFO)
    return kept if isinstance(kept, Image.Image) else None


def placement_tags(image: Image.Image) -> dict[int, float]:
    """The tags that place a TIFF frame on the canvas (XResolution, YResolution, XPosition, YPosition,
    ResolutionUnit) as numbers, of a picture Pillow or this module read; empty for other pictures."""
    tags = getattr(image, "tag_v2", None)
    if tags is not None:
        return _placement(tags)
    kept = image.info.get(TAGS_INFO)
    return dict(kept) if isinstance(kept, dict) else {}


# ---------------------------------------------------------------- decoding


def _placement(tags: Mapping[int, object]) -> dict[int, float]:
    """The placement tags as plain numbers (tifffile gives rationals as (numerator, denominator))."""
    kept: dict[int, float] = {}
    for code in _PLACEMENT_TAGS:
        value = tags.get(code)
        if isinstance(value, tuple) and len(value) == 2 and value[1]:
            kept[code] = float(value[0]) / float(value[1])
        elif isinstance(value, SupportsFloat):  # a number, or Pillow's IFDRational
            try:
                kept[code] = float(value)
            except (TypeError, ValueError, ZeroDivisionError):
                continue
    return kept


def _unit(data: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    """Samples as 0..1 (integers by their full range, floats as they are), clipped."""
    if np.issubdtype(data.dtype, np.integer):
        top = float(np.iinfo(str(data.dtype)).max)
        return data.astype(np.float64) / top
    return np.clip(np.nan_to_num(data.astype(np.float64), nan=0.0), 0.0, 1.0)


def _picture(mode: str, data: npt.NDArray[np.generic]) -> Image.Image:
    """A Pillow picture of ``mode`` from rows x columns (x bands) of samples laid out as the mode wants."""
    height, width = data.shape[:2]
    return Image.frombytes(mode, (width, height), np.ascontiguousarray(data).tobytes())


def _grey16(plane: npt.NDArray[np.generic]) -> Image.Image:
    if plane.dtype == np.uint16:
        data = plane
    else:
        data = (_unit(plane) * 65535 + 0.5).astype(np.uint16)
    return _picture("I;16", data.astype("<u2"))


def _eight(planes: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    if planes.dtype == np.uint8:
        return np.ascontiguousarray(planes)
    if planes.dtype == np.uint16:
        return np.ascontiguousarray(np.right_shift(planes, 8).astype(np.uint8))  # the high byte, as Pillow reads 16-bit
    return np.ascontiguousarray((_unit(planes) * 255 + 0.5).astype(np.uint8))


def _read_tiff(path: PathLike) -> Image.Image:
    import tifffile

    try:
        with tifffile.TiffFile(os.fspath(path)) as tif:
            page = tif.pages.first
            data = page.asarray()
            tags = {tag.code: tag.value for tag in page.tags.values() if tag.code in _PLACEMENT_TAGS}
            extras = len(tuple(page.extrasamples))
    except _tifffile_errors() as exc:
        raise UnreadablePicture(f"{os.fspath(path)}: {_reason(exc)}") from None
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim != 3:
        raise UnreadablePicture(f"{os.fspath(path)}: {data.ndim}-dimensional pictures are not photos")
    samples = data.shape[2]
    colour = samples - extras >= 3 if extras else samples >= 3
    alpha = data[:, :, 3 if colour else 1] if (samples >= 4 if colour else samples >= 2) else None
    if colour:
        bands = data[:, :, :4] if alpha is not None else data[:, :, :3]
        picture = _picture("RGBA" if alpha is not None else "RGB", _eight(bands))
    elif data.dtype == np.uint8:
        bands = data[:, :, :2] if alpha is not None else data[:, :, 0]
        picture = _picture("LA" if alpha is not None else "L", _eight(bands))
    else:
        picture = _grey16(data[:, :, 0])
        if alpha is not None:
            picture.info[ALPHA_INFO] = _picture("L", _eight(alpha))
    picture.info[TAGS_INFO] = _placement(tags)
    return picture


def trim_tiff(source: PathLike, target: PathLike, border: int) -> None:
    """Write ``source`` less ``border`` pixels on every side into ``target``, as a TIFF of the same kind.

    Every sample is kept as it is (8 or 16 bits, float, alpha), with the
    colour profile and the resolution; LZW, as enfuse writes.  The canvas
    position tags are left out: the trimmed picture's place is the caller's.
    """
    import tifffile

    try:
        with tifffile.TiffFile(os.fspath(source)) as tif:
            page = tif.pages.first
            data = page.asarray()
            photometric = page.photometric
            extras = tuple(page.extrasamples)
            # Tag values are read here: a large one (the colour profile) is read lazily, from the open file.
            icc, unit, xres, yres = (page.tags.get(code) for code in (34675, 296, 282, 283))
            profile = icc.value if icc is not None else None
            resolution = (xres.value, yres.value) if xres is not None and yres is not None else None
            resolution_unit = unit.value if unit is not None and resolution is not None else None
            planar = page.planarconfig
    except _tifffile_errors() as exc:
        raise UnreadablePicture(_reason(exc)) from None
    if planar == tifffile.PLANARCONFIG.SEPARATE and data.ndim == 3:
        data = np.moveaxis(data, 0, -1)  # samples last, as written below
    trimmed = np.ascontiguousarray(data[border : data.shape[0] - border, border : data.shape[1] - border])
    tifffile.imwrite(
        os.fspath(target),
        trimmed,
        photometric=photometric,
        planarconfig="contig",
        extrasamples=extras or None,
        compression="lzw",
        iccprofile=profile,
        resolution=resolution,
        resolutionunit=resolution_unit,
    )
