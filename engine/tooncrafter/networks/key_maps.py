"""Keyframe feature maps that are recomputed from the keys when the decoder reads them, not held.

The dual-reference decoder reads five encoder feature maps of the two keys. The two at full
resolution (the first level's and conv_in's: 0.31 GiB for two keys at 320x512 in float32) are
read only when the first and the last frame are finished, yet the pass holds them from the VAE
encode to the end of both decodes, beside the clip-sized activation of the lean decode. In the
tightest setting the encoder recomputes them from the two key images (a few MB) at that moment,
in bands of rows; the result equals the encoder's maps within float rounding.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.tooncrafter.networks.frame_streaming import band_rows, resnet_block_in_bands


class RecomputedKeyMap:
    """One full-resolution feature map of the encoder (`level` 0, or None for conv_in's) for key
    images `keys` (B, S, 3, H, W): per encoded frame (S = 1, shaped like the encoder's (B, C, H, W)
    output) or paired as the decoder's reference (S = 2 slots, shaped (B, C, 2, H, W))."""

    def __init__(self, encoder: nn.Module, keys: torch.Tensor, level: int | None, paired: bool) -> None:
        if level not in (0, None):
            raise ValueError(f"only the full-resolution maps (level 0, conv_in) are recomputed, not level {level}")
        if keys.ndim != 5 or keys.shape[1] != (2 if paired else 1):
            raise ValueError(f"key images must be (B, {2 if paired else 1}, 3, H, W), got {tuple(keys.shape)}")
        self.encoder = encoder
        self.keys = keys
        self.level = level
        self.paired = paired

    @classmethod
    def of_frames(cls, encoder: nn.Module, frames: torch.Tensor, level: int | None) -> RecomputedKeyMap:
        """The map of each of the encoded frames (N, 3, H, W)."""
        return cls(encoder, frames.unsqueeze(1), level, paired=False)

    @classmethod
    def pair(cls, first: RecomputedKeyMap, last: RecomputedKeyMap) -> RecomputedKeyMap:
        """The reference of the two keys: slot 0 the first's map, slot 1 the last's."""
        if first.paired or last.paired or first.level != last.level or first.encoder is not last.encoder:
            raise ValueError("only per-frame maps of the same level and encoder make a keyframe pair")
        return cls(first.encoder, torch.cat([first.keys, last.keys], dim=1), first.level, paired=True)

    @property
    def channels(self) -> int:
        return self.encoder.conv_in.out_channels if self.level is None else self.encoder.down[0].block[-1].out_channels

    @property
    def shape(self) -> torch.Size:
        b, slots, _, h, w = self.keys.shape
        return torch.Size((b, self.channels, slots, h, w) if self.paired else (b, self.channels, h, w))

    def __getitem__(self, index: slice) -> RecomputedKeyMap:
        """Videos (or frames) `index` of the batch, as tensors slice their first axis."""
        if not isinstance(index, slice):
            raise TypeError("a recomputed key map is sliced along its batch only (e.g. map[0:1])")
        return RecomputedKeyMap(self.encoder, self.keys[index], self.level, self.paired)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> RecomputedKeyMap:
        return RecomputedKeyMap(self.encoder, self.keys.to(device, dtype), self.level, self.paired)

    @torch.no_grad()
    def slot(self, slot: int) -> torch.Tensor:
        """The map of the key in `slot`, (B, C, H, W), computed now where the encoder is (low-VRAM
        mode moves it between devices) and in its dtype."""
        encoder = self.encoder
        weight = encoder.conv_in.weight
        x = self.keys[:, slot].to(weight.device, weight.dtype)
        h = encoder.conv_in(x).contiguous(memory_format=torch.channels_last)
        if self.level is None:
            return h
        for block in encoder.down[0].block:
            out = h
            if block.in_channels != block.out_channels:
                out = h.new_empty((h.shape[0], block.out_channels, *h.shape[2:])).contiguous(memory_format=torch.channels_last)
            h = resnet_block_in_bands(block, lambda top, bottom, h=h: h[:, :, top:bottom], h.shape[2], band_rows(h.shape[2]), out)
        return h

    def materialise(self) -> torch.Tensor:
        """The map as a tensor of its shape (for the layers that read whole maps)."""
        if not self.paired:
            return self.slot(0)
        return torch.stack([self.slot(s) for s in range(2)], dim=2)


def slot_map(reference: torch.Tensor | RecomputedKeyMap, slot: int) -> torch.Tensor:
    """Slot `slot` (0: first key, 1: last key) of a reference map (B, C, 2, h, w), as (B, C, h, w)."""
    return reference.slot(slot) if isinstance(reference, RecomputedKeyMap) else reference[:, :, slot]


def pair_maps(first: torch.Tensor | RecomputedKeyMap, last: torch.Tensor | RecomputedKeyMap) -> torch.Tensor | RecomputedKeyMap:
    """Per-frame maps of the first and the last key (B, C, h, w each) -> the reference (B, C, 2, h, w)."""
    if isinstance(first, RecomputedKeyMap) and isinstance(last, RecomputedKeyMap):
        return RecomputedKeyMap.pair(first, last)
    return torch.stack([as_tensor(first), as_tensor(last)], dim=2)


def as_tensor(reference: torch.Tensor | RecomputedKeyMap) -> torch.Tensor:
    """A reference or feature map as a tensor, computing it if it is a recomputed one."""
    return reference.materialise() if isinstance(reference, RecomputedKeyMap) else reference
