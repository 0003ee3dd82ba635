"""Check the user's photos and output path before any Hugin tool runs.

Everything here is fast: image headers are read with Pillow's lazy
``Image.open`` and completeness is judged from a few bytes at the end of the
file (or the image's own size tables), so whole images are never decoded.
Every problem becomes a :class:`BadInputError` (or :class:`OutputExistsError`)
whose message is one sentence naming the file(s) and what to do; when several
photos share the same problem they are named together.
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import stat
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar

from PIL import Image, UnidentifiedImageError

from focuswrap import pixels
from focuswrap.errors import BadInputError, OutputExistsError

# The photo facts every module shares live in photo.py (kept importable from here).
from focuswrap.photo import (
    _HEIF_BRANDS,
    HEIF_EXTENSIONS,
    HEIF_HINT,
    RAW_EXTENSIONS,
    RAW_HINT,
    PathLike,
    Photo,
    exif_orientation,
    read_tiff,
)
from focuswrap.photo import names as _names
from focuswrap.photo import show as _show

__all__ = ["HEIF_EXTENSIONS", "HEIF_HINT", "RAW_EXTENSIONS", "RAW_HINT", "_HEIF_BRANDS", "PathLike", "Photo"]

#: Output extensions focuswrap can write, and the format each one means.
OUTPUT_FORMATS = {".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}

#: Pillow formats Hugin (through vigra) reads and focuswrap accepts as input.
#: MPO is a camera JPEG with extra pictures appended; Hugin reads the first one.
INPUT_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF", "PNG": "PNG"}
#: Photos smaller than this on a side give align_image_stack nothing to match
#: (1x1 and 16x16 px photos crashed it or climbed the whole ladder).
MIN_SIDE = 24
#: Longest file name (bytes) most file systems take, where the system does not say.
NAME_MAX = 255

_TAIL_BYTES = 4096
_PNG_IEND = b"IEND\xaeB`\x82"  # the IEND chunk type and its fixed CRC


# --------------------------------------------------------------------- ordering

_DIGITS = re.compile(r"(\d+)", re.ASCII)


def natural_key(path: PathLike) -> tuple[tuple[tuple[str, int], ...], str]:
    """Sort key putting ``IMG_2.jpg`` before ``IMG_10.jpg``, ignoring case.

    Each run of digits is one item compared by its value and ranked where a
    digit would be, so ``a.jpg < a9.jpg < a10.jpg < b.jpg``; other characters
    compare case-folded.  The full string breaks ties (``IMG_01``/``IMG_1``,
    ``a``/``A``), so the order is total and only equal strings have equal keys.
    """
    text = os.fspath(path)
    items: list[tuple[str, int]] = []
    for i, chunk in enumerate(_DIGITS.split(text)):
        if i % 2:
            items.append(("0", int(chunk)))
        else:
            items.extend((ch, 0) for ch in chunk.casefold())
    return tuple(items), text


def order_photos(paths: Sequence[PathLike], *, keep_order: bool) -> list[Path]:
    """The photos in natural file-name order, or as given with ``keep_order``."""
    photos = [Path(p) for p in paths]
    return photos if keep_order else sorted(photos, key=natural_key)


# ------------------------------------------------------------------- messages


def _verb(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


class _Problem(Exception):
    """A problem with one photo; problems of the same kind are reported together."""

    def __init__(self, kind: str, shown: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.shown = shown
        self.detail = detail


def _message(kind: str, problems: list[_Problem]) -> str:
    """One sentence for every photo that has the problem ``kind``."""
    shown = [p.shown for p in problems]
    names = _names(shown)
    n = len(problems)
    first = problems[0]
    if kind == "missing":
        return f"{names} {_verb(n, 'does', 'do')} not exist; check the file {_verb(n, 'name', 'names')} and folder."
    if kind == "broken-link":
        return f"{names} {_verb(n, 'is a link', 'are links')} to a file that does not exist; give the photo itself."
    if kind == "folder":
        example = os.path.join(first.shown, "*.jpg")
        return (
            f"{names} {_verb(n, 'is a folder', 'are folders')}, not a photo; "
            f"give the photos inside {_verb(n, 'it', 'them')}, e.g. {example}."
        )
    if kind == "link-loop":
        what = _verb(n, "is a link that leads back to itself", "are links that lead back to themselves")
        return f"{names} {what} (a loop); give the photo itself."
    if kind == "name-too-long":
        return f"{names}: the file name is longer than the system allows; rename the photo."
    if kind == "too-small":
        return (
            f"{names} {_verb(n, 'is', 'are')} only {first.detail} pixels, too small to line up "
            f"(at least {MIN_SIDE} x {MIN_SIDE} are needed); give the full-size photos."
        )
    if kind == "cmyk":
        return (
            f"{names} {_verb(n, 'is a', 'are')} CMYK (print colour) {_verb(n, 'image', 'images')}, which Hugin cannot "
            "stack; save as RGB first."
        )
    if kind == "bad-profile":
        return (
            f"{names} {_verb(n, 'carries a', 'carry')} damaged colour {_verb(n, 'profile', 'profiles')} (ICC) "
            "that Hugin cannot use; save the photo again without it or with sRGB."
        )
    if kind == "pixels":
        return (
            f"{names} {_verb(n, 'is', 'are')} damaged (the picture data is corrupt: {first.detail}); "
            "copy the photos again."
        )
    if kind == "transparent":
        return (
            f"{names} {_verb(n, 'is', 'are')} fully transparent (nothing visible to stack); "
            "give the photos with their picture."
        )
    if kind == "not-a-file":
        return f"{names} {_verb(n, 'is not a regular file', 'are not regular files')}; give photo files."
    if kind == "unreadable":
        return f"{names} cannot be read ({first.detail}); check the file permissions."
    if kind == "empty":
        return f"{names} {_verb(n, 'is an empty file', 'are empty files')} (0 bytes); copy the photos again."
    if kind == "raw":
        return (
            f"{names} {_verb(n, 'is a raw camera file', 'are raw camera files')}, which Hugin cannot read; "
            f"install raw support with {RAW_HINT} or convert the photos to TIFF first."
        )
    if kind == "heif":
        return (
            f"{names} {_verb(n, 'is a HEIC/HEIF photo', 'are HEIC/HEIF photos')}, which Hugin cannot read; "
            f"install HEIF support with {HEIF_HINT} or convert the photos to JPEG or TIFF first."
        )
    if kind == "not-image":
        what = _verb(n, "is not an image", "are not images")
        return f"{names} {what} focuswrap can read; give JPEG, TIFF or PNG photos."
    if kind == "damaged":
        why = f"its header cannot be read: {first.detail}" if n == 1 else "their headers cannot be read"
        return f"{names} {_verb(n, 'is', 'are')} damaged ({why}); copy the photos again from the camera."
    if kind == "format":
        kinds = _names(sorted({p.detail for p in problems}))
        return (
            f"{names} {_verb(n, 'is a', 'are')} {kinds} {_verb(n, 'image', 'images')}, which Hugin cannot read; "
            "convert to TIFF, JPEG or PNG first."
        )
    if kind == "truncated":
        return (
            f"{names} {_verb(n, 'is', 'are')} incomplete (the file ends early, as after an interrupted copy); "
            "copy the photos again from the camera."
        )
    raise AssertionError(kind)  # pragma: no cover


# ---------------------------------------------------------------- file checks


def _stat_photo(given: PathLike) -> os.stat_result:
    """Stat one input (following links), or raise a :class:`_Problem`."""
    shown = _show(given)
    try:
        st = os.stat(given)
    except FileNotFoundError:
        if os.path.islink(given):
            raise _Problem("broken-link", shown) from None
        raise _Problem("missing", shown) from None
    except NotADirectoryError:  # "photo.jpg/x.jpg"
        raise _Problem("missing", shown) from None
    except PermissionError as exc:  # a folder on the way cannot be searched
        raise _Problem("unreadable", shown, exc.strerror.lower() if exc.strerror else "permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Problem("link-loop", shown) from None
        if exc.errno == errno.ENAMETOOLONG:
            raise _Problem("name-too-long", shown) from None
        raise _Problem("unreadable", shown, (exc.strerror or str(exc)).lower()) from None
    if stat.S_ISDIR(st.st_mode):
        raise _Problem("folder", shown)
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the open below forever
        raise _Problem("not-a-file", shown)
    return st


def _open_binary(path: PathLike) -> BinaryIO:
    """Open a photo for reading (one place, so tests can inject failures)."""
    return open(path, "rb")


# Pillow's limit is one global: threads (batch --jobs, the sharpness thread)
# take turns, so that every save is matched by its own restore.
_BOMB_LOCK = threading.RLock()  # re-entrant: a guarded block may call another


@contextmanager
def _no_bomb_guard() -> Iterator[None]:
    """Let Pillow open very large photos: the guard is for decoding, and we only read headers."""
    with _BOMB_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _jpeg_scan_start(data: mmap.mmap) -> int | None:
    """Offset of the first entropy-coded scan (just after the SOS header), or None."""
    pos, size = 2, len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            return pos + 2 + length
        pos += 2 + length
    return None


def _jpeg_complete(fh: BinaryIO, size: int) -> bool:
    """True if the JPEG's End Of Image marker (FF D9) is there."""
    fh.seek(max(0, size - _TAIL_BYTES))
    # Some cameras and copy tools pad the file with zeros (or FF fill bytes).
    if fh.read().rstrip(b"\x00\xff").endswith(b"\xff\xd9"):
        return True
    # Data after the image is legal: Google/Samsung "motion photos" append an
    # MP4 video, Samsung a SEFT trailer.  FF D9 cannot occur inside the scan
    # data (an FF there is always followed by 00 or a marker), so the image is
    # complete iff an EOI follows the start of its first scan.  (The EXIF
    # thumbnail also ends with FF D9, but it lies before the scan.)
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start = _jpeg_scan_start(data)
        return start is not None and data.find(b"\xff\xd9", start) != -1


