"""How far the drawing travels between two keyframes, to pick RIFE's flow scale.

RIFE's coarsest flow level only finds motion up to roughly 150 pixels at scale 1: a flat-coloured
shape that travels further (a ball thrown across the frame) has no texture to lock onto at finer
levels, and its in-between fades away. Estimating the flow on a 2x or 4x coarser pyramid brings
such motion back into range, while small motions keep the full-resolution pyramid, which is better
for line detail. The dominant translation is measured by phase correlation, which ignores what
stays still (a body whose arm moves reads as small motion: articulated motion keeps scale 1).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: (dominant shift in pixels above which, flow scale) from the coarsest to the finest.
SCALE_STEPS = ((320.0, 0.25), (160.0, 0.5))
WORK_SIZE = 256
MIN_RESPONSE = 0.05


def _content(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grey drawing premultiplied by alpha, downscaled, with its mean removed."""
    rgba = image.astype(np.float32) / 255.0
    grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    alpha = rgba[..., 3]
    content = grey * alpha + alpha if alpha.min() < 1.0 else grey
    small = cv2.resize(content, size, interpolation=cv2.INTER_AREA)
    return small - small.mean()


def dominant_shift(key_a: np.ndarray, key_b: np.ndarray) -> float:
    """Length in pixels of the translation that best maps key_a onto key_b (0 when none stands out)."""
    height, width = key_a.shape[:2]
    factor = min(1.0, WORK_SIZE / max(width, height))
    size = (max(8, round(width * factor)), max(8, round(height * factor)))
    a, b = _content(key_a, size), _content(key_b, size)
    if not a.any() or not b.any():
        return 0.0
    window = cv2.createHanningWindow(size, cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a, b, window)
    if response < MIN_RESPONSE:
        return 0.0
    return math.hypot(dx / (size[0] / width), dy / (size[1] / height))


def flow_scale_for(key_a: np.ndarray, key_b: np.ndarray) -> float:
    """RIFE flow scale suited to the keys' motion: 1.0, or coarser for long travels."""
    shift = dominant_shift(key_a, key_b)
    for threshold, scale in SCALE_STEPS:
        if shift > threshold:
            return scale
    return 1.0
