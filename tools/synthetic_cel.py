"""Synthetic cel animation with exact ground truth, for measuring in-betweeners.

Each sequence is a flat-colour figure with black anti-aliased ink outlines over a held background cel,
drawn from an explicit rig: parts (polygons in their own frame, pivot at the origin) hang from parents,
and a motion gives every part's pose (pivot position, rotation, squash and stretch) at any time
fraction tau in [0, 1]. Because every frame is rendered from the rig, the truth of every in-between is
known exactly — the frame itself, the figure's mask and the empty background plate.

Coordinates are canvas units of a 512x320 design canvas (y down, angles in degrees, positive =
clockwise on screen). Any output size scales the canvas uniformly to fit and centres it; the held
background extends to the sides, and line widths scale with it, so a 1920x1200 render box-filtered
down to 512x320 matches the 512x320 render. Anti-aliasing is exact box filtering of a supersampled
hard-edged render.

Motions (one sequence each, deterministic from the seed). Poses are linear in tau, so joint
rotations and the arc walk can be recovered from the keys alone; the leap's parabola and the
bounce's stretch mid-fall cannot (no key shows them), and the bounce's fall only by reading that its
last key lands on the ground, which makes those two the stress cases:
  arm_swing    upper arm + forearm + gloved hand swinging through ~140 degrees (a hierarchy of pivots)
  leap         a jump more than twice as long as the figure is wide, along a parabola
  occlusion    a walk behind a tree that stays put (the figure is partly hidden mid-gap)
  bounce       a falling ball that stretches along its path and squashes on the ground
  walk_arc     a walk over a hill: the body follows a circular arc and tilts with it
  transparent  an RGBA cel on a transparent background: a hop to the side with a wave

Folder layout written for each sequence (the layout shared/tools/score_inbetweens.py reads):
  frame_NN.png   every frame, keys included (RGB, or RGBA for the transparent cel)
  mask_NN.png    8-bit, 255 where the figure is visible (coverage >= 50 %)
  background.png the plate: the same scene without the figure
  meta.json      key_frames, taus, size, seed, and every part's pivot (pixels) and angle per frame

    python tools/synthetic_cel.py OUT_DIR                            # all motions, 512x320, 9 frames
    python tools/synthetic_cel.py OUT_DIR --size 1920x1080 --motions arm_swing leap
    python tools/synthetic_cel.py OUT_DIR --frames 17 --seed 3 --overwrite
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.core.files import publish  # noqa: E402

#: The design canvas every coordinate refers to.
CANVAS = (512, 320)
DEFAULT_SIZE = CANVAS
DEFAULT_FRAMES = 9
LINE_WIDTH = 2.2  # ink outline width in canvas units
INK = (24, 20, 28)
SHIFT = 4  # OpenCV fixed-point bits: polygon vertices at 1/16 of a supersampled pixel
MOTIONS = ("arm_swing", "leap", "occlusion", "bounce", "walk_arc", "transparent")
GENERATOR = "tools/synthetic_cel.py"

Colour = tuple[int, int, int]


# ----------------------------------------------------------------------------------------- shapes
def ellipse(rx: float, ry: float, cx: float = 0.0, cy: float = 0.0, n: int = 72) -> np.ndarray:
    a = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)


def capsule(length: float, radius: float, n: int = 20) -> np.ndarray:
    """A limb from the pivot (0, 0) along +x to (length, 0), round at both ends."""
    right = np.linspace(-math.pi / 2, math.pi / 2, n)
    left = np.linspace(math.pi / 2, 3 * math.pi / 2, n)
    return np.concatenate([np.stack([length + radius * np.cos(right), radius * np.sin(right)], 1),
                           np.stack([radius * np.cos(left), radius * np.sin(left)], 1)])


def rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float, n: int = 8) -> np.ndarray:
    corners = ((x1 - r, y1 - r, 0.0), (x0 + r, y1 - r, 90.0), (x0 + r, y0 + r, 180.0), (x1 - r, y0 + r, 270.0))
    pts = []
    for cx, cy, start in corners:
        a = np.radians(np.linspace(start, start + 90, n))
        pts.append(np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1))
    return np.concatenate(pts)


# -------------------------------------------------------------------------------------- the rig
@dataclass(frozen=True)
class Part:
    """One piece of a cel: a closed outline in its own frame (its pivot at the origin)."""

    name: str
    outline: np.ndarray
    fill: Colour
    parent: str | None = None
    z: int = 0
    figure: bool = True  # False: scenery that belongs to the plate (a tree the figure passes behind)
    ink: bool = True  # draw the black outline


@dataclass(frozen=True)
class Pose:
    """A part's placement in its parent's frame: pivot at (x, y), rotated by `angle`, and scaled by
    (sx, sy) along the axis at `axis` degrees (squash and stretch independent of the rotation)."""

    x: float
    y: float
    angle: float = 0.0
    sx: float = 1.0
    sy: float = 1.0
    axis: float = 0.0

    def matrix(self) -> np.ndarray:
        def rot(deg: float) -> np.ndarray:
            c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
            return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

        move = np.array([[1.0, 0.0, self.x], [0.0, 1.0, self.y], [0.0, 0.0, 1.0]])
        scale = np.diag([self.sx, self.sy, 1.0])
        return move @ rot(self.angle) @ rot(self.axis) @ scale @ rot(-self.axis)


@dataclass(frozen=True)
class Backdrop:
    """The held background cel: a base colour and outlined flat shapes, or nothing (transparent)."""

    base: Colour | None
    shapes: tuple[tuple[np.ndarray, Colour, bool], ...] = ()  # (outline in canvas units, fill, ink)


@dataclass(frozen=True)
class Scene:
    """A rig, its motion over tau in [0, 1] and the background it moves over."""

    name: str
    parts: tuple[Part, ...]
    motion: Callable[[float], dict[str, Pose]]
    backdrop: Backdrop
    seed: int
    description: str = ""

    @property
    def transparent(self) -> bool:
        return self.backdrop.base is None

    def world(self, tau: float) -> dict[str, np.ndarray]:
        """Every part's 3x3 matrix from its own frame to canvas units at `tau`."""
        poses = self.motion(tau)
        out: dict[str, np.ndarray] = {}
        by_name = {p.name: p for p in self.parts}

        def resolve(name: str) -> np.ndarray:
            if name not in out:
                part = by_name[name]
                local = poses.get(name, Pose(0.0, 0.0)).matrix()
                out[name] = local if part.parent is None else resolve(part.parent) @ local
            return out[name]

        for part in self.parts:
            resolve(part.name)
        return out

    def joints(self, tau: float) -> dict[str, dict[str, float]]:
        """Every part's pivot (canvas units) and world rotation (degrees) at `tau`."""
        joints = {}
        for name, m in self.world(tau).items():
            joints[name] = {"x": float(m[0, 2]), "y": float(m[1, 2]), "angle": math.degrees(math.atan2(m[1, 0], m[0, 0]))}
        return joints


