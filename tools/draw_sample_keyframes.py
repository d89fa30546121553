"""Draw the project's own sample keyframes (cel style) into `samples/`.

Every picture is built from signed distance fields: each body part is a function that tells, for
every pixel, how far it lies outside (positive) or inside (negative) the part. That gives flat
colour fills, cel shadows and dark outlines of an even weight with exact anti-aliasing, from numpy
alone, so re-running this script reproduces the committed samples pixel for pixel.

    python tools/draw_sample_keyframes.py            # writes samples/
    python tools/draw_sample_keyframes.py --out DIR  # writes the same files under DIR

The samples exercise what matters to the engine: a large non-linear arm swing at the model's native
512x320 canvas, a transparent pair with anti-aliased alpha at another size, a three-key sequence at
16:9, and a rough sketch for the arm swing's middle in-between.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

Field = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (x, y) pixel coordinates -> signed distance
RGB = tuple[int, int, int]

INK: RGB = (44, 34, 48)
GRAPHITE: RGB = (58, 58, 72)
LINE_WIDTH = 2.6
COARSE, MARGIN = 8, 24.0  # coarse sampling step and safety margin (pixels) for finding a shape's box


# --- distance fields -------------------------------------------------------------------------


def circle(cx: float, cy: float, r: float) -> Field:
    return lambda x, y: np.hypot(x - cx, y - cy) - r


def ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> Field:
    """Close-to-Euclidean ellipse distance (first-order correction of the implicit function)."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))

    def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u = (x - cx) * c + (y - cy) * s
        v = -(x - cx) * s + (y - cy) * c
        k0 = np.hypot(u / rx, v / ry)
        k1 = np.maximum(np.hypot(u / (rx * rx), v / (ry * ry)), 1e-9)
        return k0 * (k0 - 1.0) / k1

    return field


def limb(a: Sequence[float], b: Sequence[float], ra: float, rb: float | None = None) -> Field:
    """Capsule from a to b whose radius tapers from ra to rb (an arm, a leg, an ear)."""
    rb = ra if rb is None else rb
    ax, ay = a
    ex, ey = b[0] - ax, b[1] - ay
    length2 = ex * ex + ey * ey

    def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        wx, wy = x - ax, y - ay
        t = np.clip((wx * ex + wy * ey) / length2, 0.0, 1.0)
        return np.hypot(wx - ex * t, wy - ey * t) - (ra + (rb - ra) * t)

    return field


