"""Long travels: align the keys on their dominant translation before RIFE estimates the flow.

RIFE 4.25 finds motion up to roughly 150 pixels: a flat-coloured shape that travels further (a ball
thrown across the frame) has no texture to lock onto, and its in-between fades away. When the keys'
dominant translation T (measured by phase correlation, which ignores what stays still: a body whose
arm moves reads as a small translation) is long, the in-between at tau is drawn from key A moved
forward by tau·T and key B moved back by (1 − tau)·T. Both then sit near the in-between's place and
RIFE's flow only has to carry the remaining local motion (squash, rotation, a swinging limb).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: Translations longer than this many pixels are aligned before the flow is estimated: RIFE alone
#: handles up to about 150 px, and no pair of the cartoon evaluation set travels further.
ALIGN_ABOVE_PX = 150.0
WORK_SIZE = 256
MIN_RESPONSE = 0.05


def _content(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grey drawing (over its alpha when transparent), downscaled, with its mean removed."""
    rgba = image.astype(np.float32) / 255.0
    grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    alpha = rgba[..., 3]
    content = grey * alpha + alpha if alpha.min() < 1.0 else grey
    small = cv2.resize(content, size, interpolation=cv2.INTER_AREA)
    return small - small.mean()


def dominant_translation(key_a: np.ndarray, key_b: np.ndarray) -> tuple[float, float]:
    """(dx, dy) in pixels that best maps key_a onto key_b; (0, 0) when no translation stands out."""
    height, width = key_a.shape[:2]
    factor = min(1.0, WORK_SIZE / max(width, height))
    size = (max(8, round(width * factor)), max(8, round(height * factor)))
    a, b = _content(key_a, size), _content(key_b, size)
    if not a.any() or not b.any():
        return 0.0, 0.0
    window = cv2.createHanningWindow(size, cv2.CV_32F)
    # zero padding to twice the size: travels past half the frame would otherwise wrap around
    pad = ((0, size[1]), (0, size[0]))
    (dx, dy), response = cv2.phaseCorrelate(np.pad(a * window, pad), np.pad(b * window, pad))
    if response < MIN_RESPONSE:
        return 0.0, 0.0
    return dx * width / size[0], dy * height / size[1]


def travel_to_align(key_a: np.ndarray, key_b: np.ndarray) -> tuple[float, float] | None:
    """The translation to align on, or None when the keys' motion is short enough for RIFE alone."""
    dx, dy = dominant_translation(key_a, key_b)
    return (dx, dy) if math.hypot(dx, dy) > ALIGN_ABOVE_PX else None


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The RGBA image moved by (dx, dy) pixels; transparent keys get transparency at the uncovered
    border, opaque ones their own edge pixels (a flat backdrop stays flat)."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    opaque = bool((image[..., 3] == 255).all())
    premultiplied = image.astype(np.float32)
    premultiplied[..., :3] *= premultiplied[..., 3:4] / 255.0
    moved = cv2.warpAffine(
        premultiplied, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE if opaque else cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0),
    )
    alpha = moved[..., 3:4]
    colour = np.where(alpha > 0, moved[..., :3] * 255.0 / np.maximum(alpha, 1e-6), 0.0)
    return np.concatenate([np.clip(np.round(colour), 0, 255), np.clip(np.round(alpha), 0, 255)], -1).astype(np.uint8)