# ------------------------------------------------------------------------------------ rendering
@dataclass
class Frame:
    """One rendered frame: the image, the figure mask (bool) and the plate (the scene without figure)."""

    image: np.ndarray
    mask: np.ndarray
    plate: np.ndarray
    joints: dict[str, dict[str, float]] = field(default_factory=dict)


def canvas_transform(size: tuple[int, int]) -> tuple[float, float, float]:
    """(scale, x offset, y offset) from canvas units to output pixels: uniform fit, centred."""
    w, h = size
    s = min(w / CANVAS[0], h / CANVAS[1])
    return s, (w - CANVAS[0] * s) / 2, (h - CANVAS[1] * s) / 2


def _supersample(size: tuple[int, int]) -> int:
    return 4 if size[0] * size[1] <= 2_500_000 else 3


def render(scene: Scene, tau: float, size: tuple[int, int] = DEFAULT_SIZE, supersample: int | None = None) -> Frame:
    """Draw `scene` at `tau` into a (width, height) frame with exact box-filtered anti-aliasing."""
    w, h = size
    if w < 16 or h < 16:
        raise ValueError(f"size {w}x{h} is too small (at least 16x16)")
    ss = supersample or _supersample(size)
    s, ox, oy = canvas_transform(size)
    thickness = max(1, round(LINE_WIDTH * s * ss))

    def to_pixels(points: np.ndarray) -> np.ndarray:
        # A supersample j covers output pixels [j/ss, (j+1)/ss); OpenCV fills by sample centre.
        px = (points * s + (ox, oy)) * ss - 0.5
        return np.round(px * (1 << SHIFT)).astype(np.int32)

    big = (h * ss, w * ss)
    colour = np.zeros(big + (3,), np.uint8)
    alpha = np.zeros(big, np.uint8)
    figure = np.zeros(big, np.uint8)

    def draw(pts: np.ndarray, fill: Colour, ink: bool, is_figure: bool) -> None:
        poly = [to_pixels(pts)]
        for layer, value in ((colour, fill), (alpha, 255), (figure, 255 if is_figure else 0)):
            cv2.fillPoly(layer, poly, value, cv2.LINE_8, SHIFT)
            if ink:
                cv2.polylines(layer, poly, True, INK if layer is colour else value, thickness, cv2.LINE_8, SHIFT)

    world = scene.world(tau)
    parts = sorted(scene.parts, key=lambda p: p.z)

    def paint(drawn: Sequence[Part]) -> np.ndarray:
        colour[:], alpha[:], figure[:] = scene.backdrop.base or 0, 0 if scene.transparent else 255, 0
        for pts, fill, ink in scene.backdrop.shapes:
            draw(pts, fill, ink, False)
        for part in drawn:
            pts = np.c_[part.outline, np.ones(len(part.outline))] @ world[part.name].T
            draw(pts[:, :2], part.fill, part.ink, part.figure)
        return _downsample(colour, alpha, (w, h), scene.transparent)

    plate = paint([p for p in parts if not p.figure])
    image = paint(parts)
    coverage = cv2.resize(figure, (w, h), interpolation=cv2.INTER_AREA)
    joints = {name: {"x": j["x"] * s + ox, "y": j["y"] * s + oy, "angle": j["angle"]} for name, j in scene.joints(tau).items()}
    return Frame(image, coverage >= 128, plate, joints)


