"""Exact frame-streamed evaluation of video layers, so a decode's activations stop growing with frames.

A video activation is held as a list of per-frame tensors (1, C, h, w). Frame-independent layers
run on a few frames at a time and replace the list entries as they go, so two resolutions of the
same activation never both exist in full. The layers that mix frames are the temporal blocks:
their 3x1x1 convolutions need `kernel_t // 2` neighbouring frames each (the halo), and their
GroupNorms take statistics over ALL frames of the clip, which a windowed pass cannot see. Those
statistics are gathered first, frame by frame (per-frame mean/variance merged exactly in float64),
then every window is normalised with them, so the streamed result equals the whole-clip one
within float rounding.
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


def map_frames(frames: list[torch.Tensor], layers: Iterable[FrameMap], step: int) -> None:
    """Apply `layers` in order to `step` frames at a time, replacing the entries of `frames`."""
    layers = list(layers)
    for start in range(0, len(frames), step):
        chunk = torch.cat(frames[start : start + step])
        for layer in layers:
            chunk = layer(chunk, start)
        for j, frame in enumerate(chunk.split(1)):
            frames[start + j] = frame


def group_statistics(frames: Iterable[torch.Tensor], num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased) variance per group over all given frames ((1, C, ...) or (1, C, n, ...)
    each, equal sizes), as GroupNorm over the whole clip computes them; float64, shape (G,)."""
    means, variances = [], []
    for frame in frames:
        for single in frame.unbind(2) if frame.ndim == 5 else (frame,):
            var, mean = torch.var_mean(single.float().reshape(num_groups, -1), dim=1, correction=0)
            means.append(mean.double())
            variances.append(var.double())
    mean_per_frame = torch.stack(means)
    mean = mean_per_frame.mean(0)
    variance = (torch.stack(variances) + (mean_per_frame - mean) ** 2).mean(0)
    return mean, variance


def group_norm_with_statistics(x: torch.Tensor, norm: nn.GroupNorm, statistics: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
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


def temporal_conv_window(conv: nn.Conv3d, window: torch.Tensor, window_start: int, num_frames: int, out_start: int, out_stop: int) -> torch.Tensor:
    """The (k,1,1) temporal conv's output frames [out_start, out_stop) of a clip of `num_frames`,
    from its input frames [window_start, window_start + n) in `window` (1, C, n, h, w), which must
    cover the halo wherever the clip has frames; frames outside the clip are the conv's zero padding."""
    radius = conv.kernel_size[0] // 2
    window_stop = window_start + window.shape[2]
    if window_start > max(0, out_start - radius) or window_stop < min(num_frames, out_stop + radius):
        raise ValueError("temporal window does not cover the convolution's halo")
    lo, hi = out_start - radius, out_stop + radius
    window = window[:, :, max(lo, window_start) - window_start : min(hi, window_stop) - window_start]
    front, back = max(0, -lo), max(0, hi - num_frames)
    if front or back:
        window = F.pad(window, (0, 0, 0, 0, front, back))
    return F.conv3d(window, conv.weight, conv.bias)


def stack_frames(frames: list[torch.Tensor], start: int, stop: int, layer: Callable | None = None) -> torch.Tensor:
    """Frames [start, stop) as one (1, C, n, h, w) clip, each passed through `layer` first if given."""
    picked = frames[max(start, 0) : stop]
    return torch.stack([layer(f) if layer else f for f in picked], dim=2)
