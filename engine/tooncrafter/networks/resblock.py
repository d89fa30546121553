"""The timestep-conditioned residual block of the UNet and the sketch encoder.

GroupNorm → SiLU → 3×3 conv, plus the projected time embedding, then GroupNorm → SiLU → 3×3 conv,
added to the (1×1-projected when the width changes) input. In the video UNet a temporal
convolution block follows; the checkpoint spells its attribute `temopral_conv`, and so do we.
"""

from __future__ import annotations

import torch
from torch import nn

from ..frames import clip_to_frames, frames_to_clip
from .normalization import group_norm
from .temporal_conv import TemporalConvBlock


class ResBlock(nn.Module):
    def __init__(
        self,
        channels: int,
        emb_channels: int,
        out_channels: int | None = None,
        *,
        temporal_conv: bool = False,
    ) -> None:
        super().__init__()
        out_channels = out_channels or channels
        self.in_layers = nn.Sequential(
            group_norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            group_norm(out_channels),
            nn.SiLU(),
            nn.Identity(),  # the original's dropout slot, kept so the conv stays at index 3
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        if out_channels == channels:
            self.skip_connection: nn.Module = nn.Identity()
        else:
            self.skip_connection = nn.Conv2d(channels, out_channels, 1)
        if temporal_conv:
            self.temopral_conv = TemporalConvBlock(out_channels)

    @property
    def has_temporal_conv(self) -> bool:
        return hasattr(self, "temopral_conv")

    def forward(self, x: torch.Tensor, emb: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """x (N, C, H, W) frames, emb (N or 1, E); num_frames groups N = B·T for the temporal conv."""
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        h = self.skip_connection(x) + self.out_layers(h)
        if self.has_temporal_conv:
            if not num_frames:
                raise ValueError("this ResBlock has a temporal convolution: pass num_frames")
            h = clip_to_frames(self.temopral_conv(frames_to_clip(h, num_frames)))
        return h