def _downsample(colour: np.ndarray, alpha: np.ndarray, size: tuple[int, int], transparent: bool) -> np.ndarray:
    """Box-filter the supersampled layers to `size`; RGBA is filtered premultiplied."""
    if not transparent:
        return cv2.resize(colour, size, interpolation=cv2.INTER_AREA)
    a = alpha.astype(np.float32) / 255.0
    premul = cv2.resize(colour.astype(np.float32) * a[..., None], size, interpolation=cv2.INTER_AREA)
    small_a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    rgb = np.where(small_a[..., None] > 0, premul / np.maximum(small_a[..., None], 1e-6), 0.0)
    return np.dstack([np.clip(np.round(rgb), 0, 255), np.clip(np.round(small_a * 255), 0, 255)]).astype(np.uint8)


# --------------------------------------------------------------------------------- the scenes
SKY, GROUND, HILL = (156, 206, 236), (122, 178, 96), (104, 160, 84)
HILL_CENTRE, HILL_RADIUS = (256.0, 474.0), 232.0


def _jitter(rng: np.random.Generator, colour: Colour, amount: int = 10) -> Colour:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def _outdoors(rng: np.random.Generator, hill: bool = False) -> Backdrop:
    """A held background cel: sky, ground with a horizon line, a sun and two clouds (all outlined)."""
    shapes = [(ellipse(22, 22, 440 + rng.uniform(-20, 20), 52), (250, 222, 120), True),
              (ellipse(38, 15, 110 + rng.uniform(-25, 25), 58), (246, 249, 251), True),
              (ellipse(30, 12, 300 + rng.uniform(-25, 25), 38), (246, 249, 251), True),
              (rounded_rect(-1500, 250, 2000, 700, 1), GROUND, True)]
    if hill:
        shapes.append((ellipse(HILL_RADIUS, HILL_RADIUS, *HILL_CENTRE, n=240), HILL, True))
    return Backdrop(SKY, tuple(shapes))