def polygon(points: Sequence[Sequence[float]], rounding: float = 0.0) -> Field:
    """Exact distance to a closed polygon, optionally with rounded corners."""
    pts = [(float(px), float(py)) for px, py in points]

    def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d2 = (x - pts[0][0]) ** 2 + (y - pts[0][1]) ** 2
        inside = np.zeros(x.shape, dtype=bool)
        for (vx, vy), (ux, uy) in zip(pts, pts[-1:] + pts[:-1]):
            ex, ey = ux - vx, uy - vy
            wx, wy = x - vx, y - vy
            t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
            d2 = np.minimum(d2, (wx - ex * t) ** 2 + (wy - ey * t) ** 2)
            c1, c2, c3 = y >= vy, y < uy, ex * wy > ey * wx
            inside ^= (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        return np.where(inside, -1.0, 1.0) * np.sqrt(d2) - rounding

    return field


def stroke(points: Sequence[Sequence[float]], width: float) -> Field:
    """A drawn line through `points` with round ends (mouths, brows, creases)."""
    pieces = [limb(a, b, width / 2) for a, b in zip(points, points[1:])]
    return union(*pieces)


def curve(p0: Sequence[float], p1: Sequence[float], p2: Sequence[float], steps: int = 12) -> list[tuple[float, float]]:
    """Points along a quadratic curve from p0 to p2 pulled toward p1."""
    out = []
    for i in range(steps + 1):
        t = i / steps
        out.append(tuple((1 - t) ** 2 * p0[k] + 2 * (1 - t) * t * p1[k] + t * t * p2[k] for k in range(2)))
    return out


def halfplane(px: float, py: float, nx: float, ny: float) -> Field:
    """Everything on the side of the line through (px, py) that the normal (nx, ny) points away from."""
    n = math.hypot(nx, ny)
    return lambda x, y: ((x - px) * nx + (y - py) * ny) / n


def union(*fields: Field) -> Field:
    def field(x, y):
        out = fields[0](x, y)
        for f in fields[1:]:
            out = np.minimum(out, f(x, y))
        return out

    return field


def intersect(*fields: Field) -> Field:
    def field(x, y):
        out = fields[0](x, y)
        for f in fields[1:]:
            out = np.maximum(out, f(x, y))
        return out

    return field


def subtract(base: Field, cut: Field) -> Field:
    return lambda x, y: np.maximum(base(x, y), -cut(x, y))


def blend(a: Field, b: Field, k: float) -> Field:
    """Union with a soft fillet of size k, for organic joins (a bunny's cheeks into its body)."""

    def field(x, y):
        da, db = a(x, y), b(x, y)
        h = np.clip(0.5 + 0.5 * (db - da) / k, 0.0, 1.0)
        return db + (da - db) * h - k * h * (1.0 - h)

    return field


def shifted(f: Field, dx: float, dy: float) -> Field:
    """The same shape moved by (dx, dy)."""
    return lambda x, y: f(x - dx, y - dy)


@dataclass(frozen=True)
class Frame2D:
    """Placement of a drawing drawn in its own coordinates: squash/stretch, turn, then move.

    Squash and stretch happen about the local origin (a character's feet), so a squashed body
    stays on the ground.
    """

    x: float = 0.0
    y: float = 0.0
    angle: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def local(self, f: Field) -> Field:
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))

        def field(x, y):
            u = (x - self.x) * c + (y - self.y) * s
            v = -(x - self.x) * s + (y - self.y) * c
            return f(u / self.sx, v / self.sy) * min(self.sx, self.sy)

        return field

    def point(self, u: float, v: float) -> tuple[float, float]:
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        u, v = u * self.sx, v * self.sy
        return self.x + u * c - v * s, self.y + u * s + v * c


# --- painting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shadow:
    """Cel shadow inside a part: the part minus a copy of it moved toward the light."""

    colour: RGB
    toward_light: tuple[float, float] = (-5.0, -5.0)
    shape: Field | None = None  # an explicit shadow shape instead of the moved copy


