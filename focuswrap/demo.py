"""``focuswrap demo``: a synthetic focus bracket, stacked with the real tools, judged against the truth.

The bracket shows what focus bracketing is for: a small painted figure on its
base, on a cutting mat, paint pots behind it (:mod:`focuswrap.synthetic`,
scene "figure"), each photo sharp at one depth only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from focuswrap import pipeline, presets, sharpness, synthetic
from focuswrap.discovery import Tools

#: Frames and size of the demo bracket: small enough to stack in a few seconds.
FRAMES = 5
SIZE = (800, 600)


@dataclass(frozen=True)
class DemoOutcome:
    stack: synthetic.SyntheticStack
    result: pipeline.StackResult
    psnr_result: float  # dB against the known all-in-focus scene
    psnr_best_frame: float  # the best single frame's dB against it
    best_frame: str


def run(folder: Path, tools: Tools, reporter: pipeline.Reporter, *, force: bool = False) -> DemoOutcome:
    """Render the bracket into ``folder/frames``, stack it into ``folder/stacked.jpg``."""
    folder = Path(folder).absolute()  # every path in the summary reads the same way
    reporter.note(
        f"Drawing {FRAMES} practice photos of a painted figure, each focused at another depth, into {folder / 'frames'}"
    )
    stack = synthetic.make_stack(folder / "frames", frames=FRAMES, size=SIZE, scene="figure")
    request = pipeline.StackRequest(
        inputs=stack.frames,
        preset=presets.get(presets.DEFAULT_PRESET),
        output=folder / "stacked.jpg",
        force=force,
    )
    result = pipeline.stack(request, tools, reporter)
    # Gain cannot see a misalignment; the distance to the truth can.  Where -C
    # cropped the result, frames and truth are compared over the same area.
    from PIL import Image

    box = result.crop or (0, 0, *SIZE)
    with Image.open(stack.truth) as whole:
        truth = whole.crop(box)
    per_frame = {}
    for f in stack.frames:
        with Image.open(f) as frame:
            per_frame[f.name] = sharpness.psnr(frame.crop(box), truth)
    best = max(per_frame, key=per_frame.__getitem__)
    return DemoOutcome(stack, result, sharpness.psnr(result.output, truth), per_frame[best], best)


def open_command(path: Path, platform: str = sys.platform) -> str:
    """The command that opens ``path`` in the picture viewer of this operating system."""
    quoted = f'"{path}"' if " " in str(path) else str(path)
    if platform == "darwin":
        return f"open {quoted}"
    if platform.startswith("win"):
        return f'start "" "{path}"'
    return f"xdg-open {quoted}"


def summary(outcome: DemoOutcome, platform: str = sys.platform) -> str:
    """A few lines for a person: where things are, how much better the stack is, how to look at it."""
    r = outcome.result
    gain = r.sharpness.gain if r.sharpness is not None else float("nan")
    frames = outcome.stack.frames
    lines = [
        f"Stacked {len(r.inputs)} practice photos of a painted figure into {r.output}",
        f"  photos     {frames[0].parent}  ({frames[0].name} .. {frames[-1].name}, each sharp at one depth)",
        f"  truth      {outcome.stack.truth}  (the scene, sharp everywhere)",
        f"  sharpness  {gain:.2f}x the sharpest frame",
        f"  fidelity   {outcome.psnr_result:.1f} dB PSNR to the truth, against {outcome.psnr_best_frame:.1f} dB "
        f"for the best single frame ({outcome.best_frame})",
    ]
    if r.crop_size:
        # The frames breathe (each a little more magnified): the later ones miss the first one's edges.
        lines.append(
            f"  cropped    to {r.crop_size[0]}x{r.crop_size[1]}, the area every frame covers (fidelity measured there)"
        )
    lines.append(f"  time       {r.seconds.get('total', 0):.1f} s with preset {r.preset}")
    lines.append(
        f"To look at the result: {open_command(r.output, platform)}  "
        f"(and compare it with {frames[0].name}, focused on the front of the base)"
    )
    return "\n".join(lines)
