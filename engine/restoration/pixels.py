"""Pixel conventions shared by the restoration stage.

Everything is worked on as premultiplied RGBA float32 in [0, 255]: resampling and blending
premultiplied colour never drags the paper's (invisible) colour into a line's anti-aliased edge,
so transparent art comes back without fringes. The API's straight-alpha uint8 comes in and goes
out through `to_working` / `to_straight`.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Rec. 601 luma weights, as the scorer and OpenCV's grey conversion use them.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
#: Grey that transparent paper shows when a single channel is needed (flow, line detection).
PAPER_GREY = 128.0


def to_working(image: np.ndarray) -> np.ndarray:
    """Straight-alpha RGBA uint8 (or RGB) -> premultiplied RGBA float32."""
    image = np.asarray(image)
    if image.shape[-1] == 3:
        image = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    out = image.astype(np.float32)
    out[..., :3] *= out[..., 3:4] / 255.0
    return out


def to_straight(work: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA float32 -> straight-alpha RGBA uint8 (colour of fully clear pixels is 0)."""
    alpha = np.clip(work[..., 3:4], 0.0, 255.0)
    safe = np.maximum(alpha, 1e-3)
    rgb = np.where(alpha > 0.5, work[..., :3] * (255.0 / safe), 0.0)
    out = np.empty(work.shape[:2] + (4,), np.uint8)
    out[..., :3] = np.clip(np.round(rgb), 0, 255)
    out[..., 3:] = np.clip(np.round(alpha), 0, 255)
    return out


def grey(work: np.ndarray) -> np.ndarray:
    """Luma of the image over mid-grey paper, float32 (H, W)."""
    return work[..., :3] @ LUMA + (255.0 - work[..., 3]) * (PAPER_GREY / 255.0)


def grey_u8(work: np.ndarray) -> np.ndarray:
    return np.clip(np.round(grey(work)), 0, 255).astype(np.uint8)


def resize(image: np.ndarray, size: tuple[int, int], *, smooth: bool = False) -> np.ndarray:
    """Resize to (width, height): area averaging when shrinking, bicubic (or bilinear with
    `smooth`, for masks and flow fields that must not ring) when enlarging."""
    width, height = size
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image.copy()
    if width <= w and height <= h:
        method = cv2.INTER_AREA
    else:
        method = cv2.INTER_LINEAR if smooth else cv2.INTER_CUBIC
    out = cv2.resize(image, (width, height), interpolation=method)
    return out.reshape((height, width) + image.shape[2:])


def disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
