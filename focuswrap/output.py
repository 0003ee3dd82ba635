"""Deliver the finished image: right format, metadata carried over, written atomically.

The result is first written to a hidden temporary file in the target folder,
then moved into place in one step, so a crash, a full disk or Ctrl-C never
leaves a half-written picture under the user's chosen name.  Without
``--force`` the final step is a hard link, which fails if a file of that name
appeared in the meantime (two runs racing for the same name).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

from PIL import Image

from focuswrap import formats, pixels
from focuswrap.errors import OutputExistsError, WriteFailed

# The process umask, read once: os.umask can only be read by setting it, which
# would race with other threads (batch --jobs) writing files meanwhile.
_UMASK = os.umask(0)
os.umask(_UMASK)

JPEG_QUALITY = 95


def _to_8bit(im: Image.Image) -> Image.Image:
    """An 8-bit copy of enfuse's result for JPEG/PNG (Pillow writes those at 8 bits).

    Pillow reads 16-bit RGB(A) TIFFs as 8-bit already (by the high byte); 16-bit
    grey ("I;16") must be scaled by 1/257, as ``convert("L")`` clips it to 255.
    """
    if im.mode.startswith("I;16") or im.mode == "I":
        return im.convert("I").point(lambda v: v * (1 / 257) + 0.5).convert("L")
    if im.mode == "F":  # 32-bit float TIFF: 0..1
        return im.point(lambda v: v * 255 + 0.5).convert("L")
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        return im.convert("RGBA" if "A" in im.getbands() else "RGB")
    return im


def _encode(fused: Path, dest: Path, fmt: str, first_input: Path, orientation: int, image: Image.Image | None) -> None:
    """Write ``fused`` (enfuse's TIFF, in the frames' stored orientation) into ``dest`` as ``fmt``, upright.

    ``image``, when given, is ``fused`` already decoded (it is not decoded again).
    """
    if fmt == "TIFF":
        # enfuse's own TIFF keeps its full bit depth and alpha: copy it as is,
        # and say which way up it is (Pillow cannot turn 16-bit RGB pixels).
        shutil.copyfile(fused, dest)
        if orientation != 1:
            formats.set_tiff_orientation(dest, orientation)
        return
    exif, icc = formats.read_metadata(first_input)
    with contextlib.nullcontext(image) if image is not None else pixels.open_image(fused) as im:
        im.load()
        # The pixels are turned upright here, so the copied EXIF says 1: no
        # viewer, whether it honours the tag or not, can show it sideways.
        # A 16-bit grey PNG keeps its 16 bits (Pillow writes "I;16" PNGs, without alpha).
        im = formats.upright(im if fmt == "PNG" and im.mode == "I;16" else _to_8bit(im), orientation)
        if fmt == "JPEG" and im.mode in ("RGBA", "LA"):
            im = im.convert("RGB" if im.mode == "RGBA" else "L")  # JPEG has no alpha
        kwargs: dict[str, bytes | int | bool] = {
            "exif": formats.exif_bytes(formats.exif_tags(exif, orientation=1, size=im.size))
        }
        if icc:
            kwargs["icc_profile"] = icc
        if fmt == "JPEG":
            kwargs.update(quality=JPEG_QUALITY, subsampling=0, optimize=True)
        im.save(dest, format=fmt, **kwargs)


def _sync_folder(folder: Path) -> None:
    """Make the new name in ``folder`` durable (POSIX); a no-op where a folder cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the file itself is synced
    finally:
        os.close(fd)


def deliver(
    fused: Path,
    output: Path,
    *,
    fmt: str,
    first_input: Path,
    force: bool,
    orientation: int | None = None,
    image: Image.Image | None = None,
) -> int:
    """Write the result to ``output`` atomically, upright; returns its size in bytes.

    ``orientation`` is the EXIF orientation of the frames Hugin stacked
    (``photos[0].orientation``); None reads it from ``first_input``.
    ``image`` is ``fused`` already decoded, if the caller has it.
    Any failure (also Ctrl-C) removes the temporary file and leaves an earlier
    ``output`` exactly as it was.
    """
    if orientation is None:
        orientation = formats.frame_orientation(first_input)
    folder = output.parent
    tmp: Path | None = None
    try:
        # Inside the ``try``: a folder that filled up or lost its permissions
        # since the checks fails here already, and must be reported as such.
        # The output's own name may already be near the 255-byte limit of a
        # file name: the temporary name carries only its first 60 characters.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name[:60]}.", suffix=".focuswrap-part", dir=folder)
        tmp = Path(tmp_name)
        os.close(fd)
        # mkstemp makes the file private (0600); a photo gets the usual permissions.
        os.chmod(tmp, 0o666 & ~_UMASK)
        _encode(fused, tmp, fmt, first_input, orientation, image)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, output)
        else:
            try:
                os.link(tmp, output)
            except FileExistsError:
                raise OutputExistsError(
                    f"{output} appeared while focuswrap was working; use --force to replace it."
                ) from None
            except OSError:
                # No hard links on this file system (FAT, some network shares).
                if output.exists():
                    raise OutputExistsError(f"{output} already exists; use --force to replace it.") from None
                os.replace(tmp, output)
        _sync_folder(folder)
        return output.stat().st_size
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise WriteFailed(
                f"The disk holding {folder} is full; {output.name} was not written.",
                hint="Free some space or choose another output folder, then run again.",
            ) from None
        raise WriteFailed(f"Could not write {output}: {exc.strerror or exc}.") from None
    finally:
        if tmp is not None:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # must not hide the error being reported
                pass
