"""Artist sketches -> the sketch encoder's hints, the way the sketch-guidance reference makes them.

A hint is the sketch in greyscale, inverted (255 − value) and divided by 255: lines are bright on a
black ground, and a blank white frame is an all-zero hint (the only "no sketch" signal the
encoder knows). Sketches arrive as RGBA (a layer in Krita, a PNG with transparency): transparent
pixels count as white paper, so the padding that fitting adds around the art gives no signal.
Sketches must already be fitted to the model canvas, exactly as their keyframes are.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import torch


def _on_white(sketch: np.ndarray) -> np.ndarray:
    """RGBA uint8 composited over white, rounded to uint8 RGB."""
    rgb = sketch[..., :3].astype(np.uint32)
    alpha = sketch[..., 3:4].astype(np.uint32)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def sketch_to_hint(sketch: np.ndarray, *, source: str = "sketch") -> np.ndarray:
    """(H, W, 4) RGBA, (H, W, 3) RGB or (H, W) grey uint8 -> (H, W) float32 hint in [0, 1]."""
    if not isinstance(sketch, np.ndarray) or sketch.dtype != np.uint8:
        raise ValueError(f"{source}: expected a uint8 image array, got {getattr(sketch, 'dtype', type(sketch))}")
    if sketch.ndim == 3 and sketch.shape[2] == 4:
        grey = cv2.cvtColor(_on_white(sketch), cv2.COLOR_RGB2GRAY)
    elif sketch.ndim == 3 and sketch.shape[2] == 3:
        grey = cv2.cvtColor(np.ascontiguousarray(sketch), cv2.COLOR_RGB2GRAY)
    elif sketch.ndim == 2:
        grey = sketch
    else:
        raise ValueError(f"{source}: expected (H, W), (H, W, 3) or (H, W, 4), got shape {sketch.shape}")
    return (255 - grey).astype(np.float32) / np.float32(255.0)


def sketch_hint_clip(
    sketches: Mapping[int, np.ndarray], num_frames: int, height: int, width: int
) -> torch.Tensor:
    """Hints for one model pass: (1, 1, T, H, W) float32, all zeros on frames without a sketch.

    `sketches` maps model frame index (0 … T−1) to a sketch of exactly height × width pixels.
    """
    clip = torch.zeros(1, 1, num_frames, height, width)
    for frame, sketch in sketches.items():
        if not 0 <= frame < num_frames:
            raise ValueError(f"sketch for frame {frame}: a pass has frames 0..{num_frames - 1}")
        if sketch.shape[:2] != (height, width):
            raise ValueError(
                f"sketch for frame {frame} is {sketch.shape[1]}x{sketch.shape[0]}, "
                f"the canvas is {width}x{height}: fit it like its keyframes first"
            )
        clip[0, 0, frame] = torch.from_numpy(sketch_to_hint(sketch, source=f"sketch for frame {frame}"))
    return clip
