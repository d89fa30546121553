"""Which part is in front, read from the keys: where one part's shape, carried to the other key by
its pose, lands on another part that is visible there, that other part is in front.

Votes from both directions (A carried to B, B carried back to A) are counted per pair; parts are
then painted back to front: a part goes behind every part that outvotes it, larger parts behind
smaller ones when the keys say nothing.
"""

from __future__ import annotations

import numpy as np

from . import arcs
from .parts import Part

#: Sampled points a pair needs before its vote counts.
MIN_VOTES = 4


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
        source = part.mask_a if key == "a" else part.mask_b
        pose = part.motion.pose if key == "a" else np.linalg.inv(part.motion.pose)
        ys, xs = np.nonzero(source)
        if len(xs) > 3000:
            pick = np.linspace(0, len(xs) - 1, 3000).astype(int)
            xs, ys = xs[pick], ys[pick]
        moved = np.rint(arcs.apply(pose, np.stack([xs, ys], axis=1).astype(float))).astype(int)
        ok = (moved[:, 0] >= 0) & (moved[:, 0] < w) & (moved[:, 1] >= 0) & (moved[:, 1] < h)
        own = part.mask_b if key == "a" else part.mask_a
        landed = moved[ok]
        hidden = ~own[landed[:, 1], landed[:, 0]]
        cover = owner[landed[hidden, 1], landed[hidden, 0]]
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
