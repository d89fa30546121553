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

The tightest setting also splits each frame's 2-D work into bands of rows (`RowSource`,
`conv3x3_rows`): a 3x3 convolution needs only one row above and below the band, and a per-frame
GroupNorm's statistics come from a first pass over the bands, so no full-resolution temporary of a
frame is made besides the frame itself (at the cost of computing some convolutions twice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

#: A frame-independent layer applied to a run of frames: (frames (n, C, h, w), index of the first
#: frame in the clip) -> (n, C', h', w'). The index lets position-dependent layers (the reference
#: combiner touches the first and last frame only) act like on the whole clip.
FrameMap = Callable[[torch.Tensor, int], torch.Tensor]

#: Group statistics: per-group mean and biased variance, float64, shape (G,) each over a whole clip,
#: or (N, G) each for the N frames of a run (per-frame GroupNorm).
GroupStatistics = tuple[torch.Tensor, torch.Tensor]

#: Rows [top, bottom) of a run of frames' activation, (N, C, bottom - top, W), computed or sliced
#: on demand; top and bottom lie within the frame.
RowSource = Callable[[int, int], torch.Tensor]


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


def group_statistics(pieces: Iterable[torch.Tensor], num_groups: int, per_frame: bool = False) -> GroupStatistics:
    """Mean and (biased) variance per group over all the given pieces of one clip, as GroupNorm
    over the whole clip computes them. Each piece is (N, C, ...) of any size and layout (frames,
    bands of rows); pieces are weighted by their element counts. `per_frame`: the pieces are bands
    of the same N frames, and each frame gets its own statistics, as GroupNorm over a batch of
    frames computes them."""
    counts, means, variances = [], [], []
    for piece in pieces:
        # a view in any memory layout (no copy of a channels-last frame)
        grouped = piece.float().unflatten(1, (num_groups, -1))
        dims = [d for d in range(grouped.ndim) if d != 1 and not (per_frame and d == 0)]
        var, mean = torch.var_mean(grouped, dim=dims, correction=0)
        counts.append(grouped.numel() // mean.numel())
        means.append(mean.double())
        variances.append(var.double())
    weight = torch.tensor(counts, dtype=torch.float64, device=means[0].device) / sum(counts)
    weight = weight.reshape(-1, *[1] * means[0].ndim)
    mean_per_piece = torch.stack(means)
    mean = (weight * mean_per_piece).sum(0)
    variance = (weight * (torch.stack(variances) + (mean_per_piece - mean) ** 2)).sum(0)
    return mean, variance


def group_norm_with_statistics(x: torch.Tensor, norm: nn.GroupNorm, statistics: GroupStatistics) -> torch.Tensor:
    """GroupNorm of `x` (N, C, ...) using precomputed group statistics (of a whole clip, or of each
    of x's N frames), in float32 like `Float32GroupNorm`, returned in x's dtype."""
    mean, variance = statistics
    shape = x.shape
    groups = norm.num_groups
    rstd = torch.rsqrt(variance + norm.eps).float().reshape(-1, groups, 1)
    y = x.float().reshape(shape[0], groups, -1) - mean.float().reshape(-1, groups, 1)
    y.mul_(rstd)
    y = y.reshape(shape)
    channel = (1, -1) + (1,) * (len(shape) - 2)
    if norm.weight is not None:
        y.mul_(norm.weight.float().reshape(channel)).add_(norm.bias.float().reshape(channel))
    return y.to(x.dtype)


def conv3x3_rows(conv: nn.Conv2d, source: RowSource, top: int, bottom: int, height: int) -> torch.Tensor:
    """Rows [top, bottom) of `conv` (3x3, padding 1) applied to the frames `source` gives rows of,
    reading only rows [top - 1, bottom + 1) of them (zero rows beyond the frame, as the padding)."""
    lo, hi = max(0, top - 1), min(height, bottom + 1)
    x = source(lo, hi)
    pad_top, pad_bottom = lo - (top - 1), (bottom + 1) - hi
    if pad_top or pad_bottom:
        x = F.pad(x, (0, 0, pad_top, pad_bottom))
    return F.conv2d(x, conv.weight, conv.bias, padding=(0, 1))


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


#: In row bands, each frame's 2-D work is split into about this many bands, and a temporal block's
#: band (the same rows of every frame of the clip) holds about one frame's pixels over this number.
ROW_BANDS_PER_FRAME = 16


def band_rows(height: int) -> int:
    """Rows per 2-D band for frames `height` rows high (at least the two rows a band must have)."""
    return max(2, -(-height // ROW_BANDS_PER_FRAME))


def resnet_block_in_bands(block: nn.Module, source: RowSource, height: int, rows: int, out: torch.Tensor) -> torch.Tensor:
    """A 2-D ResnetBlock (norm, swish, 3x3 conv, twice, plus its shortcut) on a run of frames,
    `rows` image rows at a time, written into `out` (N, C_out, height, W). `source` gives rows of
    the block's input; `out` may be that input itself (same channels): each band's result is
    written only after the next band has read the rows it needs, so bands must be at least two
    rows high. The per-frame norms' statistics are gathered first; conv1 runs twice (for norm2's
    statistics, then for the output), so only bands, never a whole frame, are held besides `out`."""
    if rows < 2:
        raise ValueError(f"2-D bands need at least two rows, got {rows}")
    bands = row_bands(height, rows)
    stats1 = group_statistics((source(top, bottom) for top, bottom in bands), block.norm1.num_groups, True)

    def act1(top: int, bottom: int) -> torch.Tensor:
        return F.silu(group_norm_with_statistics(source(top, bottom), block.norm1, stats1), inplace=True)

    def hidden(top: int, bottom: int) -> torch.Tensor:
        return conv3x3_rows(block.conv1, act1, top, bottom, height)

    stats2 = group_statistics((hidden(top, bottom) for top, bottom in bands), block.norm2.num_groups, True)

    def act2(top: int, bottom: int) -> torch.Tensor:
        normed = group_norm_with_statistics(hidden(top, bottom), block.norm2, stats2)
        return block.dropout(F.silu(normed, inplace=True))

    waiting: tuple[int, torch.Tensor] | None = None
    for top, bottom in bands:
        shortcut = source(top, bottom)
        if block.in_channels != block.out_channels:
            shortcut = block.nin_shortcut(shortcut)
        result = conv3x3_rows(block.conv2, act2, top, bottom, height).add_(shortcut)
        del shortcut
        if waiting is not None:
            out[:, :, waiting[0] : waiting[0] + waiting[1].shape[2]].copy_(waiting[1])
        waiting = (top, result)
    out[:, :, waiting[0] :].copy_(waiting[1])
    return out

