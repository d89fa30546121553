"""Backward warping: fetch every output pixel from where its flow vector points in the source image.

RIFE estimates flows *from the in-between to each key* (backward flow), so the in-between is drawn by
sampling each key at `pixel + flow`. The sampling grid is the one the released weights were trained
with: pixel centres mapped to [-1, 1] with the corners on ±1 (align_corners), bilinear filtering and
border clamping. Changing any of the three changes the results of the trained networks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_identity_grids: dict[tuple, torch.Tensor] = {}
_MAX_CACHED_GRIDS = 16  # a server sees many frame sizes; keep the cache small


def identity_grid(batch: int, height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(batch, 2, H, W) sampling positions of the unmoved image, x then y, in [-1, 1]; cached per shape."""
    key = (batch, height, width, str(device), dtype)
    grid = _identity_grids.get(key)
    if grid is None:
        xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype).view(1, 1, 1, width)
        ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype).view(1, 1, height, 1)
        grid = torch.cat([xs.expand(batch, -1, height, -1), ys.expand(batch, -1, -1, width)], 1)
        if len(_identity_grids) >= _MAX_CACHED_GRIDS:
            _identity_grids.clear()
        _identity_grids[key] = grid
    return grid


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `image` (N, C, H, W) at each pixel plus `flow` (N, 2, H, W, in pixels, x then y)."""
    n, _, h, w = flow.shape
    grid = identity_grid(n, h, w, flow.device, flow.dtype)
    half_width, half_height = (image.shape[3] - 1.0) / 2.0, (image.shape[2] - 1.0) / 2.0
    offset = torch.cat([flow[:, 0:1] / half_width, flow[:, 1:2] / half_height], 1)
    return F.grid_sample(
        image, (grid + offset).permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=True
    )


def blend_warped(
    key_a: torch.Tensor, key_b: torch.Tensor, flow: torch.Tensor, mask_logit: torch.Tensor
) -> torch.Tensor:
    """The in-between: both keys warped by their halves of `flow`, mixed by the sigmoid of the fusion mask.

    Any channels ride along (RGB, or premultiplied RGB plus alpha), as long as the flow and the mask
    were estimated for this pair: the mask says, per pixel, how much to trust key A over key B (where
    one of them is occluded).
    """
    weight = torch.sigmoid(mask_logit)
    return backward_warp(key_a, flow[:, :2]) * weight + backward_warp(key_b, flow[:, 2:4]) * (1 - weight)
