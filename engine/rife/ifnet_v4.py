"""RIFE 4.25's intermediate-flow network (IFNet): five coarse-to-fine flow blocks conditioned on tau.

How it draws an in-between at time tau between keys A and B:
- a small feature head encodes each key once (4 channels at full resolution);
- block 0 sees both keys, their features and tau at 1/16 of the frame size (1/64 inside the block)
  and guesses the flows from the in-between to A and to B, a fusion mask and 8 context channels;
- blocks 1-4 each look at the keys (and their features) warped by the current flows, at 1/8, 1/4,
  1/2 and full size, and add a correction to the flow; the mask and context are replaced.
The last flows warp both keys and the mask mixes them (see warp.blend_warped).

Submodule names follow the released checkpoint's keys (`encode`, `block0`..`block4`, `conv0`,
`convblock`, `lastconv`), so the weights load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .warp import backward_warp

#: Each flow block works at 1/scale of the frame, then strides down 4 more times.
BLOCK_SCALES = (16, 8, 4, 2, 1)
FEATURE_CHANNELS = 4
CONTEXT_CHANNELS = 8


def conv_lrelu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.LeakyReLU(0.2, inplace=True))


def resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resize by `factor` (the trained networks use half-pixel centres, no antialiasing)."""
    if factor == 1.0:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class FeatureHead(nn.Module):
    """Per-key features the flow blocks warp along with the pixels (a learned 'what is here')."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, 16, 3, 2, 1)
        self.cnn1 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn2 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(16, FEATURE_CHANNELS, 4, 2, 1)
        self.relu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.cnn0(image))
        x = self.relu(self.cnn1(x))
        x = self.relu(self.cnn2(x))
        return self.cnn3(x)


class ResidualConv(nn.Module):
    """3x3 convolution added back onto its input with a learned per-channel gain (`beta`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones((1, channels, 1, 1)))
        self.relu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class FlowBlock(nn.Module):
    """One pyramid level: from its inputs at 1/scale, predict flow (4), mask (1) and context (8).

    The block strides down by 4 inside, runs eight residual convolutions, and comes back up to its
    input's grid with a transposed convolution plus pixel shuffle.
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(conv_lrelu(in_channels, channels // 2, 2), conv_lrelu(channels // 2, channels, 2))
        self.convblock = nn.Sequential(*(ResidualConv(channels) for _ in range(8)))
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(channels, 4 * 13, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, context: bool = True) -> torch.Tensor:
        """13 channels on the grid of `x`: flow (4, in pixels of that grid), mask logit (1), context (8).

        Without `context` only flow and mask come out: the pixel shuffle takes output channel c from
        transposed-convolution channels 4c..4c+3, so the last block computes 20 of its 52 channels.
        """
        feat = self.convblock(self.conv0(x))
        if context:
            return self.lastconv(feat)
        up = self.lastconv[0]
        kept = 4 * 5
        return F.pixel_shuffle(
            F.conv_transpose2d(feat, up.weight[:, :kept], up.bias[:kept], stride=2, padding=1), 2
        )


class IFNetV4(nn.Module):
    """Flow and fusion-mask estimator of RIFE 4.25 (5 blocks, 4-channel key features, tau input)."""

    #: the frame size must be a multiple of this (times 1/scale): block 0 strides 16 * 4 down.
    size_multiple = 64

    def __init__(self) -> None:
        super().__init__()
        guide = 3 + 3 + FEATURE_CHANNELS * 2 + 1  # both keys, their features, tau
        refine = guide + 1 + CONTEXT_CHANNELS + 4  # + mask, context, flow
        self.block0 = FlowBlock(guide, 192)
        self.block1 = FlowBlock(refine, 128)
        self.block2 = FlowBlock(refine, 96)
        self.block3 = FlowBlock(refine, 64)
        self.block4 = FlowBlock(refine, 32)
        self.encode = FeatureHead()

    def describe(self, key: torch.Tensor) -> torch.Tensor:
        """A key's RGB in [0, 1] plus its learned features (N, 7, H, W): what every level warps.

        Depends on the key only, so a segment computes it once and reuses it for every tau; keeping
        pixels and features in one tensor lets each level warp them with a single sampling pass.
        """
        return torch.cat((key, self.encode(key)), 1)

    @staticmethod
    def level_scales(scale: float = 1.0) -> tuple[float, ...]:
        """How many times smaller than the frame each level works (RIFE's `scale` < 1: coarser)."""
        return tuple(block_scale / scale for block_scale in BLOCK_SCALES)

    def pyramid(self, described: torch.Tensor, scale: float = 1.0) -> tuple[torch.Tensor, ...]:
        """A described key at every level's size, coarsest first (per segment, like `describe`)."""
        return tuple(resize(described, 1.0 / level_scale) for level_scale in self.level_scales(scale))

    def forward(self, key_a: torch.Tensor, key_b: torch.Tensor, tau: torch.Tensor, scale: float = 1.0):
        """The released code's computation (see `estimate_reference`) from two RGB keys."""
        return self.estimate_reference(self.describe(key_a), self.describe(key_b), tau, scale)

    def _blocks(self) -> tuple[FlowBlock, ...]:
        return (self.block0, self.block1, self.block2, self.block3, self.block4)

    def estimate(
        self,
        pyramid_a: tuple[torch.Tensor, ...],
        pyramid_b: tuple[torch.Tensor, ...],
        tau: torch.Tensor,
        scale: float = 1.0,
        levels: int = 5,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flows (N, 4, H, W: to A in x, y then to B, in pixels) and fusion-mask logits (N, 1, H, W) at tau (N,).

        Every level works at its own size: the keys are shrunk once per segment (`pyramid`), warped
        there, and the flow, mask and context go up one level at a time. The released code instead
        warps full-size keys and resizes every level's input and output to and from the frame's
        size (`estimate_reference`); on the cartoon triplets both score the same (docs/rife.md),
        and this one needs about 30 % less CPU time.

        `levels` < 5 stops before the finest levels and enlarges the last flow and mask instead:
        much faster, softer lines (the `fast` preset, measured in docs/rife.md).
        """
        if not 1 <= levels <= len(BLOCK_SCALES):
            raise ValueError(f"levels must be 1 to {len(BLOCK_SCALES)}, got {levels}")
        batch = tau.shape[0]
        flow = mask = context = None
        blocks = self._blocks()[:levels]
        for block, level_scale, a, b in zip(blocks, self.level_scales(scale), pyramid_a, pyramid_b):
            a, b = a.expand(batch, -1, -1, -1), b.expand(batch, -1, -1, -1)
            time = tau.to(a.dtype).view(batch, 1, 1, 1).expand(batch, 1, *a.shape[2:])
            if flow is None:
                x = torch.cat((a[:, :3], b[:, :3], a[:, 3:], b[:, 3:], time), 1)
            else:
                flow, mask, context = resize(flow, 2.0), resize(mask, 2.0), resize(context, 2.0)
                level_flow = flow / level_scale
                a, b = backward_warp(a, level_flow[:, :2]), backward_warp(b, level_flow[:, 2:4])
                x = torch.cat((a[:, :3], b[:, :3], a[:, 3:], b[:, 3:], time, mask, context, level_flow), 1)
            out = block(x, context=block is not blocks[-1])  # the last context is never used
            delta = out[:, :4] * level_scale
            flow = delta if flow is None else flow + delta
            mask, context = out[:, 4:5], out[:, 5:]
        if level_scale != 1.0:
            flow, mask = resize(flow, level_scale), resize(mask, level_scale)
        return flow, mask

    def estimate_reference(
        self, described_a: torch.Tensor, described_b: torch.Tensor, tau: torch.Tensor, scale: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`estimate` with the released code's arithmetic, to the last bit: every level warps the
        full-size keys and its input and output are resized from and to the frame's size."""
        batch = tau.shape[0]
        height, width = described_a.shape[2:]
        described_a = described_a.expand(batch, -1, -1, -1)
        described_b = described_b.expand(batch, -1, -1, -1)
        time = tau.to(described_a.dtype).view(batch, 1, 1, 1).expand(batch, 1, height, width)

        def block_input(a: torch.Tensor, b: torch.Tensor, *rest: torch.Tensor, level_scale: float) -> torch.Tensor:
            # Joined at full size, then resized: resizing the pieces apart would save a copy but
            # changes the last bit of some values, and the released weights amplify that.
            return resize(torch.cat([a[:, :3], b[:, :3], a[:, 3:], b[:, 3:], *rest], 1), 1.0 / level_scale)

        def run(block: FlowBlock, x: torch.Tensor, level_scale: float):
            out = resize(block(x), level_scale)
            return out[:, :4] * level_scale, out[:, 4:5], out[:, 5:]

        blocks, level_scales = self._blocks(), self.level_scales(scale)
        x = block_input(described_a, described_b, time, level_scale=level_scales[0])
        flow, mask, context = run(blocks[0], x, level_scales[0])
        for block, level_scale in zip(blocks[1:], level_scales[1:]):
            warped_a = backward_warp(described_a, flow[:, :2])
            warped_b = backward_warp(described_b, flow[:, 2:4])
            if level_scale == 1.0:  # full size: one join, flow included
                x = block_input(warped_a, warped_b, time, mask, context, flow, level_scale=1.0)
            else:
                x = block_input(warped_a, warped_b, time, mask, context, level_scale=level_scale)
                x = torch.cat((x, resize(flow, 1.0 / level_scale) / level_scale), 1)
            delta, mask, context = run(block, x, level_scale)
            flow = flow + delta
        return flow, mask
