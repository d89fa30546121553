"""Which region of key B is which region of key A: an assignment problem over the moving regions.

The cost of pairing two regions adds up how different their colours, sizes, shapes (Hu moments)
and positions are; pairs whose colours differ clearly are forbidden. Dummy rows and columns at a
fixed cost let a region appear, disappear or be left over when one region splits in two; the
leftovers later ride with the part they touch. Solved with scipy's linear_sum_assignment.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from .regions import Segmentation

#: Cost of leaving a region unmatched.
UNMATCHED_COST = 4.0
#: Colour distance (RGBA, 0-255) that costs 1; beyond FORBIDDEN_COLOUR a pair is not allowed.
COLOUR_UNIT = 20.0
FORBIDDEN_COLOUR = 60.0
FORBIDDEN = 1e6


def hu_signature(mask: np.ndarray) -> np.ndarray:
    hu = cv2.HuMoments(cv2.moments(mask.astype(np.uint8), binaryImage=True)).ravel()[:3]
    return -np.sign(hu) * np.log10(np.abs(hu) + 1e-30)


def match_regions(
    seg_a: Segmentation, seg_b: Segmentation, moving_a: list[int], moving_b: list[int], diagonal: float
) -> list[tuple[int, int, float]]:
    """(region of A, region of B, cost) for every matched pair of moving regions."""
    if not moving_a or not moving_b:
        return []
    ra = [seg_a.regions[i] for i in moving_a]
    rb = [seg_b.regions[j] for j in moving_b]
    hu_a = np.stack([hu_signature(seg_a.mask(r.index)[r.bbox[1]:r.bbox[3], r.bbox[0]:r.bbox[2]]) for r in ra])
    hu_b = np.stack([hu_signature(seg_b.mask(r.index)[r.bbox[1]:r.bbox[3], r.bbox[0]:r.bbox[2]]) for r in rb])
    col_a = np.stack([r.colour for r in ra])
    col_b = np.stack([r.colour for r in rb])
    colour = np.linalg.norm(col_a[:, None] - col_b[None], axis=2)
    area_a = np.array([r.area for r in ra], float)
    area_b = np.array([r.area for r in rb], float)
    area = np.abs(np.log(area_a[:, None] / area_b[None])) / np.log(2.0)
    shape = np.clip(np.abs(hu_a[:, None] - hu_b[None]).sum(axis=2), 0, 6) / 3.0
    cen_a = np.stack([r.centroid for r in ra])
    cen_b = np.stack([r.centroid for r in rb])
    position = np.linalg.norm(cen_a[:, None] - cen_b[None], axis=2) / diagonal * 2.0
    cost = colour / COLOUR_UNIT + area + shape + position
    cost[colour > FORBIDDEN_COLOUR] = FORBIDDEN
    n, m = cost.shape
    full = np.full((n + m, m + n), FORBIDDEN)
    full[:n, :m] = cost
    full[:n, m:] = np.where(np.eye(n) > 0, UNMATCHED_COST, FORBIDDEN)
    full[n:, :m] = np.where(np.eye(m) > 0, UNMATCHED_COST, FORBIDDEN)
    full[n:, m:] = 0.0
    rows, cols = linear_sum_assignment(full)
    return [
        (moving_a[r], moving_b[c], float(full[r, c]))
        for r, c in zip(rows, cols)
        if r < n and c < m and full[r, c] < UNMATCHED_COST
    ]