def _kid(rng: np.random.Generator) -> list[Part]:
    """A cartoon kid facing right, pivot at the hip; the near arm is upper_arm > forearm > hand."""
    shirt, sleeve, skin = _jitter(rng, (212, 64, 64)), _jitter(rng, (236, 132, 44)), _jitter(rng, (246, 206, 166))
    glove, pants, shoe = _jitter(rng, (250, 250, 246), 4), _jitter(rng, (58, 78, 150)), _jitter(rng, (96, 56, 40))
    far_pants = tuple(int(c * 0.8) for c in pants)
    far_sleeve, far_glove = tuple(int(c * 0.85) for c in sleeve), tuple(int(c * 0.88) for c in glove)
    return [
        Part("torso", rounded_rect(-17, -54, 17, 0, 9), shirt, None, 10),
        Part("head", ellipse(19, 20, 2, -19), skin, "torso", 12),
        Part("eye_back", ellipse(2.2, 3.6, 6, -22), INK, "head", 13, ink=False),
        Part("eye_front", ellipse(2.2, 3.6, 14, -22), INK, "head", 13, ink=False),
        Part("leg_far", capsule(42, 7), far_pants, "torso", 6),
        Part("foot_far", ellipse(11, 6, 5, 0), shoe, "leg_far", 6),
        Part("leg", capsule(42, 7.5), pants, "torso", 8),
        Part("foot", ellipse(11, 6, 5, 0), shoe, "leg", 8),
        Part("upper_arm_far", capsule(30, 6), far_sleeve, "torso", 4),
        Part("forearm_far", capsule(26, 5), skin, "upper_arm_far", 3),
        Part("hand_far", ellipse(7.5, 7, 5, 0), far_glove, "forearm_far", 3),
        Part("upper_arm", capsule(30, 6.5), sleeve, "torso", 14),
        Part("forearm", capsule(26, 5.5), skin, "upper_arm", 15),
        Part("hand", ellipse(8, 7.5, 5, 0), glove, "forearm", 16),
    ]


def _kid_pose(x: float, y: float, lean: float, arm: tuple[float, float, float], arm_far: tuple[float, float, float],
              leg: float, leg_far: float, head: float = 0.0) -> dict[str, Pose]:
    """Joint angles in degrees (90 = hanging straight down); arm = (shoulder, elbow, wrist)."""
    return {
        "torso": Pose(x, y, lean),
        "head": Pose(0, -52, head),
        "leg": Pose(6, -4, leg), "foot": Pose(42, 0, -leg),
        "leg_far": Pose(-6, -4, leg_far), "foot_far": Pose(42, 0, -leg_far),
        "upper_arm": Pose(3, -45, arm[0]), "forearm": Pose(30, 0, arm[1]), "hand": Pose(26, 0, arm[2]),
        "upper_arm_far": Pose(-3, -45, arm_far[0]), "forearm_far": Pose(30, 0, arm_far[1]), "hand_far": Pose(26, 0, arm_far[2]),
    }


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def arm_swing(seed: int = 0) -> Scene:
    rng = np.random.default_rng([seed, 1])
    x, shoulder0, shoulder1 = 220 + rng.uniform(-20, 20), 100 + rng.uniform(-5, 5), -45 + rng.uniform(-8, 8)

    def motion(t: float) -> dict[str, Pose]:
        return _kid_pose(x, 246, _lerp(-2, 4, t), (_lerp(shoulder0, shoulder1, t), _lerp(12, -50, t), _lerp(0, -25, t)),
                         (_lerp(96, 84, t), _lerp(-10, -25, t), 0), 84, 96, _lerp(-4, 6, t))

    return Scene("arm_swing", tuple(_kid(rng)), motion, _outdoors(rng), seed,
                 "upper arm, forearm and hand swing up through about 145 degrees")


def leap(seed: int = 0) -> Scene:
    rng = np.random.default_rng([seed, 2])
    x0, x1, height = 84 + rng.uniform(-8, 8), 428 + rng.uniform(-8, 8), 48 + rng.uniform(-6, 6)

    def motion(t: float) -> dict[str, Pose]:
        y = 246 - 4 * height * t * (1 - t)
        return _kid_pose(_lerp(x0, x1, t), y, _lerp(18, -8, t), (_lerp(-40, 140, t), _lerp(-20, 10, t), 0),
                         (_lerp(150, -30, t), _lerp(10, -20, t), 0), _lerp(130, 60, t), _lerp(60, 125, t))

    return Scene("leap", tuple(_kid(rng)), motion, _outdoors(rng), seed,
                 "a long jump, more than twice the figure's width; the arc's height is not in the keys")


