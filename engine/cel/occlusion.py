"""Which part is in front, read from the keys: where one part's shape, carried to the other key by
its pose, lands on another part that is visible there, that other part is in front.

Votes from both directions (A carried to B, B carried back to A) are counted per pair; parts are
then painted back to front: a part goes behind every part that outvotes it; where the keys say
nothing about a pair, a part takes its parent's place (a hand stays with its arm), and otherwise
larger parts go behind smaller ones. Held scenery a part passes behind is found the same way
and painted over the parts. The ink between a part and one in front of it is the front part's
outline: it is left out of the cut-out of the part behind.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import arcs
from .parts import Part
from .regions import Segmentation

#: A part whose shown area differs between the keys by at most this (|log| of the ratio) is shown
#: alike: its points landing within VOTE_MARGIN pixels of it in the other key count as seen.
ALIKE_SHOWN = 0.1
VOTE_MARGIN = 2
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
#: Line pixels of a part within this many pixels of a part in front (its fill and its half of the
#: line between them) may be that part's outline.
BORROWED_REACH = 3
#: A pixel off its region's paint by more than this (any channel, 0-255) is part of a drawn line.
LINE_PAINT = 24


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
        if part.shown_change <= ALIKE_SHOWN:
            # a part both keys show whole cannot be hiding in either: its points that miss it by a
            # pixel or two, grazing a neighbour, are its pose's slack, not that neighbour covering it
            shown = cv2.dilate((part.mask_b if key == "a" else part.mask_a).astype(np.uint8),
                               np.ones((2 * VOTE_MARGIN + 1,) * 2, np.uint8)) > 0
            seen = seen | shown[landed[:, 1], landed[:, 0]]
        cover = owner[landed[~seen, 1], landed[~seen, 0]]
        cover = cover[(cover >= 0) & (cover != i)]
        np.add.at(votes[i], cover, 1)
    return votes


def _reach(part: Part) -> tuple[int, int, int, int]:
    """The box a part may sweep between the keys: its boxes in both keys and all between."""
    ys, xs = np.nonzero(part.mask_a | part.mask_b)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _inherit_depth(parts: list[Part], in_front: np.ndarray) -> np.ndarray:
    """Where the keys say nothing about two parts that may meet, a part stands where its nearest
    ancestor with a say does: a hand on an arm that passes behind the head stays behind the head,
    though the hand itself never meets it in a key."""
    at = {p.index: k for k, p in enumerate(parts)}
    lineage: list[list[int]] = []  # each part's ancestors, nearest first
    for part in parts:
        chain, parent = [], part.parent
        while parent is not None and parent in at and len(chain) < len(parts):
            chain.append(at[parent])
            parent = parts[at[parent]].parent
        lineage.append(chain)
    boxes = [_reach(p) if (p.mask_a.any() or p.mask_b.any()) else (0, 0, -1, -1) for p in parts]
    out = in_front.copy()
    for i in range(len(parts)):  # parents come before their children, so depth passes down
        for j in range(len(parts)):
            if i == j or out[i, j] or out[j, i] or not _meet(boxes[i], boxes[j]):
                continue
            for ancestor in lineage[i]:
                if ancestor == j:
                    break
                if out[ancestor, j] or out[j, ancestor]:
                    out[i, j], out[j, i] = out[ancestor, j], out[j, ancestor]
                    break
    return out


def _meet(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def paint_order(parts: list[Part]) -> list[int]:
    """Indices into `parts`, back to front."""
    n = len(parts)
    covered = _votes(parts, "a") + _votes(parts, "b")  # covered[i, j]: j hides i
    in_front = _inherit_depth(parts, (covered - covered.T) >= MIN_VOTES)  # in_front[i, j]: j is in front of i
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


def _drawn_line(image: np.ndarray, seg: Segmentation) -> np.ndarray:
    """Ink, and the anti-aliased pixels around it that are not their region's flat paint."""
    paint = np.stack([r.colour for r in seg.regions]) if seg.regions else np.zeros((1, 4))
    off = np.abs(image.astype(np.float32) - paint[np.maximum(seg.owner, 0)]).max(axis=2) > LINE_PAINT
    return seg.ink | off


def _box_of(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (slice(max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, h)),
            slice(max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, w)))


def _grown(mask: np.ndarray, kernel: np.ndarray, pad: int) -> np.ndarray:
    """`mask` grown by `kernel`, computed only around the mask's own box."""
    out = np.zeros_like(mask)
    if mask.any():
        box = _box_of(mask, pad)
        out[box] = cv2.dilate(mask[box].astype(np.uint8), kernel) > 0
    return out


def occluder_lines(parts: list[Part], order: list[int], key_a: np.ndarray, key_b: np.ndarray, seg_a: Segmentation,
                   seg_b: Segmentation) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each part's masks in keys A and B without the ink it only borrows from a part in front.

    Where an arm lies across a torso, the ink between them is the arm's outline, yet half of it is
    nearest the torso and goes with the torso's pixels; carried to the in-between and mixed with the
    other key's torso, it would leave a faint stray line across the torso. A line pixel of a part,
    next to a part painted in front of it, is the occluder's when the part's drawing in
    the other key has no line where the pose carries it: such pixels are left out of the part's
    cut-out (and count as hidden there, so the other key's drawing shows)."""
    lines = {"a": _drawn_line(key_a, seg_a), "b": _drawn_line(key_b, seg_b)}
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BORROWED_REACH + 1, 2 * BORROWED_REACH + 1))
    pad = BORROWED_REACH + 1
    # what lies in front of each part, in each key: the union of the parts painted after it
    front = {"a": [None] * len(parts), "b": [None] * len(parts)}
    for key in ("a", "b"):
        ahead = np.zeros(key_a.shape[:2], bool)
        for k in reversed(order):
            front[key][k] = ahead.copy()
            ahead |= parts[k].mask_a if key == "a" else parts[k].mask_b
    out = []
    for k, part in enumerate(parts):
        if not part.regions_a or not part.regions_b:
            out.append((part.mask_a, part.mask_b))
            continue
        cleaned = []
        for key, other_key in (("a", "b"), ("b", "a")):
            own = part.mask_a if key == "a" else part.mask_b
            other = part.mask_b if key == "a" else part.mask_a
            box = _box_of(own, pad)
            near = np.zeros_like(own)
            near[box] = own[box] & lines[key][box] & (cv2.dilate(front[key][k][box].astype(np.uint8), kernel) > 0)
            if not near.any():
                cleaned.append(own)
                continue
            ys, xs = np.nonzero(near)
            pose = part.motion.pose if key == "a" else np.linalg.inv(part.motion.pose)
            moved = np.rint(arcs.apply(pose, np.stack([xs, ys], axis=1).astype(float))).astype(int)
            h, w = own.shape
            inside = (moved[:, 0] >= 0) & (moved[:, 0] < w) & (moved[:, 1] >= 0) & (moved[:, 1] < h)
            other_line = other & lines[other_key]
            lined = _grown(other_line, kernel, pad)
            mx, my = moved[inside, 0], moved[inside, 1]
            borrowed = np.zeros(len(xs), bool)
            borrowed[inside] = other[my, mx] & ~other_line[my, mx] & ~lined[my, mx]
            mask = own.copy()
            mask[ys[borrowed], xs[borrowed]] = False
            cleaned.append(mask)
        out.append((cleaned[0], cleaned[1]))
    return out
