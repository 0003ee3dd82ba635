"""What the Hugin tool modules share: the program to run, and the check of the files a tool wrote."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


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
    from PIL import Image

    for f in files:
        if not f.is_file() or f.stat().st_size == 0:
            return f"{f.name} was not written"
        if size is not None:
            with Image.open(f) as im:
                if im.size != size:
                    return f"{f.name} is {im.size[0]}x{im.size[1]}, expected {size[0]}x{size[1]}"
    return None
