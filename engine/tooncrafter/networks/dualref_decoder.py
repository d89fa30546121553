"""ToonCrafter's dual-reference video decoder.

It decodes a chunk of latent frames together (a video of `num_frames` frames per batch element) and
re-injects the two keyframes' encoder features, so lines and flat colours survive the 8x latent:

- every ResnetBlock is a video block: the 2-D block, then a temporal residual block of two 3x1x1
  convolutions over time, mixed as sigmoid(mix_factor)*temporal + (1 - sigmoid(mix_factor))*spatial;
- the last conv is followed by a 3x1x1 temporal conv (`conv_out.time_mix_conv`);
- after the ResnetBlocks of each level (before its upsampling) an `attn_refinement` layer uses the
  keyframes' feature map of that level: at the deep levels a cross-frame fusion attention (every
  frame attends to the tokens of BOTH keyframes), at the shallow levels a 1x1 "combiner" conv added
  to the first and last frame only; a final combiner after norm_out+swish uses the conv_in map.

Reference maps are (B, C, 2, h, w): slot 0 is the first keyframe, slot 1 the last.

`frames_at_once` (None: the whole clip together, fastest) switches to the exact frame-streamed
decode of `frame_streaming`: only that many frames' activations (plus the temporal halo) are
computed at once and one full-resolution activation of the clip is held, whatever the frame count.
`in_row_bands` (the tightest setting) also splits each frame's 2-D work into bands of rows, so that
clip-sized activation is nearly all the decode holds, and reads the keys' full-resolution maps
only when their frames are finished (they may be `key_maps.RecomputedKeyMap`s, computed then).
Parameter names follow the checkpoint (`decoder.up.<level>.block.<i>.time_stack...`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from engine.tooncrafter.networks.frame_streaming import (
    ROW_BANDS_PER_FRAME,
    FrameMap,
    RowSource,
    band_rows,
    conv3x3_rows,
    gather_band,
    group_norm_with_statistics,
    group_statistics,
    map_frames,
    resnet_block_in_bands,
    row_bands,
    scatter_band,
    temporal_conv,
)
from engine.tooncrafter.networks.key_maps import RecomputedKeyMap, as_tensor, slot_map
from engine.tooncrafter.networks.normalization import Float32GroupNorm
from engine.tooncrafter.networks.vae_encoder import MidBlock, ResnetBlock, SpatialSelfAttention, vae_group_norm

#: A reference map (B, C, 2, h, w): a tensor, or a full-resolution map recomputed when read.
ReferenceMap = torch.Tensor | RecomputedKeyMap


def _frames_to_video(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B*T, C, h, w) -> (B, C, T, h, w)."""
    bt, c, h, w = x.shape
    return x.reshape(bt // num_frames, num_frames, c, h, w).transpose(1, 2)


def _video_to_frames(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, h, w) -> (B*T, C, h, w)."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def _check_frames(x: torch.Tensor, num_frames: int) -> None:
    if num_frames < 1 or x.shape[0] % num_frames:
        raise ValueError(f"decoder got {x.shape[0]} images, not a whole number of {num_frames}-frame videos")


class TemporalResBlock(nn.Module):
    """Residual block over time: (GroupNorm, SiLU, 3x1x1 Conv3d) twice, on (B, C, T, h, w)."""

    def __init__(self, channels: int, kernel_t: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        kernel = (kernel_t, 1, 1)
        padding = (kernel_t // 2, 0, 0)
        self.in_layers = nn.Sequential(
            Float32GroupNorm(32, channels), nn.SiLU(), nn.Conv3d(channels, channels, kernel, padding=padding)
        )
        self.out_layers = nn.Sequential(
            Float32GroupNorm(32, channels),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Conv3d(channels, channels, kernel, padding=padding),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out_layers(self.in_layers(x))


class VideoResnetBlock(ResnetBlock):
    """The 2-D ResnetBlock followed by a temporal block, merged with a learned sigmoid weight."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0, kernel_t: int = 3) -> None:
        super().__init__(in_channels, out_channels, dropout)
        self.time_stack = TemporalResBlock(out_channels, kernel_t, dropout)
        self.mix_factor = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        spatial = _frames_to_video(super().forward(x), num_frames)
        temporal = self.time_stack(spatial)
        alpha = torch.sigmoid(self.mix_factor).to(spatial.dtype)
        return _video_to_frames(alpha * temporal + (1.0 - alpha) * spatial)

    def spatial_frames(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """The 2-D half alone, frame by frame (a `FrameMap`); the same operations as the 2-D block,
        with the activations applied in place so fewer frame-sized temporaries exist at once."""
        h = self.conv1(F.silu(self.norm1(x), inplace=True))
        h = self.conv2(self.dropout(F.silu(self.norm2(h), inplace=True)))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return h.add_(x)

    def mix_in_bands(self, frames: list[torch.Tensor], rows: int) -> None:
        """The temporal half and the learned mix on the 2-D outputs `frames` of one clip (a list of
        (1, C, h, w)), in place, `rows` image rows of all frames at a time. Everything in the
        temporal block acts on each pixel's column of frames alone except its two GroupNorms,
        whose whole-clip statistics are gathered first (the second norm's by a first pass over the
        bands that computes and drops the first conv's output)."""
        stack = self.time_stack
        norm1, conv1 = stack.in_layers[0], stack.in_layers[2]
        norm2, dropout, conv2 = stack.out_layers[0], stack.out_layers[2], stack.out_layers[3]
        bands = row_bands(frames[0].shape[2], rows)
        stats1 = group_statistics(frames, norm1.num_groups)

        def first_conv(band: torch.Tensor) -> torch.Tensor:
            return temporal_conv(conv1, F.silu(group_norm_with_statistics(band, norm1, stats1), inplace=True))

        stats2 = group_statistics((first_conv(gather_band(frames, *band)) for band in bands), norm2.num_groups)
        alpha = torch.sigmoid(self.mix_factor).to(frames[0].dtype)
        for top, bottom in bands:
            spatial = gather_band(frames, top, bottom)
            hidden = first_conv(spatial)
            act = dropout(F.silu(group_norm_with_statistics(hidden, norm2, stats2), inplace=True))
            del hidden
            temporal = temporal_conv(conv2, act)
            del act
            temporal.add_(spatial).mul_(alpha)
            temporal.add_(spatial.mul_(1.0 - alpha))
            scatter_band(frames, temporal, top)


class TimeMixConv2d(nn.Conv2d):
    """A 2-D conv followed by a temporal conv over the frames (`conv_out` + `conv_out.time_mix_conv`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_t: int = 3) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1)
        self.time_mix_conv = nn.Conv3d(out_channels, out_channels, (kernel_t, 1, 1), padding=(kernel_t // 2, 0, 0))

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        video = _frames_to_video(super().forward(x), num_frames)
        return _video_to_frames(self.time_mix_conv(video))


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))

    def rows(self, x: torch.Tensor) -> RowSource:
        """Rows of this layer's output for frames x (N, C, h, w), each band computed from the
        rows of x it needs, so the upsampled frame is never held whole."""
        height = 2 * x.shape[2]

        def nearest(top: int, bottom: int) -> torch.Tensor:
            first = top // 2
            doubled = F.interpolate(x[:, :, first : (bottom + 1) // 2], scale_factor=2.0, mode="nearest")
            return doubled[:, :, top - 2 * first : bottom - 2 * first]

        return lambda top, bottom: conv3x3_rows(self.conv, nearest, top, bottom, height)


class ReferenceCombiner(nn.Module):
    """Adds a 1x1 conv of the keyframes' feature map to the first and the last frame of each video."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def project(self, reference: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B, C, 2, h, w) reference maps -> their 1x1 conv, (B, 2, C, h, w)."""
        b, c, slots, h, w = reference.shape
        ref = self.conv(reference.to(dtype).transpose(1, 2).reshape(b * slots, c, h, w))
        return ref.reshape(b, slots, c, h, w)

    @staticmethod
    def key_maps(reference: ReferenceMap, start: int, count: int, num_frames: int) -> list[tuple[int, torch.Tensor]]:
        """(index in the run, that key's map (1, C, h, w)) for each of the `count` frames of a run
        starting at clip frame `start` that is the first or the last frame of its clip."""
        maps = []
        if start == 0:
            maps.append((0, slot_map(reference, 0)))
        if start + count == num_frames:
            maps.append((count - 1, slot_map(reference, 1)))
        return maps

    def add_rows(self, x: torch.Tensor, maps: list[tuple[int, torch.Tensor]], top: int = 0) -> torch.Tensor:
        """Add the projected key maps (`key_maps`), in place, to rows [top, top + rows) of a run's
        frames x (N, C, rows, w)."""
        rows = slice(top, top + x.shape[2])
        for index, key_map in maps:
            ref = key_map[:, :, rows].to(x.dtype).contiguous(memory_format=torch.channels_last)
            x[index : index + 1].add_(self.conv(ref))
        return x

    def frame_map(self, reference: ReferenceMap, num_frames: int, dtype: torch.dtype, rows: int | None = None) -> FrameMap:
        """This layer for runs of frames of one clip of `num_frames` (reference maps of that clip),
        adding in place, `rows` image rows at a time (None: whole frames). Each keyframe's map is
        read (or recomputed) only when the run holding its frame comes, so no projected
        full-resolution map waits through the whole pass."""

        def add(x: torch.Tensor, start: int) -> torch.Tensor:
            maps = self.key_maps(reference, start, x.shape[0], num_frames)
            for top, bottom in row_bands(x.shape[2], rows or x.shape[2]):
                self.add_rows(x[:, :, top:bottom], maps, top)
            return x

        return add

    def forward(self, x: torch.Tensor, reference: ReferenceMap) -> torch.Tensor:
        ref = self.project(as_tensor(reference), x.dtype)
        b = ref.shape[0]
        frames = x.shape[0] // b
        video = x.reshape(b, frames, *x.shape[1:])
        if frames == 1:
            video = video + ref[:, :1] + ref[:, 1:2]
        else:
            video = torch.cat([video[:, :1] + ref[:, :1], video[:, 1:-1], video[:, -1:] + ref[:, 1:2]], dim=1)
        return video.reshape(x.shape)


class ReferenceFusionAttention(nn.Module):
    """Cross-frame attention from every decoded frame to the tokens of both keyframes.

    Queries come from the group-normalised frame features, keys/values from the raw keyframe maps
    (first keyframe's tokens then the last keyframe's). The width is heads*dim_head (8x64 = 512 in
    the checkpoint) whatever the channel count. All frames of a video share the same keys, so they
    are projected once; `chunk_frames` bounds how many frames' queries go into one attention call
    (None: all), which only saves memory.
    """

    def __init__(self, channels: int, heads: int = 8, dim_head: int = 64) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = nn.Linear(channels, inner, bias=False)
        self.to_k = nn.Linear(channels, inner, bias=False)
        self.to_v = nn.Linear(channels, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, channels))
        self.norm = vae_group_norm(channels)
        self.chunk_frames: int | None = None

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, self.dim_head).transpose(1, 2)

    def project(self, reference: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the keyframes' tokens, (B, heads, 2*h*w, dim_head) each."""
        context = reference.to(dtype).flatten(2).transpose(1, 2)
        return self._split_heads(self.to_k(context)), self._split_heads(self.to_v(context))

    def frame_map(self, reference: ReferenceMap, num_frames: int, dtype: torch.dtype, rows: int | None = None) -> FrameMap:
        """This layer for runs of frames of one clip (keys/values projected once). Attention needs
        whole frames, so `rows` is not used."""
        k, v = self.project(as_tensor(reference), dtype)
        return lambda x, start: self.attend(x, k, v)

    def forward(self, x: torch.Tensor, reference: ReferenceMap) -> torch.Tensor:
        return self.attend(x, *self.project(as_tensor(reference), x.dtype))

    def attend(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """x (B*T, C, h, w) frames of the B clips whose keyframe keys/values are k, v."""
        bt, c, h, w = x.shape
        b = k.shape[0]
        frames = bt // b
        tokens = h * w
        q = self._split_heads(self.to_q(self.norm(x).flatten(2).transpose(1, 2)).reshape(b, frames * tokens, -1))
        step = (self.chunk_frames or frames) * tokens
        parts = [F.scaled_dot_product_attention(q[:, :, i : i + step], k, v) for i in range(0, frames * tokens, step)]
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
        out = self.to_out(out.transpose(1, 2).reshape(bt, tokens, self.heads * self.dim_head))
        return x + out.transpose(1, 2).reshape(bt, c, h, w)


class DecoderLevel(nn.Module):
    """The video ResnetBlocks of one resolution level (`block`) and its optional `upsample`."""

    def __init__(
        self, in_channels: int, out_channels: int, num_blocks: int, upsample: bool, dropout: float, kernel_t: int
    ) -> None:
        super().__init__()
        self.block = nn.ModuleList(
            VideoResnetBlock(in_channels if i == 0 else out_channels, out_channels, dropout, kernel_t)
            for i in range(num_blocks)
        )
        if upsample:
            self.upsample = Upsample(out_channels)


class DualRefDecoder(nn.Module):
    def __init__(
        self,
        *,
        out_channels: int = 3,
        ch: int = 128,
        ch_mult: Sequence[int] = (1, 2, 4, 4),
        num_res_blocks: int = 2,
        z_channels: int = 4,
        dropout: float = 0.0,
        fusion_levels: Sequence[int] = (2, 3),
        fusion_heads: int = 8,
        fusion_dim_head: int = 64,
        kernel_t: int = 3,
    ) -> None:
        super().__init__()
        if ch_mult[0] != 1:
            raise ValueError("the final reference combiner adds the conv_in map (ch wide): ch_mult[0] must be 1")
        self.num_levels = len(ch_mult)
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = MidBlock(
            VideoResnetBlock(block_in, block_in, dropout, kernel_t),
            SpatialSelfAttention(block_in),
            VideoResnetBlock(block_in, block_in, dropout, kernel_t),
        )
        levels: list[nn.Module] = [nn.Identity()] * self.num_levels
        refinement: list[nn.Module] = [nn.Identity()] * self.num_levels
        for level in reversed(range(self.num_levels)):
            block_out = ch * ch_mult[level]
            levels[level] = DecoderLevel(block_in, block_out, num_res_blocks + 1, level != 0, dropout, kernel_t)
            if level in fusion_levels:
                refinement[level] = ReferenceFusionAttention(block_out, fusion_heads, fusion_dim_head)
            else:
                refinement[level] = ReferenceCombiner(block_out)
            block_in = block_out
        self.up = nn.ModuleList(levels)
        self.attn_refinement = nn.ModuleList([*refinement, ReferenceCombiner(block_in)])
        self.norm_out = vae_group_norm(block_in)
        self.conv_out = TimeMixConv2d(block_in, out_channels, kernel_t)
        #: Frames computed at once by the streamed decode; None: the whole clip (see module doc).
        self.frames_at_once: int | None = None
        #: The streamed decode also splits each frame's 2-D work into bands of rows (the tightest).
        self.in_row_bands = False

    def set_frames_at_once(self, frames: int | None, in_row_bands: bool = False) -> None:
        """Choose the exact frame-streamed decode with `frames` frames at once (None: whole clip),
        and whether it works on bands of rows within those frames (`in_row_bands`)."""
        if frames is not None and frames < 1:
            raise ValueError(f"frames_at_once must be at least one frame, got {frames}")
        if in_row_bands and frames is None:
            raise ValueError("row bands are a setting of the streamed decode: give frames_at_once too")
        self.frames_at_once = frames
        self.in_row_bands = in_row_bands

    def set_attention_chunk(self, frames: int | None) -> None:
        """Bound how many frames go into one attention call (mid and fusion attention); None: all."""
        if frames is not None and frames < 1:
            raise ValueError(f"attention chunk must be at least one frame, got {frames}")
        self.mid.attn_1.chunk_size = frames
        for layer in self.attn_refinement:
            if isinstance(layer, ReferenceFusionAttention):
                layer.chunk_frames = frames

    def forward(
        self,
        z: torch.Tensor,
        references: Sequence[torch.Tensor],
        num_frames: int,
        frames_at_once: int | None = None,
    ) -> torch.Tensor:
        """z (B*T, z, h, w) unscaled latents of B videos of T frames; references: 5 maps (B, C, 2, h, w)
        in encoder order (levels 0..3, conv_in). Returns (B*T, 3, 8h, 8w). `frames_at_once`
        overrides the decoder's setting for this call."""
        _check_frames(z, num_frames)
        if len(references) != self.num_levels + 1:
            raise ValueError(f"decoder needs {self.num_levels + 1} reference maps, got {len(references)}")
        if references[0].shape[0] * num_frames != z.shape[0]:
            raise ValueError(
                f"reference maps are for {references[0].shape[0]} videos, latents hold {z.shape[0] // num_frames}"
            )
        step = frames_at_once if frames_at_once is not None else self.frames_at_once
        if step is not None:
            if step < 1:
                raise ValueError(f"frames_at_once must be at least one frame, got {step}")
            clips = z.split(num_frames)
            return torch.cat(
                [self._decode_streamed(clip, [r[i : i + 1] for r in references], step) for i, clip in enumerate(clips)]
            )
        h = self.conv_in(z)
        h = self.mid.block_1(h, num_frames)
        h = self.mid.attn_1(h)
        h = self.mid.block_2(h, num_frames)
        for level in reversed(range(self.num_levels)):
            for block in self.up[level].block:
                h = block(h, num_frames)
            h = self.attn_refinement[level](h, references[level])
            if level != 0:
                h = self.up[level].upsample(h)
        h = F.silu(self.norm_out(h))
        h = self.attn_refinement[-1](h, references[-1])
        return self.conv_out(h, num_frames)

    def _decode_streamed(self, z: torch.Tensor, references: Sequence[torch.Tensor], step: int) -> torch.Tensor:
        """One clip (T, z, h, w) with its reference maps (1, C, 2, h, w), `step` frames at a time.

        Frame-independent layers are queued and run together just before the next temporal block,
        so e.g. an upsampling and the next level's first 2-D block never hold the whole clip at the
        larger intermediate size. With `in_row_bands`, the queued 2-D layers also work on bands of
        rows (an upsampling is computed band by band inside the next block), and the temporal
        blocks take thinner bands, so the clip's activation is nearly all that is held."""
        total = z.shape[0]
        frames = list(z.split(1))
        bands = self.in_row_bands
        # Channels-last frames: the CPU convolutions then work in place of their input layout
        # instead of reordering a copy of every input (measured: ~0.1 GiB less per full-size frame).
        pending: list[FrameMap] = [lambda x, start: self.conv_in(x.contiguous(memory_format=torch.channels_last))]
        incoming: list[Upsample] = []  # in bands: the upsampling the next 2-D block reads through

        def video_block(block: VideoResnetBlock) -> None:
            if bands:
                upsample = incoming.pop() if incoming else None
                pending.append(lambda x, start: _spatial_in_bands(block, x, upsample))
            else:
                pending.append(block.spatial_frames)
            map_frames(frames, pending, step)
            pending.clear()
            height = frames[0].shape[2]
            share = ROW_BANDS_PER_FRAME if bands else 1
            block.mix_in_bands(frames, max(1, height * step // (total * share)))

        video_block(self.mid.block_1)
        pending.append(lambda x, start: self.mid.attn_1(x))
        video_block(self.mid.block_2)
        for level in reversed(range(self.num_levels)):
            for block in self.up[level].block:
                video_block(block)
            rows = band_rows(frames[0].shape[2]) if bands else None
            pending.append(self.attn_refinement[level].frame_map(references[level], total, z.dtype, rows))
            if level != 0:
                upsample = self.up[level].upsample
                if bands:
                    incoming.append(upsample)
                else:
                    pending.append(lambda x, start, upsample=upsample: upsample(x))
        if bands:
            pending.append(lambda x, start: self._finish_in_bands(x, start, total, references[-1]))
        else:
            pending.append(lambda x, start: F.silu(self.norm_out(x), inplace=True))
            pending.append(self.attn_refinement[-1].frame_map(references[-1], total, z.dtype))
            pending.append(lambda x, start: nn.Conv2d.forward(self.conv_out, x))
        map_frames(frames, pending, step)
        return _video_to_frames(self.conv_out.time_mix_conv(torch.stack(frames, dim=2))).contiguous()

    def _finish_in_bands(self, x: torch.Tensor, start: int, total: int, reference: ReferenceMap) -> torch.Tensor:
        """norm_out, swish, the last reference combiner and conv_out's 2-D conv on a run of frames
        (N, C, H, W) of a clip of `total`, in bands of rows -> (N, out_channels, H, W)."""
        height = x.shape[2]
        bands = row_bands(height, band_rows(height))
        stats = group_statistics((x[:, :, top:bottom] for top, bottom in bands), self.norm_out.num_groups, True)
        combiner = self.attn_refinement[-1]
        maps = combiner.key_maps(reference, start, x.shape[0], total)

        def activated(top: int, bottom: int) -> torch.Tensor:
            y = F.silu(group_norm_with_statistics(x[:, :, top:bottom], self.norm_out, stats), inplace=True)
            return combiner.add_rows(y, maps, top)

        return torch.cat([conv3x3_rows(self.conv_out, activated, top, bottom, height) for top, bottom in bands], dim=2)


def _spatial_in_bands(block: VideoResnetBlock, x: torch.Tensor, upsample: Upsample | None) -> torch.Tensor:
    """The 2-D half of `block` on a run of frames x in row bands, reading x through `upsample` if
    given; in place over x when the block keeps the channel count and nothing is upsampled."""
    n, _, height, width = x.shape
    if upsample is not None:
        source, height, width = upsample.rows(x), 2 * height, 2 * width
    else:
        source = lambda top, bottom: x[:, :, top:bottom]  # noqa: E731
    if upsample is None and block.in_channels == block.out_channels:
        out = x
    else:
        out = x.new_empty((n, block.out_channels, height, width)).contiguous(memory_format=torch.channels_last)
    return resnet_block_in_bands(block, source, height, band_rows(height), out)