def occlusion(seed: int = 0) -> Scene:
    rng = np.random.default_rng([seed, 3])
    x0, x1, tree_x = 124 + rng.uniform(-10, 10), 388 + rng.uniform(-10, 10), 256 + rng.uniform(-8, 8)
    tree = [Part("trunk", rounded_rect(-17, -150, 17, 14, 4), (128, 86, 52), None, 50, figure=False),
            Part("canopy", ellipse(64, 48), (70, 150, 70), None, 51, figure=False)]

    def motion(t: float) -> dict[str, Pose]:
        c = math.cos(math.pi * t)
        pose = _kid_pose(_lerp(x0, x1, t), 246 - 4 * math.sin(math.pi * t), 4, (90 + 30 * c, -20, 0), (90 - 30 * c, -20, 0),
                         90 - 28 * c, 90 + 28 * c)
        pose["trunk"], pose["canopy"] = Pose(tree_x, 270), Pose(tree_x, 98)
        return pose

    return Scene("occlusion", tuple(_kid(rng) + tree), motion, _outdoors(rng), seed,
                 "a walk behind a tree trunk that stays put")


def bounce(seed: int = 0) -> Scene:
    rng = np.random.default_rng([seed, 4])
    radius, ground = 28.0, 284.0
    xa, ya, xc = 96 + rng.uniform(-10, 10), 66 + rng.uniform(-8, 8), 330 + rng.uniform(-15, 15)
    squash = 0.7
    parts = (Part("ball", ellipse(radius, radius), _jitter(rng, (228, 72, 60)), None, 10),
             Part("highlight", ellipse(8, 5.5, -10, -12), (255, 238, 228), "ball", 11, ink=False))

    def motion(t: float) -> dict[str, Pose]:
        yc = ground - radius * squash
        x, y = _lerp(xa, xc, t), ya + (yc - ya) * t * t
        heading = math.degrees(math.atan2(2 * (yc - ya) * t, xc - xa))
        if t <= 0.8:
            along, axis = 1 + 0.35 * t / 0.8, heading
        else:
            u = (t - 0.8) / 0.2
            along, axis = _lerp(1.35, squash, u), _lerp(heading, 90.0, u)
        return {"ball": Pose(x, y, 0.0, along, 1 / along, axis), "highlight": Pose(0, 0)}

    return Scene("bounce", parts, motion, _outdoors(rng), seed,
                 "a falling ball stretched along its path, squashed flat on the ground at the last key")


def walk_arc(seed: int = 0) -> Scene:
    rng = np.random.default_rng([seed, 5])
    a0, a1 = -118 + rng.uniform(-4, 4), -62 + rng.uniform(-4, 4)

    def motion(t: float) -> dict[str, Pose]:
        a = math.radians(_lerp(a0, a1, t))
        c = math.cos(math.pi * t)
        r = HILL_RADIUS + 47  # hip above the hill's surface: legs and feet stand on it
        return _kid_pose(HILL_CENTRE[0] + r * math.cos(a), HILL_CENTRE[1] + r * math.sin(a), math.degrees(a) + 90, (90 + 32 * c, -25, 0),
                         (90 - 32 * c, -25, 0), 90 - 26 * c, 90 + 26 * c)

    return Scene("walk_arc", tuple(_kid(rng)), motion, _outdoors(rng, hill=True), seed,
                 "a walk over a hill: the body travels on a circular arc and tilts with it")


def transparent(seed: int = 0) -> Scene:
    rng = np.random.default_rng([seed, 6])
    x0, x1 = 150 + rng.uniform(-10, 10), 350 + rng.uniform(-10, 10)

    def motion(t: float) -> dict[str, Pose]:
        return _kid_pose(_lerp(x0, x1, t), 250 - 160 * t * (1 - t), _lerp(-6, 10, t), (_lerp(-50, -150, t), _lerp(-40, 50, t), 0),
                         (_lerp(100, 70, t), -15, 0), _lerp(100, 70, t), _lerp(75, 105, t), _lerp(0, -8, t))

    return Scene("transparent", tuple(_kid(rng)), motion, Backdrop(None), seed,
                 "an RGBA cel on a transparent background: a hop to the side with a wave")


