"""Which part is in front, read from the keys: where one part's shape, carried to the other key by
its pose, lands on another part that is visible there, that other part is in front.

Votes from both directions (A carried to B, B carried back to A) are counted per pair; parts are
then painted back to front: a part goes behind every part that outvotes it, larger parts behind
smaller ones when the keys say nothing. Held scenery a part passes behind is found the same way
and painted over the parts.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import arcs
from .parts import Part
from .regions import Segmentation

#: Sampled points a pair needs before its vote counts.
MIN_VOTES = 4
#: A held region is in front of the parts when at least FRONT_VOTES points of a part land on it in
#: the other key and at least FRONT_SHARE of them find the region showing there, not the part ...
FRONT_VOTES = 20
FRONT_SHARE = 0.6
#: ... and those points are at least this share of the part's (a stray edge is no evidence). The
#: backdrop (held regions reaching the frame edge) is never in front.
FRONT_PART_SHARE = 0.1
#: A key's pixel shows the held plate when no channel differs from it by more than this.
HELD_TOLERANCE = 12


def _landings(part: Part, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Points of `part` in `key` carried to the other key by its pose: (landed points, whether the
    other key shows the part there), inside the frame only."""
    source = part.mask_a if key == "a" else part.mask_b
    pose = part.motion.pose if key == "a" else np.linalg.inv(part.motion.pose)
    ys, xs = np.nonzero(source)
    if len(xs) > 3000:
        pick = np.linspace(0, len(xs) - 1, 3000).astype(int)
        xs, ys = xs[pick], ys[pick]
    h, w = source.shape
    moved = np.rint(arcs.apply(pose, np.stack([xs, ys], axis=1).astype(float))).astype(int)
    moved = moved[(moved[:, 0] >= 0) & (moved[:, 0] < w) & (moved[:, 1] >= 0) & (moved[:, 1] < h)]
    own = part.mask_b if key == "a" else part.mask_a
    return moved, own[moved[:, 1], moved[:, 0]]


def _votes(parts: list[Part], key: str) -> np.ndarray:
    """votes[i, j]: points of part i that, carried to the other key, land on part j there."""
    n = len(parts)
    votes = np.zeros((n, n))
    if n < 2:
        return votes
    h, w = parts[0].mask_a.shape
    owner = np.full((h, w), -1, np.int32)
    for k, part in enumerate(parts):
        owner[part.mask_b if key == "a" else part.mask_a] = k
    for i, part in enumerate(parts):
        if not part.regions_b:
            continue
        landed, seen = _landings(part, key)
        cover = owner[landed[~seen, 1], landed[~seen, 0]]
        cover = cover[(cover >= 0) & (cover != i)]
        np.add.at(votes[i], cover, 1)
    return votes


def paint_order(parts: list[Part]) -> list[int]:
    """Indices into `parts`, back to front."""
    n = len(parts)
    covered = _votes(parts, "a") + _votes(parts, "b")  # covered[i, j]: j hides i
    in_front = (covered - covered.T) >= MIN_VOTES  # in_front[i, j]: j is in front of i
    order: list[int] = []
    remaining = set(range(n))
    while remaining:
        # paint next a part with no remaining part behind it
        free = [i for i in remaining if not any(in_front[j, i] for j in remaining if j != i)]
        pool = free or list(remaining)
        pick = max(pool, key=lambda i: (parts[i].area, -i))
        order.append(pick)
        remaining.remove(pick)
    return order


def held_in_front(parts: list[Part], seg_a: Segmentation, seg_b: Segmentation, held_a: np.ndarray,
                  held_b: np.ndarray) -> np.ndarray:
    """Pixels of held cels painted in front of the moving parts (a tree trunk a figure walks
    behind): a held region inside the frame on which a good share of a part, carried to the other
    key by its pose, lands unseen. Returned with the region's outline, to paint over the parts."""
    front = np.zeros(seg_a.labels.shape, bool)
    for key, seg, held in (("a", seg_b, held_b), ("b", seg_a, held_a)):
        for part in parts:
            if not part.regions_b:
                continue
            landed, seen = _landings(part, key)
            regions = seg.labels[landed[:, 1], landed[:, 0]]
            for region in np.unique(regions[regions >= 0]):
                on = regions == region
                if (held[region] and not seg.regions[region].touches_border
                        and on.sum() >= max(FRONT_VOTES, FRONT_PART_SHARE * len(landed))
                        and (~seen[on]).mean() >= FRONT_SHARE):
                    front |= seg.labels == region
    if front.any():
        ring = cv2.dilate(front.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        front |= ring & (seg_a.ink & seg_b.ink)
    return front


def scenery_over(figure: np.ndarray, key: np.ndarray, key_seg: Segmentation, plate: np.ndarray) -> np.ndarray:
    """Held scenery of `key` in front of where the figure should be in it (`figure`: the mask
    drawn from other keys): a region inside the frame that shows the plate's own paint, not the
    figure, over a good share of that mask. Returned with its outline, to paint over the parts."""
    same = np.abs(key.astype(np.int16) - plate.astype(np.int16)).max(axis=2) <= HELD_TOLERANCE
    front = np.zeros(figure.shape, bool)
    regions = key_seg.labels[figure]
    for region in np.unique(regions[regions >= 0]):
        if key_seg.regions[region].touches_border:
            continue
        mask = key_seg.labels == region
        if (regions == region).sum() >= max(FRONT_VOTES, FRONT_PART_SHARE * figure.sum()) and same[mask].mean() >= FRONT_SHARE:
            front |= mask
    if front.any():
        ring = cv2.dilate(front.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        front |= ring & key_seg.ink
    return front & same
