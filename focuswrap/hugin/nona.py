"""``nona``: Hugin's remapper, used to write the aligned frames from align_image_stack's project.

``align_image_stack -a`` remaps every frame itself and writes LZW-compressed
TIFFs; letting ``nona`` remap from the project file (``-p``) gives the same
pixels (checked on the pcb stack: identical aligned frames) and can write
them uncompressed, which enfuse then reads faster.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

NAME = "nona"


def build_argv(
    *,
    command: Sequence[str],
    project: os.PathLike[str] | str,
    prefix: os.PathLike[str] | str,
    compression: str = "NONE",
    verbose: bool = False,
    only: Sequence[int] | None = None,
) -> list[str]:
    """``nona [-v] -m TIFF_m -z COMPRESSION -o PREFIX PROJECT``: one TIFF per frame, PREFIX0000.tif ...

    With ``-v`` it prints align_image_stack's own "saving PREFIX0000.tif" lines;
    ``only`` remaps just those images (0-based, ``-i N`` each), named by their number.
    """
    return (
        list(command)
        + (["-v"] if verbose else [])
        + ["-m", "TIFF_m", "-z", compression]
        + [tok for i in (only or ()) for tok in ("-i", str(i))]
        + ["-o", os.fspath(prefix), os.fspath(project)]
    )