SCENES: dict[str, Callable[[int], Scene]] = {
    "arm_swing": arm_swing, "leap": leap, "occlusion": occlusion, "bounce": bounce, "walk_arc": walk_arc, "transparent": transparent,
}


def build(motion: str, seed: int = 0) -> Scene:
    if motion not in SCENES:
        raise ValueError(f"unknown motion {motion!r}: choose one of {', '.join(MOTIONS)}")
    return SCENES[motion](seed)


# ------------------------------------------------------------------------------------- writing
def taus(frames: int) -> list[float]:
    """Frame i of a sequence of `frames` sits at tau = i / (frames - 1): keys at both ends."""
    if frames < 3:
        raise ValueError(f"frames={frames}: a sequence needs at least 3 frames (two keys and an in-between)")
    return [i / (frames - 1) for i in range(frames)]


def straight_between(scene: Scene, tau_start: float, tau_end: float) -> Scene:
    """The scene with every pose parameter (pivot, angle, squash) moved linearly from its value at
    `tau_start` to its value at `tau_end` as the new scene's tau goes from 0 to 1: the best any
    in-betweener that carries each part straight from one key to the next can draw (it knows the
    rig, but not the arcs and eases no key shows). A reference for the benchmarks."""
    first, last = scene.motion(tau_start), scene.motion(tau_end)

    def motion(t: float) -> dict[str, Pose]:
        return {name: Pose(*(a + (b - a) * t for a, b in zip(astuple(first[name]), astuple(last[name])))) for name in first}

    return replace(scene, motion=motion)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def write_sequence(folder: str | Path, motion: str, seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE,
                   frames: int = DEFAULT_FRAMES, overwrite: bool = False) -> Path:
    """Render one motion into `folder` (frames, masks, plate, meta.json), all files or none.
    Existing files of those names are only replaced with `overwrite`."""
    scene, folder = build(motion, seed), Path(folder)
    ts = taus(frames)
    digits = max(2, len(str(frames - 1)))
    rendered = [render(scene, t, size) for t in ts]
    files = {"background.png": _png(rendered[0].plate)}
    for i, frame in enumerate(rendered):
        files[f"frame_{i:0{digits}d}.png"] = _png(frame.image)
        files[f"mask_{i:0{digits}d}.png"] = _png(frame.mask.astype(np.uint8) * 255)
    meta = {"generator": GENERATOR, "motion": motion, "description": scene.description, "seed": seed,
            "size": list(size), "canvas": list(CANVAS), "transparent": scene.transparent,
            "key_frames": [0, frames - 1], "taus": ts,
            "joints": [{name: {k: round(v, 4) for k, v in j.items()} for name, j in f.joints.items()} for f in rendered]}
    files["meta.json"] = (json.dumps(meta, indent=1) + "\n").encode()
    with publish(folder, files, overwrite=overwrite) as staging:
        for name, data in files.items():
            (staging / name).write_bytes(data)
    return folder


def write_set(root: str | Path, motions: Sequence[str] = MOTIONS, seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE,
              frames: int = DEFAULT_FRAMES, overwrite: bool = False) -> list[Path]:
    """One folder per motion under `root`."""
    return [write_sequence(Path(root) / m, m, seed, size, frames, overwrite) for m in motions]


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 512x320") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 16x16)")
    return w, h


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder that receives one sub-folder per motion")
    ap.add_argument("--motions", nargs="*", choices=MOTIONS, default=list(MOTIONS))
    ap.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, help="WIDTHxHEIGHT (default 512x320)")
    ap.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames per sequence, both keys included (default 9)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true", help="replace files a previous run wrote")
    args = ap.parse_args(argv)
    try:
        for folder in write_set(args.out, args.motions, args.seed, args.size, args.frames, args.overwrite):
            print(folder)
    except (ValueError, OSError) as exc:
        sys.exit(f"synthetic_cel: {exc}")


if __name__ == "__main__":
    main()
