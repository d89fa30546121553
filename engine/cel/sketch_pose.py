"""Posing parts on the artist's sketch: each part turns about its joint (and slips a little) until
its outline lies on the sketch's lines.

The sketch is read like the generative backend reads it (engine/tooncrafter/sketch_hints.py:
transparent pixels are paper, lines are dark). The fit is chamfer matching: the mean distance from
the part's outline, posed, to the nearest sketch line (a distance transform of the lines, capped so
that a stray stroke does not dominate), searched over the turn about the joint and a small
translation, parents first so each child starts from where its parent landed. A part the sketch
does not show better than the plain in-between keeps the plain in-between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..api import EngineError
from ..tooncrafter.sketch_hints import sketch_to_hint
from . import arcs
from .parts import Part

#: A hint above this (0 = paper, 1 = black) is a sketch line.
LINE_HINT = 0.3
#: Distances (pixels) beyond this count as this: the outline is simply not on a line there.
DISTANCE_CAP = 12.0
#: Turns searched about the joint, either side of the plain in-between (degrees).
TURN_RANGE = 150.0
OUTLINE_POINTS = 500
#: The sketch pose replaces the plain in-between only when it brings the outline this much
#: closer (mean pixels) to the sketch's lines.
MIN_IMPROVEMENT = 0.5


@dataclass
class SketchLines:
    lines: np.ndarray
    distance: np.ndarray

    @classmethod
    def read(cls, sketch: np.ndarray, source: str = "sketch") -> SketchLines:
        try:
            hint = sketch_to_hint(sketch, source=source)
        except ValueError as exc:
            raise EngineError(str(exc)) from exc
        lines = hint > LINE_HINT
        if not lines.any():
            raise EngineError(f"{source} has no lines (dark strokes on white or transparent paper)")
        distance = cv2.distanceTransform((~lines).astype(np.uint8), cv2.DIST_L2, 3)
        return cls(lines, np.minimum(distance, DISTANCE_CAP))

    def chamfer(self, points: np.ndarray) -> np.ndarray:
        """Mean capped distance to the nearest line for (K, N, 2) posed outlines."""
        h, w = self.distance.shape
        x = np.rint(points[..., 0]).astype(np.int64)
        y = np.rint(points[..., 1]).astype(np.int64)
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        d = np.where(inside, self.distance[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)], DISTANCE_CAP)
        return d.mean(axis=-1)


def outline_points(mask: np.ndarray, count: int = OUTLINE_POINTS) -> np.ndarray:
    edge = mask & ~(cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    ys, xs = np.nonzero(edge)
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    if len(points) > count:
        points = points[np.linspace(0, len(points) - 1, count).astype(int)]
    return points


def _turned(relative: np.ndarray, pivot: np.ndarray, delta: float, shift: np.ndarray) -> np.ndarray:
    """relative, then a turn by delta about where it puts the pivot, then a shift."""
    at = arcs.apply(relative, pivot[None])[0]
    return arcs.pose(arcs.rotation(delta), at, at + shift) @ relative


def fit_to_sketch(
    lines: SketchLines, part: Part, parent_pose: np.ndarray, guess: np.ndarray, turn_guess: float
) -> tuple[np.ndarray, float]:
    """The part's pose relative to its parent at the sketch, and its turn (with winding)."""
    points = outline_points(part.mask_a)
    if len(points) == 0:
        return guess, turn_guess
    size = math.sqrt(max(part.area, 1))
    slip = 3.0 if part.joint is not None else max(4.0, 0.3 * size)

    def scores(deltas, shifts):
        poses = np.stack([parent_pose @ _turned(guess, part.pivot, d, s) for d in deltas for s in shifts])
        posed = points @ poses[:, :2, :2].transpose(0, 2, 1) + poses[:, None, :2, 2]
        return lines.chamfer(posed).reshape(len(deltas), len(shifts))

    plain = float(scores([0.0], [np.zeros(2)])[0, 0])
    deltas = np.radians(np.arange(-TURN_RANGE, TURN_RANGE + 0.1, 3.0))
    grid = np.arange(-slip, slip + 0.1, max(1.0, slip / 3))
    shifts = [np.array([dx, dy]) for dx in grid for dy in grid]
    table = scores(deltas, shifts)
    i, j = np.unravel_index(np.argmin(table), table.shape)
    delta, shift, best = float(deltas[i]), shifts[j], float(table[i, j])
    for step_deg, step_px in ((1.5, 0.5), (0.5, 0.25)):
        fine_d = delta + np.radians(np.arange(-2, 3) * step_deg)
        fine_s = [shift + np.array([dx, dy]) * step_px for dx in range(-2, 3) for dy in range(-2, 3)
                  if abs(shift[0] + dx * step_px) <= slip and abs(shift[1] + dy * step_px) <= slip]
        table = scores(fine_d, fine_s)
        i, j = np.unravel_index(np.argmin(table), table.shape)
        if table[i, j] < best:
            delta, shift, best = float(fine_d[i]), fine_s[j], float(table[i, j])
    if best > plain - MIN_IMPROVEMENT:
        return guess, turn_guess
    return _turned(guess, part.pivot, delta, shift), turn_guess + delta