class Painter:
    """Composites parts back to front in premultiplied float RGBA, then rounds to 8-bit RGBA."""

    def __init__(self, width: int, height: int, backdrop: RGB | None):
        self.width, self.height = width, height
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        self.x, self.y = xs + 0.5, ys + 0.5
        self.colour = np.zeros((height, width, 3))
        self.alpha = np.zeros((height, width))
        if backdrop is not None:
            self.colour[:] = np.asarray(backdrop, dtype=np.float64) / 255.0
            self.alpha[:] = 1.0

    def distance(self, f: Field) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Distance in pixels, and the box of the picture it covers (None: nowhere near).

        The field is first sampled every COARSE pixels to find the box where it can come near
        the shape; fields here change by at most about one pixel per pixel, so MARGIN is safe.
        Inside the box it is divided by its gradient length, so squashed or approximate fields
        still give outlines of one weight.
        """
        near = f(self.x[::COARSE, ::COARSE], self.y[::COARSE, ::COARSE]) < MARGIN
        if not near.any():
            return None
        rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
        box = (slice(max(0, (rows[0] - 1) * COARSE), min(self.height, (rows[-1] + 2) * COARSE)),
               slice(max(0, (cols[0] - 1) * COARSE), min(self.width, (cols[-1] + 2) * COARSE)))
        d = f(self.x[box], self.y[box])
        gy, gx = np.gradient(d)
        return box, d / np.maximum(np.hypot(gx, gy), 0.25)

    def paint(self, box: tuple[slice, slice], coverage: np.ndarray, colour: RGB, opacity: float = 1.0) -> None:
        a = np.clip(coverage, 0.0, 1.0)[..., None] * opacity
        rgb = np.asarray(colour, dtype=np.float64) / 255.0
        self.colour[box] = self.colour[box] * (1.0 - a) + rgb * a
        self.alpha[box] = self.alpha[box] * (1.0 - a[..., 0]) + a[..., 0]

    def fill(self, f: Field, colour: RGB, opacity: float = 1.0) -> None:
        found = self.distance(f)
        if found:
            box, d = found
            self.paint(box, 0.5 - d, colour, opacity)

    def line(self, f: Field, width: float = LINE_WIDTH, colour: RGB = INK, opacity: float = 1.0) -> None:
        found = self.distance(f)
        if found:
            box, d = found
            self.paint(box, width / 2 + 0.5 - np.abs(d), colour, opacity)

    def part(self, f: Field, colour: RGB, shadow: Shadow | None = None, width: float = LINE_WIDTH) -> None:
        """A cel: flat fill, its shadow tone, and the outline centred on its edge."""
        self.fill(f, colour)
        if shadow is not None:
            if shadow.shape is not None:
                shade = intersect(f, shadow.shape)
            else:
                shade = subtract(f, shifted(f, *shadow.toward_light))
            self.fill(shade, shadow.colour)
        self.line(f, width)

    def ink(self, f: Field, colour: RGB = INK) -> None:
        """A drawn line given as the solid shape of the stroke."""
        self.fill(f, colour)

    def feature(self, f: Field, colour: RGB) -> None:
        """A small solid shape that a rough would still draw (eyes, a nose)."""
        self.fill(f, colour)

    def image(self) -> np.ndarray:
        alpha = self.alpha
        safe = np.where(alpha > 0, alpha, 1.0)
        rgb = np.where(alpha[..., None] > 0, self.colour / safe[..., None], 0.0)
        out = np.concatenate([rgb, alpha[..., None]], axis=-1)
        return np.floor(np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class SketchPainter(Painter):
    """Rough pencil lines instead of cels: every outline drawn twice with a wobble, no fills.

    An artist's rough for an in-between is mostly searching lines over the shapes, overlaps
    included, which is what this gives.
    """

    def __init__(self, width: int, height: int):
        super().__init__(width, height, backdrop=(255, 255, 255))
        self.passes = 0

    def wobble(self, f: Field, seed: int) -> Field:
        p = 1.7 * seed
        amp = 1.4 + 0.4 * (seed % 2)

        def field(x, y):
            wx = amp * (np.sin(x / 23.0 + y / 37.0 + p) + 0.5 * np.sin(y / 9.0 - x / 13.0 + 2 * p))
            wy = amp * (np.sin(y / 19.0 - x / 31.0 + 3 * p) + 0.5 * np.sin(x / 11.0 + y / 7.0 + p))
            return f(x + wx, y + wy)

        return field

    def rough(self, f: Field, width: float, strokes: int) -> None:
        for _ in range(strokes):
            self.passes += 1
            found = self.distance(self.wobble(f, self.passes))
            if found:
                box, d = found
                pressure = 0.55 + 0.4 * np.abs(np.sin(self.x[box] / 17.0 + self.y[box] / 29.0 + 0.9 * self.passes))
                self.paint(box, (width / 2 + 0.5 - np.abs(d)) * pressure, GRAPHITE)

    def part(self, f: Field, colour: RGB, shadow: Shadow | None = None, width: float = LINE_WIDTH) -> None:
        self.rough(f, 1.6, strokes=2)

    def ink(self, f: Field, colour: RGB = INK) -> None:
        self.rough(f, 0.8, strokes=1)

    def feature(self, f: Field, colour: RGB) -> None:
        self.rough(f, 1.2, strokes=1)

    def fill(self, f: Field, colour: RGB, opacity: float = 1.0) -> None:
        """Flat tones (cheeks, cast shadows) are left out of a rough."""

    def line(self, f: Field, width: float = LINE_WIDTH, colour: RGB = INK, opacity: float = 1.0) -> None:
        self.rough(f, 1.2, strokes=1)


# --- arm swing: a kid raising one arm ---------------------------------------------------------

SKIN, SKIN_SHADE = (252, 222, 198), (228, 176, 158)
HAIR, HAIR_SHADE = (96, 60, 46), (64, 38, 34)
SHIRT, SHIRT_SHADE = (238, 106, 86), (194, 72, 76)
SHORTS, SHORTS_SHADE = (70, 112, 188), (50, 80, 148)
SOCK, SOCK_SHADE = (250, 250, 248), (206, 210, 226)
SHOE, SHOE_SHADE = (84, 72, 92), (56, 46, 64)
CHEEK = (246, 160, 150)
EYE = (40, 32, 46)
MOUTH = (150, 52, 62)
BACKDROP = (238, 233, 220)
FLOOR_SHADOW = (216, 208, 192)


@dataclass(frozen=True)
class KidPose:
    upper_arm: float  # degrees from hanging straight down, toward the raised side
    forearm: float  # same measure for the forearm
    head_tilt: float  # degrees, positive leans the head toward the raised arm
    look_up: float  # pupils' shift up in pixels
    mouth_open: float  # 0 closed smile .. 1 open shout


def _direction(angle: float) -> tuple[float, float]:
    """Unit vector of a limb `angle` degrees from hanging down, swinging out to screen right."""
    return math.sin(math.radians(angle)), math.cos(math.radians(angle))


def shade(colour: RGB) -> Shadow:
    """The kid's cel shadow: light from the upper left."""
    return Shadow(colour, (-4.0, -4.0))


