"""The VAE encoder (the standard latent-diffusion encoder) and the 2-D blocks it shares with the decoder.

Besides the latent moments it returns the five feature maps the dual-reference decoder reads back:
the output of the last ResnetBlock of each level (before that level's downsampling), then the
conv_in map. That is how the decoder gets the keyframes' line detail that the 8x latent loses.
Parameter names follow the checkpoint (`encoder.down.<level>.block.<i>...`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.tooncrafter.networks.normalization import Float32GroupNorm


def vae_group_norm(channels: int) -> Float32GroupNorm:
    """GroupNorm(32, eps 1e-6) of the VAE blocks (statistics in float32 whatever the model dtype)."""
    return Float32GroupNorm(32, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """norm → swish → 3x3 conv, twice, plus a 1x1 shortcut when the channel count changes."""

    def __init__(self, in_channels: int, out_channels: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm1 = vae_group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = vae_group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class SpatialSelfAttention(nn.Module):
    """Single-head self-attention over the pixels of each image (the VAE's mid attention).

    q/k/v/proj_out are 1x1 convolutions; the head is as wide as the channels (scale 1/sqrt(C)).
    `chunk_size` bounds how many images go into one attention call (None: all at once); splitting
    the batch is exact and only saves memory.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = vae_group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)
        self.chunk_size: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        step = self.chunk_size or n
        parts = [self._attend(x[i : i + step]) for i in range(0, n, step)]
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        return x + self.proj_out(out)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        normed = self.norm(x)
        q, k, v = (conv(normed).flatten(2).transpose(1, 2).unsqueeze(1) for conv in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)
        return out.squeeze(1).transpose(1, 2).reshape(n, c, h, w)


class Downsample(nn.Module):
    """Stride-2 3x3 conv after padding one zero row/column on the right and bottom."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class EncoderLevel(nn.Module):
    """The ResnetBlocks of one resolution level (`block`) and its optional `downsample`."""

    def __init__(self, in_channels: int, out_channels: int, num_res_blocks: int, downsample: bool, dropout: float):
        super().__init__()
        self.block = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, dropout) for i in range(num_res_blocks)
        )
        if downsample:
            self.downsample = Downsample(out_channels)


class MidBlock(nn.Module):
    """ResnetBlock, single-head attention, ResnetBlock (`mid.block_1`, `mid.attn_1`, `mid.block_2`)."""

    def __init__(self, block_1: nn.Module, attn_1: SpatialSelfAttention, block_2: nn.Module) -> None:
        super().__init__()
        self.block_1 = block_1
        self.attn_1 = attn_1
        self.block_2 = block_2


@dataclass
class EncoderOutput:
    """`moments`: (N, 2*z, h, w) before quant_conv; `hidden_states`: levels 0..L-1 then conv_in."""

    moments: torch.Tensor
    hidden_states: list[torch.Tensor]


class VAEEncoder(nn.Module):
    def __init__(
        self,
        *,
        in_channels: int = 3,
        ch: int = 128,
        ch_mult: Sequence[int] = (1, 2, 4, 4),
        num_res_blocks: int = 2,
        z_channels: int = 4,
        double_z: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_levels = len(ch_mult)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        block_in = ch
        for level, mult in enumerate(ch_mult):
            block_out = ch * mult
            last = level == self.num_levels - 1
            self.down.append(EncoderLevel(block_in, block_out, num_res_blocks, not last, dropout))
            block_in = block_out
        self.mid = MidBlock(
            ResnetBlock(block_in, block_in, dropout),
            SpatialSelfAttention(block_in),
            ResnetBlock(block_in, block_in, dropout),
        )
        self.norm_out = vae_group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, 2 * z_channels if double_z else z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        """x (N, 3, H, W) in [-1, 1] -> latent moments and the five reference feature maps."""
        h = self.conv_in(x)
        hidden_states = []
        first = h
        for level in self.down:
            for block in level.block:
                h = block(h)
            hidden_states.append(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        hidden_states.append(first)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        h = self.conv_out(F.silu(self.norm_out(h)))
        return EncoderOutput(h, hidden_states)
