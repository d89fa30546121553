"""Conformance checks of the first stage (VAE + dual-reference decoder), the CLIP towers, their
image preprocessing and the image-context Resampler, on a golden case folder."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from engine.tooncrafter.clip_preprocess import clip_preprocess
from engine.tooncrafter.networks.autoencoder import (
    AUTOENCODER_KEY_PREFIX,
    DualRefAutoencoder,
    DualRefAutoencoderConfig,
    keyframe_references,
)
from engine.tooncrafter.networks.clip_towers import (
    IMAGE_ENCODER_KEY_PREFIX,
    TEXT_ENCODER_KEY_PREFIX,
    CLIPImageEncoder,
    CLIPTextEncoder,
)
from engine.tooncrafter.networks.resampler import RESAMPLER_KEY_PREFIX, Resampler, ResamplerConfig


def component_state_dict(weights: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of an official state dict under `prefix`, with the prefix removed."""
    state = {key[len(prefix) :]: value for key, value in weights.items() if key.startswith(prefix)}
    if not state:
        raise KeyError(f"the weights hold no key starting with {prefix!r}")
    return state


def _cached(ctx, name: str, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    key = f"vae_clip.{name}"
    if key not in ctx.cache:
        ctx.cache[key] = build().eval()
    return ctx.cache[key]


def _autoencoder(ctx) -> DualRefAutoencoder:
    def build() -> DualRefAutoencoder:
        diffusion = ctx.config.get("diffusion", {})
        overrides = {}
        if "scale_factor" in diffusion:
            overrides["scale_factor"] = diffusion["scale_factor"]
        if diffusion.get("temporal_length"):
            overrides["decode_chunk_frames"] = diffusion["temporal_length"]
        model = DualRefAutoencoder(DualRefAutoencoderConfig.from_dict(ctx.config["first_stage"], **overrides))
        model.load_state_dict(component_state_dict(ctx.weights, AUTOENCODER_KEY_PREFIX), strict=True)
        return model

    return _cached(ctx, "autoencoder", build)


def _text_encoder(ctx) -> CLIPTextEncoder:
    def build() -> CLIPTextEncoder:
        model = CLIPTextEncoder(ctx.config["open_clip_model_config"], device="meta")
        model.load_state_dict(component_state_dict(ctx.weights, TEXT_ENCODER_KEY_PREFIX), strict=True, assign=True)
        return model

    return _cached(ctx, "text_encoder", build)


def _image_encoder(ctx) -> CLIPImageEncoder:
    def build() -> CLIPImageEncoder:
        model = CLIPImageEncoder(ctx.config["open_clip_model_config"], device="meta")
        model.load_state_dict(component_state_dict(ctx.weights, IMAGE_ENCODER_KEY_PREFIX), strict=True, assign=True)
        return model

    return _cached(ctx, "image_encoder", build)


def _resampler(ctx) -> Resampler:
    def build() -> Resampler:
        model = Resampler(ResamplerConfig.from_dict(ctx.config["image_proj"]))
        model.load_state_dict(component_state_dict(ctx.weights, RESAMPLER_KEY_PREFIX), strict=True)
        return model

    return _cached(ctx, "resampler", build)


def check_clip_preprocess(ctx) -> dict[str, torch.Tensor]:
    return {"large_preprocessed": clip_preprocess(ctx.inputs["image_large"])}


def check_text_encode(ctx) -> dict[str, torch.Tensor]:
    encoder = _text_encoder(ctx)
    tokens = ctx.inputs["tokens"]
    prompts = ctx.params.get("prompts")
    if prompts is not None and not torch.equal(encoder.tokenize(prompts), tokens):
        raise ValueError(f"tokenizing {prompts!r} does not give the golden tokens")
    return {"context": encoder(tokens)}


def check_image_encode(ctx) -> dict[str, torch.Tensor]:
    encoder, resampler = _image_encoder(ctx), _resampler(ctx)
    images = ctx.inputs["images"]
    clip_tokens = encoder.encode(images)
    uncond_tokens = encoder.encode(torch.zeros(1, 3, encoder.image_size, encoder.image_size, dtype=images.dtype))
    return {
        "clip_tokens": clip_tokens,
        "image_context": resampler(clip_tokens),
        "uncond_clip_tokens": uncond_tokens,
        "uncond_image_context": resampler(uncond_tokens),
    }


def check_vae_encode(ctx) -> dict[str, torch.Tensor]:
    autoencoder = _autoencoder(ctx)
    encoding = autoencoder.encode(ctx.inputs["keyframes"])
    posterior = encoding.posterior
    out = {
        "posterior_mean": posterior.mean,
        "posterior_logvar": posterior.logvar,
        "posterior_std": posterior.std,
        "z": autoencoder.scaled_latents(posterior, ctx.inputs["posterior_noise"]),
    }
    out.update({f"hidden_{i}": hidden for i, hidden in enumerate(encoding.hidden_states)})
    return out


def check_dualref_decode(ctx) -> dict[str, torch.Tensor]:
    """Teacher-forced on the vae_encode case's golden feature maps (keyframe 0 first, keyframe 1 last)."""
    autoencoder = _autoencoder(ctx)
    hidden = [ctx.stored[f"vae_encode.hidden_{i}"] for i in range(len(autoencoder.config.ch_mult) + 1)]
    references = keyframe_references([h[0:1] for h in hidden], [h[1:2] for h in hidden])
    latents = ctx.inputs["latents"]
    decoded = autoencoder.decode_two_pass(latents, references)
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