def draw_kid(p: Painter, pose: KidPose, cx: float = 236.0, ground: float = 300.0) -> None:
    p.fill(ellipse(cx + 6, ground - 2, 74, 11), FLOOR_SHADOW)

    # legs and shoes
    for side in (-1, 1):
        hip = (cx + side * 17, ground - 70)
        ankle = (cx + side * 19, ground - 16)
        p.part(limb(hip, ankle, 10.5, 9), SKIN, shade(SKIN_SHADE))
        p.part(limb((ankle[0], ankle[1] - 8), (ankle[0], ankle[1] + 2), 10.5), SOCK, shade(SOCK_SHADE))
        p.part(ellipse(ankle[0] + side * 7, ground - 6, 19, 10), SHOE, shade(SHOE_SHADE))

    # shorts and shirt
    p.part(polygon([(cx - 38, ground - 92), (cx + 38, ground - 92), (cx + 42, ground - 60), (cx + 3, ground - 58),
                    (cx, ground - 66), (cx - 3, ground - 58), (cx - 42, ground - 60)], rounding=4),
           SHORTS, shade(SHORTS_SHADE))
    torso = polygon([(cx - 34, ground - 148), (cx + 34, ground - 148), (cx + 40, ground - 86), (cx - 40, ground - 86)],
                    rounding=8)
    p.part(torso, SHIRT, shade(SHIRT_SHADE))
    p.ink(stroke(curve((cx - 14, ground - 150), (cx, ground - 138), (cx + 14, ground - 150), 8), 2.2))

    # far arm (screen left) hangs beside the body, over the shirt's edge
    sh_l = (cx - 34, ground - 142)
    el_l = (sh_l[0] - 9, sh_l[1] + 42)
    wr_l = (el_l[0] - 1, el_l[1] + 37)
    p.part(limb(el_l, wr_l, 8.5, 7.5), SKIN, shade(SKIN_SHADE))
    p.part(union(circle(wr_l[0], wr_l[1] + 7, 10.5), limb((wr_l[0] + 7, wr_l[1]), (wr_l[0] + 10, wr_l[1] + 7), 4)),
           SKIN, shade(SKIN_SHADE))
    p.part(limb(sh_l, (sh_l[0] - 6, sh_l[1] + 30), 12.5, 11), SHIRT, shade(SHIRT_SHADE))

    # head
    neck_top = (cx + pose.head_tilt * 0.25, ground - 156)
    p.part(limb((cx, ground - 148), neck_top, 8), SKIN, Shadow(SKIN_SHADE, shape=halfplane(0, ground - 150, 0, -1)))
    head = Frame2D(neck_top[0], neck_top[1], angle=pose.head_tilt)
    face = head.local(ellipse(0, -44, 46, 42))
    ears = head.local(union(ellipse(-45, -40, 9, 11), ellipse(45, -40, 9, 11)))
    p.part(ears, SKIN, shade(SKIN_SHADE))
    hair_back = head.local(ellipse(0, -52, 50, 44))
    p.part(subtract(hair_back, head.local(halfplane(0, -34, 0, -1))), HAIR, shade(HAIR_SHADE))
    fringe = head.local(union(ellipse(-18, -38, 22, 13), ellipse(14, -36, 24, 12), ellipse(38, -30, 12, 14),
                              halfplane(0, -34, 0, -1)))
    bangs = intersect(subtract(head.local(ellipse(0, -58, 49, 40)), fringe), head.local(ellipse(0, -50, 50, 44)))
    face_shadow = union(shifted(bangs, 1.0, 5.0), subtract(face, shifted(face, -7.0, -5.0)))
    p.part(face, SKIN, Shadow(SKIN_SHADE, shape=face_shadow))
    p.part(bangs, HAIR, Shadow(HAIR_SHADE, (-3.0, -6.0)))
    p.part(head.local(limb((6, -92), (18, -104), 5, 2)), HAIR, shade(HAIR_SHADE))

    # face
    for side in (-1, 1):
        ex, ey = 16 * side + 2, -36 - pose.look_up * 0.3
        p.feature(head.local(ellipse(ex, ey, 6, 8.5)), EYE)
        p.fill(head.local(circle(ex + 1.8, ey - 3.2 - pose.look_up * 0.4, 2.3)), (255, 255, 255))
        p.fill(head.local(ellipse(ex + 3 * side, -21, 7, 4)), CHEEK, opacity=0.8)
    if pose.mouth_open > 0:
        mouth = head.local(ellipse(3, -17 + 2 * pose.mouth_open, 4 + 3 * pose.mouth_open, 2 + 4 * pose.mouth_open))
        p.part(intersect(mouth, head.local(halfplane(0, -17, 0, -1))), MOUTH, width=2.0)
    else:
        p.ink(head.local(stroke(curve((-4, -17), (3, -12), (10, -17), 8), 2.2)))

    # near arm (screen right): the one that swings
    shoulder = (cx + 32, ground - 140)
    ux, uy = _direction(pose.upper_arm)
    elbow = (shoulder[0] + 42 * ux, shoulder[1] + 42 * uy)
    fx, fy = _direction(pose.forearm)
    wrist = (elbow[0] + 36 * fx, elbow[1] + 36 * fy)
    p.part(limb(elbow, wrist, 8.5, 7.5), SKIN, shade(SKIN_SHADE))
    hand_c = (wrist[0] + 8 * fx, wrist[1] + 8 * fy)
    thumb_dir = _direction(pose.forearm - 62)
    thumb_tip = (wrist[0] + 6 * fx + 9 * thumb_dir[0], wrist[1] + 6 * fy + 9 * thumb_dir[1])
    p.part(union(ellipse(hand_c[0], hand_c[1], 11, 9.5, angle=90 - pose.forearm),
                 limb((wrist[0] + 3 * fx, wrist[1] + 3 * fy), thumb_tip, 4.2, 3.6)), SKIN, shade(SKIN_SHADE))
    sleeve_end = (shoulder[0] + 21 * ux, shoulder[1] + 21 * uy)
    p.part(limb(elbow, shoulder, 8.5, 9.5), SKIN, shade(SKIN_SHADE))
    p.part(limb(shoulder, sleeve_end, 12.5, 11), SHIRT, shade(SHIRT_SHADE))


