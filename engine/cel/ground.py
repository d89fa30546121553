"""Feet on the ground: a figure that stands on a drawn surface in both keys walks along it between.

Between two keys a free figure travels on the straight chord; over a hill the chord sinks its feet
into the hilltop mid-way (over a dip it lifts them off the ground). When both keys show the figure standing on the same
surface of the background plate (its lowest pixels just above the top edge of one plate region,
nowhere below it), the figure is lifted or lowered at each in-between so that its clearance to that
edge goes smoothly from key A's to key B's. On level ground the lift is zero, so only ground that
changes height moves anything. The clearance is measured with the figure's outline as each key
draws it, carried by the figure's pose, so the lift is exactly zero at both keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import arcs
from .regions import INK_MAX_WIDTH, Segmentation

#: A figure stands on a surface when its lowest pixels come within this share of its height (plus
#: the widest ink line, which lies between the surface's fill and its feet) above the surface's
#: fill, and none of it lies below that edge.
STANDING_CLEARANCE = 0.15
#: The lift never exceeds this share of the figure's height (a wrong surface cannot fling it far).
MAX_LIFT = 0.5
#: A surface must lie under at least this many of the figure's columns in each key.
MIN_COLUMNS = 3


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


def find_ground(plate: Segmentation, figure_a: np.ndarray, figure_b: np.ndarray, pose: np.ndarray) -> Ground | None:
    """The plate surface a figure stands on in both keys (masks `figure_a`, `figure_b`; `pose`
    maps key A to key B), or None when it does not stand on one surface in both."""
    if not figure_a.any() or not figure_b.any():
        return None
    rows_a, rows_b = np.flatnonzero(figure_a.any(axis=1)), np.flatnonzero(figure_b.any(axis=1))
    height = float(max(rows_a[-1] - rows_a[0], rows_b[-1] - rows_b[0]) + 1)
    reach = STANDING_CLEARANCE * height + INK_MAX_WIDTH
    soles_a, soles_b = soles(figure_a), soles(figure_b)
    below = []
    for points in (soles_a, soles_b):
        xs = points[:, 0].astype(int)
        ys = points[:, 1].astype(int)
        band = [plate.labels[np.clip(ys + d, 0, plate.labels.shape[0] - 1), xs] for d in range(1, int(reach) + 2)]
        below.append(set(np.unique(np.concatenate(band)).tolist()) - {-1})
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
