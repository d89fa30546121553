"""Layout changes between a batch of frames (B·T, C, H, W) and a batch of clips (B, C, T, H, W).

Frames of one clip are consecutive in the frame batch (frame-major within each clip), the order the
original code uses everywhere (`(b t)` in its einops patterns).
"""

from __future__ import annotations

import torch


def frames_to_clip(h: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B·T, C, H, W) -> (B, C, T, H, W)."""
    n, c, hh, ww = h.shape
    if n % num_frames:
        raise ValueError(f"{n} frames do not split into clips of {num_frames}")
    return h.reshape(n // num_frames, num_frames, c, hh, ww).transpose(1, 2)


def clip_to_frames(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B·T, C, H, W)."""
    b, c, t, hh, ww = x.shape
    return x.transpose(1, 2).reshape(b * t, c, hh, ww)
