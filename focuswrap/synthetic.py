"""Render a synthetic focus bracket whose all-in-focus scene is known.

Used by the demo and the tests: :func:`make_stack` writes ``frame_1.jpg`` ...
``frame_N.jpg`` (each sharp in a different depth band) and ``truth.png`` (the
scene sharp everywhere, in frame 1's geometry), so a fused result can be
scored against the truth with :func:`focuswrap.sharpness.psnr`.

The scene is a flat textured plane tilted away from the camera (top far,
bottom near) with two raised objects standing in front of it.  It is dense
in corners and fine detail, which is what align_image_stack's control point
finder needs.  Pillow only, deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

#: Blur radii (px) rendered once; a frame's blur at a pixel is interpolated
#: between the two nearest of these.
BLUR_LEVELS: tuple[float, ...] = (0.0, 0.7, 1.4, 2.3, 3.5, 4.7, 6.0)
#: Largest blur radius (px), for parts of the scene far from the focus.
MAX_BLUR = BLUR_LEVELS[-1]
#: Blur radius per unit of depth away from the focus (depth runs 0..1).
BLUR_PER_DEPTH = 12.0
#: Depth either side of the focus that stays sharp (the depth of field).
SHARP_DEPTH = 0.04
#: Pixels rendered beyond every edge so shifted frames show real scene, not black.
MARGIN = 24
#: Focus breathing: magnification change per frame, as a fraction (drawn per stack).
BREATHING = (0.003, 0.006)
#: Handheld shake: largest shift of a frame against frame 1, in pixels.
MAX_SHIFT = 4.0
JPEG_QUALITY = 92
MAKE = "focuswrap"
MODEL = "focuswrap synthetic"
_FIRST_SHOT = datetime(2024, 6, 1, 12, 0, 0)

# EXIF tag numbers (Pillow's ExifTags.Base / ExifTags.IFD).
_IMAGE_DESCRIPTION = 0x010E
_MAKE = 0x010F
_MODEL = 0x0110
_SOFTWARE = 0x0131
_DATETIME = 0x0132
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003

_WORDS = (
    "focus",
    "stack",
    "macro",
    "enfuse",
    "align",
    "hugin",
    "bracket",
    "depth",
    "sharp",
    "lens",
    "pcb",
    "R12",
    "C7",
    "U3",
    "10k",
    "4u7",
    "GND",
    "VCC",
)


@dataclass(frozen=True)
class RaisedObject:
    """An object standing in front of the plane, at one depth."""

    #: (left, top, right, bottom) in pixels of the truth image (frame 1's geometry).
    box: tuple[int, int, int, int]
    #: Depth of its face (0 far, 1 near).
    depth: float


@dataclass(frozen=True)
class SyntheticStack:
    """The files :func:`make_stack` wrote and how they were made."""

    #: The frames, ``frame_1.jpg`` ... in focus order (nearest band first).
    frames: list[Path]
    #: The all-in-focus scene, PNG, in frame 1's geometry.
    truth: Path
    size: tuple[int, int]
    seed: int
    shake: bool
    #: Depth (0 far, 1 near) each frame is focused on.
    focus_depths: tuple[float, ...]
    #: Magnification of each frame against frame 1, about the frame's centre (1.0 for frame 1).
    magnifications: tuple[float, ...]
    #: How far (dx, dy) the picture content moved in each frame against frame 1, in pixels.
    shifts: tuple[tuple[float, float], ...]
    #: Objects standing in front of the plane (whose depth follows the row: about 0 at the top, 1 at the bottom).
    objects: tuple[RaisedObject, ...]


def make_stack(
    folder: Path,
    *,
    frames: int = 5,
    size: tuple[int, int] = (640, 480),
    seed: int = 1,
    shake: bool = True,
) -> SyntheticStack:
    """Write a synthetic focus bracket of ``frames`` JPEGs and its truth PNG into ``folder``.

    Frame k is focused on depth band k (nearest first) and blurred
    elsewhere, up to :data:`MAX_BLUR` px.  With ``shake``, frames 2.. are
    magnified a little more each frame (focus breathing) and shifted a few
    pixels (handheld camera); frame 1 is never moved.
    """
    if frames < 2:
        raise ValueError(f"a focus bracket needs at least 2 frames, got {frames}")
    width, height = size
    if width < 64 or height < 64:
        raise ValueError(f"size must be at least 64x64, got {width}x{height}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)

    scene, depth, objects = _render_scene(rng, (width + 2 * MARGIN, height + 2 * MARGIN))
    blurred = [scene if r == 0 else scene.filter(ImageFilter.GaussianBlur(r)) for r in BLUR_LEVELS]

    # Nearest band first, band centres spread evenly over the depth 0..1.
    focus_depths = tuple(round(1 - (i + 0.5) / frames, 6) for i in range(frames))
    magnifications = [1.0]
    shifts = [(0.0, 0.0)]
    step = rng.uniform(*BREATHING)
    for i in range(1, frames):
        if shake:
            magnifications.append(1 + step * i)
            shifts.append((rng.uniform(-MAX_SHIFT, MAX_SHIFT), rng.uniform(-MAX_SHIFT, MAX_SHIFT)))
        else:
            magnifications.append(1.0)
            shifts.append((0.0, 0.0))

    truth = folder / "truth.png"
    _crop_centre(scene, size).save(truth)
    paths: list[Path] = []
    for i, focus in enumerate(focus_depths):
        frame = _focus_on(blurred, depth, focus)
        frame = _camera(frame, size, magnifications[i], shifts[i])
        path = folder / f"frame_{i + 1}.jpg"
        frame.save(path, quality=JPEG_QUALITY, exif=_exif(i, frames, focus))
        paths.append(path)
    return SyntheticStack(
        frames=paths,
        truth=truth,
        size=size,
        seed=seed,
        shake=shake,
        focus_depths=focus_depths,
        magnifications=tuple(magnifications),
        shifts=tuple(shifts),
        objects=objects,
    )


def _render_scene(
    rng: random.Random, size: tuple[int, int]
) -> tuple[Image.Image, Image.Image, tuple[RaisedObject, ...]]:
    """The sharp scene (RGB), its depth map ("L": 0 far .. 255 near) and its raised objects."""
    width, height = size
    scene = Image.new("RGB", size)
    draw = ImageDraw.Draw(scene)

    def colour(low: int = 0, high: int = 255) -> tuple[int, int, int]:
        return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))

    # Blocks of colour at several scales: corners everywhere, at every size
    # the control point finder may look at (it works on a 2x downscaled copy).
    for cell in (96, 40, 16):
        for y in range(0, height, cell):
            for x in range(0, width, cell):
                if cell == 96 or rng.random() < 0.45:
                    w = rng.randint(cell // 2, cell)
                    h = rng.randint(cell // 2, cell)
                    ox, oy = rng.randint(0, cell - w), rng.randint(0, cell - h)
                    draw.rectangle((x + ox, y + oy, x + ox + w - 1, y + oy + h - 1), fill=colour())
    area = width * height
    for _ in range(area // 2500):  # lines
        x, y = rng.randrange(width), rng.randrange(height)
        draw.line(
            (x, y, x + rng.randint(-80, 80), y + rng.randint(-80, 80)),
            fill=colour(),
            width=rng.randint(1, 3),
        )
    for _ in range(area // 5000):  # outlined and filled shapes
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randint(4, 28)
        box = (x - r, y - r, x + r, y + rng.randint(r // 2, 2 * r))
        if rng.random() < 0.5:
            draw.ellipse(box, outline=colour(), fill=colour() if rng.random() < 0.5 else None, width=2)
        else:
            points = [(x + rng.randint(-r, r), y + rng.randint(-r, r)) for _ in range(rng.randint(3, 5))]
            draw.polygon(points, fill=colour(), outline=colour())
    fonts = [ImageFont.load_default(size=s) for s in (11, 16, 24)]
    for _ in range(area // 6000):  # text: dense, high-contrast fine detail
        word = rng.choice(_WORDS)
        dark = rng.random() < 0.5
        draw.text(
            (rng.randrange(width), rng.randrange(height)),
            word,
            fill=colour(0, 60) if dark else colour(200, 255),
            font=rng.choice(fonts),
        )

    # Depth: the plane recedes from bottom (near) to top (far); two raised
    # objects stand at the depth of the plane's lower part.
    depth = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    depth_draw = ImageDraw.Draw(depth)
    objects = []
    for _ in range(2):
        w, h = rng.randint(width // 8, width // 5), rng.randint(height // 8, height // 5)
        x, y = rng.randint(MARGIN, width - w - MARGIN), rng.randint(MARGIN, height // 2)
        box = (x, y, x + w, y + h)
        near = rng.randint(200, 240)
        corner = min(w, h) // 4
        depth_draw.rounded_rectangle(box, radius=corner, fill=near)
        in_frame = (x - MARGIN, y - MARGIN, x + w - MARGIN, y + h - MARGIN)
        objects.append(RaisedObject(box=in_frame, depth=near / 255))
        # The object's own face: stripes and a label, so it reads as an object.
        draw.rounded_rectangle(box, radius=corner, fill=colour(20, 90), outline=colour(200, 255), width=3)
        stripe = colour(150, 255)
        for sx in range(x + 6, x + w - 6, 7):
            draw.line((sx, y + 6, sx, y + h // 2), fill=stripe, width=2)
        draw.text((x + 8, y + h // 2 + 4), rng.choice(_WORDS), fill=colour(220, 255), font=fonts[1])

    # Fine grain (paper/sensor texture) from the seeded generator:
    # Image.effect_noise cannot be seeded.
    grain = Image.frombytes("L", size, rng.randbytes(area)).convert("RGB")
    scene = Image.blend(scene, grain, 0.12)
    return scene, depth, tuple(objects)


def _focus_on(blurred: list[Image.Image], depth: Image.Image, focus: float) -> Image.Image:
    """The scene focused at depth ``focus``: per pixel, the blur level its depth calls for."""

    def radius(level: int) -> float:
        return min(MAX_BLUR, BLUR_PER_DEPTH * max(0.0, abs(level / 255 - focus) - SHARP_DEPTH))

    # Compositing level j over the result so far with weight t in [0, 1]
    # interpolates linearly between neighbouring levels j-1 and j.
    frame = blurred[0]
    for j in range(1, len(BLUR_LEVELS)):
        low, high = BLUR_LEVELS[j - 1], BLUR_LEVELS[j]
        lut = [round(255 * min(1.0, max(0.0, (radius(v) - low) / (high - low)))) for v in range(256)]
        if max(lut) == 0:
            break
        frame = Image.composite(blurred[j], frame, depth.point(lut))
    return frame


def _camera(scene: Image.Image, size: tuple[int, int], magnification: float, shift: tuple[float, float]) -> Image.Image:
    """Crop the frame from the scene (which has :data:`MARGIN` on every side), magnified and shifted."""
    if magnification == 1.0 and shift == (0.0, 0.0):
        return _crop_centre(scene, size)
    cx, cy = scene.width / 2, scene.height / 2
    dx, dy = shift
    s = magnification
    # AFFINE maps each output pixel (x, y) back to the scene: undo the shift
    # and the magnification about the centre, then add the margin.
    a, c = 1 / s, cx - (size[0] / 2 + dx) / s
    e, f = 1 / s, cy - (size[1] / 2 + dy) / s
    return scene.transform(size, Image.Transform.AFFINE, (a, 0, c, 0, e, f), resample=Image.Resampling.BICUBIC)


def _crop_centre(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    left = (image.width - size[0]) // 2
    top = (image.height - size[1]) // 2
    return image.crop((left, top, left + size[0], top + size[1]))


def _exif(index: int, frames: int, focus: float) -> Image.Exif:
    """A tiny EXIF block, so EXIF carry-over into the result can be tested."""
    exif = Image.Exif()
    exif[_MAKE] = MAKE
    exif[_MODEL] = MODEL
    exif[_SOFTWARE] = "focuswrap.synthetic"
    exif[_IMAGE_DESCRIPTION] = f"frame {index + 1} of {frames}, focus depth {focus:.2f}"
    # One second apart, as a camera's focus bracket would be.
    stamp = (_FIRST_SHOT + timedelta(seconds=index)).strftime("%Y:%m:%d %H:%M:%S")
    exif[_DATETIME] = stamp
    exif.get_ifd(_EXIF_IFD)[_DATETIME_ORIGINAL] = stamp
    return exif
