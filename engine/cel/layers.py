"""Held cels and moving figures: what stays put between two keys, and the background plate behind.

A region of one key is *held* (static background or a held cel) when the other key shows it
unchanged: almost none of its pixels change, or its outline ring is unchanged (only something
passing in front of it differs), or it touches the frame edge and is mostly unchanged (a backdrop
that a figure crosses). Two kinds of moving-looking region belong to the plate without being held
(so they never cover a figure): backdrop seen through a gap in a figure, and scenery a figure
covers differently in each key whose free outline stayed put (a cloud the ball leaves). Everything
else moves. The plate is each key's held pixels, with what a figure hides in one key taken from the
other key, and only what neither key shows inpainted.
"""

from __future__ import annotations

import cv2
import numpy as np

from .regions import Segmentation

#: A pixel changed between the keys when any RGBA channel differs by more than this.
CHANGE_TOLERANCE = 8
#: Held when at most this share of a region's pixels changed ...
HELD_CHANGED = 0.05
#: ... or at most this share of its outline ring changed ...
HELD_RING_CHANGED = 0.3
#: ... or, for a region touching the frame edge, at most this share of its pixels changed.
HELD_BACKDROP_CHANGED = 0.3
#: A moving region is backdrop when at least POCKET_SHARE of it shows, in the other key, held
#: regions within POCKET_PAINT (RGBA colour distance, 0-255) of its own paint.
POCKET_PAINT = 12.0
POCKET_SHARE = 0.5
#: A region partly covered by moving figures belongs to the plate when at most COVERED_CHANGED of its free outline
#: (away from any moving region in either key) changed, and that free outline is at least
#: COVERED_FREE_SHARE of its whole outline ring and COVERED_FREE_PIXELS pixels.
COVERED_CHANGED = 0.1
COVERED_FREE_SHARE = 0.1
COVERED_FREE_PIXELS = 24


def changed_pixels(key_a: np.ndarray, key_b: np.ndarray) -> np.ndarray:
    diff = np.abs(key_a.astype(np.int16) - key_b.astype(np.int16)).max(axis=2)
    both_clear = (key_a[..., 3] == 0) & (key_b[..., 3] == 0)
    return (diff > CHANGE_TOLERANCE) & ~both_clear


def held_regions(seg: Segmentation, changed: np.ndarray) -> np.ndarray:
    """Boolean per region of `seg`: True where the region is held (does not move)."""
    count = len(seg.regions)
    labels = seg.labels
    valid = labels >= 0
    idx = labels[valid]
    area = np.bincount(idx, minlength=count).astype(np.float64)
    changed_area = np.bincount(idx, weights=changed[valid].astype(np.float64), minlength=count)
    frac = changed_area / np.maximum(area, 1)
    held = np.zeros(count, bool)
    kernel = np.ones((3, 3), np.uint8)
    for region in seg.regions:
        i = region.index
        if area[i] == 0:
            held[i] = True
            continue
        if frac[i] <= HELD_CHANGED or (region.touches_border and frac[i] <= HELD_BACKDROP_CHANGED):
            held[i] = True
            continue
        x0, y0, x1, y1 = region.bbox
        pad = 3
        ys, xs = slice(max(y0 - pad, 0), y1 + pad), slice(max(x0 - pad, 0), x1 + pad)
        mask = (labels[ys, xs] == i).astype(np.uint8)
        ring = (cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0) & ~(cv2.erode(mask, kernel) > 0)
        held[i] = changed[ys, xs][ring].mean() <= HELD_RING_CHANGED
    return held


