"""``enfuse``: argv builder and progress parsing.

enfuse always gets an explicit absolute ``--output`` (its default is
``a.tif`` in the current folder), and only our own aligned frames as inputs,
so a user's file name starting with ``@`` can never be read as a response file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from focuswrap import pixels
from focuswrap.diagnose import Diagnosis, Rule, classify_with
from focuswrap.diagnose import compile_pattern as _re
from focuswrap.hugin import optspec
from focuswrap.hugin.base import SHARED_RULES, Strict, check_extra_args

if TYPE_CHECKING:
    from PIL import Image

NAME = "enfuse"
#: Name of the fused TIFF inside the work folder.
FUSED = "fused.tif"


#: The flag that makes it print its version.
VERSION_FLAG = "-V"
#: enfuse 4.1 removed the old camel-case option names, so we pass only the
#: new ones, which enfuse 3.x does not know.
MIN_VERSION: tuple[int, int] | None = (4, 0)
#: ``enfuse -V`` starts with "enfuse 4.2"; older ones say "enfuse 4.1.4", "enfuse 4.0-753b534c819d", "enfuse 3.2".
_VERSION = re.compile(r"^\s*enfuse(?:\.exe)?\s+(\d[\w.+-]*)", re.IGNORECASE | re.MULTILINE)


def parse_version(text: str) -> str | None:
    """The version in ``enfuse -V`` output, e.g. "4.2" or "4.0-753b534c819d", or None."""
    m = _VERSION.search(text)
    return m.group(1).rstrip(".") if m else None


# Options focuswrap itself manages (see align.MANAGED).
MANAGED = {"-o", "--output", "-h", "--help", "-V", "--version", "--save-masks", "--load-masks"}


GrayProjector = Literal["average", "l-star", "lightness", "luminance", "value", "anti-value"]


class FuseOptions(Strict):
    """What ``enfuse`` gets (see ``enfuse --help``)."""

    exposure_weight: float = Field(0.0, ge=0, le=1, description="--exposure-weight")
    saturation_weight: float = Field(0.0, ge=0, le=1, description="--saturation-weight")
    contrast_weight: float = Field(1.0, ge=0, le=1, description="--contrast-weight")
    entropy_weight: float = Field(0.0, ge=0, le=1, description="--entropy-weight (left out when 0, enfuse's default)")
    hard_mask: bool = Field(
        True, description="--hard-mask: take each pixel from the single sharpest frame (essential for focus stacks)."
    )
    gray_projector: GrayProjector = Field("luminance", description="--gray-projector")
    contrast_window_size: int = Field(
        15, ge=3, le=101, description="--contrast-window-size: bigger is smoother but slower."
    )
    contrast_edge_scale: float | None = Field(
        None,
        ge=0,
        le=10,
        description="--contrast-edge-scale: >0 uses Laplacian-of-Gaussian edge detection (fewer halos).",
    )
    contrast_min_curvature: str | None = Field(
        None,
        pattern=r"^-?\d+(\.\d+)?%?$",
        description="--contrast-min-curvature, a number or a percentage such as '0.5%'.",
    )
    levels: int | None = Field(None, ge=1, le=29, description="--levels: pyramid levels (enfuse picks when unset).")
    extra_args: list[str] = Field(default_factory=list, description="Further enfuse options, one token each.")

    @field_validator("extra_args")
    @classmethod
    def _extra(cls, v: list[str]) -> list[str]:
        return check_extra_args(v, MANAGED, optspec.ENFUSE)


def unfused_border(options: FuseOptions) -> int:
    """How many pixels along each edge of enfuse's result come from its first frame, unfused.

    enfuse 4.2 judges sharpness in a window of ``contrast_window_size``
    pixels; within half a window of the picture's edge the window leaves the
    picture, every frame's contrast weight is 0, and those pixels go to the
    first frame whatever its focus (``--save-masks`` shows it: on the pcb stack,
    window 15, frame 1 gets every pixel of the outer 7 columns and rows, and its
    blurred left edge shows as a strip).  Without a contrast weight there is no
    such border.
    """
    return options.contrast_window_size // 2 if options.contrast_weight > 0 else 0


def _num(x: float) -> str:
    return f"{x:g}"


def option_flags(options: FuseOptions) -> list[str]:
    """The fusion flags, in the order of the recipe this project grew from."""
    o = options
    return (
        [
            f"--exposure-weight={_num(o.exposure_weight)}",
            f"--saturation-weight={_num(o.saturation_weight)}",
            f"--contrast-weight={_num(o.contrast_weight)}",
        ]
        + ([f"--entropy-weight={_num(o.entropy_weight)}"] if o.entropy_weight else [])
        + (["--hard-mask"] if o.hard_mask else ["--soft-mask"])
        + [f"--gray-projector={o.gray_projector}", f"--contrast-window-size={o.contrast_window_size}"]
        + ([f"--contrast-edge-scale={_num(o.contrast_edge_scale)}"] if o.contrast_edge_scale is not None else [])
        + ([f"--contrast-min-curvature={o.contrast_min_curvature}"] if o.contrast_min_curvature is not None else [])
        + ([f"--levels={o.levels}"] if o.levels is not None else [])
        + list(o.extra_args)
    )


def build_argv(
    *,
    command: Sequence[str],
    options: FuseOptions,
    inputs: Sequence[os.PathLike[str] | str],
    output: os.PathLike[str] | str,
    save_masks: str | None = None,
    intermediate: bool = False,
) -> list[str]:
    """``enfuse FLAGS [--compression=packbits] [--save-masks=...] --output=ABS INPUTS...``

    ``intermediate``: the result is only read back by focuswrap (which writes
    the JPEG or PNG from it), so it is written with PACKBITS, cheap to write
    and to read, instead of enfuse's default LZW (on pcb: about 0.05 s less
    for enfuse, and 1.5 ms instead of 40 ms to decode).  enfuse 4.2 ignores
    ``--compression=none``.  The user's own ``--compression`` in extra_args wins.
    """
    own = any(a.startswith("--compression") for a in options.extra_args)
    return (
        list(command)
        + option_flags(options)
        + (["--compression=packbits"] if intermediate and not own else [])
        + ([f"--save-masks={save_masks}"] if save_masks else [])
        + [f"--output={os.path.abspath(os.fspath(output))}"]
        + [os.path.abspath(os.fspath(p)) for p in inputs]
    )


# enfuse: info: loading next image: /tmp/focuswrap.x/aligned_0003.tif 1/1
_LOADING = re.compile(r"loading next image: (?P<file>.+?) \d+/\d+\s*$")


def loading_image(line: str) -> str | None:
    """The file named by an enfuse 'loading next image' line, else None."""
    m = _LOADING.search(line)
    return m.group("file") if m else None


#: enfuse's failure rules, most specific first (ordered as align.RULES explains).
RULES: tuple[Rule, ...] = (
    SHARED_RULES["out-of-memory"],
    Rule(
        NAME,
        _re(
            r"^enfuse: (?:unknown (?:long )?option|option \S+ requires an argument|unrecognized |"
            r"illegal numeric format|invalid integer|number is garbage|"
            r"unknown (?:grayscale projector|selector algorithm|built-in exposure weight function|output depth)|"
            r"error while processing command line options|cannot reliably parse command line)"
        ),
        "bad-arguments",
        example='enfuse: unknown long option "--bogus"',
        # the other alternatives are messages of the enfuse 4.2 binary, e.g.
        # 'enfuse: number is garbage; maybe the option before "abc" needs an argument'
    ),
    Rule(
        NAME,
        _re(r"^enfuse: (?:no input files specified|no input images given|warning: only one input image given)"),
        "too-few-images",
        # enfuse 4.2 exits 0 here and copies the photo: not a fused stack.
        example="enfuse: warning: only one input image given;",
        # also: "enfuse: no input files specified" (exit 1)
    ),
    # (enfuse 4.2 fuses photos of different sizes without a word and exits 0.)
    # --- output
    Rule(
        NAME,
        _re(r"did not find a matching codec for the given file extension"),
        "unknown-output-format",
        example="did not find a matching codec for the given file extension",
        evidence=_re(r'error opening output file "(?P<path>[^"]*)"|did not find a matching codec'),
    ),
    Rule(
        NAME,
        _re(r'^enfuse: error opening output file "(?P<path>[^"]*)"'),
        "output-not-writable",
        example='enfuse: error opening output file "/tmp/w/missing-folder/fused.tif";',
        evidence=_re(r'^enfuse: error opening output file "(?P<path>[^"]*)"|^Unable to open file'),
    ),
    SHARED_RULES["disk-full"],
    Rule(
        NAME,
        _re(r'^enfuse: failed to open "(?P<path>[^"]*)"'),
        "missing-file",
        example='enfuse: failed to open "/tmp/w/missing.tif": No such file or directory',
    ),
    Rule(
        NAME,
        _re(r'^enfuse: (?:cannot process|cannot load image) "(?P<path>[^"]*)"'),
        "unreadable-image",
        example='enfuse: cannot process "/tmp/w/not-an-image.jpg"; not recognized as an image',
    ),
    SHARED_RULES["damaged-image"],
)
#: Fusion is not retried.
RETRY_UNKNOWN = False


def classify(returncode: int | None, stdout: str, stderr: str) -> Diagnosis:
    """What a finished run of enfuse means: :func:`focuswrap.diagnose.classify_with` on :data:`RULES`."""
    return classify_with(RULES, NAME, returncode, stdout, stderr, retry_unknown=RETRY_UNKNOWN)


# ---------------------------------------------------------------- its result


def load_fused(fused: Path) -> Image.Image:
    """enfuse's result, decoded once: checked, measured and (for JPEG/PNG) encoded from memory.

    16-bit grey and float results, which Pillow cannot open, are read by :func:`focuswrap.pixels.open_image`.
    """
    return pixels.open_image(fused)


def layer_offset(image: Image.Image) -> tuple[int, int]:
    """Where a Hugin-written TIFF sits on the canvas, in pixels (its XPOSITION/YPOSITION tags).

    nona writes cropped frames with their place on the canvas, and enfuse
    keeps it in its result.  The positions are in the unit of the
    resolution tags, so position x resolution is pixels.  (0, 0) without them.
    """
    tags = pixels.placement_tags(image)
    try:
        x = float(tags.get(286, 0)) * float(tags.get(282, 0) or 0)
        y = float(tags.get(287, 0)) * float(tags.get(283, 0) or 0)
    except (TypeError, ValueError):
        return (0, 0)
    return (round(x), round(y))


def check_fused(fused: Path | Image.Image) -> str | None:
    """Why enfuse's result is unusable although written, or None.

    enfuse 4.2 writes an all-zero alpha channel (a fully transparent picture)
    when asked for an output narrower than its 16-bit inputs (``-d 8``); a
    user's extra_args can ask for that.  Pillow reads 16-bit alpha by its high
    byte, so "all zero" here means below 1/256: invisible either way.
    ``fused`` is the file or the picture :func:`load_fused` read from it.
    """
    im = load_fused(fused) if isinstance(fused, Path) else fused
    alpha = pixels.alpha_band(im)
    if alpha is None:
        return None
    _low, high = alpha.getextrema()
    if high == 0:
        name = fused.name if isinstance(fused, Path) else Path(getattr(im, "filename", "") or "the result").name
        return f"{name} is fully transparent (its alpha channel is all zero)"
    return None


#: enfuse's memory per megapixel per input frame, in MB: its peak resident size
#: grew by 33 MB per added 4.3-megapixel frame (2, 4, 6 frames of 2400x1800:
#: 143, 209, 275 MB; enfuse 4.2, --hard-mask), i.e. 7.7 MB per megapixel,
#: over about 80 MB of its own.
MB_PER_MEGAPIXEL = 8
BASE_MB = 80


def memory_needed(frames: int, megapixels: float) -> float:
    """About how many MB enfuse needs to fuse ``frames`` frames of ``megapixels`` each."""
    return BASE_MB + MB_PER_MEGAPIXEL * megapixels * frames
