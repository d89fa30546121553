"""Exact lean evaluation of video layers, so a decode's activations stop growing with the frames.

A video activation is held as a list of per-frame tensors (1, C, h, w). Frame-independent layers
run on a few frames at a time and replace the list entries as they go, so two resolutions of the
same activation never both exist in full. The layers that mix frames are the temporal blocks:
their 3x1x1 convolutions, norms and activations act on each pixel's column of frames alone, so
they run on bands of image rows across all frames and write their result back into the rows they
read (no second copy of the clip). Their GroupNorms take statistics over ALL frames and pixels,
which a band cannot see: those are gathered first, band by band (per-piece mean/variance merged
exactly in float64), then every band is normalised with them, so the result equals the whole-clip
one within float rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

#: A frame-independent layer applied to a run of frames: (frames (n, C, h, w), index of the first
#: frame in the clip) -> (n, C', h', w'). The index lets position-dependent layers (the reference
#: combiner touches the first and last frame only) act like on the whole clip.
FrameMap = Callable[[torch.Tensor, int], torch.Tensor]

#: Group statistics: per-group mean and biased variance, float64, shape (G,) each.
GroupStatistics = tuple[torch.Tensor, torch.Tensor]


def map_frames(frames: list[torch.Tensor], layers: Iterable[FrameMap], step: int) -> None:
    """Apply `layers` in order to `step` frames at a time, replacing the entries of `frames`. The
    list lets go of each run's input before its layers run, so the input is freed as soon as the
    first layer is done with it."""
    layers = list(layers)
    for start in range(0, len(frames), step):
        run = frames[start : start + step]
        frames[start : start + len(run)] = [None] * len(run)
        chunk = run[0] if len(run) == 1 else torch.cat(run)
        del run
        for layer in layers:
            chunk = layer(chunk, start)
        for j, frame in enumerate(chunk.split(1)):
            frames[start + j] = frame


def group_statistics(pieces: Iterable[torch.Tensor], num_groups: int) -> GroupStatistics:
    """Mean and (biased) variance per group over all the given pieces of one clip, as GroupNorm
    over the whole clip computes them. Each piece is (N, C, ...) of any size and layout (frames,
    bands of rows); pieces are weighted by their element counts."""
    counts, means, variances = [], [], []
    for piece in pieces:
        # a view in any memory layout (no copy of a channels-last frame)
        grouped = piece.float().unflatten(1, (num_groups, -1))
        dims = [d for d in range(grouped.ndim) if d != 1]
        var, mean = torch.var_mean(grouped, dim=dims, correction=0)
        counts.append(grouped.numel() // num_groups)
        means.append(mean.double())
        variances.append(var.double())
    weight = torch.tensor(counts, dtype=torch.float64)[:, None] / sum(counts)
    mean_per_piece = torch.stack(means)
    mean = (weight * mean_per_piece).sum(0)
    variance = (weight * (torch.stack(variances) + (mean_per_piece - mean) ** 2)).sum(0)
    return mean, variance


def group_norm_with_statistics(x: torch.Tensor, norm: nn.GroupNorm, statistics: GroupStatistics) -> torch.Tensor:
    """GroupNorm of `x` (N, C, ...) using precomputed per-group statistics, in float32 like
    `Float32GroupNorm`, returned in x's dtype."""
    mean, variance = statistics
    shape = x.shape
    groups = norm.num_groups
    rstd = torch.rsqrt(variance + norm.eps).float()
    y = x.float().reshape(shape[0], groups, -1) - mean.float()[None, :, None]
    y.mul_(rstd[None, :, None])
    y = y.reshape(shape)
    channel = (1, -1) + (1,) * (len(shape) - 2)
    if norm.weight is not None:
        y.mul_(norm.weight.float().reshape(channel)).add_(norm.bias.float().reshape(channel))
    return y.to(x.dtype)


def row_bands(height: int, rows: int) -> list[tuple[int, int]]:
    """[start, stop) bands of at most `rows` image rows covering `height`."""
    if rows < 1:
        raise ValueError(f"a band needs at least one row, got {rows}")
    return [(top, min(height, top + rows)) for top in range(0, height, rows)]


def gather_band(frames: list[torch.Tensor], top: int, bottom: int) -> torch.Tensor:
    """Rows [top, bottom) of every frame (1, C, h, w) as one (1, C, T, rows, w) clip band."""
    return torch.stack([frame[:, :, top:bottom] for frame in frames], dim=2)


def scatter_band(frames: list[torch.Tensor], band: torch.Tensor, top: int) -> None:
    """Write a (1, C, T, rows, w) band back into rows [top, top + rows) of the frames, in place."""
    bottom = top + band.shape[3]
    for t, frame in enumerate(frames):
        frame[:, :, top:bottom].copy_(band[:, :, t])


def temporal_conv(conv: nn.Conv3d, band: torch.Tensor) -> torch.Tensor:
    """A (k,1,1) Conv3d with zero padding k//2 over time on a (1, C, T, rows, w) band, as one
    matrix product per kernel tap accumulated into the output: no work buffers, where the CPU
    Conv3d kernel holds about four copies of its input."""
    _, channels, frames, rows, width = band.shape
    taps, radius = conv.kernel_size[0], conv.kernel_size[0] // 2
    flat = band.reshape(channels, frames, rows * width)
    out_channels = conv.out_channels
    if conv.bias is not None:
        out = conv.bias.reshape(out_channels, 1, 1).expand(out_channels, frames, rows * width).contiguous()
    else:
        out = flat.new_zeros(out_channels, frames, rows * width)
    for tap in range(taps):
        shift = tap - radius
        lo, hi = max(0, -shift), min(frames, frames - shift)
        if lo < hi:
            weight = conv.weight[:, :, tap, 0, 0]
            out[:, lo:hi].view(out_channels, -1).addmm_(weight, flat[:, lo + shift : hi + shift].reshape(channels, -1))
    return out.view(1, out_channels, frames, rows, width)

