"""Half-precision runs keep the numerically sensitive parts in float32: the posterior and its sample,
and every normalisation (including the Resampler's LayerNorms)."""

from __future__ import annotations

import torch
from torch import nn

from engine.tooncrafter.networks.autoencoder import DualRefAutoencoder, DualRefAutoencoderConfig, LatentPosterior
from engine.tooncrafter.networks.normalization import Float32GroupNorm, Float32LayerNorm
from engine.tooncrafter.networks.resampler import Resampler, ResamplerConfig


def test_posterior_is_float32_from_half_moments():
    generator = torch.Generator().manual_seed(0)
    moments = torch.randn(2, 8, 3, 3, generator=generator) * 4
    half = LatentPosterior.from_moments(moments.half())
    full = LatentPosterior.from_moments(moments.half().float())
    noise = torch.randn(2, 4, 3, 3, generator=generator)
    assert half.mean.dtype == half.logvar.dtype == half.sample(noise.half()).dtype == torch.float32
    # the same numbers as float32 maths on the half moments (a float16 exp/sample would be ~1e-3 off)
    assert torch.equal(half.sample(noise), full.sample(noise))


def test_half_autoencoder_encodes_to_a_float32_posterior():
    config = DualRefAutoencoderConfig(ch=32, ch_mult=(1, 2), num_res_blocks=1, fusion_levels=(1,))
    model = DualRefAutoencoder(config).eval().to(torch.bfloat16)
    with torch.no_grad():
        encoding = model.encode(torch.rand(1, 3, 16, 16, dtype=torch.bfloat16) * 2 - 1)
    assert encoding.posterior.mean.dtype == torch.float32
    assert encoding.hidden_states[0].dtype == torch.bfloat16


def test_every_norm_of_the_networks_computes_in_float32():
    for model in (
        Resampler(ResamplerConfig(dim=64, depth=1, dim_head=16, heads=4, num_queries=4, embedding_dim=32, output_dim=48, video_length=2)),
        DualRefAutoencoder(DualRefAutoencoderConfig(ch=32, ch_mult=(1, 2), num_res_blocks=1, fusion_levels=(1,))),
    ):
        norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm | nn.GroupNorm)]
        assert norms and all(isinstance(m, Float32LayerNorm | Float32GroupNorm) for m in norms)


def test_bf16_resampler_stays_near_float32():
    torch.manual_seed(0)
    config = ResamplerConfig(dim=64, depth=2, dim_head=16, heads=4, num_queries=4, embedding_dim=32, output_dim=48, video_length=2)
    model = Resampler(config).eval()
    tokens = torch.randn(2, 5, 32) * 10 + 3
    with torch.no_grad():
        full = model(tokens)
        half = model.to(torch.bfloat16)(tokens.to(torch.bfloat16)).float()
    assert (half - full).abs().max() < 0.1 * full.abs().max()
