"""Feet on the ground: a figure that stands on a drawn surface in both keys walks along it between;
one that stands on it in one key only falls onto it or leaps off it with gravity.

Between two keys a free figure travels on the straight chord; over a hill the chord sinks its feet
into the hilltop mid-way (over a dip it lifts them off the ground). When both keys show the figure standing on the same
surface of the background plate (its lowest pixels just above the top edge of one plate region,
nowhere below it), the figure is lifted or lowered at each in-between so that its clearance to that
edge goes smoothly from key A's to key B's. On level ground the lift is zero, so only ground that
changes height moves anything. The clearance is measured with the figure's outline as each key
draws it, carried by the figure's pose, so the lift is exactly zero at both keys.

A figure resting on a surface in key B (touching its top edge, or drawn over it where the surface
is a floor seen from above) and resting on nothing in key A (only the sky or a wall, which reach the
top of the frame, lie behind its footprint), clearly above that surface, lands: the bouncing ball
from its apex to the ground. It moves across at an even pace and down as a falling body does,
slowly out of key A and fastest at the contact, on the parabola that spacing makes; leaving the
surface is the same read backwards. The keys do not say how the figure was thrown, so key A's
airborne drawing is taken as the top of the fall (a key in between overrides that). The segment's
spacing still places the drawings along the fall's parabola; on a drop with little sideways
travel the gravity is the whole spacing, so leave such a segment's spacing linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import arcs
from .paths import KeyPath
from .regions import INK_MAX_WIDTH, Segmentation

#: A figure stands on a surface when its lowest pixels come within this share of its height (plus
#: the widest ink line, which lies between the surface's fill and its feet) above the surface's
#: fill, and none of it lies below that edge.
STANDING_CLEARANCE = 0.15
#: The lift never exceeds this share of the figure's height (a wrong surface cannot fling it far).
MAX_LIFT = 0.5
#: A surface must lie under at least this many of the figure's columns in each key.
MIN_COLUMNS = 3
#: A falling figure squashes when its pose stretches it by more than this (log of an axis's scale).
SQUASH_STRETCH = 0.1


@dataclass(frozen=True)
class Ground:
    """A free figure's surface: its top edge per column (-1 where the surface has no pixel) and the
    figure's lowest pixel per column in each key, in key A's coordinates."""

    surface: np.ndarray
    soles_a: np.ndarray  # (N, 2) x, y
    soles_b: np.ndarray  # key B's lowest pixels taken back to key A's coordinates
    clearance_a: float
    clearance_b: float
    height: float

    def lift(self, pose: np.ndarray, tau: float) -> float:
        """How far down (pixels, negative: up) to move the figure posed by `pose` at tau."""
        target = (1.0 - tau) * self.clearance_a + tau * self.clearance_b
        lifts = [(weight, gap - target) for weight, soles in ((1.0 - tau, self.soles_a), (tau, self.soles_b))
                 if (gap := _clearance(self.surface, arcs.apply(pose, soles))) is not None]
        if not lifts:
            return 0.0
        total = sum(w for w, _ in lifts)
        lift = sum(w * d for w, d in lifts) / total if total > 0 else lifts[0][1]
        return float(np.clip(lift, -MAX_LIFT * self.height, MAX_LIFT * self.height))


def soles(mask: np.ndarray) -> np.ndarray:
    """The lowest pixel of each column of a figure mask, as (x, y) points."""
    rows = np.arange(mask.shape[0])[:, None]
    lowest = np.where(mask, rows, -1).max(axis=0)
    xs = np.flatnonzero(lowest >= 0)
    return np.stack([xs, lowest[xs]], axis=1).astype(float)


def top_edges(plate: Segmentation, index: int) -> np.ndarray:
    """The top row of region `index` in every column (-1 where the column has none of it)."""
    inside = plate.labels == index
    top = inside.argmax(axis=0)
    return np.where(inside.any(axis=0), top, -1)


def _clearance(surface: np.ndarray, points: np.ndarray) -> float | None:
    """The least distance from the points down to the surface's top edge (negative where a point lies
    below it), over the columns where the surface exists; None when it lies under too few of them."""
    xs = np.round(points[:, 0]).astype(int)
    inside = (xs >= 0) & (xs < len(surface))
    xs, ys = xs[inside], points[inside, 1]
    edge = surface[xs]
    over = edge >= 0
    if over.sum() < MIN_COLUMNS:
        return None
    return float((edge[over] - ys[over]).min())


def _reach(figure_a: np.ndarray, figure_b: np.ndarray) -> tuple[float, float]:
    """(the figure's height, how far above a surface its soles may be and still stand on it)."""
    rows_a, rows_b = np.flatnonzero(figure_a.any(axis=1)), np.flatnonzero(figure_b.any(axis=1))
    height = float(max(rows_a[-1] - rows_a[0], rows_b[-1] - rows_b[0]) + 1)
    return height, STANDING_CLEARANCE * height + INK_MAX_WIDTH


def _surfaces_below(plate: Segmentation, points: np.ndarray, reach: float) -> set[int]:
    """Plate regions within `reach` under the given sole points."""
    xs = points[:, 0].astype(int)
    ys = points[:, 1].astype(int)
    band = [plate.labels[np.clip(ys + d, 0, plate.labels.shape[0] - 1), xs] for d in range(1, int(reach) + 2)]
    return set(np.unique(np.concatenate(band)).tolist()) - {-1}


def find_ground(plate: Segmentation, figure_a: np.ndarray, figure_b: np.ndarray, pose: np.ndarray) -> Ground | None:
    """The plate surface a figure stands on in both keys (masks `figure_a`, `figure_b`; `pose`
    maps key A to key B), or None when it does not stand on one surface in both."""
    if not figure_a.any() or not figure_b.any():
        return None
    height, reach = _reach(figure_a, figure_b)
    soles_a, soles_b = soles(figure_a), soles(figure_b)
    below = [_surfaces_below(plate, soles_a, reach), _surfaces_below(plate, soles_b, reach)]
    best: Ground | None = None
    for index in below[0] & below[1]:
        surface = top_edges(plate, index)
        gap_a, gap_b = _clearance(surface, soles_a), _clearance(surface, soles_b)
        if gap_a is None or gap_b is None or not (0 <= gap_a <= reach and 0 <= gap_b <= reach):
            continue
        if best is None or gap_a + gap_b < best.clearance_a + best.clearance_b:
            back = arcs.apply(np.linalg.inv(pose), soles_b)
            best = Ground(surface, soles_a, back, gap_a, gap_b, height)
    return best


@dataclass(frozen=True)
class Fall:
    """A free figure landing on a surface (key B) or leaving it (key A): its pivot's path and
    whether the contact squashes it. A squash belongs to the contact drawing: a figure of one piece
    (a ball, a sack) keeps its airborne shape all the way down and springs back as soon as it leaves
    (the turn goes with it, since the turn of a squashed round shape is the fit's guess, not
    something the keys show). A figure with limbs changes its body's pose across the fall as usual:
    its landing crouch and lean are drawn, not a squash."""

    path: KeyPath
    lands: bool
    squashes: bool

    def shape_at(self, tau: float) -> float:
        """How far a squashing figure's change of shape has gone at tau (0: key A's, 1: key B's)."""
        if self.lands:
            return 1.0 if tau >= 1.0 else 0.0
        return 0.0 if tau <= 0.0 else 1.0


def _supports(plate: Segmentation, points: np.ndarray, reach: float) -> list[np.ndarray]:
    """Top edges of the plate regions a figure rests on: a region within `reach` under its
    footprint (its sole points within an ink line of its lowest) that the footprint touches (no
    more than an ink line above the region's top edge) or is drawn over (a floor seen from above).
    A backdrop that reaches the top of the frame (the sky, a wall) holds nothing up."""
    points = points[points[:, 1] >= points[:, 1].max() - INK_MAX_WIDTH]
    xs = np.clip(points[:, 0].astype(int), 0, plate.labels.shape[1] - 1)
    out = []
    for index in _surfaces_below(plate, points, reach):
        surface = top_edges(plate, index)
        edge = surface[xs]
        if ((edge >= 0) & (edge <= INK_MAX_WIDTH)).any():  # reaches the top of the frame (or its border line)
            continue
        gap = _clearance(surface, points)
        if gap is not None and gap <= INK_MAX_WIDTH:
            out.append(surface)
    return out


def find_fall(plate: Segmentation, figure_a: np.ndarray, figure_b: np.ndarray, pivot: np.ndarray,
              pose: np.ndarray, one_piece: bool) -> Fall | None:
    """The fall of a figure (its pivot at `pivot` in key A, `pose` taking key A to key B; `one_piece`:
    it has no limbs) that stands on a plate surface in one key and is in the air above that surface
    in the other: onto it (key B on it) or off it (key A on it); None otherwise."""
    if not figure_a.any() or not figure_b.any():
        return None
    _, reach = _reach(figure_a, figure_b)
    soles_a, soles_b = soles(figure_a), soles(figure_b)
    start = np.asarray(pivot, float)
    end = arcs.apply(pose, start[None])[0]
    drop = float(end[1] - start[1])
    scales = np.maximum(np.linalg.svd(pose[:2, :2], compute_uv=False), 1e-6)
    squashes = one_piece and bool(np.abs(np.log(scales)).max() > SQUASH_STRETCH)
    for lands, contact, airborne in ((True, soles_b, soles_a), (False, soles_a, soles_b)):
        if (drop > 0) != lands or _supports(plate, airborne, reach):
            continue  # a landing moves down, a take-off up; in the air means on nothing
        for surface in _supports(plate, contact, reach):
            above = _clearance(surface, airborne)
            if above is None or above <= reach:
                continue  # not clearly above the surface it reaches in the other key
            across = float(end[0] - start[0])
            still, falling = np.array([across, 0.0]), np.array([across, 2.0 * drop])
            return Fall(KeyPath(start, end, still, falling) if lands else KeyPath(start, end, falling, still), lands, squashes)
    return None
