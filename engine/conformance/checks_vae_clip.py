"""Conformance checks of the first stage (VAE + dual-reference decoder), the CLIP towers, their
image preprocessing and the image-context Resampler, on a golden case folder, through the model
contract (so on either runtime)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.tooncrafter.clip_preprocess import clip_preprocess
from engine.tooncrafter.interpolation import decode_two_pass
from engine.tooncrafter.networks.autoencoder import keyframe_references

from .models import tiny_networks


def check_clip_preprocess(ctx) -> dict[str, torch.Tensor]:
    return {"large_preprocessed": clip_preprocess(ctx.inputs["image_large"])}


def check_text_encode(ctx) -> dict[str, torch.Tensor]:
    net = tiny_networks(ctx)
    tokens = ctx.inputs["tokens"]
    prompts = ctx.params.get("prompts")
    if prompts is not None and not torch.equal(net.tokenize(prompts), tokens):
        raise ValueError(f"tokenizing {prompts!r} does not give the golden tokens")
    return {"context": net.encode_text(tokens)}


def check_image_encode(ctx) -> dict[str, torch.Tensor]:
    net = tiny_networks(ctx)
    images = ctx.inputs["images"]
    size = net.clip_image_size
    clip_tokens = net.encode_image(clip_preprocess(images, size))
    uncond_tokens = net.encode_image(clip_preprocess(torch.zeros(1, 3, size, size, dtype=images.dtype), size))
    return {
        "clip_tokens": clip_tokens,
        "image_context": net.resample_image_tokens(clip_tokens),
        "uncond_clip_tokens": uncond_tokens,
        "uncond_image_context": net.resample_image_tokens(uncond_tokens),
    }


def check_vae_encode(ctx) -> dict[str, torch.Tensor]:
    net = tiny_networks(ctx)
    posterior, hidden = net.encode_frames(ctx.inputs["keyframes"])
    out = {
        "posterior_mean": posterior.mean,
        "posterior_logvar": posterior.logvar,
        "posterior_std": posterior.std,
        "z": net.config.first_stage.scale_factor * posterior.sample(ctx.inputs["posterior_noise"]),
    }
    out.update({f"hidden_{i}": h for i, h in enumerate(hidden)})
    return out


def check_dualref_decode(ctx) -> dict[str, torch.Tensor]:
    """Teacher-forced on the vae_encode case's golden feature maps (keyframe 0 first, keyframe 1 last)."""
    net = tiny_networks(ctx)
    hidden = [ctx.stored[f"vae_encode.hidden_{i}"] for i in range(len(net.config.first_stage.ch_mult) + 1)]
    references = keyframe_references([h[0:1] for h in hidden], [h[1:2] for h in hidden])
    latents = ctx.inputs["latents"]
    decoded = decode_two_pass(net, latents, references)
    t = latents.shape[2]
    return {
        "frames_single_pass": decoded.single_pass,
        "frames_middle_pass": decoded.middle_pass,
        "frames": decoded.frames,
        "middle_pass_frame_index": torch.tensor([i for i in range(t) if i not in (1, t - 2)]),
    }


CASES: dict[str, Callable] = {
    "clip_preprocess": check_clip_preprocess,
    "text_encode": check_text_encode,
    "image_encode": check_image_encode,
    "vae_encode": check_vae_encode,
    "dualref_decode": check_dualref_decode,
}