def _covered_held(seg: Segmentation, held: np.ndarray, changed: np.ndarray, other: Segmentation,
                 other_held: np.ndarray) -> np.ndarray:
    """`held` plus the regions whose outline, wherever no moving region lies on it or beside it in
    either key, is unchanged: scenery that a moving figure covers in part, differently in each key
    (a cloud the ball hides the left of in one key and the right of in the other). A flat fill
    looks unchanged where two drawings of a moving part overlap, so only the free outline counts."""
    out = held.copy()
    moving_here = ~held[seg.owner]
    colours = np.stack([r.colour for r in other.regions]) if other.regions else np.zeros((0, 4))
    kernel = np.ones((3, 3), np.uint8)
    for region in seg.regions:
        if held[region.index] or region.area == 0:
            continue
        x0, y0, x1, y1 = region.bbox
        pad = 5
        ys, xs = slice(max(y0 - pad, 0), y1 + pad), slice(max(x0 - pad, 0), x1 + pad)
        mask = (seg.labels[ys, xs] == region.index).astype(np.uint8)
        ring = (cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0) & ~(cv2.erode(mask, kernel) > 0)
        # the other key's drawing of this same paint is not a cover
        moving_there = (~other_held & (np.linalg.norm(colours - region.colour, axis=1) > POCKET_PAINT))[other.owner[ys, xs]]
        cover = ((moving_here[ys, xs] & (seg.owner[ys, xs] != region.index)) | moving_there).astype(np.uint8)
        free = ring & ~(cv2.dilate(cover & ~mask, kernel, iterations=2) > 0)
        if free.sum() >= max(COVERED_FREE_PIXELS, COVERED_FREE_SHARE * ring.sum()):
            out[region.index] = changed[ys, xs][free].mean() <= COVERED_CHANGED
    return out


def _same_scenery(seg: Segmentation, held: np.ndarray, other: Segmentation, found: np.ndarray) -> np.ndarray:
    """`held` plus the regions of `seg` of the same paint as, and overlapping, a region of the other
    key that `found` marks: the other key's view of the same partly covered scenery."""
    out = held.copy()
    colours = np.stack([r.colour for r in seg.regions]) if seg.regions else np.zeros((0, 4))
    for j in np.flatnonzero(found):
        there = seg.labels[other.labels == j]
        there = np.unique(there[there >= 0])
        alike = there[np.linalg.norm(colours[there] - other.regions[j].colour, axis=1) <= POCKET_PAINT]
        out[alike] = True
    return out


def covered_scenery(seg_a: Segmentation, held_a: np.ndarray, seg_b: Segmentation, held_b: np.ndarray,
                    changed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both keys' plate masks (given per region), with the scenery that moving figures cover in part
    (differently in each key) added in both keys once either key's free outline shows it stayed put."""
    more_a = _covered_held(seg_a, held_a, changed, seg_b, held_b)
    more_b = _covered_held(seg_b, held_b, changed, seg_a, held_a)
    return (_same_scenery(seg_a, more_a, seg_b, more_b & ~held_b),
            _same_scenery(seg_b, more_b, seg_a, more_a & ~held_a))


def backdrop_pockets(seg: Segmentation, held: np.ndarray, other: Segmentation, other_held: np.ndarray) -> np.ndarray:
    """Boolean per region of `seg`: not held, but where it lies the other key mostly shows a held
    region of the same paint (the sky or a hill seen between a figure's legs, which the legs have
    left in the other key). Such a pocket is backdrop showing through a gap in the figure, not a
    part of it: it belongs to the plate. A limb painted like the body it swings across is no pocket:
    where the limb was, the other key shows the background behind it."""
    pockets = np.zeros(len(seg.regions), bool)
    colours = np.stack([r.colour for r in other.regions]) if other.regions else np.zeros((0, 4))
    for region in seg.regions:
        if held[region.index] or region.area == 0:
            continue
        there = other.labels[seg.labels == region.index]
        there = there[there >= 0]
        if not len(there):
            continue
        same = other_held[there] & (np.linalg.norm(colours[there] - region.colour, axis=1) <= POCKET_PAINT)
        pockets[region.index] = same.mean() >= POCKET_SHARE
    return pockets


def background_plate(
    key_a: np.ndarray, key_b: np.ndarray, moving_a: np.ndarray, moving_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The held picture with every moving figure removed, and the mask of what had to be inpainted.

    A's pixels where A shows background; B's where A's figure hides it but B shows it; inpainted
    (colour and alpha) where both keys' figures cover it.
    """
    plate = key_a.copy()
    from_b = moving_a & ~moving_b
    plate[from_b] = key_b[from_b]
    unseen = moving_a & moving_b
    if unseen.any():
        hole = unseen.astype(np.uint8) * 255
        rgb = cv2.inpaint(np.ascontiguousarray(plate[..., :3]), hole, 5, cv2.INPAINT_TELEA)
        alpha = cv2.inpaint(np.ascontiguousarray(plate[..., 3]), hole, 5, cv2.INPAINT_TELEA)
        plate[unseen, :3] = rgb[unseen]
        plate[unseen, 3] = alpha[unseen]
    return plate, unseen
