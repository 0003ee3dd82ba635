"""``align_image_stack``: argv builder and the check of what it wrote.

The builder is pure and keyword-only; paths go in absolute so that a file
name beginning with ``-`` is never read as an option.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from focuswrap.presets import AlignOptions

NAME = "align_image_stack"
#: The prefix of the aligned frames inside the work folder.
PREFIX = "aligned_"


def _num(x: float) -> str:
    return f"{x:g}"


def _flag_groups(options: AlignOptions) -> list[tuple[str, list[str]]]:
    # Order follows the recipe this project grew from: -m -e --use-given-order
    # first, then -C (the default crops), then the fallback flags.
    o = options
    return [
        ("optimize_fov", ["-m"] if o.optimize_fov else []),
        ("fisheye", ["-e"] if o.fisheye else []),
        ("use_given_order", ["--use-given-order"] if o.use_given_order else []),
        ("crop", ["-C"] if o.crop else []),
        ("align_to_first", ["--align-to-first"] if o.align_to_first else []),
        ("center_shift", ["-i"] if o.center_shift else []),
        ("correlation", [f"--corr={_num(o.correlation)}"] if o.correlation is not None else []),
        ("control_points", ["-c", str(o.control_points)] if o.control_points is not None else []),
        ("grid", ["-g", str(o.grid)] if o.grid is not None else []),
        ("scale", ["-s", str(o.scale)] if o.scale is not None else []),
        ("max_error", ["-t", _num(o.max_error)] if o.max_error is not None else []),
        ("extra_args", list(o.extra_args)),
    ]


def option_flags(options: AlignOptions, baseline: AlignOptions | None = None) -> list[str]:
    """The option flags for ``options``; with ``baseline``, only what differs from it.

    In the difference, a flag that was switched off shows as ``no -m`` so
    that the attempt table stays readable.
    """
    groups = _flag_groups(options)
    if baseline is None:
        return [tok for _, toks in groups for tok in toks]
    before = dict(_flag_groups(baseline))
    out: list[str] = []
    for field, toks in groups:
        if toks != before[field]:
            out.extend(toks if toks else ["no " + " ".join(before[field])])
    return out


def build_argv(
    *,
    command: Sequence[str],
    options: AlignOptions,
    inputs: Sequence[os.PathLike[str] | str],
    prefix: os.PathLike[str] | str | None,
    verbose: bool = False,
    pto: os.PathLike[str] | str | None = None,
) -> list[str]:
    """``align_image_stack [-v] FLAGS [-p PTO] [-a PREFIX] INPUTS...``

    Without ``prefix`` it writes only the project file (``pto``), for nona to remap.
    """
    if prefix is None and pto is None:
        raise ValueError("align_image_stack needs -a PREFIX, -p PTO or both")
    return (
        list(command)
        + (["-v"] if verbose else [])
        + option_flags(options)
        + (["-p", os.fspath(pto)] if pto is not None else [])
        + (["-a", os.fspath(prefix)] if prefix is not None else [])
        + [os.path.abspath(os.fspath(p)) for p in inputs]
    )


def expected_outputs(prefix: os.PathLike[str] | str, count: int) -> list[Path]:
    """The files align_image_stack writes for ``count`` inputs: PREFIX0000.tif, ..."""
    return [Path(f"{os.fspath(prefix)}{i:04d}.tif") for i in range(count)]


_CP_PAIR = re.compile(r"^Creating control points between ")
_SAVING = re.compile(r"^saving (?P<file>\S.*)$")


def progress(line: str) -> tuple[str, str]:
    """What one line of ``align_image_stack -v`` (or ``nona -v``) says about progress.

    ("pair", "") for "Creating control points between IMG_1.tif and IMG_2.tif",
    ("saved", NAME) for "saving aligned_0001.tif" (nona prints the same), else ("", "").
    """
    if _CP_PAIR.match(line):
        return "pair", ""
    m = _SAVING.match(line)
    if m is not None:
        return "saved", os.path.basename(m.group("file"))
    return "", ""
