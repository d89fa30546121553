"""Spatial and temporal transformers of the video UNet (and the spatial one of the sketch encoder).

Spatial: every frame on its own; GroupNorm per frame, the h·w pixels are the tokens, the second
attention looks at the cross-attention context. Temporal: GroupNorm over the whole (b, c, t, h, w)
clip (its statistics span all frames), then every pixel position is a sequence of t tokens; both
attentions are self-attention over time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .normalization import group_norm
from .transformer_block import TransformerBlock


def _pointwise(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a Linear, or a kernel-1 Conv1d as the same linear map, to channels-last tokens."""
    if isinstance(layer, nn.Conv1d):
        return F.linear(x, layer.weight[..., 0], layer.bias)
    return layer(x)


class SpatialTransformer(nn.Module):
    def __init__(
        self,
        channels: int,
        heads: int,
        dim_head: int,
        depth: int = 1,
        context_dim: int | None = None,
        *,
        image_cross_attention: bool = False,
        text_context_len: int = 77,
        image_scale: float = 1.0,
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        self.norm = group_norm(channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(
                inner,
                heads,
                dim_head,
                context_dim,
                image_cross_attention=image_cross_attention,
                text_context_len=text_context_len,
                image_scale=image_scale,
            )
            for _ in range(depth)
        )
        self.proj_out = nn.Linear(inner, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """x (N, C, H, W) frames, context (N, L, D) per frame."""
        n, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        tokens = self.proj_in(tokens)
        for block in self.transformer_blocks:
            tokens = block(tokens, context)
        tokens = self.proj_out(tokens)
        return tokens.transpose(1, 2).reshape(n, c, h, w).contiguous() + x


class TemporalTransformer(nn.Module):
    """Self-attention along time at every pixel.

    `conv_projection` gives proj_in/proj_out the 1-D convolution weights ([out, in, 1]) of the
    checkpoint's `init_attn`, which was built without the linear-projection option; they are the
    same linear map, applied here as one.
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        dim_head: int,
        depth: int = 1,
        *,
        conv_projection: bool = False,
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        self.norm = group_norm(channels, eps=1e-6)
        if conv_projection:
            self.proj_in: nn.Module = nn.Conv1d(channels, inner, 1)
        else:
            self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(inner, heads, dim_head, None) for _ in range(depth)
        )
        if conv_projection:
            self.proj_out: nn.Module = nn.Conv1d(inner, channels, 1)
        else:
            self.proj_out = nn.Linear(inner, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T, H, W) clip."""
        b, c, t, h, w = x.shape
        tokens = self.norm(x).permute(0, 3, 4, 2, 1).reshape(b * h * w, t, c)
        tokens = _pointwise(self.proj_in, tokens)
        for block in self.transformer_blocks:
            tokens = block(tokens)
        tokens = _pointwise(self.proj_out, tokens)
        return tokens.reshape(b, h, w, t, c).permute(0, 4, 3, 1, 2).contiguous() + x
