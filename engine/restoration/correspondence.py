"""Dense correspondence from a generated frame to a keyframe, with a measure of trust.

For every pixel of the generated frame (at the resolution the model drew it) the flow says where
the same point sits in the key: generated(x) ≈ key(x + flow(x)). OpenCV's DIS optical flow is run
both ways; a pixel is trusted when the two flows undo each other (forward–backward consistency,
Sundaram et al. 2010) and when the point lands inside the key. What the key cannot explain (new
content, disocclusions, the model's own changes) fails the check and is left to the generated frame.

In cel art the lines sit exactly on the motion boundaries, where a smooth flow mixes the figure's
motion with the background's and fails the check. There the flow is mended the PatchMatch way
(Barnes et al. 2009): each doubtful pixel tries the trusted flows of its neighbours at growing
distances and keeps the one whose warped key patch matches the generated frame best, so a line
takes the motion of the figure it outlines. Doubtful pixels also try the frame's dominant motions
(and standing still), which fixes the background next to a fast-moving figure, where the smooth flow
drags the figure's motion along.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Forward–backward tolerance, Sundaram's form: |f + b|² ≤ ALPHA·(|f|² + |b|²) + BETA (pixels²).
FB_ALPHA = 0.01
FB_BETA = 0.5
#: Where doubtful pixels look for a trusted neighbour's flow (model-resolution pixels, 8 directions).
MEND_DISTANCES = (1, 2, 4, 8, 16)
#: Patch (side, pixels) over which a candidate flow's match is measured.
MEND_PATCH = 5
#: A dominant-motion candidate is trusted where its patch cost (structure difference over the
#: patches' contrast, see _patch_cost) is below the first value, not at all above the second.
MATCH_GOOD, MATCH_POOR = 0.5, 1.0
#: Contrast (mean grey levels) below which a patch counts as flat: its noise is not structure.
MATCH_FLOOR = 4.0
#: How many dominant motions of the trusted pixels are tried (besides standing still).
DOMINANT_MOTIONS = 4


@dataclass
class Correspondence:
    """flow: (h, w, 2) float32, generated pixel -> key position; consistent: (h, w) float32 in [0, 1]."""

    flow: np.ndarray
    consistent: np.ndarray

    def target(self) -> tuple[np.ndarray, np.ndarray]:
        """(map_x, map_y): where each generated pixel lands in the key."""
        h, w = self.flow.shape[:2]
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        return xs + self.flow[..., 0], ys + self.flow[..., 1]


def _dis() -> cv2.DISOpticalFlow:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(0)  # full-resolution refinement: lines are a pixel or two wide at this size
    return dis


def dense_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Flow from grey uint8 `source` to `target`: source(x) ≈ target(x + flow(x))."""
    return _dis().calc(source, target, None)


def correspond(generated: np.ndarray, key: np.ndarray) -> Correspondence:
    """Correspondence of two grey uint8 images of one size, generated frame -> key."""
    if generated.shape != key.shape:
        raise ValueError(f"images differ in size: {generated.shape} and {key.shape}")
    forward = dense_flow(generated, key)
    backward = dense_flow(key, generated)
    h, w = generated.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = xs + forward[..., 0], ys + forward[..., 1]
    back = cv2.remap(backward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error = ((forward + back) ** 2).sum(-1)
    allowed = FB_ALPHA * ((forward**2).sum(-1) + (back**2).sum(-1)) + FB_BETA
    # 1 well inside the tolerance, 0 at twice it: a soft edge, no hard cut between trusted and not
    consistent = np.clip(2.0 - error / allowed, 0.0, 1.0)
    inside = (map_x >= -0.5) & (map_x <= w - 0.5) & (map_y >= -0.5) & (map_y <= h - 0.5)
    consistent = (consistent * inside).astype(np.float32)
    return _mend(generated, key, Correspondence(forward, consistent))


def _shifted(field: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """field(x - (dx, dy)), edges repeated: each pixel sees its neighbour's value."""
    h, w = field.shape[:2]
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(field, matrix, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)


def _structure(grey: np.ndarray) -> np.ndarray:
    """Lightly blurred, local mean removed: what a patch shows, not how bright the frame came out
    (the model's global drift) nor how soft its lines are."""
    soft = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 1.0)
    return soft - cv2.blur(soft, (MEND_PATCH, MEND_PATCH))


def _patch_cost(generated: np.ndarray, key: np.ndarray, flow: np.ndarray, xs: np.ndarray, ys: np.ndarray):
    """Structure difference over a patch between `generated` and the key warped by `flow` (both
    already passed through _structure), relative to the patches' own contrast: a line the model
    drew lighter still matches its key line; a line in the wrong place does not."""
    warped = cv2.remap(key, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    patch = (MEND_PATCH, MEND_PATCH)
    contrast = np.maximum(cv2.blur(np.abs(warped), patch), cv2.blur(np.abs(generated), patch))
    return cv2.blur(np.abs(generated - warped), patch) / np.maximum(contrast, MATCH_FLOOR)


def _mend(generated: np.ndarray, key: np.ndarray, corr: Correspondence) -> Correspondence:
    """Give doubtful pixels the trusted flow of a neighbour where it matches better (see above)."""
    doubtful = corr.consistent < 0.5
    if not doubtful.any() or (~doubtful).sum() == 0:
        return corr
    h, w = generated.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    g, k = _structure(generated), _structure(key)
    flow, consistent = corr.flow.copy(), corr.consistent.copy()
    best = _patch_cost(g, k, flow, xs, ys)
    best[~doubtful] = -1.0  # trusted pixels keep their flow
    for distance in MEND_DISTANCES:
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)):
            candidate = _shifted(flow, dx * distance, dy * distance)
            source_trust = _shifted(consistent, dx * distance, dy * distance)
            cost = _patch_cost(g, k, candidate, xs, ys)
            better = (source_trust >= 0.5) & (cost < best) & doubtful
            if better.any():
                flow[better] = candidate[better]
                consistent[better] = source_trust[better]
                best[better] = cost[better]
    for motion in [(0.0, 0.0)] + _dominant_motions(corr):
        candidate = np.empty_like(flow)
        candidate[...] = np.float32(motion)
        cost = _patch_cost(g, k, candidate, xs, ys)
        trust = _match_trust(cost)
        better = (cost < best) & doubtful & (trust > consistent)
        if better.any():
            flow[better] = candidate[better]
            consistent[better] = trust[better]
            best[better] = cost[better]
    return Correspondence(flow, consistent)


def _match_trust(cost: np.ndarray) -> np.ndarray:
    return np.clip((MATCH_POOR - cost) / (MATCH_POOR - MATCH_GOOD), 0.0, 1.0)


def _dominant_motions(corr: Correspondence) -> list[tuple[float, float]]:
    """The most common flows (to the nearest pixel) among the trusted pixels, each refined to the
    median of its members."""
    trusted = corr.flow[corr.consistent >= 0.5]
    if len(trusted) == 0:
        return []
    rounded = np.round(trusted).astype(np.int64)
    keys = (rounded[:, 0] + 4096) * 8192 + (rounded[:, 1] + 4096)
    values, counts = np.unique(keys, return_counts=True)
    motions = []
    for value in values[np.argsort(-counts)][:DOMINANT_MOTIONS]:
        members = trusted[keys == value]
        motions.append((float(np.median(members[:, 0])), float(np.median(members[:, 1]))))
    return motions