def _png_complete(fh: BinaryIO, size: int) -> bool:
    """True if the PNG's chunks all fit in the file and end with IEND."""
    fh.seek(max(0, size - _TAIL_BYTES))
    if _PNG_IEND in fh.read():
        return True
    pos = 8  # walk the chunk list: 8 bytes read per chunk
    while pos + 12 <= size:
        fh.seek(pos)
        head = fh.read(8)
        if head[4:8] == b"IEND":
            return True
        pos += 12 + int.from_bytes(head[:4], "big")
    return False


def _png_pixel_problem(fh: BinaryIO, size: int) -> str | None:
    """Why the PNG's compressed picture data is corrupt, or None.

    The chunks can all be there, with right checksums, around garbage: the
    completeness check cannot see that, and Hugin then failed in ways that
    blamed the photos' detail.  The zlib stream is inflated (in pieces, the
    output thrown away: nothing is decoded into pixels) to its end, where its
    own checksum covers every byte of the picture.
    """
    import zlib

    inflate = zlib.decompressobj()
    pos = 8
    try:
        while pos + 12 <= size:
            fh.seek(pos)
            head = fh.read(8)
            length, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if kind == b"IEND":
                break
            if kind == b"IDAT":
                left = length
                while left > 0 and not inflate.eof:
                    block = fh.read(min(left, 1 << 20))
                    if not block:
                        break
                    left -= len(block)
                    data = block
                    while data and not inflate.eof:
                        inflate.decompress(data, 1 << 22)
                        data = inflate.unconsumed_tail
            pos += 12 + length
    except zlib.error as exc:
        return str(exc).replace("Error -3 while decompressing data: ", "")
    if not inflate.eof:
        return "the picture data ends early"
    return None


