"""The transformer block shared by spatial and temporal transformers: pre-norm self-attention,
cross-attention (or a second self-attention in the temporal layers) and a GEGLU feed-forward.

Parameters are registered in the checkpoint's order (attn1, ff, attn2, norm1..3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import Attention
from .normalization import Float32LayerNorm


class GEGLU(nn.Module):
    """Linear to twice the width, then value · GELU(gate) (exact GELU, as the original)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU to 4× width and back; `net.0` / `net.2` match the checkpoint (index 1 was dropout)."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Identity(), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TransformerBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        context_dim: int | None = None,
        *,
        image_cross_attention: bool = False,
        text_context_len: int = 77,
        image_scale: float = 1.0,
    ) -> None:
        """context_dim None makes the second attention a self-attention (temporal layers)."""
        super().__init__()
        self.attn1 = Attention(dim, None, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = Attention(
            dim,
            context_dim,
            heads,
            dim_head,
            image_cross_attention=image_cross_attention,
            text_context_len=text_context_len,
            image_scale=image_scale,
        )
        self.norm1 = Float32LayerNorm(dim)
        self.norm2 = Float32LayerNorm(dim)
        self.norm3 = Float32LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x
