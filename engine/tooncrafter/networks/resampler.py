"""The image-context projector: a perceiver-style Resampler from CLIP image tokens to UNet context.

Learned queries (16 per frame x video_length frames, frame-major) attend to the CLIP tokens of the
first keyframe; the UNet later gives frame f the queries 16f..16f+15 as its image tokens. The
released model has video_length 16, so it emits 256 tokens of width 1024.
Parameter names follow the checkpoint's `image_proj_model.*` (with that prefix removed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch
from torch import nn

from engine.tooncrafter.networks.normalization import Float32LayerNorm

#: Prefix of the Resampler's keys in the official checkpoint.
RESAMPLER_KEY_PREFIX = "image_proj_model."


@dataclass(frozen=True)
class ResamplerConfig:
    """Defaults are the released 512 model's."""

    dim: int = 1024
    depth: int = 4
    dim_head: int = 64
    heads: int = 12
    num_queries: int = 16
    embedding_dim: int = 1280
    output_dim: int = 1024
    ff_mult: int = 4
    video_length: int | None = 16

    @classmethod
    def from_dict(cls, data: Mapping) -> ResamplerConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown Resampler settings: {', '.join(sorted(unknown))}")
        return cls(**dict(data))

    @property
    def total_queries(self) -> int:
        return self.num_queries * (self.video_length or 1)


class PerceiverAttention(nn.Module):
    """Latent queries attend to the image tokens and to themselves (keys = [tokens, latents])."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8) -> None:
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.dim_head = dim_head
        self.norm1 = Float32LayerNorm(dim)
        self.norm2 = Float32LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, self.dim_head).transpose(1, 2)

    def forward(self, tokens: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        tokens = self.norm1(tokens)
        latents = self.norm2(latents)
        b, n, _ = latents.shape
        q = self._split_heads(self.to_q(latents))
        k, v = (self._split_heads(t) for t in self.to_kv(torch.cat([tokens, latents], dim=1)).chunk(2, dim=-1))
        # Scaling q and k by dim_head**-0.25 each (rather than the product afterwards) and a float32
        # softmax keep float16 in range, as the original does.
        scale = self.dim_head**-0.25
        weights = torch.softmax(((q * scale) @ (k * scale).transpose(-2, -1)).float(), dim=-1).to(q.dtype)
        out = (weights @ v).transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.to_out(out)


class FeedForward(nn.Sequential):
    """LayerNorm, Linear (no bias), exact GELU, Linear (no bias): keys `.0`, `.1`, `.3`."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        inner = dim * mult
        super().__init__(
            Float32LayerNorm(dim), nn.Linear(dim, inner, bias=False), nn.GELU(), nn.Linear(inner, dim, bias=False)
        )


class Resampler(nn.Module):
    def __init__(self, config: ResamplerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ResamplerConfig()
        self.latents = nn.Parameter(torch.randn(1, config.total_queries, config.dim) / config.dim**0.5)
        self.proj_in = nn.Linear(config.embedding_dim, config.dim)
        self.proj_out = nn.Linear(config.dim, config.output_dim)
        self.norm_out = Float32LayerNorm(config.output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [PerceiverAttention(config.dim, config.dim_head, config.heads), FeedForward(config.dim, config.ff_mult)]
            )
            for _ in range(config.depth)
        )

    def forward(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """image_tokens (B, N, embedding_dim) -> image context (B, num_queries*video_length, output_dim)."""
        if image_tokens.ndim != 3 or image_tokens.shape[-1] != self.config.embedding_dim:
            raise ValueError(
                f"Resampler expects (B, N, {self.config.embedding_dim}) CLIP tokens, got {tuple(image_tokens.shape)}"
            )
        latents = self.latents.expand(image_tokens.shape[0], -1, -1)
        tokens = self.proj_in(image_tokens)
        for attention, feed_forward in self.layers:
            latents = attention(tokens, latents) + latents
            latents = feed_forward(latents) + latents
        return self.norm_out(self.proj_out(latents))

