"""CPBD sharpness (Narvekar & Karam 2011, "A No-Reference Image Blur Metric Based on the Cumulative
Probability of Blur Detection"): the share of edge pixels whose blur is below the just-noticeable
level. Higher is sharper, in [0, 1].

- Edges: Canny (hysteresis 20/50 on the L2 Sobel magnitude) on the grey image; only edges whose gradient is mostly horizontal (vertical edges)
  are measured, across the row, as in Marziliano et al.'s edge width.
- Edge width: distance between the local extrema on either side of the edge pixel.
- 64x64 blocks with more than 0.2 % edge pixels are edge blocks; a block's contrast (max - min grey)
  sets the just-noticeable width: 5 px up to contrast 50, else 3 px.
- P_blur = 1 - exp(-(w / w_JNB)^3.6); CPBD = share of edge pixels with P_blur <= P_JNB = 0.63.
"""

from __future__ import annotations

import cv2
import numpy as np

BLOCK = 64
EDGE_SHARE = 0.002
BETA = 3.6
P_JNB = 0.63


def edge_width(row: np.ndarray, column: int, rising: bool) -> int:
    """Marziliano width at `column`: from the local extremum before the edge to the one after it
    (the definition, one pixel at a time; `edge_widths` computes it for a whole image)."""
    sign = 1 if rising else -1
    left = column
    while left > 0 and sign * (row[left - 1] - row[left]) < 0:
        left -= 1
    right = column
    while right < len(row) - 1 and sign * (row[right + 1] - row[right]) > 0:
        right += 1
    return right - left


def _runs(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a boolean (H, N) array: the length of the run of True ending at each position, and of
    the one starting there."""
    index = np.broadcast_to(np.arange(steps.shape[1]), steps.shape)
    ending = index - np.maximum.accumulate(np.where(steps, -1, index), axis=1)
    reverse = steps[:, ::-1]
    starting = (index - np.maximum.accumulate(np.where(reverse, -1, index), axis=1))[:, ::-1]
    return ending, starting


def edge_widths(grey: np.ndarray, rising: np.ndarray) -> np.ndarray:
    """`edge_width` at every pixel at once (H, W): extent of the monotonic run through each pixel
    along its row, upwards where `rising`, downwards elsewhere."""
    step = np.diff(grey, axis=1)
    widths = np.zeros(grey.shape, np.int64)
    for direction, where in ((step > 0, rising), (step < 0, ~rising)):
        ending, starting = _runs(direction)
        left = np.zeros(grey.shape, np.int64)
        right = np.zeros(grey.shape, np.int64)
        left[:, 1:] = ending
        right[:, :-1] = starting
        widths = np.where(where, left + right, widths)
    return widths


def cpbd(image: np.ndarray) -> float:
    """CPBD of an RGB or grey uint8 image; nan when it has no edge block."""
    grey = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    grey = grey.astype(np.float64)
    edges = cv2.Canny(grey.astype(np.uint8), 20, 50, L2gradient=True) > 0
    gx = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_64F, 0, 1, ksize=3)
    vertical = edges & (np.abs(gx) >= np.abs(gy))
    widths = edge_widths(grey, gx > 0)
    probabilities = []
    height, width = grey.shape
    for top in range(0, height - BLOCK + 1, BLOCK):
        for left in range(0, width - BLOCK + 1, BLOCK):
            block = edges[top:top + BLOCK, left:left + BLOCK]
            if block.sum() <= EDGE_SHARE * BLOCK * BLOCK:
                continue
            patch = grey[top:top + BLOCK, left:left + BLOCK]
            jnb = 5.0 if patch.max() - patch.min() <= 50 else 3.0
            w = widths[top:top + BLOCK, left:left + BLOCK][vertical[top:top + BLOCK, left:left + BLOCK]]
            probabilities.append(1.0 - np.exp(-((w / jnb) ** BETA)))
    if not probabilities:
        return float("nan")
    return float(np.mean(np.concatenate(probabilities) <= P_JNB))
