"""``align_image_stack``: argv builder and the check of what it wrote.

The builder is pure and keyword-only; paths go in absolute so that a file
name beginning with ``-`` is never read as an option.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from focuswrap.diagnose import Diagnosis, Rule, classify_with
from focuswrap.diagnose import compile_pattern as _re
from focuswrap.hugin import optspec
from focuswrap.hugin.base import SHARED_RULES, Strict, check_extra_args

NAME = "align_image_stack"
#: The prefix of the aligned frames inside the work folder.
PREFIX = "aligned_"


#: The flag that makes it print its version (with its usage; some builds exit 1 after it).
VERSION_FLAG = "-h"
#: Every align_image_stack that takes the options focuswrap passes: no minimum.
MIN_VERSION: tuple[int, int] | None = None
#: ``align_image_stack -h`` says, on its second line (stdout in 2022.0.0, stderr in older builds):
#:   align_image_stack version 2022.0.0.a0962865f932
_VERSION = re.compile(r"\bversion\s+(\d[\w.+-]*)", re.IGNORECASE)


def parse_version(text: str) -> str | None:
    """The version in ``align_image_stack -h`` output, e.g. "2022.0.0.a0962865f932", or None."""
    m = _VERSION.search(text)
    return m.group(1).rstrip(".") if m else None


# Options focuswrap itself manages; an extra-arguments list may not set them,
# or it would fight with the output paths, the retry ladder or the report.
MANAGED = {"-a", "-p", "-o", "-h", "-v", "--use-given-order"}


class AlignOptions(Strict):
    """What ``align_image_stack`` gets (see ``align_image_stack -h``)."""

    optimize_fov: bool = Field(True, description="-m: optimise field of view (focus breathing changes magnification).")
    fisheye: bool = Field(False, description="-e: assume full-frame fisheye input.")
    center_shift: bool = Field(False, description="-i: optimise image centre shift (handheld shots).")
    correlation: float | None = Field(
        None, gt=0, le=1, description="--corr: control point correlation threshold (Hugin's default 0.9)."
    )
    control_points: int | None = Field(
        None, ge=1, le=10000, description="-c: control points per grid cell (Hugin's default 8)."
    )
    grid: int | None = Field(None, ge=1, le=50, description="-g: grid size for control points (Hugin's default 5).")
    scale: int | None = Field(
        None, ge=0, le=8, description="-s: scale images down by 2^s for control points (Hugin's default 1)."
    )
    max_error: float | None = Field(
        None,
        gt=0,
        le=1000,
        description="-t: drop control points with more error than this, in pixels (Hugin's default 3).",
    )
    crop: bool = Field(False, description="-C: crop to the area covered by all images.")
    align_to_first: bool = Field(
        False, description="--align-to-first: align every image to the first, not to its neighbour."
    )
    use_given_order: bool = Field(
        True, description="--use-given-order: keep focuswrap's frame order (Hugin sorts by exposure otherwise)."
    )
    remap: Literal["align_image_stack", "nona"] = Field(
        "align_image_stack",
        description="Who writes the aligned frames: align_image_stack itself (-a), or Hugin's nona "
        "from the project file (same pixels, uncompressed, faster).",
    )
    extra_args: list[str] = Field(
        default_factory=list, description="Further align_image_stack options, one token each."
    )

    @field_validator("extra_args")
    @classmethod
    def _extra(cls, v: list[str]) -> list[str]:
        return check_extra_args(v, MANAGED, optspec.ALIGN)


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


# Most specific first: the first rule that matches any line wins.  Where one
# run prints several messages, the order decides, for these reasons:
# - option errors, too few photos, sizes and files stop a tool before it does
#   anything else, so they come first;
# - enfuse reports an unknown extension as "error opening output file" and
#   then "did not find a matching codec": unknown-output-format before
#   output-not-writable;
# - a write failure ends in "Unable to open file '<output>'", the same words
#   as a missing input: output-not-writable before missing-file;
# - a damaged photo can leave too little detail and end in "No Feature
#   Points": damaged-image before the alignment failures, because re-copying
#   the file helps and the ladder does not;
# - "After control points pruning ..." is align_image_stack's own last word
#   and follows libpano13's "No Feature Points" (and its "Bad params"): with
#   -m it wins, because it names the fix (-t, or drop -m) and ladder rungs are
#   tied to it;
# - "No Feature Points" explains the "Bad params" / "An error occurred during
#   optimization." that always follow it: no-feature-points before
#   optimization-error, which is left for the optimiser's other complaints.
#: align_image_stack's failure rules, most specific first (the engine and the
#: catalogue of diagnoses are in :mod:`focuswrap.diagnose`).
RULES: tuple[Rule, ...] = (
    SHARED_RULES["out-of-memory"],
    # --- options
    Rule(
        NAME,
        _re(
            r"^\S*align_image_stack: (?:Invalid parameter: |unrecognized option |invalid option -- "
            r"|option (?:'\S+' )?requires an argument|Please specify at least one of the -p, -o or -a options)"
        ),
        "bad-arguments",
        example="align_image_stack: Invalid parameter: number of grid cells (-g) should be between 1 and 50",
        # also getopt's "align_image_stack: unrecognized option '--bogus'",
        # "align_image_stack: option '--corr' requires an argument", "... invalid option -- 'Q'"
    ),
    # --- too few photos
    Rule(
        NAME,
        _re(r"At least two files need to be specified"),
        "too-few-images",
        example="align_image_stack: At least two files need to be specified",
    ),
    # --- photos that do not fit together
    Rule(
        NAME,
        _re(r"^Images have different sizes\.|works only with images of the same size"),
        "different-sizes",
        example="Images have different sizes.",
        evidence=_re(r"^Images have different sizes\.|has \(\d+x\d+\) pixel|works only with images of the same size"),
    ),
    Rule(
        NAME,
        # align_image_stack still exits 0 and prints "Written aligned images ...".
        _re(r"^TIFFOpen: (?P<path>.+?): [^:]+\.?$"),
        "output-not-writable",
        example="TIFFOpen: /tmp/w/missing-folder/aligned_0000.tif: No such file or directory.",
        # also "...: Not a directory." when the folder is a file; root ignores chmod.
    ),
    SHARED_RULES["disk-full"],
    # --- input photos
    Rule(
        NAME,
        _re(r"^Unable to open file '(?P<path>[^']*)'"),
        "missing-file",
        # The first photo: vigra's exception text.  (A missing *second* photo is
        # reported as "Could not decode image", below: the words cannot tell.)
        example="Unable to open file '/tmp/w/missing.tif'.",
    ),
    Rule(
        NAME,
        _re(
            r"^Could not decode image: (?P<path>.*?)(?:Unsupported image file format)?$"
            r"|did not find a matching file type"
            r"|ERROR: images with several alpha channels are not supported"
            r"|ERROR: unsupported pixel type"
        ),
        "unreadable-image",
        example="Could not decode image: /tmp/w/not-an-image.jpgUnsupported image file format",
        # also "did not find a matching file type." when it is the first photo
    ),
    SHARED_RULES["damaged-image"],
    # --- alignment
    Rule(
        NAME,
        _re(r"^After control points pruning reference images has no control"),
        "no-control-points",
        example="After control points pruning reference images has no control",
        evidence=_re(
            r"^After control points pruning|^points Optimizing field of view|"
            r"^behaviour\. Increase error distance|^detection parameters or don't optimize HFOV"
        ),
    ),
    Rule(
        NAME,
        _re(r"^No Feature Points$"),
        "no-feature-points",
        example="No Feature Points",
        evidence=_re(r"^No Feature Points$|^An error occurred during optimization\.|^Ctrl points before pruning"),
    ),
    Rule(
        NAME,
        _re(r"^An error occurred during optimization\."),
        "optimization-error",
        example="An error occurred during optimization.",
        # libpano13's reason comes first, e.g. "Field of View must be smaller
        # than 180 degrees in rectilinear Images": quote it too.
        evidence=_re(
            r"^An error occurred during optimization\.|must be (?:positive|smaller than)|"
            r"^No Parameters to optimize|^Unsupported (?:Image|Panorama) Format|"
            r"^Invalid Image Number in Control Point|^No input images"
        ),
    ),
)
#: Another rung might get past a crash (a failure focuswrap does not understand is not retried).
RETRY_UNKNOWN = True


def classify(returncode: int | None, stdout: str, stderr: str) -> Diagnosis:
    """What a finished run of align_image_stack (or of nona, which reads and writes
    with the same libraries) means: :func:`focuswrap.diagnose.classify_with` on :data:`RULES`."""
    return classify_with(RULES, NAME, returncode, stdout, stderr, retry_unknown=RETRY_UNKNOWN)


_PAIR = re.compile(r"^Creating control points between (?P<a>.+) and (?P<b>.+)$")
_GOOD = re.compile(r"^Number of good matches: (?P<n>\d+),")


def matches_per_pair(stdout: str) -> list[tuple[str, str, int]]:
    """(photo, photo, good matches) for each pair align_image_stack -v compared, in order.

    From its verbose output::

        Creating control points between frame_2.jpg and frame_3.jpg
        Trying to find 8 corners...
        Number of good matches: 0, bad matches: 4
    """
    pairs: list[tuple[str, str, int]] = []
    for line in stdout.splitlines():
        if (m := _PAIR.match(line)) is not None:
            pairs.append((m.group("a"), m.group("b"), 0))
        elif pairs and (g := _GOOD.match(line)) is not None:
            a, b, n = pairs[-1]
            pairs[-1] = (a, b, n + int(g.group("n")))
    return pairs


def odd_ones_out(pairs: Sequence[tuple[str, str, int]]) -> list[str]:
    """The photos that matched none of their neighbours while the other pairs matched.

    A photo from another scene shares no detail with the frames beside it:
    every pair it is in has no good match, while the rest of the stack
    matches.  With two photos there is no telling which one is odd.
    """
    photos = list(dict.fromkeys(name for a, b, _ in pairs for name in (a, b)))
    if len(photos) < 3 or not any(n > 0 for _, _, n in pairs):
        return []

    def unmatched(photo: str) -> list[str]:
        """The photos it was compared with, when it matched none of them."""
        mine = [(b if a == photo else a, n) for a, b, n in pairs if photo in (a, b)]
        return [other for other, _ in mine] if mine and all(n == 0 for _, n in mine) else []

    # Between two neighbours: no match with either.  At an end of the stack, with
    # its only neighbour, unless that neighbour is itself the odd one (the last
    # photo after an odd one matches it no better, through no fault of its own).
    middle = {p for p in photos if len(unmatched(p)) >= 2}
    odd = [p for p in photos if p in middle or (len(unmatched(p)) == 1 and unmatched(p)[0] not in middle)]
    # Only a minority can be "the odd one out".
    return odd if len(odd) * 2 < len(photos) else []
