"""The temporal convolution block that ends every ResBlock of the video UNet.

Four stages of GroupNorm → SiLU → 3×1×1 convolution over time (zero padding at the clip ends),
added to the block's input, so neighbouring frames exchange information at every resolution.
The Sequential indices follow the checkpoint: the first stage's conv is `.2`, the others `.3`
(their index 2 held a dropout that does nothing at inference).
"""

from __future__ import annotations

import torch
from torch import nn

from .normalization import group_norm


def _stage(channels: int, with_dropout_slot: bool) -> nn.Sequential:
    conv = nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))
    layers: list[nn.Module] = [group_norm(channels), nn.SiLU()]
    if with_dropout_slot:
        layers.append(nn.Identity())
    layers.append(conv)
    return nn.Sequential(*layers)


class TemporalConvBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _stage(channels, with_dropout_slot=False)
        self.conv2 = _stage(channels, with_dropout_slot=True)
        self.conv3 = _stage(channels, with_dropout_slot=True)
        self.conv4 = _stage(channels, with_dropout_slot=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T, H, W) clip."""
        return x + self.conv4(self.conv3(self.conv2(self.conv1(x))))
