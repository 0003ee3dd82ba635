"""Deliver the finished image: right format, metadata carried over, written atomically.

The result is first written to a hidden temporary file in the target folder,
then moved into place in one step, so a crash, a full disk or Ctrl-C never
leaves a half-written picture under the user's chosen name.  Without
``--force`` the final step is a hard link, which fails if a file of that name
appeared in the meantime (two runs racing for the same name).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from focuswrap.errors import OutputExistsError, WriteFailed

JPEG_QUALITY = 95


def _metadata(first_input: Path) -> tuple[bytes | None, bytes | None]:
    """EXIF bytes and ICC profile of the first input (either may be None)."""
    from PIL import Image

    with Image.open(first_input) as im:
        exif = im.getexif()
        icc = im.info.get("icc_profile")
        return (exif.tobytes() if len(exif) else None), icc


def _encode(fused: Path, dest: Path, fmt: str, first_input: Path) -> None:
    """Write ``fused`` (enfuse's TIFF) into ``dest`` as ``fmt``."""
    if fmt == "TIFF":
        # enfuse's own TIFF keeps its full bit depth and alpha: copy it as is.
        shutil.copyfile(fused, dest)
        return
    from PIL import Image

    exif, icc = _metadata(first_input)
    with Image.open(fused) as im:
        im.load()
        if im.mode not in ("RGB", "RGBA", "L", "LA"):
            # 16-bit results: Pillow writes JPEG/PNG at 8 bits only.
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        if fmt == "JPEG" and im.mode in ("RGBA", "LA"):
            im = im.convert("RGB" if im.mode == "RGBA" else "L")  # JPEG has no alpha
        kwargs: dict = {}
        if exif:
            kwargs["exif"] = exif
        if icc:
            kwargs["icc_profile"] = icc
        if fmt == "JPEG":
            kwargs.update(quality=JPEG_QUALITY, subsampling=0, optimize=True)
        im.save(dest, format=fmt, **kwargs)


def deliver(fused: Path, output: Path, *, fmt: str, first_input: Path, force: bool) -> int:
    """Write the result to ``output`` atomically; returns its size in bytes."""
    folder = output.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".focuswrap-part", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); a photo gets the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        _encode(fused, tmp, fmt, first_input)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, output)
        else:
            try:
                os.link(tmp, output)
            except FileExistsError:
                raise OutputExistsError(f"{output} appeared while focuswrap was working; use --force to replace it.") from None
            except OSError:
                # No hard links on this file system (FAT, some network shares).
                if output.exists():
                    raise OutputExistsError(f"{output} already exists; use --force to replace it.") from None
                os.replace(tmp, output)
        return output.stat().st_size
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise WriteFailed(f"The disk holding {folder} is full; {output.name} was not written.") from None
        raise WriteFailed(f"Could not write {output}: {exc.strerror or exc}.") from None
    finally:
        tmp.unlink(missing_ok=True)