ARM_DOWN = KidPose(upper_arm=12, forearm=2, head_tilt=0, look_up=0, mouth_open=0)
ARM_UP = KidPose(upper_arm=128, forearm=168, head_tilt=7, look_up=5, mouth_open=1)
# The middle in-between drags the forearm behind the rising elbow (overlapping action).
ARM_MIDDLE = KidPose(upper_arm=72, forearm=40, head_tilt=3, look_up=2, mouth_open=0.5)


def arm_swing(pose: KidPose) -> np.ndarray:
    p = Painter(512, 320, BACKDROP)
    draw_kid(p, pose)
    return p.image()


def arm_swing_sketch() -> np.ndarray:
    p = SketchPainter(512, 320)
    draw_kid(p, ARM_MIDDLE)
    return p.image()


# --- bouncing ball on a transparent background ------------------------------------------------

BALL, BALL_SHADE = (232, 70, 80), (178, 44, 72)
BAND, BAND_SHADE = (252, 226, 120), (222, 170, 96)
CAST_SHADOW = (40, 30, 60)


def turned(f: Field, angle: float, cx: float = 0.0, cy: float = 0.0) -> Field:
    """The same shape turned by `angle` degrees about (cx, cy)."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return lambda x, y: f(cx + (x - cx) * c + (y - cy) * s, cy - (x - cx) * s + (y - cy) * c)


@dataclass(frozen=True)
class BallPose:
    x: float  # centre of the ball
    y: float
    spin: float  # degrees the ball has rolled
    stretch: float  # > 1 stretched along `axis`, < 1 squashed against it (volume kept)
    axis: float  # direction of the stretch, degrees from horizontal


def draw_ball(p: Painter, pose: BallPose, radius: float, ground: float) -> None:
    """A striped ball: the stripes roll with `spin`, the light stays at the upper left."""
    height = ground - pose.y - radius
    spread = 1.0 + height / 260.0
    p.fill(ellipse(pose.x, ground - 6, radius * spread * max(1.0, pose.stretch ** -1), 8 * spread), CAST_SHADOW,
           opacity=0.38 / spread)
    place = Frame2D(pose.x, pose.y, angle=pose.axis, sx=pose.stretch, sy=1.0 / pose.stretch)
    ball = place.local(circle(0, 0, radius))
    stripes = turned(union(subtract(circle(-radius * 1.1, -radius * 1.1, radius * 1.55),
                                    circle(-radius * 1.3, -radius * 1.35, radius * 1.1)),
                           subtract(circle(radius * 1.6, radius * 1.5, radius * 1.35),
                                    circle(radius * 1.8, radius * 1.7, radius * 1.05))), pose.spin - pose.axis)
    band = intersect(ball, place.local(stripes))
    light = place.local(turned(ellipse(-radius * 0.2, -radius * 0.2, radius * 0.95, radius * 0.92), -pose.axis))
    p.part(ball, BALL, Shadow(BALL_SHADE, shape=subtract(ball, light)))
    p.part(band, BAND, Shadow(BAND_SHADE, shape=subtract(band, light)), width=2.0)
    p.feature(place.local(turned(ellipse(-radius * 0.42, -radius * 0.45, radius * 0.2, radius * 0.12, angle=-40),
                                 -pose.axis)), (255, 255, 255))
    p.line(ball)


BALL_RADIUS, BALL_GROUND = 50.0, 362.0
BALL_KEYS = (
    BallPose(110, 118, spin=0, stretch=1.12, axis=62),  # falling toward the lower right, stretched
    BallPose(262, BALL_GROUND - BALL_RADIUS * 0.72, spin=110, stretch=1 / 0.72, axis=0),  # squashed on contact
)


def bouncing_ball(key: int) -> np.ndarray:
    p = Painter(384, 384, backdrop=None)
    draw_ball(p, BALL_KEYS[key], BALL_RADIUS, BALL_GROUND)
    return p.image()


# --- three keys: a hopping bunny --------------------------------------------------------------

FUR, FUR_SHADE = (250, 246, 236), (204, 200, 222)
EAR_INSIDE = (246, 178, 182)
SKY, GROUND, GROUND_EDGE = (222, 236, 242), (206, 222, 178), (182, 204, 154)


@dataclass(frozen=True)
class BunnyPose:
    place: Frame2D
    ears: float  # degrees the ears sweep back (positive) or flop forward (negative)
    feet: float  # how far the feet hang below the body, in pixels
    eyes_closed: bool


def draw_bunny(p: Painter, pose: BunnyPose, ground: float) -> None:
    pl = pose.place
    height = max(0.0, ground - pl.y)
    spread = 1.0 + height / 220.0
    p.fill(ellipse(pl.x, ground + 2, 58 * spread, 9 * spread), GROUND_EDGE, opacity=1.0 / spread)
    fur = Shadow(FUR_SHADE, (-6.0, -6.0))

    for side, lift in ((1, 0.0), (-1, 6.0)):
        root = (side * 16, -76)
        a = math.radians(-side * 12 + pose.ears * (1 if side > 0 else 0.8))
        tip = (root[0] + side * 8 + 58 * math.sin(a) * -1, root[1] - 58 * math.cos(a) + lift)
        mid = ((root[0] + tip[0]) / 2, (root[1] + tip[1]) / 2)
        ear = pl.local(limb(root, tip, 13, 10))
        inner = pl.local(limb((root[0] * 0.5 + mid[0] * 0.5, root[1] * 0.5 + mid[1] * 0.5), tip, 6, 5))
        p.part(ear, FUR, fur)
        p.fill(intersect(inner, ear), EAR_INSIDE)

    p.part(pl.local(circle(-56, -34, 12)), FUR, Shadow(FUR_SHADE, (-3.0, -3.0)))
    for side in (-1, 1):
        foot = pl.local(ellipse(side * 24 + 10, -9 + pose.feet, 17, 9))
        p.part(foot, FUR, Shadow(FUR_SHADE, (-3.0, -3.0)))
    body = pl.local(blend(ellipse(0, -50, 56, 44), ellipse(0, -31, 60, 24), 14))
    p.part(body, FUR, fur)

    for side in (-1, 1):
        ex = side * 20 + 10
        if pose.eyes_closed:
            p.ink(pl.local(stroke(curve((ex - 7, -52), (ex, -60), (ex + 7, -52), 8), 2.6)))
        else:
            p.feature(pl.local(ellipse(ex, -54, 5.5, 8)), EYE)
            p.fill(pl.local(circle(ex + 1.6, -57, 2)), (255, 255, 255))
        p.fill(pl.local(ellipse(ex + side * 6, -40, 7, 4)), EAR_INSIDE, opacity=0.9)
    p.ink(pl.local(stroke([(6, -41), (10, -38), (14, -41)], 2.2)))
    p.fill(pl.local(ellipse(10, -44, 3.2, 2.4)), MOUTH)


BUNNY_KEYS = (
    BunnyPose(Frame2D(150, 318, angle=0, sx=1.14, sy=0.8), ears=50, feet=0, eyes_closed=False),
    BunnyPose(Frame2D(322, 188, angle=14, sx=0.88, sy=1.16), ears=74, feet=14, eyes_closed=True),
    BunnyPose(Frame2D(494, 318, angle=-4, sx=1.2, sy=0.74), ears=-64, feet=0, eyes_closed=False),
)


def hopping_bunny(key: int) -> np.ndarray:
    p = Painter(640, 360, SKY)
    p.fill(halfplane(0, 300, 0, -1), GROUND)
    draw_bunny(p, BUNNY_KEYS[key], ground=318)
    return p.image()


# --- output ----------------------------------------------------------------------------------


def sample_images() -> dict[str, np.ndarray]:
    """Every sample, by its path under samples/."""
    return {
        "arm_swing/key_a.png": arm_swing(ARM_DOWN),
        "arm_swing/key_b.png": arm_swing(ARM_UP),
        "bouncing_ball_alpha/key_a.png": bouncing_ball(0),
        "bouncing_ball_alpha/key_b.png": bouncing_ball(1),
        "three_keys/key_0.png": hopping_bunny(0),
        "three_keys/key_1.png": hopping_bunny(1),
        "three_keys/key_2.png": hopping_bunny(2),
        "sketches/arm_swing_middle.png": arm_swing_sketch(),
    }


def save_png(image: np.ndarray, path: Path) -> None:
    """RGBA PNG, written under a temporary name and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        Image.fromarray(image, "RGBA").save(tmp, format="PNG", optimize=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "samples", help="folder to write (default: samples/)")
    args = parser.parse_args(argv)
    for name, image in sample_images().items():
        save_png(image, args.out / name)
        print(f"{args.out / name}  {image.shape[1]}x{image.shape[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
