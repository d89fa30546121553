"""Sinusoidal embeddings of the diffusion timestep and of the motion value (the model's `fs`).

Both use the layout of the original latent-diffusion code: cosines in the first half, sines in the
second, frequencies exp(-ln(max_period)·i/half). The checkpoint's MLPs were trained on exactly that
layout, so swapping the halves (as some libraries do) silently ruins the conditioning.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(values: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(N,) timesteps (or fs values) -> (N, dim) float32 embedding, cos first then sin."""
    if values.ndim != 1:
        raise ValueError(f"timestep_embedding expects a 1-D tensor, got shape {tuple(values.shape)}")
    half = dim // 2
    exponent = torch.arange(half, dtype=torch.float32, device=values.device) / half
    freqs = torch.exp(-math.log(max_period) * exponent)
    args = values[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class EmbeddingMLP(nn.Sequential):
    """Linear → SiLU → Linear lifting a sinusoidal embedding to the ResBlocks' embedding width.

    Used as `time_embed` and `fps_embedding`; a Sequential so the checkpoint keys are `.0` and `.2`.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(nn.Linear(in_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def embed(self, values: torch.Tensor) -> torch.Tensor:
        """Sinusoidal embedding of `values` (N,) passed through the MLP, in the MLP's dtype."""
        first = self[0]
        sinusoid = timestep_embedding(values, first.in_features).to(first.weight.dtype)
        return self(sinusoid)
