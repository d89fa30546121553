"""RIFE HDv3's intermediate-flow network: three coarse-to-fine flow blocks for the midpoint only.

HDv3 has no tau input: it always draws the in-between halfway between its two keys. Each level runs
its block twice, once looking from A to B and once from B to A (with the flow halves swapped and
the mask negated), and averages the two answers, which keeps the result symmetric. (Running both
directions as one batch of two saves little on CPU and changes the last digits, so they run apart.)

Submodule names follow the released checkpoint's keys (`block0`..`block2`, `conv0`,
`convblock0`..`convblock3`, `conv1`, `conv2`); the checkpoint's distillation teacher (`block_tea`)
is training-only and not built.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .ifnet_v4 import resize
from .warp import backward_warp

BLOCK_SCALES = (4, 2, 1)


def conv_prelu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.PReLU(out_channels))


def upsample_head(channels: int, out_channels: int) -> nn.Sequential:
    """Two stride-2 transposed convolutions: from the block's 1/4 grid back to its input grid."""
    return nn.Sequential(
        nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1),
        nn.PReLU(channels // 2),
        nn.ConvTranspose2d(channels // 2, out_channels, 4, 2, 1),
    )


class FlowBlockHD(nn.Module):
    """One pyramid level: flow (4) and mask (1) corrections from inputs seen at 1/scale."""

    def __init__(self, in_channels: int, channels: int = 90) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(conv_prelu(in_channels, channels // 2, 2), conv_prelu(channels // 2, channels, 2))
        for i in range(4):
            residual = nn.Sequential(conv_prelu(channels, channels), conv_prelu(channels, channels))
            self.add_module(f"convblock{i}", residual)
        self.conv1 = upsample_head(channels, 4)
        self.conv2 = upsample_head(channels, 1)

    def forward(self, x: torch.Tensor, flow: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = resize(x, 1.0 / scale)
        flow = resize(flow, 1.0 / scale) / scale
        feat = self.conv0(torch.cat((x, flow), 1))
        for residual in (self.convblock0, self.convblock1, self.convblock2, self.convblock3):
            feat = residual(feat) + feat
        return resize(self.conv1(feat), scale) * scale, resize(self.conv2(feat), scale)


def swap_directions(flow: torch.Tensor) -> torch.Tensor:
    """Flow to A and flow to B exchanged: the same motion seen from the other key."""
    return torch.cat((flow[:, 2:4], flow[:, :2]), 1)


class IFNetHDv3(nn.Module):
    """Flow and fusion-mask estimator of RIFE HDv3 (midpoint in-betweens)."""

    #: the frame size must be a multiple of this (times 1/scale): block 0 strides 4 * 4 down.
    size_multiple = 16

    def __init__(self) -> None:
        super().__init__()
        self.block0 = FlowBlockHD(7 + 4)
        self.block1 = FlowBlockHD(7 + 4)
        self.block2 = FlowBlockHD(7 + 4)

    def estimate(
        self, key_a: torch.Tensor, key_b: torch.Tensor, scale: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flows (N, 4, H, W: to A, then to B) and fusion-mask logits of the midpoint of RGB keys in [0, 1]."""
        batch, _, height, width = key_a.shape
        flow = key_a.new_zeros((batch, 4, height, width))
        mask = key_a.new_zeros((batch, 1, height, width))
        warped_a, warped_b = key_a, key_b
        for block, block_scale in zip((self.block0, self.block1, self.block2), BLOCK_SCALES):
            level_scale = block_scale / scale
            ahead, ahead_mask = block(torch.cat((warped_a, warped_b, mask), 1), flow, level_scale)
            back, back_mask = block(torch.cat((warped_b, warped_a, -mask), 1), swap_directions(flow), level_scale)
            flow = flow + (ahead + swap_directions(back)) / 2
            mask = mask + (ahead_mask - back_mask) / 2
            warped_a = backward_warp(key_a, flow[:, :2])
            warped_b = backward_warp(key_b, flow[:, 2:4])
        return flow, mask
