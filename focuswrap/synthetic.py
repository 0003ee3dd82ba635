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
from typing import NamedTuple

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
    #: What it shows: "plane" or "figure" (see :func:`make_stack`).
    scene: str
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
    scene: str = "plane",
) -> SyntheticStack:
    """Write a synthetic focus bracket of ``frames`` JPEGs and its truth PNG into ``folder``.

    Frame k is focused on depth band k (nearest first) and blurred
    elsewhere, up to :data:`MAX_BLUR` px.  With ``shake``, frames 2.. are
    magnified a little more each frame (focus breathing) and shifted a few
    pixels (handheld camera); frame 1 is never moved.

    ``scene``: ``"plane"`` (a tilted textured plane with two raised blocks, what
    the tests measure on) or ``"figure"`` (a painted miniature on its base on a
    cutting mat, paint pots behind it: the demo).
    """
    if scene not in SCENES:
        raise ValueError(f"scene must be one of {', '.join(SCENES)}, got {scene!r}")
    if frames < 2:
        raise ValueError(f"a focus bracket needs at least 2 frames, got {frames}")
    width, height = size
    if width < 64 or height < 64:
        raise ValueError(f"size must be at least 64x64, got {width}x{height}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)

    render = _render_figure_scene if scene == "figure" else _render_scene
    picture, depth, objects = render(rng, (width + 2 * MARGIN, height + 2 * MARGIN))
    blurred = [picture if r == 0 else picture.filter(ImageFilter.GaussianBlur(r)) for r in BLUR_LEVELS]

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
    _crop_centre(picture, size).save(truth)
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
        scene=scene,
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


# ------------------------------------------------------------------ the painted figure


#: The scenes :func:`make_stack` can render.
SCENES = ("plane", "figure")


def _render_figure_scene(
    rng: random.Random, size: tuple[int, int]
) -> tuple[Image.Image, Image.Image, tuple[RaisedObject, ...]]:
    """A painted miniature on a round base, on a cutting mat, paint pots behind it.

    What a photographer shoots with focus bracketing: the mat recedes from the
    bottom (near) to the top (far), the base's front rim is nearest, the figure
    a little behind it, the pots far away.  The mat's grid, numbers and grain
    and the figure's painted edges give the control point finder its corners.
    """
    width, height = size
    u = min(width, height) / 100  # one "unit": shapes scale with the frame
    scene = Image.new("RGB", size, (46, 92, 70))
    draw = ImageDraw.Draw(scene)
    depth = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    depth_draw = ImageDraw.Draw(depth)
    fonts = [ImageFont.load_default(size=max(8, round(s * u))) for s in (2.2, 3.2, 4.5)]

    def jitter(c: tuple[int, int, int], amount: int = 12) -> tuple[int, int, int]:
        r, g, b = (max(0, min(255, v + rng.randint(-amount, amount))) for v in c)
        return (r, g, b)

    # A textured mat (as the shooting tips advise): patches of green and brown at
    # several scales, so that no pattern repeats (a regular grid would let the
    # control point finder match the wrong cell), and faint ruler lines on top.
    for cell in (96, 40, 16):
        for y in range(0, height, cell):
            for x in range(0, width, cell):
                if cell == 96 or rng.random() < 0.45:
                    w, h = rng.randint(cell // 2, cell), rng.randint(cell // 2, cell)
                    ox, oy = rng.randint(0, cell - w), rng.randint(0, cell - h)
                    shade = rng.choice(((46, 92, 70), (70, 110, 80), (100, 85, 60), (35, 70, 55), (130, 120, 90)))
                    draw.rectangle((x + ox, y + oy, x + ox + w - 1, y + oy + h - 1), fill=jitter(shade, 25))
    cell = max(6, round(10 * u))
    for x in range(rng.randint(0, cell), width, cell):
        draw.line((x, 0, x, height), fill=(150, 185, 160), width=1)
    for y in range(rng.randint(0, cell), height, cell):
        draw.line((0, y, width, y), fill=(150, 185, 160), width=1)
    for _ in range(width * height // 4000):  # ruler numbers, scattered
        draw.text(
            (rng.randrange(width), rng.randrange(height)), str(rng.randint(1, 30)), fill=(220, 235, 225), font=fonts[0]
        )
    for _ in range(width * height // 1500):  # scuffs, cuts and dried paint drops
        x, y = rng.randrange(width), rng.randrange(height)
        if rng.random() < 0.6:
            draw.line((x, y, x + rng.randint(-30, 30), y + rng.randint(-6, 6)), fill=jitter((70, 120, 95), 25))
        else:
            r = rng.randint(1, 4)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=jitter(rng.choice(_PAINTS)[1], 20))

    objects: list[RaisedObject] = []

    # Paint pots at the back (far): a body, a lid of its colour, a label.
    x = round(4 * u)
    while x < width - 14 * u:
        w, h = round(rng.uniform(10, 13) * u), round(rng.uniform(13, 17) * u)
        top = round(rng.uniform(2, 6) * u)
        label, colour = rng.choice(_PAINTS)
        near = round(255 * ((top + h) / height) * 0.9)  # standing on the mat where it is
        body = (x, top, x + w, top + h)
        draw.rectangle(body, fill=(225, 225, 220), outline=(150, 150, 150), width=2)
        draw.rectangle((x, top + h // 3, x + w, top + h // 3 + round(4 * u)), fill=colour)
        draw.ellipse((x, top - round(1.5 * u), x + w, top + round(1.5 * u)), fill=jitter(colour), outline=(40, 40, 40))
        draw.text((x + 2, top + h // 3 + round(4.5 * u)), label, fill=(30, 30, 30), font=fonts[0])
        depth_draw.rectangle((x, top - round(1.5 * u), x + w, top + h), fill=near)
        objects.append(RaisedObject(box=(x - MARGIN, top - MARGIN, x + w - MARGIN, top + h - MARGIN), depth=near / 255))
        x += w + round(rng.uniform(3, 8) * u)

    # The base: a black disc with a sanded top, a few stones and tufts of grass.
    cx, by = width / 2, height * 0.74
    rx, ry = 24 * u, 7 * u
    rim = 4 * u
    base_depth = 215
    draw.rectangle((cx - rx, by, cx + rx, by + rim), fill=(28, 28, 30))
    draw.ellipse((cx - rx, by + rim - ry, cx + rx, by + rim + ry), fill=(28, 28, 30))
    draw.arc((cx - rx, by + rim - ry, cx + rx, by + rim + ry), 20, 160, fill=(90, 90, 95), width=2)
    draw.ellipse((cx - rx, by - ry, cx + rx, by + ry), fill=(125, 104, 72))
    for _ in range(int(rx * ry)):  # sand
        px, py = rng.uniform(-1, 1), rng.uniform(-1, 1)
        if px * px + py * py <= 0.95:
            sx, sy = cx + px * rx, by + py * ry
            draw.point((sx, sy), fill=jitter((150, 128, 90), 45))
    for _ in range(5):  # stones
        sx, sy = cx + rng.uniform(-0.8, 0.8) * rx, by + rng.uniform(-0.5, 0.6) * ry
        radius = rng.uniform(1.2, 2.5) * u
        stone = [
            (sx + radius * rng.uniform(0.6, 1.1) * c, sy + radius * 0.6 * rng.uniform(0.6, 1.1) * s)
            for c, s in _OCTAGON
        ]
        draw.polygon(stone, fill=jitter((130, 130, 125), 15), outline=(200, 200, 195))
    for _ in range(4):  # tufts of grass
        tx, ty = cx + rng.uniform(-0.85, 0.85) * rx, by + rng.uniform(-0.3, 0.6) * ry
        for _ in range(9):
            draw.line(
                (tx, ty, tx + rng.uniform(-2, 2) * u, ty - rng.uniform(1.5, 3.5) * u), fill=(150, 170, 60), width=1
            )
    depth_draw.rectangle((cx - rx, by, cx + rx, by + rim), fill=base_depth + 10)
    depth_draw.ellipse((cx - rx, by + rim - ry, cx + rx, by + rim + ry), fill=base_depth + 10)
    depth_draw.ellipse((cx - rx, by - ry, cx + rx, by + ry), fill=base_depth)
    box = (round(cx - rx) - MARGIN, round(by - ry) - MARGIN, round(cx + rx) - MARGIN, round(by + rim + ry) - MARGIN)
    objects.append(RaisedObject(box=box, depth=base_depth / 255))

    # The figure: a knight with a red cloak, sword and shield, standing on the base.
    figure_depth = 190
    fx, feet = cx, by - 0.5 * u
    shapes = _knight(fx, feet, u)
    for shape in shapes:
        if isinstance(shape, _Poly):
            draw.polygon(shape.points, fill=shape.fill, outline=shape.outline)
            depth_draw.polygon(shape.points, fill=figure_depth + (12 if shape.fill == _SHIELD else 0))
        elif isinstance(shape, _Ellipse):
            draw.ellipse(shape.box, fill=shape.fill, outline=shape.outline, width=max(1, round(0.4 * u)))
            depth_draw.ellipse(shape.box, fill=figure_depth + (12 if shape.fill == _SHIELD else 0))
        else:  # a highlight or a painted line: no depth of its own
            draw.line(shape.points, fill=shape.fill, width=max(1, round(shape.width * u)))
    left = round(fx - 16 * u)
    objects.append(
        RaisedObject(
            box=(left - MARGIN, round(feet - 46 * u) - MARGIN, round(fx + 16 * u) - MARGIN, round(feet) - MARGIN),
            depth=figure_depth / 255,
        )
    )
    # A little grain (the mat's texture, the paint's), as in the plane scene.
    grain = Image.frombytes("L", size, rng.randbytes(width * height)).convert("RGB")
    scene = Image.blend(scene, grain, 0.08)
    return scene, depth, tuple(objects)


#: Paint pots: (label, colour).
_PAINTS = (
    ("Blood Red", (180, 30, 35)),
    ("Ultramarine", (30, 60, 160)),
    ("Gold", (220, 190, 60)),
    ("Moss", (60, 130, 60)),
    ("Flesh", (200, 150, 120)),
    ("Amethyst", (120, 60, 140)),
)
_SHIELD = (36, 70, 150)
_OCTAGON = tuple(
    (c, s) for c, s in ((1, 0), (0.7, 0.7), (0, 1), (-0.7, 0.7), (-1, 0), (-0.7, -0.7), (0, -1), (0.7, -0.7))
)


_RGB = tuple[int, int, int]
_Point = tuple[float, float]


class _Poly(NamedTuple):
    """A filled polygon with an outline."""

    points: list[_Point]
    fill: _RGB
    outline: _RGB


class _Ellipse(NamedTuple):
    """A filled ellipse in ``box`` (left, top, right, bottom) with an outline."""

    box: tuple[float, float, float, float]
    fill: _RGB
    outline: _RGB


class _Line(NamedTuple):
    """A painted line, ``width`` in units."""

    points: list[_Point]
    fill: _RGB
    width: float


def _knight(x: float, feet: float, u: float) -> list[_Poly | _Ellipse | _Line]:
    """The figure as drawing instructions, back to front."""

    def p(dx: float, dy: float) -> tuple[float, float]:
        return (x + dx * u, feet - dy * u)

    def box(dx0: float, dy0: float, dx1: float, dy1: float) -> tuple[float, float, float, float]:
        (a, b), (c, d) = p(dx0, dy0), p(dx1, dy1)
        return (min(a, c), min(b, d), max(a, c), max(b, d))

    cloak, cloak_light = (150, 25, 30), (215, 70, 60)
    steel, steel_light, steel_dark = (150, 155, 165), (235, 240, 245), (70, 75, 85)
    leather, gold, skin = (95, 60, 35), (215, 175, 55), (225, 170, 135)
    return [
        _Poly([p(-7, 33), p(7, 33), p(11, 6), p(-11, 6)], cloak, (70, 10, 15)),  # cloak behind
        _Line([p(-9, 10), p(-5, 30)], cloak_light, 0.5),
        _Line([p(9, 10), p(5, 30)], cloak_light, 0.5),
        _Poly([p(-4.5, 17), p(-0.8, 17), p(-1.5, 2), p(-4.5, 2)], (45, 45, 70), (20, 20, 30)),  # legs
        _Poly([p(0.8, 17), p(4.5, 17), p(4.5, 2), p(1.5, 2)], (45, 45, 70), (20, 20, 30)),
        _Ellipse(box(-6.5, 3, -0.8, 0), leather, (40, 25, 15)),  # boots
        _Ellipse(box(0.8, 3, 6.5, 0), leather, (40, 25, 15)),
        _Poly([p(-6, 32), p(6, 32), p(5, 17), p(-5, 17)], steel, steel_dark),  # breastplate
        _Line([p(-5.5, 31), p(-4.5, 18)], steel_light, 0.4),
        _Line([p(0, 31), p(0, 18)], steel_dark, 0.3),
        _Line([p(-6, 32), p(6, 32)], steel_light, 0.4),
        _Poly([p(-5.3, 18.5), p(5.3, 18.5), p(5.3, 16.5), p(-5.3, 16.5)], leather, (40, 25, 15)),  # belt
        _Ellipse(box(-1.2, 18.7, 1.2, 16.3), gold, (120, 90, 20)),
        _Poly([p(6, 31), p(9, 30), p(11, 20), p(9, 19.5), p(7, 27)], steel, steel_dark),  # sword arm
        _Line([p(10.5, 19), p(10.5, 44)], steel_light, 0.8),  # sword blade
        _Line([p(10.9, 20), p(10.9, 43)], steel_dark, 0.3),
        _Line([p(7.5, 21), p(13.5, 21)], gold, 0.9),  # cross-guard
        _Line([p(10.5, 17), p(10.5, 20.5)], leather, 0.9),  # grip
        _Poly([p(-6, 31), p(-9, 30), p(-10, 22), p(-8, 21), p(-7, 27)], steel, steel_dark),  # shield arm
        _Ellipse(box(-16, 30, -4, 14), _SHIELD, gold),  # round shield, nearer than the figure
        _Line([p(-10, 28.5), p(-10, 15.5)], gold, 0.8),  # its emblem: a cross
        _Line([p(-14.5, 22), p(-5.5, 22)], gold, 0.8),
        _Line([p(-14, 27), p(-12, 29)], (120, 150, 230), 0.4),  # a painted highlight on the rim
        _Ellipse(box(-1.8, 34.5, 1.8, 31.5), skin, (150, 100, 80)),  # neck
        _Ellipse(box(-3.5, 41, 3.5, 33), skin, (150, 100, 80)),  # face
        _Line([p(-1.5, 37.5), p(-0.7, 37.5)], (30, 20, 20), 0.5),  # eyes
        _Line([p(0.7, 37.5), p(1.5, 37.5)], (30, 20, 20), 0.5),
        _Poly([p(-4, 38.5), p(4, 38.5), p(3.5, 42), p(0, 43.5), p(-3.5, 42)], steel, steel_dark),  # helmet
        _Line([p(-3, 41.5), p(2.5, 42.8)], steel_light, 0.4),
        _Line([p(0, 43.5), p(-1, 46)], (200, 40, 40), 1.0),  # plume
        _Line([p(0.5, 43.5), p(1.5, 46.2)], (240, 200, 60), 0.8),
    ]
