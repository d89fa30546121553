"""A cel drawing cut into its paint regions: flat colour areas, and the ink lines that bound them.

Ink is what an animator inks: dark pixels on thin strokes (a black-hat of the brightness finds
thin dark structures whatever their colour; a dark solid area such as an eye or a shoe stays a
region). Regions are connected areas of one flat colour (with alpha, so a half-transparent cast
shadow is its own region). The anti-aliased pixels between two fills, and pixels in areas too
busy to be flat, go to their nearest region; ink pixels remember their nearest region as well
(`owner`), which is how a part finds its outline.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Brightness under which a thin pixel counts as ink (0-255).
INK_DARKNESS = 110
#: How much darker than its surroundings a pixel must be (black-hat, 0-255) to count as ink.
INK_CONTRAST = 28
#: Widest stroke (pixels) read as a line rather than a dark area.
INK_MAX_WIDTH = 7
#: A flat pixel's 3x3 neighbourhood varies by at most this much per channel.
FLAT_TOLERANCE = 6
#: Flat colours are grouped by these bit shifts (RGB, alpha) before connected components.
COLOUR_BITS = 3
#: Regions smaller than this (pixels) are absorbed by their neighbours.
MIN_REGION_AREA = 4


@dataclass
class Region:
    index: int
    colour: np.ndarray  # RGBA float, the region's paint: the mean of its flat pixels
    area: int
    centroid: np.ndarray  # (x, y)
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    touches_border: bool


@dataclass
class Segmentation:
    """`labels`: region index per pixel, -1 on ink. `owner`: nearest region index of every pixel."""

    labels: np.ndarray
    owner: np.ndarray
    ink: np.ndarray
    regions: list[Region]
    flat_fraction: float  # share of the picture covered by flat regions before absorption

    def mask(self, index: int) -> np.ndarray:
        return self.labels == index


def luminance(image: np.ndarray) -> np.ndarray:
    rgb = image[..., :3].astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def ink_mask(image: np.ndarray) -> np.ndarray:
    """Thin dark visible strokes."""
    alpha = image[..., 3]
    grey = luminance(image)
    # transparent paper reads as white so a line on a transparent cel is still darker than its surroundings
    grey = np.where(alpha < 16, 255.0, grey * (alpha / 255.0) + 255.0 * (1 - alpha / 255.0)).astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (INK_MAX_WIDTH, INK_MAX_WIDTH))
    blackhat = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel)
    return (alpha >= 16) & (grey < INK_DARKNESS) & (blackhat > INK_CONTRAST)


def _colour_keys(image: np.ndarray) -> np.ndarray:
    q = image.astype(np.int32)
    r, g, b = q[..., 0] >> COLOUR_BITS, q[..., 1] >> COLOUR_BITS, q[..., 2] >> COLOUR_BITS
    a = q[..., 3] >> 4
    keys = ((r * 32 + g) * 32 + b) * 16 + a
    return np.where(q[..., 3] == 0, -2, keys)  # all fully transparent pixels are one colour


def segment(image: np.ndarray) -> Segmentation:
    """Regions and ink of one RGBA uint8 cel."""
    h, w = image.shape[:2]
    ink = ink_mask(image)
    spread = cv2.dilate(image, np.ones((3, 3), np.uint8)).astype(np.int16) - cv2.erode(image, np.ones((3, 3), np.uint8))
    flat = (spread.max(axis=2) <= FLAT_TOLERANCE) & ~ink
    keys = _colour_keys(image)
    labels = np.full((h, w), -1, np.int32)
    flat_keys = keys[flat]
    uniques, counts = np.unique(flat_keys, return_counts=True)
    next_label = 0
    for key in uniques[counts >= MIN_REGION_AREA]:
        mask = (flat & (keys == key)).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        for c in range(1, n):
            if stats[c, cv2.CC_STAT_AREA] >= MIN_REGION_AREA:
                labels[comp == c] = next_label
                next_label += 1
    flat_fraction = float((labels >= 0).mean())
    core = labels >= 0
    owner = nearest_labels(labels)
    labels = np.where(ink, -1, owner)
    regions = describe_regions(image, labels, core)
    return Segmentation(labels=labels, owner=owner, ink=ink, regions=regions, flat_fraction=flat_fraction)


def nearest_labels(labels: np.ndarray) -> np.ndarray:
    """Every pixel's nearest labelled (>= 0) pixel's label."""
    if (labels >= 0).all() or not (labels >= 0).any():
        return np.maximum(labels, 0)
    free = (labels < 0).astype(np.uint8)
    _, nearest = cv2.distanceTransformWithLabels(free, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    seeds = np.flatnonzero(free.ravel() == 0)
    # DIST_LABEL_PIXEL numbers the zero pixels 1..n in raster order
    return labels.ravel()[seeds][nearest.ravel() - 1].reshape(labels.shape)


def describe_regions(image: np.ndarray, labels: np.ndarray, core: np.ndarray | None = None) -> list[Region]:
    """Each region's area, centroid and box over all its pixels, and its paint over its `core`
    (the flat pixels, not the anti-aliased edge mixed with the ink beside it: a thin gap of sky
    between two limbs is mostly edge, and its mean would read darker than the sky)."""
    h, w = labels.shape
    count = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    flat_labels = labels.ravel()
    valid = flat_labels >= 0
    idx = flat_labels[valid]
    area = np.bincount(idx, minlength=count)
    ys, xs = np.divmod(np.flatnonzero(valid), w)
    sx = np.bincount(idx, weights=xs, minlength=count)
    sy = np.bincount(idx, weights=ys, minlength=count)
    pixels = image.reshape(-1, 4)[valid].astype(np.float64)
    colour_sum = np.stack([np.bincount(idx, weights=pixels[:, c], minlength=count) for c in range(4)], axis=1)
    colour_count = area.astype(np.float64)
    if core is not None:
        flat = core.ravel()[valid]
        flat_sum = np.stack([np.bincount(idx[flat], weights=pixels[flat, c], minlength=count) for c in range(4)], axis=1)
        flat_count = np.bincount(idx[flat], minlength=count).astype(np.float64)
        has_core = flat_count > 0
        colour_sum[has_core], colour_count[has_core] = flat_sum[has_core], flat_count[has_core]
    regions = []
    order = np.argsort(idx, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(area)])
    for i in range(count):
        if area[i] == 0:
            regions.append(Region(i, np.zeros(4), 0, np.zeros(2), (0, 0, 0, 0), False))
            continue
        sel = order[bounds[i]:bounds[i + 1]]
        rx, ry = xs[sel], ys[sel]
        x0, y0, x1, y1 = int(rx.min()), int(ry.min()), int(rx.max()) + 1, int(ry.max()) + 1
        regions.append(Region(
            index=i, colour=colour_sum[i] / colour_count[i], area=int(area[i]),
            centroid=np.array([sx[i] / area[i], sy[i] / area[i]]), bbox=(x0, y0, x1, y1),
            touches_border=x0 == 0 or y0 == 0 or x1 == w or y1 == h,
        ))
    return regions


def adjacency(seg: Segmentation) -> dict[tuple[int, int], tuple[int, float]]:
    """(i, j) with i < j -> (boundary length in pixels, share of that boundary lying on ink).

    Two regions meet where neighbouring pixels have different nearest regions. A share near 1 is
    an inked outline between them; near 0, two tones painted side by side (a fill and its shadow).
    """
    owner = seg.owner
    ink = seg.ink
    pairs = []
    for a, b, ia, ib in (
        (owner[:, :-1], owner[:, 1:], ink[:, :-1], ink[:, 1:]),
        (owner[:-1, :], owner[1:, :], ink[:-1, :], ink[1:, :]),
    ):
        diff = a != b
        lo = np.minimum(a, b)[diff].astype(np.int64)
        hi = np.maximum(a, b)[diff].astype(np.int64)
        inked = (ia | ib)[diff]
        pairs.append((lo, hi, inked))
    lo = np.concatenate([p[0] for p in pairs])
    hi = np.concatenate([p[1] for p in pairs])
    inked = np.concatenate([p[2] for p in pairs])
    n = len(seg.regions) + 1
    code = lo * n + hi
    uniques, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
    ink_counts = np.bincount(inverse, weights=inked.astype(np.float64), minlength=len(uniques))
    return {
        (int(c // n), int(c % n)): (int(k), float(ink_counts[u] / k))
        for u, (c, k) in enumerate(zip(uniques, counts))
    }
