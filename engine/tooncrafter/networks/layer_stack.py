"""A stack of UNet layers that hands each layer the conditioning it needs.

The UNet runs on frames, (B·T, C, H, W), everywhere except inside temporal transformers, which see
the clip as (B, C, T, H, W). ResBlocks take the time embedding (and the frame count for their
temporal convolution), spatial transformers take the per-frame cross-attention context, and plain
layers (convolutions, resampling) take only the features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..frames import clip_to_frames, frames_to_clip
from .resblock import ResBlock
from .transformer import SpatialTransformer, TemporalTransformer


@dataclass(frozen=True)
class FrameConditioning:
    """What one UNet (or sketch encoder) pass conditions on, already laid out per frame."""

    emb: torch.Tensor  # (B·T, E) time (+ motion) embedding
    context: torch.Tensor | None  # (B·T, L, D) cross-attention context
    num_frames: int | None = None  # T for video layers; None in the 2-D sketch encoder


class LayerStack(nn.ModuleList):
    def forward(self, h: torch.Tensor, cond: FrameConditioning) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            if isinstance(layer, ResBlock):
                h = layer(h, cond.emb, cond.num_frames)
            elif isinstance(layer, SpatialTransformer):
                h = layer(h, cond.context)
            elif isinstance(layer, TemporalTransformer):
                if not cond.num_frames:
                    raise ValueError("a temporal transformer needs the frame count")
                h = clip_to_frames(layer(frames_to_clip(h, cond.num_frames)))
            else:
                h = layer(h)
        return h
