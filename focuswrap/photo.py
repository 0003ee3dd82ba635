"""Photo facts: what a photo is (Photo), which files are HEIF or raw, its EXIF orientation.

The one home of these facts, shared by :mod:`focuswrap.inputs` (checking
photos) and :mod:`focuswrap.formats` (converting and carrying metadata), which
therefore need not import each other's private names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from PIL import Image

from focuswrap import pixels

PathLike = Union[str, "os.PathLike[str]"]

#: The EXIF/TIFF Orientation tag (1..8: how the stored pixels are shown).
ORIENTATION_TAG = 0x0112

#: Raw camera files: Hugin cannot read them (DNG, CR2, NEF... are TIFF-like, so
#: Pillow would open their small preview instead: refuse them by extension).
RAW_EXTENSIONS = frozenset(
    ".dng .cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .raf .orf .rw2 .pef .srw .x3f"
    " .3fr .iiq .erf .kdc .mrw .rwl .raw".split()
)
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
#: ISO-BMFF major brands of HEIF photos (an iPhone .HEIC may be renamed .jpg).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})

# The extras' packages added to focuswrap's own environment: pipx's way (as docs/getting-started.md
# installs it), and pip's; "focuswrap[heif]" works only once focuswrap is on PyPI.
RAW_HINT = "pipx inject focuswrap rawpy (with pip: pip install rawpy)"
HEIF_HINT = "pipx inject focuswrap pillow-heif (with pip: pip install pillow-heif)"


@dataclass(frozen=True)
class Photo:
    """One checked input photo (facts from its header, nothing decoded)."""

    path: Path  #: absolute, otherwise as the user gave it (symlinks are kept)
    width: int  #: as stored, before EXIF orientation
    height: int
    orientation: int  #: EXIF orientation tag, 1 if none
    mode: str  #: Pillow mode, e.g. "RGB", "I;16", "RGBA"
    format: str  #: Pillow format, e.g. "JPEG", "TIFF"
    bits: int  #: bits per channel: 8 or 16 (32 for float TIFF)


def read_tiff(path: PathLike) -> Photo | None:
    """The :class:`Photo` of a TIFF Pillow cannot open (16-bit grey with alpha, float colour), from its header.

    None when the file is cut short (a strip lies past its end); raises
    :class:`focuswrap.pixels.UnreadablePicture` when its header cannot be read.
    ``mode`` is the Pillow mode of the picture :func:`focuswrap.pixels.open_image`
    makes of it.
    """
    facts = pixels.tiff_facts(path)
    if not facts.complete:
        return None
    return Photo(
        path=Path(path).absolute(),
        width=facts.width,
        height=facts.height,
        orientation=facts.orientation,
        mode=facts.mode,
        format="TIFF",
        bits=facts.bits,
    )


def show(path: PathLike) -> str:
    """A path as the user typed it, safe to put in a one-line message."""
    text = os.fspath(path)
    if text.isprintable():
        return text
    # A newline or an undecodable byte in a file name must not break the line.
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def names(shown: Sequence[str], limit: int = 4) -> str:
    """'a', 'a and b', 'a, b and c', 'a, b, c, d and 3 more'."""
    if len(shown) > limit:
        return ", ".join(shown[:limit]) + f" and {len(shown) - limit} more"
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def exif_orientation(im: Image.Image, fmt: str | None = None) -> int:
    """The EXIF orientation tag (1..8) of an open picture, 1 if missing or invalid: the one reader.

    ``fmt`` is its Pillow format (default: ``im.format``).
    """
    fmt = fmt or im.format
    try:
        if fmt == "PNG":
            # PngImageFile.getexif() decodes the whole image to find an eXIf
            # chunk stored after the pixels: only use one found in the header.
            raw = im.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = im.getexif()
        value = int(exif.get(ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block must not stop the stack (Ctrl-C passes: BaseException)
        return 1
    return value if 1 <= value <= 8 else 1


def kind_of(path: PathLike, header: bytes = b"") -> str | None:
    """ "heif", "raw" or None, from the extension or (HEIF renamed .jpg) the file's first bytes."""
    suffix = Path(path).suffix.lower()
    if suffix in HEIF_EXTENSIONS:
        return "heif"
    if suffix in RAW_EXTENSIONS:
        return "raw"
    if header[4:8] == b"ftyp" and header[8:12] in _HEIF_BRANDS:
        return "heif"
    return None
