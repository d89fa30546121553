"""Normalisation layers that always compute their statistics in float32.

The original ResBlocks do this explicitly and run everything else under CUDA autocast, which also
keeps group/layer norms in float32. Doing it in the layer itself gives the same numbers whether the
model runs under autocast or is cast to float16/bfloat16 outright; in float32 it changes nothing.
Both classes subclass the torch layers, so parameter names and shapes are the checkpoint's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Float32GroupNorm(nn.GroupNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).to(x.dtype)


class Float32LayerNorm(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


def group_norm(channels: int, eps: float = 1e-5) -> Float32GroupNorm:
    """GroupNorm with 32 groups, the only grouping the checkpoint uses."""
    return Float32GroupNorm(32, channels, eps=eps)
