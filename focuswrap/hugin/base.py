"""What the Hugin tool modules share: the program to run, and the check of the files a tool wrote."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from focuswrap import pixels
from focuswrap.diagnose import ANY, Rule
from focuswrap.diagnose import compile_pattern as _re
from focuswrap.hugin import optspec


def command_of(command: Sequence[str]) -> list[str]:
    """A tool's argv prefix, its program made absolute when given as a relative path.

    The tools run with the work folder as their cwd, where a relative
    ``--hugin-dir bin`` (or FOCUSWRAP_HUGIN_DIR) would no longer point at them.
    """
    program, *rest = command
    if not os.path.isabs(program) and (os.sep in program or (os.altsep and os.altsep in program)):
        program = os.path.abspath(program)
    return [program, *rest]


def check_written(files: Sequence[Path], size: tuple[int, int] | None) -> str | None:
    """Why a tool's output is unusable, or None when every file is there and sized right.

    Hugin's tools can exit 0 without writing their files (align_image_stack
    on some failed optimisations, enfuse on images of different sizes).
    """
    for f in files:
        if not f.is_file() or f.stat().st_size == 0:
            return f"{f.name} was not written"
        if size is not None:
            width, height = pixels.size_of(f)  # also 16-bit grey with alpha and float, which Pillow cannot open
            if (width, height) != size:
                return f"{f.name} is {width}x{height}, expected {size[0]}x{size[1]}"
    return None


class Strict(BaseModel):
    """A preset section: unknown keys refused, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_extra_args(args: list[str], managed: set[str], spec: optspec.Spec) -> list[str]:
    """Extra arguments are a list of single tokens, read exactly as the tool's getopt reads them.

    A managed option is refused however it is spelt: ``-ma/dir/x_`` is
    ``-m -a /dir/x_`` to align_image_stack, ``--out=x`` is ``--output=x`` to enfuse.
    """
    for token in args:
        # "-c 500" in one token reaches the tool as one argument, which it misreads.
        if not token or any(ch.isspace() for ch in token) or "\0" in token:
            raise ValueError(
                f"{token!r} is not a single argument (no spaces or newlines; split it into separate tokens)"
            )
    if args and not args[0].startswith("-"):
        raise ValueError(f"must start with an option (a token beginning with '-'), not {args[0]!r}")
    try:
        found = optspec.options_set(spec, args)
    except optspec.BadArgs as exc:
        raise ValueError(str(exc)) from None
    for option, token, _value in found:
        if option in managed:
            shown = option if token == option or token.startswith(option + "=") else f"{option} (in {token!r})"
            raise ValueError(f"{token!r} sets {shown}, which focuswrap sets itself; it cannot be given here")
    return args


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of a version string such as "4.0-753b534c819d"; (0, 0) when it has none."""
    m = re.match(r"(\d+)(?:\.(\d+))?", version)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


#: Failure rules both tools share: they read and write images with the same
#: libraries (libtiff, libjpeg), whose messages are the same in both.  Each
#: tool module puts them at their place in its own table.
SHARED_RULES: dict[str, Rule] = {
    # First in both tools' tables: a tool that runs out of memory may print anything after it, or crash.
    "out-of-memory": Rule(
        ANY,
        _re(r"std::bad_alloc|[Oo]ut of memory|Cannot allocate memory|MemoryError"),
        "out-of-memory",
        example="enfuse: out of memory",
    ),
    "disk-full": Rule(
        ANY,
        # Both tools then abort (SIGABRT) on an uncaught TIFFCompressionException.
        _re(r"Write error at scanline"),
        "disk-full",
        example="TIFFAppendToStrip: Write error at scanline 0.",
        # enfuse: "enfuse: error: Write error at scanline 0" (plus garbage bytes)
        evidence=_re(r"Write error at scanline|^terminate called after throwing"),
    ),
    "damaged-image": Rule(
        ANY,
        # libjpeg's "Corrupt JPEG data: N extraneous bytes before marker" is
        # left out on purpose: many good camera JPEGs print it.
        _re(
            r"Premature end of JPEG file|Corrupt JPEG data: premature end of data segment"
            r"|Read error on (?:strip|tile)"
        ),
        "damaged-image",
        example="TIFFFillStrip: Read error on strip 29; got 18446744073709536242 bytes, expected 7680.",
        # also "Premature end of JPEG file" and enfuse's
        # "enfuse: error: Read error on strip ..." (both tools exit 0)
    ),
}
