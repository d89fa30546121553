"""The keys' palette: find it, tell whether the art is flat-colour, snap generated colours to it.

Cel art is painted in a small set of flat colours (fills, shadow and highlight tones, line colour).
The palette is read from the keys' flat areas: colours that cover a real share of the drawing, each
the most common exact colour of its cluster. Art counts as flat-colour when almost all of its
opaque pixels are (near) one of a modest number of such colours; painted backgrounds, gradients
and photos are not, and are left alone in "auto".

Snapping moves a generated pixel to the nearest palette colour only where the generated frame is
locally flat and not on a smooth slope (so anti-aliasing ramps between two colours and soft
shading keep every step, even where a gradient passes through a palette colour) and only
within a tolerance (a colour the keys never had stays as the model drew it). The keys themselves
are never touched: this runs on in-betweens only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Quantisation of the colour cube for clustering and for the nearest-colour lookup table.
BITS = 5
#: A cluster must cover this share of the keys' flat pixels to be a palette colour.
MIN_SHARE = 0.0002
MAX_COLOURS = 64
#: Art is flat-colour when this share of its opaque pixels lies within FLAT_TOLERANCE of the palette.
FLAT_COVERAGE = 0.85
FLAT_TOLERANCE = 10.0
#: Snapping tolerance (RGB Euclidean, grey levels): full snap below half of it, none beyond it.
SNAP_TOLERANCE = 28.0
#: Local luma range (3×3) above which a generated pixel is on a ramp or an edge and is not snapped.
RAMP_RANGE = 14.0
#: Smoothed colour slope (grey levels per pixel) from which a pixel is on soft shading, a gradient
#: that may pass through a palette colour without stopping there: full snap below, none at twice it.
SHADING_SLOPE = 0.6


@dataclass(frozen=True)
class Palette:
    """colours: (K, 3) uint8 RGB; coverage: share of the keys' opaque pixels near one of them."""

    colours: np.ndarray
    coverage: float

    @property
    def is_flat_art(self) -> bool:
        return len(self.colours) > 0 and self.coverage >= FLAT_COVERAGE

    def nearest(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(nearest palette colour (N, 3) float32, its distance (N,)) for RGB colours (N, 3) float."""
        colours = self.colours.astype(np.float32)
        norms = (colours**2).sum(1)
        best = np.zeros(len(rgb), np.int64)
        best_d = np.zeros(len(rgb), np.float32)
        for start in range(0, len(rgb), 1 << 16):
            block = rgb[start : start + (1 << 16)].astype(np.float32)
            d = norms[None, :] - 2.0 * block @ colours.T
            i = d.argmin(1)
            best[start : start + len(block)] = i
            best_d[start : start + len(block)] = d[np.arange(len(block)), i] + (block**2).sum(1)
        return colours[best], np.sqrt(np.maximum(best_d, 0.0))


def _local_range(luma: np.ndarray) -> np.ndarray:
    kernel = np.ones((3, 3), np.uint8)
    return cv2.dilate(luma, kernel) - cv2.erode(luma, kernel)


def _slope(rgb: np.ndarray) -> np.ndarray:
    """Steepest smoothed colour slope per pixel (grey levels per pixel, any channel): noise on a
    flat fill averages out, a shading gradient does not."""
    smooth = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), 2.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return np.sqrt(gx**2 + gy**2).max(-1)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.float32)


def extract_palette(*keys: np.ndarray) -> Palette:
    """The palette of straight-alpha RGBA uint8 keyframes (opaque pixels only)."""
    flat_parts, opaque_parts = [], []
    for key in keys:
        step = max(1, int(np.sqrt(key.shape[0] * key.shape[1] / 500_000)))  # a sample is plenty
        key = key[::step, ::step]
        rgb = key[..., :3]
        opaque = key[..., 3] == 255
        flat = opaque & (_local_range(_luma(rgb)) <= 2.0)
        flat_parts.append(rgb[flat])
        opaque_parts.append(rgb[opaque])
    flat_px = np.concatenate(flat_parts) if flat_parts else np.zeros((0, 3), np.uint8)
    opaque_px = np.concatenate(opaque_parts) if opaque_parts else np.zeros((0, 3), np.uint8)
    if len(flat_px) == 0:
        return Palette(np.zeros((0, 3), np.uint8), 0.0)
    shift = 8 - BITS
    bins = (flat_px >> shift).astype(np.int64)
    index = (bins[:, 0] << (2 * BITS)) | (bins[:, 1] << BITS) | bins[:, 2]
    counts = np.bincount(index, minlength=1 << (3 * BITS))
    chosen = np.nonzero(counts >= max(1, MIN_SHARE * len(flat_px)))[0]
    chosen = chosen[np.argsort(-counts[chosen])][:MAX_COLOURS]
    # each chosen cluster's most common exact colour
    exact = (flat_px[:, 0].astype(np.int64) << 16) | (flat_px[:, 1].astype(np.int64) << 8) | flat_px[:, 2]
    values, value_counts = np.unique(exact, return_counts=True)
    mask = (1 << BITS) - 1
    value_bins = (
        (((values >> (16 + shift)) & mask) << (2 * BITS)) | (((values >> (8 + shift)) & mask) << BITS) | ((values >> shift) & mask)
    )
    colours = []
    for b in chosen:
        members = value_bins == b
        mode = int(values[members][value_counts[members].argmax()])
        colours.append(((mode >> 16) & 255, (mode >> 8) & 255, mode & 255))
    colours = _merge_close(np.array(colours, np.uint8).reshape(-1, 3))
    palette = Palette(colours, 0.0)
    sample = opaque_px[:: max(1, len(opaque_px) // 200_000)]
    _, distance = palette.nearest(sample.astype(np.float32))
    return Palette(colours, float((distance <= FLAT_TOLERANCE).mean()) if len(sample) else 0.0)


def _merge_close(colours: np.ndarray, distance: float = 6.0) -> np.ndarray:
    """Drop colours within `distance` of a more common one (neighbouring quantisation bins)."""
    kept: list[np.ndarray] = []
    for colour in colours.astype(np.float32):
        if all(np.linalg.norm(colour - other) > distance for other in kept):
            kept.append(colour)
    return np.array(kept, np.uint8).reshape(-1, 3)


def snap_to_palette(work: np.ndarray, palette: Palette, *, tolerance: float = SNAP_TOLERANCE) -> np.ndarray:
    """Premultiplied RGBA float32 -> the same with flat, near-palette colours moved onto the palette.

    Only opaque pixels are snapped (a semi-transparent edge is a ramp towards the paper).
    """
    if len(palette.colours) == 0:
        return work
    alpha = work[..., 3]
    rgb = work[..., :3]
    ramp = _local_range(_luma(np.clip(rgb, 0, 255)))
    candidates = (alpha >= 254.5) & (ramp <= RAMP_RANGE)
    ys, xs = np.nonzero(candidates)
    if len(ys) == 0:
        return work
    colour = rgb[ys, xs]
    target, distance = palette.nearest(colour)
    weight = np.clip(2.0 - 2.0 * distance / tolerance, 0.0, 1.0)
    weight *= np.clip((RAMP_RANGE - ramp[ys, xs]) / (RAMP_RANGE / 2), 0.0, 1.0)  # fade out towards ramps
    weight *= np.clip(2.0 - _slope(rgb)[ys, xs] / SHADING_SLOPE, 0.0, 1.0)
    out = work.copy()
    out[ys, xs, :3] = colour + (target - colour) * weight[:, None]
    return out
