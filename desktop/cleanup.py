"""Clean-up helpers for correcting an in-between by hand: the keys' palette, fill and colour picking.

All work on RGBA uint8 arrays (the project's drawings); the canvas turns the results into clean-up
strokes. The palette is the keys' own flat colours, so a fill or a redrawn line matches the keys.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

PALETTE_SIZE = 12
FILL_GROW_PX = 1  # a fill reaches under the anti-aliased edge of the lines around it


def keys_palette(images: Iterable[np.ndarray], colours: int = PALETTE_SIZE, min_share: float = 0.002) -> list[tuple]:
    """The keys' most used opaque colours as (r, g, b), most used first.

    Colours are counted after rounding to 4 bits per channel (so anti-aliased edges fold into the
    flat colour they fade from); each returned colour is the mean of the pixels in its bin. Colours
    covering less than `min_share` of the opaque pixels are left out.
    """
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    total = 0
    for image in images:
        opaque = image[image[..., 3] >= 250][:, :3].astype(np.int64)
        if not len(opaque):
            continue
        total += len(opaque)
        bins = (opaque[:, 0] >> 4) << 8 | (opaque[:, 1] >> 4) << 4 | (opaque[:, 2] >> 4)
        found, inverse, n = np.unique(bins, return_inverse=True, return_counts=True)
        per_bin = np.zeros((len(found), 3), np.int64)
        np.add.at(per_bin, inverse.ravel(), opaque)
        for b, c, s in zip(found.tolist(), n.tolist(), per_bin):
            counts[b] = counts.get(b, 0) + c
            sums[b] = sums.get(b, 0) + s
    if not total:
        return []
    ranked = sorted(counts, key=lambda b: -counts[b])
    return [
        tuple(int(round(v)) for v in sums[b] / counts[b])
        for b in ranked[:colours]
        if counts[b] >= min_share * total
    ]


def paper_colour(image: np.ndarray) -> tuple[int, int, int] | None:
    """The paper of a drawing made on opaque paper (the most common colour along its border), or
    None for art on transparency. The clean-up eraser paints this paper instead of cutting a hole."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    if (border[:, 3] < 250).mean() > 0.02:
        return None
    colours, counts = np.unique(border[:, :3], axis=0, return_counts=True)
    return tuple(int(v) for v in colours[counts.argmax()])


def fill_mask(image: np.ndarray, x: int, y: int, tolerance: int = 32) -> np.ndarray:
    """Where a fill clicked at (x, y) lands: the connected area of similar colour (bool H×W).

    Transparent pixels count as white paper, so an open area of transparent art fills like paper.
    The area grows by FILL_GROW_PX so the fill tucks under anti-aliased line edges.
    """
    import cv2  # only when filling: opening the window stays light

    height, width = image.shape[:2]
    if not (0 <= x < width and 0 <= y < height):
        return np.zeros((height, width), bool)
    alpha = image[..., 3:4].astype(np.float32) / 255.0
    flat = (image[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    flat = np.ascontiguousarray(flat)
    mask = np.zeros((height + 2, width + 2), np.uint8)
    diff = (tolerance,) * 3
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    cv2.floodFill(flat, mask, (int(x), int(y)), (0, 0, 0), diff, diff, flags)
    area = mask[1:-1, 1:-1] > 0
    if FILL_GROW_PX:
        kernel = np.ones((2 * FILL_GROW_PX + 1,) * 2, np.uint8)
        area = cv2.dilate(area.astype(np.uint8), kernel) > 0
    return area


def pick_colour(image: np.ndarray, x: int, y: int) -> tuple[int, int, int] | None:
    """The colour under (x, y), or None where the frame is transparent (nothing to pick)."""
    height, width = image.shape[:2]
    if not (0 <= x < width and 0 <= y < height) or image[y, x, 3] < 128:
        return None
    r, g, b = (int(v) for v in image[y, x, :3])
    return r, g, b
