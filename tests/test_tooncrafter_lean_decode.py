"""The exact frame-streamed ("lean") dual-reference decode: the same frames as the whole-clip decode
for every frames-at-once setting (1, sizes that do not divide the clip, the whole clip), with and
without row bands, on the tiny reference model and on a small random decoder, plus the streaming
helpers on their own."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from engine.tooncrafter.networks.autoencoder import (
    AUTOENCODER_KEY_PREFIX,
    DualRefAutoencoder,
    DualRefAutoencoderConfig,
    keyframe_references,
)
from engine.tooncrafter.networks.dualref_decoder import ReferenceCombiner, Upsample, VideoResnetBlock
from engine.tooncrafter.networks.frame_streaming import (
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
from engine.tooncrafter.networks.normalization import Float32GroupNorm

EXACT = 1e-5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    return (a.double() - b.double()).abs().max().item()


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random weights everywhere, including the temporal mix factors and norm affines (which a
    fresh init leaves at 0 / 1 and would hide a wrong mix or a skipped affine)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.5 if p.ndim <= 1 else (1.0 / p[0].numel()) ** 0.5
            p.copy_(torch.randn(p.shape, generator=generator) * scale + (1.0 if name.endswith("norm1.weight") else 0))
    return model.eval()


@pytest.fixture(scope="module")
def small_decoder():
    config = DualRefAutoencoderConfig(ch=32, ch_mult=(1, 2), num_res_blocks=1, fusion_levels=(1,), fusion_heads=2, fusion_dim_head=16)
    model = randomise(DualRefAutoencoder(config), seed=3)
    return model.decoder


def small_inputs(frames: int, videos: int = 1, seed: int = 5):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(videos * frames, 4, 6, 10, generator=generator)
    shapes = [(32, 12, 20), (64, 6, 10), (32, 12, 20)]
    refs = [torch.randn(videos, c, 2, h, w, generator=generator) for c, h, w in shapes]
    return z, refs


@pytest.mark.parametrize("frames", [1, 2, 5, 7, 16])
@torch.no_grad()
def test_streamed_decode_equals_whole_clip_on_a_random_decoder(small_decoder, frames):
    z, refs = small_inputs(frames)
    whole = small_decoder(z, refs, frames)
    for step in sorted({1, 2, 3, frames, frames + 4}):
        streamed = small_decoder(z, refs, frames, frames_at_once=step)
        assert max_diff(streamed, whole) < EXACT, (frames, step)
    # in row bands (two-row bands on these 12-row frames: the in-place writes trail by one band)
    for step in sorted({1, 3, frames}):
        small_decoder.set_frames_at_once(step, in_row_bands=True)
        try:
            assert max_diff(small_decoder(z, refs, frames), whole) < EXACT, (frames, step, "bands")
        finally:
            small_decoder.set_frames_at_once(None)


@torch.no_grad()
def test_streamed_decode_keeps_videos_apart_and_follows_the_setting(small_decoder):
    z, refs = small_inputs(6, videos=2)
    whole = small_decoder(z, refs, 6)
    small_decoder.set_frames_at_once(4)
    try:
        streamed = small_decoder(z, refs, 6)
    finally:
        small_decoder.set_frames_at_once(None)
    assert max_diff(streamed, whole) < EXACT
    # the references matter (a streamed decode that dropped them would not be this far off)
    other = small_decoder(z, [r.flip(0) for r in refs], 6, frames_at_once=4)
    assert max_diff(other, whole) > 1e-2
    with pytest.raises(ValueError, match="frames_at_once"):
        small_decoder.set_frames_at_once(0)
    with pytest.raises(ValueError, match="row bands"):
        small_decoder.set_frames_at_once(None, in_row_bands=True)
    with pytest.raises(ValueError, match="decode_frames_at_once"):
        DualRefAutoencoderConfig(decode_frames_at_once=0)


@pytest.fixture(scope="module")
def tiny_autoencoder(reference_dir):
    folder = reference_dir / "tiny_a"
    config = json.loads((folder / "config.json").read_text())
    weights = load_file(str(folder / "weights.safetensors"))
    cases = load_file(str(folder / "cases.safetensors"))
    spec = json.loads((folder / "cases.json").read_text())["cases"]
    stage = DualRefAutoencoderConfig.from_dict(
        config["first_stage"],
        scale_factor=config["diffusion"]["scale_factor"],
        decode_chunk_frames=config["diffusion"]["temporal_length"],
    )
    model = DualRefAutoencoder(stage).eval()
    prefix = AUTOENCODER_KEY_PREFIX
    model.load_state_dict({k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}, strict=True)
    hidden = [cases[spec["vae_encode"]["outputs"][f"hidden_{i}"]["key"]] for i in range(5)]
    refs = keyframe_references([h[0:1] for h in hidden], [h[1:2] for h in hidden])
    latents = cases[spec["dualref_decode"]["inputs"]["latents"]["key"]]
    golden = cases[spec["dualref_decode"]["outputs"]["frames"]["key"]]
    return model, latents, refs, golden


@torch.no_grad()
def test_streamed_decode_equals_whole_clip_on_the_tiny_reference_model(tiny_autoencoder):
    model, latents, refs, golden = tiny_autoencoder
    frames = latents.shape[2]
    whole = model.decode(latents, refs)
    for step, bands in [(1, False), (3, False), (frames - 1, False), (frames, False), (1, True), (3, True)]:
        model.decoder.set_frames_at_once(step, in_row_bands=bands)
        try:
            streamed = model.decode(latents, refs)
            two_pass = model.decode_two_pass(latents, refs)
        finally:
            model.decoder.set_frames_at_once(None)
        assert max_diff(streamed, whole) < EXACT, (step, bands)
        assert max_diff(two_pass.frames, golden) < 1e-4, (step, bands)


@pytest.mark.parametrize("rows", [2, 3, 5, 12, 40])
@pytest.mark.parametrize("channels", [(32, 32), (32, 64)])
@pytest.mark.parametrize("upsampled", [False, True])
@torch.no_grad()
def test_the_2d_half_in_row_bands_equals_the_whole_frames(rows, channels, upsampled):
    """Any band height (also ones that do not divide the frame or exceed it), with and without a
    channel change (nin shortcut) and an upsampling read band by band; in place over the input when
    the block keeps its channels and nothing is upsampled."""
    block = randomise(VideoResnetBlock(*channels), seed=11)
    upsample = randomise(Upsample(channels[0]), seed=12)
    x = torch.randn(3, channels[0], 6 if upsampled else 12, 9, generator=torch.Generator().manual_seed(13))
    x = x.contiguous(memory_format=torch.channels_last)
    inputs = upsample(x) if upsampled else x
    expected = block.spatial_frames(inputs.clone())
    source = upsample.rows(x) if upsampled else (lambda top, bottom: x[:, :, top:bottom])
    in_place = not upsampled and channels[0] == channels[1]
    out = x if in_place else torch.full((3, channels[1], 12, 18 if upsampled else 9), float("nan"))
    result = resnet_block_in_bands(block, source, 12, rows, out)
    assert result is out
    assert max_diff(result, expected) < EXACT
    with pytest.raises(ValueError, match="two rows"):
        resnet_block_in_bands(block, source, 12, 1, out)


@pytest.mark.parametrize("top,bottom", [(0, 1), (0, 5), (3, 7), (6, 12), (0, 12)])
@torch.no_grad()
def test_conv_rows_and_upsampled_rows_are_slices_of_the_whole_frame(top, bottom):
    generator = torch.Generator().manual_seed(top * 13 + bottom)
    upsample = randomise(Upsample(8), seed=top + bottom)
    x = torch.randn(2, 8, 6, 5, generator=generator)
    whole = upsample(x)
    assert max_diff(upsample.rows(x)(top, bottom), whole[:, :, top:bottom]) < EXACT
    frame = torch.randn(2, 8, 12, 5, generator=generator)
    conv = upsample.conv
    assert max_diff(conv3x3_rows(conv, lambda lo, hi: frame[:, :, lo:hi], top, bottom, 12), conv(frame)[:, :, top:bottom]) < EXACT


@torch.no_grad()
def test_reference_combiner_adds_the_same_in_row_bands():
    combiner = randomise(ReferenceCombiner(16), seed=21)
    generator = torch.Generator().manual_seed(22)
    x, reference = torch.randn(5, 16, 7, 6, generator=generator), torch.randn(1, 16, 2, 7, 6, generator=generator)
    expected = combiner(x, reference)
    for step, rows in [(1, 2), (2, 3), (5, None), (3, 7)]:
        frames = list(x.clone().split(1))
        map_frames(frames, [combiner.frame_map(reference, 5, x.dtype, rows)], step)
        assert max_diff(torch.cat(frames), expected) < EXACT, (step, rows)
    # a clip of one frame gets both keyframes' maps
    single = x[:1].clone()
    assert max_diff(combiner.frame_map(reference, 1, x.dtype, 2)(single, 0), combiner(x[:1], reference)) < EXACT


def test_group_statistics_match_group_norm_over_the_clip():
    generator = torch.Generator().manual_seed(0)
    clip = torch.randn(1, 64, 5, 3, 4, generator=generator) * 3 + 7
    norm = Float32GroupNorm(32, 64)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(64, generator=generator))
        norm.bias.copy_(torch.randn(64, generator=generator))
    frames = list(clip.unbind(2))
    stats = group_statistics(frames, 32)
    expected = norm(clip)
    assert max_diff(group_norm_with_statistics(clip, norm, stats), expected) < EXACT
    # per-frame application with whole-clip statistics is the same numbers frame by frame
    assert max_diff(group_norm_with_statistics(frames[2], norm, stats), expected[:, :, 2]) < EXACT


def test_per_frame_group_statistics_over_bands_match_group_norm_of_each_frame():
    generator = torch.Generator().manual_seed(4)
    frames = torch.randn(3, 64, 7, 5, generator=generator) * torch.tensor([1.0, 4.0, 0.5])[:, None, None, None]
    norm = Float32GroupNorm(32, 64, eps=1e-6)
    pieces = [frames[:, :, top:bottom] for top, bottom in row_bands(7, 3)]
    stats = group_statistics(pieces, 32, per_frame=True)
    assert stats[0].shape == (3, 32)
    assert max_diff(group_norm_with_statistics(frames, norm, stats), norm(frames)) < EXACT
    # one band of rows normalised with its frames' statistics is that band of the whole result
    assert max_diff(group_norm_with_statistics(pieces[1], norm, stats), norm(frames)[:, :, 3:6]) < EXACT


def test_group_statistics_weight_pieces_of_different_sizes():
    generator = torch.Generator().manual_seed(2)
    clip = torch.randn(1, 64, 4, 7, 5, generator=generator) * 2 - 3
    expected_var, expected_mean = torch.var_mean(clip.double().reshape(32, -1), dim=1, correction=0)
    # bands of 3, 3 and 1 rows: an unweighted merge would overweight the one-row band
    pieces = [clip[:, :, :, top:bottom].contiguous() for top, bottom in row_bands(7, 3)]
    mean, variance = group_statistics(pieces, 32)
    assert max_diff(mean, expected_mean) < 1e-6
    assert max_diff(variance, expected_var) < 1e-5


def test_group_statistics_stay_on_the_pieces_device():
    # The lean decode on a GPU once failed here: the piece weights were made on the CPU. The meta
    # device stands in for a GPU (it refuses to mix with CPU tensors the same way).
    pieces = [torch.empty(2, 64, 3, 5, device="meta"), torch.empty(2, 64, 4, 5, device="meta")]
    mean, variance = group_statistics(pieces, 32, per_frame=True)
    assert mean.device.type == variance.device.type == "meta"
    assert mean.shape == variance.shape == (2, 32)


def test_row_bands_gather_and_scatter_round_trip():
    assert row_bands(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert row_bands(4, 10) == [(0, 4)]
    with pytest.raises(ValueError, match="row"):
        row_bands(4, 0)
    frames = [torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(1, 2, 5, 3) + 100 * t for t in range(4)]
    band = gather_band(frames, 1, 4)
    assert band.shape == (1, 2, 4, 3, 3)
    assert torch.equal(band[:, :, 2], frames[2][:, :, 1:4])
    scatter_band(frames, -band, 1)
    assert torch.equal(frames[3][:, :, 1:4], -(torch.arange(30.0).reshape(1, 2, 5, 3)[:, :, 1:4] + 300))
    assert torch.equal(frames[3][:, :, 4], torch.arange(30.0).reshape(1, 2, 5, 3)[:, :, 4] + 300)


@pytest.mark.parametrize("taps,bias,frames", [(3, True, 6), (3, False, 2), (5, True, 3), (1, True, 4), (3, True, 1)])
@torch.no_grad()
def test_temporal_conv_is_the_zero_padded_conv3d(taps, bias, frames):
    generator = torch.Generator().manual_seed(taps + frames)
    conv = nn.Conv3d(6, 5, (taps, 1, 1), padding=(taps // 2, 0, 0), bias=bias)
    for p in conv.parameters():
        p.copy_(torch.randn(p.shape, generator=generator))
    band = torch.randn(1, 6, frames, 3, 7, generator=generator)
    assert max_diff(temporal_conv(conv, band), conv(band)) < EXACT


@pytest.mark.parametrize("rows", [1, 2, 5, 12, 40])
@torch.no_grad()
def test_temporal_half_in_row_bands_equals_the_whole_block(rows):
    """Bands of any height (also ones that do not divide the frame) give the video block's output,
    written in place over the 2-D outputs."""
    block = randomise(VideoResnetBlock(32, 64), seed=7)
    generator = torch.Generator().manual_seed(8)
    x = torch.randn(5, 32, 12, 9, generator=generator)
    whole = block(x, 5)
    frames = list(block.spatial_frames(x).split(1))
    block.mix_in_bands(frames, rows)
    assert max_diff(torch.cat(frames), whole) < EXACT


def test_map_frames_passes_each_run_its_position():
    frames = [torch.full((1, 1), float(i)) for i in range(5)]
    seen = []
    map_frames(frames, [lambda x, start: (seen.append((start, x.shape[0])), x * 2)[1]], step=2)
    assert seen == [(0, 2), (2, 2), (4, 1)]
    assert [f.item() for f in frames] == [0, 2, 4, 6, 8]


@torch.no_grad()
def test_query_chunked_attention_is_exact():
    from engine.tooncrafter.networks.attention import Attention, set_attention_chunk

    torch.manual_seed(0)
    self_attention = Attention(32, heads=4, dim_head=8).eval()
    cross = Attention(32, context_dim=16, heads=2, dim_head=16, image_cross_attention=True, text_context_len=5).eval()
    x, context = torch.randn(3, 37, 32), torch.randn(3, 5 + 9, 16)
    whole = self_attention(x), cross(x, context)
    for chunk, queries in [(None, 1), (2, 5), (1, 36), (None, 37)]:
        set_attention_chunk(self_attention, chunk, queries)
        set_attention_chunk(cross, chunk, queries)
        assert max_diff(self_attention(x), whole[0]) < EXACT
        assert max_diff(cross(x, context), whole[1]) < EXACT
    with pytest.raises(ValueError, match="query chunk"):
        set_attention_chunk(cross, None, 0)
