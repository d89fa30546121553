"""On-screen text detection: how much of a frame is covered by text (subtitles, titles, signs).

Two detectors give the same measure, the fraction of the frame inside text boxes:
- `CraftDetector`: the CRAFT network (Baek et al. 2019, the detector inside EasyOCR), loaded from a
  local craft_mlt_25k.pth. Its region score marks character centres; text area is the fraction of
  pixels whose region score exceeds `low_text` in components whose peak exceeds `text_threshold`.
- `stroke_text_fraction`: the weight-free fallback. Extremal regions (components of the frame
  thresholded at several grey levels, as MSER does; OpenCV 5's MSER returns no regions) that look
  like glyphs (glyph-sized, strokes thin for their height and of even width) and that line up with at least three neighbours
  of similar height along a row; the union of those rows' boxes is the text area.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .clip_model import load_state_dict

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# VGG16-BN's feature layers as (index, kind, in, out); indices match torchvision's, which the CRAFT
# checkpoint keys use (basenet.sliceN.<index>.weight).
_VGG16_BN = []
_channels = [(3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256), (256, 256), "M",
             (256, 512), (512, 512), (512, 512), "M", (512, 512), (512, 512), (512, 512)]
_index = 0
for _spec in _channels:
    if _spec == "M":
        _VGG16_BN.append((_index, "pool", 0, 0))
        _index += 1
    else:
        _VGG16_BN.append((_index, "conv", *_spec))
        _VGG16_BN.append((_index + 1, "bn", _spec[1], _spec[1]))
        _VGG16_BN.append((_index + 2, "relu", 0, 0))
        _index += 3
_SLICES = ((0, 12), (12, 19), (19, 29), (29, 39))


def _vgg_layer(kind: str, cin: int, cout: int) -> nn.Module:
    if kind == "conv":
        return nn.Conv2d(cin, cout, 3, padding=1)
    if kind == "bn":
        return nn.BatchNorm2d(cout)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    return nn.MaxPool2d(2, 2)


class _VggBackbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for number, (lo, hi) in enumerate(_SLICES, start=1):
            block = nn.Sequential()
            for index, kind, cin, cout in _VGG16_BN:
                if lo <= index < hi:
                    block.add_module(str(index), _vgg_layer(kind, cin, cout))
            setattr(self, f"slice{number}", block)
        self.slice5 = nn.Sequential(
            nn.MaxPool2d(3, 1, 1), nn.Conv2d(512, 1024, 3, padding=6, dilation=6), nn.Conv2d(1024, 1024, 1)
        )

    def forward(self, x):
        h2 = self.slice1(x)
        h3 = self.slice2(h2)
        h4 = self.slice3(h3)
        h5 = self.slice4(h4)
        fc7 = self.slice5(h5)
        return fc7, h5, h4, h3, h2


class _DoubleConv(nn.Module):
    def __init__(self, cin: int, cmid: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin + cmid, cmid, 1), nn.BatchNorm2d(cmid), nn.ReLU(inplace=True),
            nn.Conv2d(cmid, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.conv(x)


class Craft(nn.Module):
    """CRAFT: VGG16-BN U-Net giving a region (character) score and an affinity (link) score at 1/2 size."""

    def __init__(self) -> None:
        super().__init__()
        self.basenet = _VggBackbone()
        self.upconv1 = _DoubleConv(1024, 512, 256)
        self.upconv2 = _DoubleConv(512, 256, 128)
        self.upconv3 = _DoubleConv(256, 128, 64)
        self.upconv4 = _DoubleConv(128, 64, 32)
        self.conv_cls = nn.Sequential(
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(16, 16, 1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 2, 1),
        )

    def forward(self, x):
        fc7, h5, h4, h3, h2 = self.basenet(x)
        y = self.upconv1(torch.cat([fc7, h5], 1))
        for skip, block in ((h4, self.upconv2), (h3, self.upconv3), (h2, self.upconv4)):
            y = F.interpolate(y, size=skip.shape[2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], 1))
        return self.conv_cls(y)  # N x 2 x H/2 x W/2: region, affinity


class CraftDetector:
    """Text area fraction of RGB frames from CRAFT's region score."""

    def __init__(self, weights, device: str = "cpu", canvas: int = 640, text_threshold: float = 0.7,
                 low_text: float = 0.4) -> None:
        self.net = Craft()
        self.net.load_state_dict(load_state_dict(weights), strict=True)
        self.net.eval().to(device)
        self.device, self.canvas = device, canvas
        self.text_threshold, self.low_text = text_threshold, low_text

    @torch.no_grad()
    def region_score(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        scale = min(1.0, self.canvas / max(h, w))
        nh, nw = max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32)
        x = cv2.resize(frame[..., :3], (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
        y = self.net(torch.from_numpy(x).permute(2, 0, 1)[None].to(self.device))
        return y[0, 0].float().cpu().numpy()

    def text_fraction(self, frame: np.ndarray) -> float:
        score = self.region_score(frame)
        mask = (score > self.low_text).astype(np.uint8)
        count, labels = cv2.connectedComponents(mask, connectivity=4)
        keep = np.zeros(count, bool)
        if count > 1:
            peaks = np.zeros(count, np.float32)
            np.maximum.at(peaks, labels.ravel(), score.ravel())
            keep = peaks > self.text_threshold
            keep[0] = False
        return float(keep[labels].mean())


def _glyph_candidates(grey: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) of extremal regions (connected components of the image thresholded at
    several grey levels, dark and bright) that look like glyphs."""
    h_img, w_img = grey.shape
    boxes: list[tuple[int, int, int, int]] = []
    for level in (48, 96, 144, 192):
        for binary in (grey < level, grey > level):
            count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
            for label in range(1, count):
                x, y, w, h, area = (int(v) for v in stats[label])
                if not (0.04 * h_img <= h <= 0.25 * h_img) or not (0.1 <= w / h <= 2.0):
                    continue
                fill = area / float(w * h)
                if not 0.15 <= fill <= 0.85:
                    continue
                mask = np.zeros((h + 2, w + 2), np.uint8)
                mask[1:-1, 1:-1] = (labels[y:y + h, x:x + w] == label) * 255
                dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
                ridge = (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & (mask > 0)
                widths = 2.0 * dist[ridge]
                if widths.size < 3:
                    continue
                mean = float(widths.mean())
                # Glyph strokes are thin for the glyph's height and of even width along the stroke.
                if mean > 0.3 * h or float(widths.std()) > 0.6 * mean:
                    continue
                boxes.append((x, y, w, h))
    return _dedupe(boxes)


def _dedupe(boxes):
    kept: list[tuple[int, int, int, int]] = []
    for box in sorted(boxes, key=lambda b: -b[2] * b[3]):
        x, y, w, h = box
        duplicate = False
        for kx, ky, kw, kh in kept:
            ix = max(0, min(x + w, kx + kw) - max(x, kx))
            iy = max(0, min(y + h, ky + kh) - max(y, ky))
            if ix * iy > 0.6 * min(w * h, kw * kh):
                duplicate = True
                break
        if not duplicate:
            kept.append(box)
    return kept


def text_lines(grey: np.ndarray, min_glyphs: int = 4) -> list[tuple[int, int, int, int]]:
    """Row boxes (x0, y0, x1, y1) made of at least `min_glyphs` aligned glyph candidates."""
    boxes = _glyph_candidates(grey)
    n = len(boxes)
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        xi, yi, wi, hi = boxes[i]
        for j in range(i + 1, n):
            xj, yj, wj, hj = boxes[j]
            if max(hi, hj) > 1.6 * min(hi, hj):
                continue
            if abs((yi + hi / 2) - (yj + hj / 2)) > 0.4 * min(hi, hj):
                continue
            gap = max(xi, xj) - min(xi + wi, xj + wj)
            if gap > 1.2 * max(hi, hj) or gap < -0.5 * min(wi, wj):
                continue
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    lines = []
    for members in groups.values():
        if len(members) < min_glyphs:
            continue
        x0 = min(boxes[i][0] for i in members)
        y0 = min(boxes[i][1] for i in members)
        x1 = max(boxes[i][0] + boxes[i][2] for i in members)
        y1 = max(boxes[i][1] + boxes[i][3] for i in members)
        if x1 - x0 >= 2.5 * (y1 - y0):  # a row of text is long for its height
            lines.append((x0, y0, x1, y1))
    return lines


def stroke_text_fraction(frame: np.ndarray) -> float:
    """Fraction of the frame covered by rows of glyph-like regions (the weight-free detector)."""
    grey = cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY)
    covered = np.zeros(grey.shape, bool)
    for x0, y0, x1, y1 in text_lines(grey):
        covered[y0:y1, x0:x1] = True
    return float(covered.mean())
