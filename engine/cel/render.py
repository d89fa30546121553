"""Painting an in-between: the background plate, then every part back to front at its pose.

Each part is cut out of both keys (premultiplied, so anti-aliased edges and transparency survive
the warp), each cut-out is carried to the in-between's pose by one affine warp, and the two are
mixed only after that alignment, over a short window around the middle, so a line is never seen
twice. Where no part lands, the plate's pixels are returned untouched (bit-identical).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: The mix from key A's cut-out to key B's happens while tau crosses this window.
MIX_WINDOW = (0.3, 0.7)


@dataclass
class CutOut:
    """One part's pixels in one key, premultiplied, cropped to its box."""

    pixels: np.ndarray  # (h, w, 4) float32: premultiplied RGB and coverage, 0-1
    origin: tuple[int, int]  # x, y of the crop in the key


def premultiplied(image: np.ndarray) -> np.ndarray:
    rgba = image.astype(np.float32) / 255.0
    rgba[..., :3] *= rgba[..., 3:4]
    return rgba


def straight(premult: np.ndarray) -> np.ndarray:
    alpha = premult[..., 3:4]
    visible = alpha >= 0.5 / 255.0
    rgb = np.where(visible, premult[..., :3] / np.maximum(alpha, 0.5 / 255.0), 0.0)
    out = np.concatenate([np.clip(rgb, 0, 1), np.where(visible, alpha, 0.0)], axis=2)
    return np.rint(out * 255.0).astype(np.uint8)


def cut_out(key_premult: np.ndarray, mask: np.ndarray, pad: int = 2) -> CutOut | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    x0, y0 = max(int(xs.min()) - pad, 0), max(int(ys.min()) - pad, 0)
    x1, y1 = min(int(xs.max()) + pad + 1, w), min(int(ys.max()) + pad + 1, h)
    pixels = key_premult[y0:y1, x0:x1] * mask[y0:y1, x0:x1, None].astype(np.float32)
    return CutOut(pixels, (x0, y0))


def mix_weight(tau: float) -> float:
    """How much of key B's cut-out an in-between at tau shows."""
    lo, hi = MIX_WINDOW
    return float(np.clip((tau - lo) / (hi - lo), 0.0, 1.0))


def _place(cut: CutOut, pose: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The cut-out warped by `pose` (key coordinates -> frame coordinates) into the frame box."""
    bx0, by0, bx1, by1 = box
    ox, oy = cut.origin
    shift_in = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]], float)
    shift_out = np.array([[1, 0, -bx0], [0, 1, -by0], [0, 0, 1]], float)
    m = (shift_out @ pose @ shift_in)[:2]
    return cv2.warpAffine(cut.pixels, m, (bx1 - bx0, by1 - by0), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))


def _box(cut: CutOut, pose: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    h, w = cut.pixels.shape[:2]
    ox, oy = cut.origin
    corners = np.array([[ox, oy], [ox + w, oy], [ox, oy + h], [ox + w, oy + h]], float)
    moved = corners @ pose[:2, :2].T + pose[:2, 2]
    x0, y0 = np.floor(moved.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(moved.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _union(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def paint_part(
    canvas: np.ndarray, touched: np.ndarray, cut_a: CutOut | None, pose_a: np.ndarray,
    cut_b: CutOut | None, pose_b: np.ndarray, beta: float,
) -> None:
    """Mix the part's two aligned cut-outs and paint the result over the canvas (premultiplied)."""
    height, width = canvas.shape[:2]
    use_a = cut_a is not None and beta < 1.0
    use_b = cut_b is not None and beta > 0.0
    box = _union(_box(cut_a, pose_a, width, height) if use_a else None,
                 _box(cut_b, pose_b, width, height) if use_b else None)
    if box is None:
        return
    x0, y0, x1, y1 = box
    zero = np.zeros((y1 - y0, x1 - x0, 4), np.float32)
    a = _place(cut_a, pose_a, box) if use_a else zero
    b = _place(cut_b, pose_b, box) if use_b else zero
    if cut_b is None:  # nothing to mix with: the part keeps key A's look
        mixed = a
    elif cut_a is None:
        mixed = b
    else:
        beta_a, beta_b = 1.0 - beta, beta
        weight = beta_a * a[..., 3:4] + beta_b * b[..., 3:4]
        colour = (beta_a * a[..., :3] + beta_b * b[..., :3]) / np.maximum(weight, 1e-6)
        # each key's own silhouette shows fully until the mix passes its middle, then fades
        coverage = np.maximum(min(1.0, 2 * beta_a) * a[..., 3:4], min(1.0, 2 * beta_b) * b[..., 3:4])
        mixed = np.concatenate([colour * coverage, coverage], axis=2)
    region = canvas[y0:y1, x0:x1]
    region *= 1.0 - mixed[..., 3:4]
    region += mixed
    touched[y0:y1, x0:x1] |= mixed[..., 3] > 0.5 / 255.0
