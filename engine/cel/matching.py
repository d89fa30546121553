"""Which region of key B is which region of key A: an assignment problem over the moving regions.

The cost of pairing two regions adds up how different their colours, sizes, shapes (Hu moments)
and positions are; pairs whose colours differ clearly are forbidden. Dummy rows and columns at a
fixed cost let a region appear, disappear or be left over when one region splits in two; the
leftovers later ride with the part they touch. Solved with scipy's linear_sum_assignment, twice:
the second time positions are measured after the figures' overall travel and a pair costs more
when the regions around one are not the matches of the regions around the other (two shoes of
one paint go with the legs they are drawn on, not with whichever lies nearer).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from .regions import Segmentation, adjacency

#: Cost of leaving a region unmatched.
UNMATCHED_COST = 4.0
#: Colour distance (RGBA, 0-255) that costs 1; beyond FORBIDDEN_COLOUR a pair is not allowed.
COLOUR_UNIT = 20.0
FORBIDDEN_COLOUR = 60.0
FORBIDDEN = 1e6
#: Leftovers of the same colour are paired below this cost of colour and place alone.
LOOSE_COST = 1.5
#: Cost, in the second pass, of a pair none of whose neighbours' matches are neighbours (0 when all are).
NEIGHBOUR_WEIGHT = 1.5
#: Regions are neighbours when their boundary is at least this long (pixels).
NEIGHBOUR_EDGE = 3


def hu_signature(mask: np.ndarray) -> np.ndarray:
    hu = cv2.HuMoments(cv2.moments(mask.astype(np.uint8), binaryImage=True)).ravel()[:3]
    return -np.sign(hu) * np.log10(np.abs(hu) + 1e-30)


def _neighbours(seg: Segmentation, regions: list[int]) -> list[set[int]]:
    """For each of `regions`, the positions (in `regions`) of those it shares an edge with."""
    at = {r: k for k, r in enumerate(regions)}
    out: list[set[int]] = [set() for _ in regions]
    for (i, j), (length, _) in adjacency(seg).items():
        if i in at and j in at and length >= NEIGHBOUR_EDGE:
            out[at[i]].add(at[j])
            out[at[j]].add(at[i])
    return out


def _assign(cost: np.ndarray, colour: np.ndarray, position: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (row, column) of the cost matrix, with dummies for regions left unmatched, and a
    second chance for leftovers of one colour whose size changed a lot (a cast shadow hidden under
    a squashed ball): colour and place only."""
    n, m = cost.shape
    full = np.full((n + m, m + n), FORBIDDEN)
    full[:n, :m] = cost
    full[:n, m:] = np.where(np.eye(n) > 0, UNMATCHED_COST, FORBIDDEN)
    full[n:, :m] = np.where(np.eye(m) > 0, UNMATCHED_COST, FORBIDDEN)
    full[n:, m:] = 0.0
    rows, cols = linear_sum_assignment(full)
    pairs = [(r, c) for r, c in zip(rows, cols) if r < n and c < m and full[r, c] < UNMATCHED_COST]
    left_a = sorted(set(range(n)) - {r for r, _ in pairs})
    left_b = sorted(set(range(m)) - {c for _, c in pairs})
    if left_a and left_b:
        loose = colour[np.ix_(left_a, left_b)] / COLOUR_UNIT + position[np.ix_(left_a, left_b)]
        loose[colour[np.ix_(left_a, left_b)] > COLOUR_UNIT] = FORBIDDEN
        for r, c in zip(*linear_sum_assignment(loose)):
            if loose[r, c] < LOOSE_COST:
                pairs.append((left_a[r], left_b[c]))
    return pairs


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
    pairs = _assign(cost, colour, position)
    if pairs:
        # again, with the figures' travel taken out of the positions and the neighbours weighed
        weights = np.array([area_a[r] + area_b[c] for r, c in pairs])
        travel = (weights[:, None] * np.stack([cen_b[c] - cen_a[r] for r, c in pairs])).sum(0) / weights.sum()
        position = np.linalg.norm(cen_a[:, None] + travel - cen_b[None], axis=2) / diagonal * 2.0
        near_a, near_b = _neighbours(seg_a, moving_a), _neighbours(seg_b, moving_b)
        match_of = dict(pairs)
        disagree = np.zeros(cost.shape)
        for r in range(len(ra)):
            known = [match_of[q] for q in near_a[r] if q in match_of]
            if known:
                disagree[r] = [1.0 - sum(q in near_b[c] for q in known) / len(known) for c in range(len(rb))]
        cost = colour / COLOUR_UNIT + area + shape + position + NEIGHBOUR_WEIGHT * disagree
        cost[colour > FORBIDDEN_COLOUR] = FORBIDDEN
        pairs = _assign(cost, colour, position)
    return [(moving_a[r], moving_b[c], float(cost[r, c])) for r, c in pairs]


def figures(seg: Segmentation, moving: list[int]) -> list[list[int]]:
    """Moving regions joined into whole figures: connected through any shared edge, inked or not."""
    parent = {i: i for i in moving}

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (i, j), (length, _) in adjacency(seg).items():
        if i in parent and j in parent and length >= 2:
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in moving:
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def match_figures(
    seg_a: Segmentation, seg_b: Segmentation, moving_a: list[int], moving_b: list[int], diagonal: float
) -> list[tuple[list[int], list[int]]]:
    """Whole figures of A paired with whole figures of B, for art whose regions change too much to
    pair one by one (a rolling ball whose stripes turn through it): by area, mean colour and place.
    A figure of A left unpaired comes back with no regions of B."""
    figs_a, figs_b = figures(seg_a, moving_a), figures(seg_b, moving_b)
    if not figs_a or not figs_b:
        return []

    def describe(seg, fig):
        areas = np.array([seg.regions[i].area for i in fig], float)
        colour = (np.stack([seg.regions[i].colour for i in fig]) * areas[:, None]).sum(0) / areas.sum()
        centre = (np.stack([seg.regions[i].centroid for i in fig]) * areas[:, None]).sum(0) / areas.sum()
        return areas.sum(), colour, centre

    da = [describe(seg_a, f) for f in figs_a]
    db = [describe(seg_b, f) for f in figs_b]
    cost = np.array([[np.linalg.norm(ca - cb) / COLOUR_UNIT + abs(np.log(aa / ab)) / np.log(2.0)
                      + np.linalg.norm(pa - pb) / diagonal * 2.0
                      for ab, cb, pb in db] for aa, ca, pa in da])
    rows, cols = linear_sum_assignment(cost)
    pairs = [(figs_a[r], figs_b[c]) for r, c in zip(rows, cols) if cost[r, c] < UNMATCHED_COST]
    paired = {id(ra) for ra, _ in pairs}
    # a figure key B does not show (a cast shadow the landed ball covers) fades out where it was
    return pairs + [(fig, []) for fig in figs_a if id(fig) not in paired]