def _as_tuple(value: object) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) if isinstance(value, int) else ()


def _tiff_complete(im: Image.Image, size: int) -> bool:
    """True if every strip (or tile) of the first page lies inside the file."""
    tags = getattr(im, "tag_v2", {})
    offsets = _as_tuple(tags.get(273) or tags.get(324))  # StripOffsets / TileOffsets
    counts = _as_tuple(tags.get(279) or tags.get(325))  # StripByteCounts / TileByteCounts
    if not offsets or len(offsets) != len(counts):
        return True  # nothing to compare: let Hugin decide
    return max(o + c for o, c in zip(offsets, counts, strict=True)) <= size


def _bits(im: Image.Image, fmt: str, header: bytes) -> int:
    """Bits per channel from the file header (Pillow shows 16-bit RGB as "RGB")."""
    if fmt == "PNG":
        return 16 if len(header) > 24 and header[24] == 16 else 8
    if fmt == "TIFF":
        depth = max(_as_tuple(getattr(im, "tag_v2", {}).get(258)) or (8,))
        return depth if depth in (16, 32) else 8
    return 16 if ";16" in im.mode else 8


def _read_photo(given: PathLike) -> Photo:
    """Read one photo's header and check that the file is complete."""
    shown = _show(given)
    try:
        fh = _open_binary(given)
    except PermissionError as exc:
        raise _Problem("unreadable", shown, (exc.strerror or "permission denied").lower()) from None
    except OSError as exc:
        raise _Problem("unreadable", shown, (exc.strerror or str(exc)).lower()) from None
    with fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            header = fh.read(32)
            fh.seek(0)
        except OSError as exc:
            raise _Problem("unreadable", shown, (exc.strerror or str(exc)).lower()) from None
        if size == 0:
            raise _Problem("empty", shown)
        from focuswrap import formats  # late: only HEIF/raw photos need it

        # HEIF (also renamed .jpg) and raw: read through their extra, or say which extra to install.
        kind = formats.kind_of(given, header)
        if kind is not None:
            if not formats.extra_available(kind):
                raise _Problem(kind, shown)
            try:
                return formats.read_photo(given, kind)
            except formats.DamagedPhoto as exc:
                raise _Problem("damaged", shown, str(exc)) from None
        try:
            with _no_bomb_guard():
                im = Image.open(fh)
        except UnidentifiedImageError:
            if pixels.is_tiff(header):  # 16-bit grey with alpha, float colour: Pillow has no mode for them
                try:
                    tiff = read_tiff(given)
                except pixels.UnreadablePicture as exc:
                    raise _Problem("damaged", shown, str(exc)) from None
                if tiff is None:
                    raise _Problem("truncated", shown) from None
                return tiff
            if header.startswith((b"\xff\xd8\xff", b"\x89PNG", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
                # Looks like a JPEG/PNG/TIFF but its header is cut or broken.
                raise _Problem("damaged", shown, "the file is cut short or corrupt") from None
            raise _Problem("not-image", shown) from None
        except (OSError, ValueError, EOFError, SyntaxError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise _Problem("damaged", shown, reason) from None
        fmt = im.format or ""
        if fmt not in INPUT_FORMATS:
            raise _Problem("format", shown, fmt or "unknown")
        kind = INPUT_FORMATS[fmt]
        try:
            if kind == "JPEG":
                complete = _jpeg_complete(fh, size)
            elif kind == "PNG":
                complete = _png_complete(fh, size)
            else:
                complete = _tiff_complete(im, size)
        except (OSError, ValueError) as exc:
            raise _Problem("unreadable", shown, (getattr(exc, "strerror", None) or str(exc)).lower()) from None
        if not complete:
            raise _Problem("truncated", shown)
        if kind == "PNG":
            try:
                problem = _png_pixel_problem(fh, size)
            except OSError as exc:
                raise _Problem("unreadable", shown, (exc.strerror or str(exc)).lower()) from None
            if problem is not None:
                raise _Problem("pixels", shown, problem)
        width, height = im.size
        _check_content(im, kind, shown)
        return Photo(
            path=Path(given).absolute(),
            width=width,
            height=height,
            orientation=exif_orientation(im, kind),
            mode=im.mode,
            format=fmt,
            bits=_bits(im, kind, header),
        )


def _check_content(im: Image.Image, kind: str, shown: str) -> None:
    """What a complete file can still hold that Hugin fails on later: raise a :class:`_Problem`.

    Checked here because Hugin's own reports of them are misleading (a crash,
    "a message focuswrap does not recognise", "check free disk space"), after
    climbing the whole ladder.
    """
    width, height = im.size
    if min(width, height) < MIN_SIDE:
        raise _Problem("too-small", shown, f"{width} x {height}")
    if im.mode == "CMYK":
        raise _Problem("cmyk", shown)
    icc = im.info.get("icc_profile")
    if icc:
        try:
            import io

            from PIL import ImageCms

            ImageCms.ImageCmsProfile(io.BytesIO(icc))
        except ImportError:  # Pillow without littlecms: cannot tell
            pass
        except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
            raise _Problem("bad-profile", shown) from None
    if "A" in im.getbands():
        # Only a photo with transparency is decoded (the other checks read headers only),
        # to see whether anything in it is visible: enfuse fuses nothing from a fully
        # transparent one and focuswrap then blamed the disk.
        try:
            with _no_bomb_guard():
                alpha = im.getchannel("A")
        except (OSError, ValueError, EOFError, SyntaxError) as exc:
            raise _Problem("pixels", shown, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        if alpha.getextrema()[1] == 0:
            raise _Problem("transparent", shown)


def _raise_first_kind(problems: list[_Problem]) -> None:
    """Raise one error for the first problem kind, naming every photo that has it."""
    if problems:
        kind = problems[0].kind
        raise BadInputError(_message(kind, [p for p in problems if p.kind == kind]))


# ------------------------------------------------------------- stack checks


def _check_count(paths: Sequence[PathLike]) -> None:
    if len(paths) < 2:
        got = "none" if not paths else f"1: {_show(paths[0])}"
        raise BadInputError(f"focuswrap needs at least two photos to stack; got {got}.")


def _check_duplicates(paths: Sequence[PathLike], stats: Sequence[os.stat_result]) -> None:
    """Reject the same file given twice: same resolved path, or same inode (hard links)."""
    groups: dict[object, list[int]] = {}
    parent = list(range(len(paths)))  # union-find over the two kinds of identity

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, (given, st) in enumerate(zip(paths, stats, strict=True)):
        keys: list[object] = [("path", os.path.normcase(str(Path(given).resolve())))]
        if st.st_ino:  # some file systems report 0 for every file
            keys.append(("inode", st.st_dev, st.st_ino))
        for key in keys:
            if key in groups:
                parent[root(i)] = root(groups[key][0])
            groups.setdefault(key, []).append(i)
    same: dict[int, list[int]] = {}
    for i in range(len(paths)):
        same.setdefault(root(i), []).append(i)
    repeated = [[_show(paths[i]) for i in members] for members in same.values() if len(members) > 1]
    if not repeated:
        return

    def describe(group: list[str]) -> str:
        spellings = list(dict.fromkeys(group))
        if len(spellings) == 1:
            times = "twice" if len(group) == 2 else f"{len(group)} times"
            return f"{spellings[0]} is given {times}"
        return f"{_names(spellings)} are the same file"

    if len(repeated) == 1:
        raise BadInputError(f"{describe(repeated[0])}; give each photo once.")
    listed = "; ".join(describe(group) for group in repeated)
    raise BadInputError(f"Photos are given more than once ({listed}); give each photo once.")


_T = TypeVar("_T")


def _odd_ones_out(values: Sequence[_T]) -> tuple[_T, list[int]]:
    """The most common value (first seen wins a tie) and the indexes that differ from it."""
    counts = Counter(values)
    best = max(counts.values())
    common = next(v for v in values if counts[v] == best)
    return common, [i for i, v in enumerate(values) if v != common]


def _describe_orientation(photo: Photo) -> str:
    turned = photo.orientation >= 5  # tags 5..8 swap width and height on display
    width, height = (photo.height, photo.width) if turned else (photo.width, photo.height)
    shape = "portrait" if height > width else "landscape" if width > height else "square"
    return f"{shape} (EXIF orientation {photo.orientation})"


def _check_orientations(photos: Sequence[Photo], shown: Sequence[str]) -> None:
    # Hugin ignores the EXIF orientation tag: photos whose tags differ hold
    # pixels turned against each other, which align_image_stack cannot match.
    _, odd = _odd_ones_out([p.orientation for p in photos])
    if not odd:
        return
    rest = [i for i in range(len(photos)) if i not in odd]
    odd_by_tag: dict[int, list[int]] = {}
    for i in odd:
        odd_by_tag.setdefault(photos[i].orientation, []).append(i)
    odd_text = ", ".join(
        f"{_names([shown[i] for i in idx])} {_verb(len(idx), 'is', 'are')} {_describe_orientation(photos[idx[0]])}"
        for idx in odd_by_tag.values()
    )
    raise BadInputError(
        f"The photos were taken with the camera turned differently: {odd_text} but "
        f"{_names([shown[i] for i in rest])} {_verb(len(rest), 'is', 'are')} {_describe_orientation(photos[rest[0]])}; "
        "stack only photos taken the same way round."
    )


def _check_sizes(photos: Sequence[Photo], shown: Sequence[str]) -> None:
    # enfuse 4.2 accepts images of different sizes and exits 0 with a wrong
    # result, so this check is ours.
    common, odd = _odd_ones_out([(p.width, p.height) for p in photos])
    if not odd:
        return
    w, h = common
    if len({(photos[i].width, photos[i].height) for i in odd}) == 1:
        first = photos[odd[0]]
        what = f"{_names([shown[i] for i in odd])} {_verb(len(odd), 'is', 'are')} {first.width}x{first.height}"
    else:
        what = _names([f"{shown[i]} is {photos[i].width}x{photos[i].height}" for i in odd])
    raise BadInputError(
        f"{what} but the other photos are {w}x{h}; all photos of a stack must be the same size, "
        f"so remove or resize {_verb(len(odd), 'it', 'them')}."
    )


def _check_depths(photos: Sequence[Photo], shown: Sequence[str]) -> None:
    # The enfuse manual ("Input Image Requirements"): the images must agree on
    # their number of bits per channel.
    common, odd = _odd_ones_out([p.bits for p in photos])
    if not odd:
        return
    what = _names([f"{shown[i]} ({photos[i].bits}-bit)" for i in odd])
    raise BadInputError(
        f"{what} {_verb(len(odd), 'has', 'have')} a different bit depth from the other photos ({common}-bit); "
        "export all photos of a stack with the same bit depth."
    )


_GLOB_MAGIC = re.compile(r"[*?\[]")


def _photo_names(folder: Path) -> list[str]:
    try:
        names = [e.name for e in os.scandir(folder) if not e.name.startswith(".") and e.is_file()]
    except OSError:
        return []
    known = set(OUTPUT_FORMATS) | HEIF_EXTENSIONS | RAW_EXTENSIONS
    return sorted((n for n in names if os.path.splitext(n)[1].lower() in known), key=natural_key)


def expand_patterns(paths: Sequence[PathLike]) -> list[Path]:
    """The photos with the patterns the shell left alone (``*.jpg``) expanded here.

    A shell passes a pattern that matches nothing as it is (bash), and Windows'
    shells never expand one: a name that does not exist but holds ``*``, ``?``
    or ``[`` is matched against its folder.  When nothing matches, the error
    says which photos the folder does hold, and the pattern that finds them
    when only the case differs (``*.jpg`` for ``IMG_1.JPG``).
    """
    import fnmatch
    import glob

    out: list[Path] = []
    for given in paths:
        text = os.fspath(given)
        if os.path.lexists(text) or not _GLOB_MAGIC.search(os.path.basename(text)):
            out.append(Path(text))
            continue
        matches = sorted(glob.glob(text), key=natural_key)
        if matches:
            out += [Path(m) for m in matches]
            continue
        folder, pattern = os.path.split(text)
        found = _photo_names(Path(folder or "."))
        where = f"in {_show(folder)}" if folder else "here"
        if not found:
            raise BadInputError(f"No file matches {_show(text)}, and there are no photos {where}; check the folder.")
        other_case = [n for n in found if fnmatch.fnmatchcase(n.casefold(), pattern.casefold())]
        if other_case:
            # A pattern that finds them all: the extension as the files spell it, or all upper/lower case.
            suffix = os.path.splitext(other_case[0])[1]
            candidates = [re.sub(re.escape(suffix) + "$", suffix, pattern, flags=re.IGNORECASE)]
            candidates += [pattern.upper(), pattern.lower()]
            better = next((c for c in candidates if all(fnmatch.fnmatchcase(n, c) for n in other_case)), None)
            n = len(other_case)
            advice = f"; type {_show(os.path.join(folder, better))} instead" if better else ""
            raise BadInputError(
                f"No file matches {_show(text)} (names are case-sensitive), but {n} {_verb(n, 'photo', 'photos')} "
                f"{where} {_verb(n, 'matches', 'match')} it in another case: "
                f"{_names([_show(name) for name in other_case])}{advice}."
            )
        raise BadInputError(
            f"No file matches {_show(text)}; the photos {where} are {_names([_show(n) for n in found])}."
        )
    return out


def check_photos(paths: Sequence[PathLike]) -> list[Photo]:
    """Check the photos of a stack and return them in the order given.

    Raises :class:`BadInputError` with one sentence for the first problem
    found: missing files or folders, too few photos, a photo given twice,
    unreadable, raw/HEIF, unsupported, not an image, or incomplete files, then
    mixed orientations, sizes or bit depths.
    """
    if not paths:
        _check_count(paths)
    problems: list[_Problem] = []
    stats: list[os.stat_result] = []
    for given in paths:
        try:
            stats.append(_stat_photo(given))
        except _Problem as problem:
            problems.append(problem)
    _raise_first_kind(problems)
    _check_count(paths)
    _check_duplicates(paths, stats)
    photos: list[Photo] = []
    for given in paths:
        try:
            photos.append(_read_photo(given))
        except _Problem as problem:
            problems.append(problem)
    _raise_first_kind(problems)
    shown = [_show(p) for p in paths]
    _check_orientations(photos, shown)
    _check_sizes(photos, shown)
    _check_depths(photos, shown)
    return photos


# --------------------------------------------------------------------- output


def output_format(output: PathLike) -> str:
    """The format ("TIFF", "JPEG" or "PNG") an output file name asks for."""
    suffix = Path(output).suffix
    fmt = OUTPUT_FORMATS.get(suffix.lower())
    if fmt is None:
        allowed = ", ".join(OUTPUT_FORMATS)
        what = f"cannot write {suffix} files" if suffix else "needs an extension to know the format"
        raise BadInputError(f"focuswrap {what} ({_show(output)}); end the output name with one of {allowed}.")
    return fmt


def default_output(first_input: PathLike, ext: str | None = None) -> Path:
    """``IMG_1.jpg`` -> ``IMG_1-stacked.jpg`` next to the first photo.

    Keeps the input's extension when focuswrap can write it, else ``.tif``;
    ``ext`` ("png" or ".png") chooses another one.
    """
    first = Path(first_input).absolute()
    if ext is not None:
        suffix = ext if ext.startswith(".") else f".{ext}"
    elif first.suffix.lower() in OUTPUT_FORMATS:
        suffix = first.suffix
    else:
        suffix = ".tif"
    output = first.with_name(f"{first.stem}-stacked{suffix}")
    output_format(output)  # an ``ext`` we cannot write
    return output


def same_file(a: Path, b: Path) -> bool:
    """True if a and b name one file: same resolved path, or os.path.samefile (hard links)."""
    try:
        if os.path.normcase(str(a.resolve())) == os.path.normcase(str(b.resolve())):
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns the folders created, innermost first
    (so that a failed delivery can remove them again)."""
    created = []
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


_same_file = same_file


def check_output(output: PathLike, inputs: Sequence[PathLike], *, force: bool) -> Path:
    """Check that the result can be written to ``output``; return it as an absolute path.

    ``force`` allows replacing an existing file, never one of the input photos.  A folder
    of ``output`` that does not exist yet is fine when it can be created (:func:`make_folder`).
    """
    shown = _show(output)
    out = Path(output).absolute()
    try:
        name_max = os.pathconf(out.parent, "PC_NAME_MAX") if out.parent.is_dir() else NAME_MAX
    except (OSError, ValueError, AttributeError):
        name_max = NAME_MAX
    if len(os.fsencode(out.name)) > name_max:
        raise BadInputError(
            f"The output name is {len(os.fsencode(out.name))} bytes long, more than the {name_max} a file name "
            "can have here; choose a shorter name."
        )
    try:
        os.stat(out)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInputError(
                f"The output {shown} is a link that leads back to itself (a loop); remove it or choose another name."
            ) from None
    if out.is_dir():
        example = os.path.join(shown, "stacked.tif")
        raise BadInputError(f"The output {shown} is a folder; give a file name for the result, e.g. {example}.")
    for given in inputs:
        if _same_file(out, Path(given).absolute()):
            raise BadInputError(f"The output {shown} is also one of the input photos; choose another output name.")
    output_format(output)
    folder = out.parent
    if not folder.is_dir():
        # Name the folder as the user wrote it; find the nearest part that
        # exists: in "photo.jpg/out.tif" a file stands where a folder should.
        given_folder = Path(output).parent
        blocker = next((p for p in (given_folder, *given_folder.parents) if os.path.lexists(p)), None)
        if blocker is not None and not blocker.is_dir():
            raise BadInputError(
                f"{_show(blocker)} is a file, not a folder, so {shown} cannot be written there; "
                "choose another output path."
            )
        # A missing folder is created when the result is delivered (as batch does with its
        # results folder); here only the nearest folder that exists must be writable.
        folder = blocker if blocker is not None else Path.cwd()
    if not os.access(folder, os.W_OK):
        raise BadInputError(
            f"focuswrap cannot write into the folder {_show(folder)} (permission denied); choose another output folder."
        )
    if os.path.lexists(out) and not force:
        raise OutputExistsError(f"{shown} already exists; use --force to replace it.")
    return out
