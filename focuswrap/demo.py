"""``focuswrap demo``: a synthetic focus bracket, stacked with the real tools, judged against the truth."""

from __future__ import annotations

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
    reporter.note(f"Rendering a synthetic {FRAMES}-frame focus bracket into {folder / 'frames'}")
    stack = synthetic.make_stack(folder / "frames", frames=FRAMES, size=SIZE)
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
    with Image.open(stack.truth) as truth:
        truth = truth.crop(box)
    per_frame = {}
    for f in stack.frames:
        with Image.open(f) as frame:
            per_frame[f.name] = sharpness.psnr(frame.crop(box), truth)
    best = max(per_frame, key=per_frame.__getitem__)
    return DemoOutcome(stack, result, sharpness.psnr(result.output, truth), per_frame[best], best)


def summary(outcome: DemoOutcome) -> str:
    """A few lines for a person: where things are, and how much better the stack is."""
    r = outcome.result
    gain = r.sharpness.gain if r.sharpness is not None else float("nan")
    lines = [
        f"Stacked {len(r.inputs)} synthetic frames into {r.output}",
        f"  frames     {outcome.stack.frames[0].parent}",
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
    return "\n".join(lines)
