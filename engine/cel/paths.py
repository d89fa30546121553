"""Arcs through the keys: a figure's path in a shot of three or more keys.

Between two keys a part that no joint explains travels in a straight line. An animator draws the
path through all the keys as one smooth arc (a hop rises and falls through its keys; it does not
turn a corner at each). Given the keys either side of a segment, each free figure's pivot is
found in them (through the neighbouring segments' own part poses) and carried on a cubic Hermite
curve whose tangent at each key is the slope of the parabola through that key and its
neighbours, so a path that is a parabola in time (a throw, a fall, a jump) is followed exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import arcs

#: A part of a neighbouring segment stands for this segment's part when it covers at least this
#: share of it in the key they share.
SAME_PART_SHARE = 0.5
#: A path is kept only while it strays from the straight chord by at most this share of the
#: chord's length plus the part's size (a wrong pairing would fling the figure off).
MAX_BEND = 1.0


@dataclass(frozen=True)
class KeyPath:
    """A part's pivot path over the segment: the key positions and the tangents there (per unit tau)."""

    start: np.ndarray
    end: np.ndarray
    start_slope: np.ndarray
    end_slope: np.ndarray

    def offset(self, tau: float) -> np.ndarray:
        """How far the curve at tau lies from the straight chord (added to the part's pose)."""
        t2, t3 = tau * tau, tau * tau * tau
        curve = ((2 * t3 - 3 * t2 + 1) * self.start + (t3 - 2 * t2 + tau) * self.start_slope
                 + (-2 * t3 + 3 * t2) * self.end + (t3 - t2) * self.end_slope)
        return curve - (self.start + tau * (self.end - self.start))


def _slope_between(p0, t0, p1, t1, p2, t2) -> np.ndarray:
    """The slope at the middle point of the parabola through three timed points."""
    d1, d2 = (p1 - p0) / (t1 - t0), (p2 - p1) / (t2 - t1)
    return (d1 * (t2 - t1) + d2 * (t1 - t0)) / (t2 - t0)


def _slope_at_end(p0, t0, p1, t1, p2, t2) -> np.ndarray:
    """The slope at the last point of the parabola through three timed points."""
    d1, d2 = (p1 - p0) / (t1 - t0), (p2 - p1) / (t2 - t1)
    return d2 + (d2 - d1) * (t2 - t1) / (t2 - t0)


def key_path(start: np.ndarray, end: np.ndarray, before: np.ndarray | None, tau_before: float | None,
             after: np.ndarray | None, tau_after: float | None) -> KeyPath:
    """The pivot's path from `start` (tau 0) to `end` (tau 1) through the neighbouring keys'
    positions `before` (at tau_before < 0) and `after` (at tau_after > 1), where known."""
    chord = end - start
    if before is not None and after is not None:
        slopes = (_slope_between(before, tau_before, start, 0.0, end, 1.0),
                  _slope_between(start, 0.0, end, 1.0, after, tau_after))
    elif before is not None:
        slopes = (_slope_between(before, tau_before, start, 0.0, end, 1.0),
                  _slope_at_end(before, tau_before, start, 0.0, end, 1.0))
    elif after is not None:
        # the same parabola read backwards: the slope at its first point
        slopes = (-_slope_at_end(after, -tau_after, end, -1.0, start, 0.0),
                  _slope_between(start, 0.0, end, 1.0, after, tau_after))
    else:
        slopes = (chord, chord)
    return KeyPath(start, end, slopes[0], slopes[1])


def _counterpart(mask: np.ndarray, candidates: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """The pose of the candidate (its mask in the shared key, its pose) covering most of `mask`."""
    best, best_share = None, SAME_PART_SHARE
    area = max(int(mask.sum()), 1)
    for other_mask, pose in candidates:
        share = int((mask & other_mask).sum()) / area
        if share >= best_share:
            best, best_share = pose, share
    return best


def free_figures(parts, knots) -> list[int]:
    """Positions of the parts that move on their own (no parent, no joint, in both keys, and no
    sketch poses them between): whole figures whose paths a segment may bend."""
    return [k for k, p in enumerate(parts)
            if p.parent is None and p.joint is None and p.regions_b and len(knots[k]) == 2]


def figure_paths(segment, before, tau_before: float | None, after, tau_after: float | None) -> dict[int, KeyPath]:
    """Paths for the free figures (parts with no parent and no joint) of `segment`, a CelSegment,
    from the neighbouring CelSegments `before` (its key B is this key A) and `after` (its key A is
    this key B), either of which may be None."""
    paths: dict[int, KeyPath] = {}
    for k in free_figures(segment.parts, segment.knots):
        part = segment.parts[k]
        start = np.asarray(part.pivot, float)
        end = arcs.apply(part.motion.pose, start[None])[0]
        p_before = p_after = None
        if before is not None:
            pose = _counterpart(part.mask_a, [(q.mask_b, q.motion.pose) for q in before.parts if q.regions_b])
            if pose is not None:
                p_before = arcs.apply(np.linalg.inv(pose), start[None])[0]
        if after is not None:
            pose = _counterpart(part.mask_b, [(q.mask_a, q.motion.pose) for q in after.parts if q.regions_b])
            if pose is not None:
                p_after = arcs.apply(pose, end[None])[0]
        if p_before is None and p_after is None:
            continue
        path = key_path(start, end, p_before, tau_before, p_after, tau_after)
        limit = MAX_BEND * (np.linalg.norm(end - start) + np.sqrt(part.area))
        if max(np.linalg.norm(path.offset(t)) for t in np.linspace(0, 1, 9)) <= limit:
            paths[k] = path
    return paths
