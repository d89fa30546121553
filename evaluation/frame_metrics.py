"""Per-frame scores with the project's shared definitions (the scorer in shared/tools/
score_inbetweens.py, reimplemented here so the product does not depend on that folder; the tests
check both agree on real frames when it is present):

- psnr: dB over RGB (RGBA composited over grey 128), 100 dB when identical;
- ssim: Gaussian window sigma 1.5 (11 taps), K1 0.01, K2 0.03, per RGB channel, mean over the image
  less a 5 px border;
- line_f: F-score (2 px tolerance) of dark-line masks: black-hat (grey closing with a 7x7 disc minus
  the luma) above T, T = clip(0.5 x the GT's 99.5th black-hat percentile, 15, 40), one T per GT frame;
- edge_f: the same F-score on Canny edges (Gaussian sigma 1, thresholds 60/160).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

LINE_KERNEL = 7
LINE_T_MIN, LINE_T_MAX = 15.0, 40.0
TOLERANCE_PX = 2
CANNY = (60, 160)


def to_rgb(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float64)
    if x.shape[2] == 4:
        alpha = x[..., 3:] / 255.0
        return x[..., :3] * alpha + 128.0 * (1 - alpha)
    return x[..., :3]


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def disc(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (xx * xx + yy * yy <= radius * radius + 0.25).astype(np.uint8)


def psnr(gt: np.ndarray, pred: np.ndarray) -> float:
    mse = np.mean((gt - pred) ** 2)
    return 100.0 if mse <= 1e-12 else float(min(100.0, 10 * math.log10(255.0**2 / mse)))


def _blur(x: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)


def ssim(gt: np.ndarray, pred: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for c in range(3):
        x, y = gt[..., c], pred[..., c]
        mx, my = _blur(x), _blur(y)
        sxx, syy, sxy = _blur(x * x) - mx * mx, _blur(y * y) - my * my, _blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        values.append(s[5:-5, 5:-5].mean() if min(s.shape) > 10 else s.mean())
    return float(np.mean(values))


def blackhat(rgb: np.ndarray) -> np.ndarray:
    y = luma(rgb).astype(np.float32)
    k = disc(LINE_KERNEL // 2)
    closed = cv2.erode(cv2.dilate(y, k, borderType=cv2.BORDER_REPLICATE), k, borderType=cv2.BORDER_REPLICATE)
    return closed - y


def line_threshold(gt_rgb: np.ndarray) -> float:
    return float(np.clip(0.5 * np.percentile(blackhat(gt_rgb), 99.5), LINE_T_MIN, LINE_T_MAX))


def edge_mask(rgb: np.ndarray) -> np.ndarray:
    y = np.clip(np.round(luma(rgb)), 0, 255).astype(np.uint8)
    return cv2.Canny(cv2.GaussianBlur(y, (5, 5), 1.0), *CANNY) > 0


def f_score(gt_mask: np.ndarray, pred_mask: np.ndarray, tolerance: int = TOLERANCE_PX) -> float:
    ng, npred = int(gt_mask.sum()), int(pred_mask.sum())
    if ng == 0 and npred == 0:
        return 1.0
    if ng == 0 or npred == 0:
        return 0.0
    k = disc(tolerance)
    gt_near = cv2.dilate(gt_mask.astype(np.uint8), k, borderType=cv2.BORDER_REPLICATE) > 0
    pred_near = cv2.dilate(pred_mask.astype(np.uint8), k, borderType=cv2.BORDER_REPLICATE) > 0
    precision = float((pred_mask & gt_near).sum()) / npred
    recall = float((gt_mask & pred_near).sum()) / ng
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def frame_scores(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """psnr, ssim, line_f, edge_f of one predicted frame against its ground truth (uint8 RGB/RGBA)."""
    if gt.shape[:2] != pred.shape[:2]:
        raise ValueError(f"size mismatch: ground truth {gt.shape[1]}x{gt.shape[0]}, prediction {pred.shape[1]}x{pred.shape[0]}")
    g, p = to_rgb(gt), to_rgb(pred)
    threshold = line_threshold(g)
    return {
        "psnr": psnr(g, p),
        "ssim": ssim(g, p),
        "line_f": f_score(blackhat(g) > threshold, blackhat(p) > threshold),
        "edge_f": f_score(edge_mask(g), edge_mask(p)),
    }
