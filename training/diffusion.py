"""The denoising objective shared by toon rectification and sketch-encoder training.

The model is DynamiCrafter's v-prediction latent video diffusion on the engine's schedule buffers
(zero-terminal-SNR betas, `engine.tooncrafter.schedule`): for a clean latent clip z and noise ε at
step t, x_t = √ᾱ_t·z + √(1−ᾱ_t)·ε and the UNet is trained to predict v = √ᾱ_t·ε − √(1−ᾱ_t)·z
(the sampler inverts exactly this: x0 = √ᾱ_t·x_t − √(1−ᾱ_t)·v).

Conditioning is what inference gives the UNet: c_concat holds the first and last frame's latents
with zeros between; the context is the caption's text tokens followed by the Resampler's tokens of
the first frame's CLIP image embedding; fs is the clip's frame rate after striding. For classifier-
free guidance the text is replaced by the empty prompt and the image by the all-zero image
(exactly the unconditional branch of the engine's interpolation pipeline), each independently.

Every random number of a sample (posterior noise, t, ε, dropout) comes from that sample's own seed,
so a batch split over ranks or micro-steps, or resumed, draws the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.tooncrafter.frames import clip_to_frames
from engine.tooncrafter.model import ToonCrafterModel


@dataclass(frozen=True)
class ConditionDropout:
    """Probabilities of replacing each condition by its unconditional value (paper: 5 % each)."""

    text: float = 0.05
    image: float = 0.05


@dataclass
class SampleDraws:
    """The random numbers of one sample, drawn in a fixed order from its seed."""

    posterior: torch.Tensor  # (T, C, h, w)
    t: int
    noise: torch.Tensor  # (C, T, h, w)
    drop_text: bool
    drop_image: bool


def draw(seed: int, latent: tuple[int, int, int, int], timesteps: int, dropout: ConditionDropout) -> SampleDraws:
    """latent = (C, T, h, w)."""
    c, t, h, w = latent
    g = torch.Generator().manual_seed(seed)
    posterior = torch.randn((t, c, h, w), generator=g)
    step = int(torch.randint(0, timesteps, (1,), generator=g))
    noise = torch.randn((c, t, h, w), generator=g)
    u = torch.rand(2, generator=g)
    return SampleDraws(posterior, step, noise, bool(u[0] < dropout.text), bool(u[1] < dropout.image))


@dataclass
class DiffusionInputs:
    """Everything one denoising loss needs for a batch (B clips)."""

    x_t: torch.Tensor  # (B, 4, T, h, w) noisy latents
    v_target: torch.Tensor  # (B, 4, T, h, w)
    t: torch.Tensor  # (B,) long
    c_concat: torch.Tensor  # (B, 4, T, h, w)
    context: torch.Tensor  # (B, 77 + 16·T, D)
    fs: torch.Tensor  # (B,) long
    z: torch.Tensor  # (B, 4, T, h, w) clean latents


@torch.no_grad()
def encode_video(model: ToonCrafterModel, video: torch.Tensor, posterior_noise: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """(B, 3, T, H, W) in [-1, 1] -> latents (B, 4, T, h, w) in the diffusion space (posterior samples).

    posterior_noise is (B·T, 4, h, w); frames are encoded `chunk` at a time (the encoder is per frame).
    """
    vae = model.first_stage_model
    b, _, t = video.shape[:3]
    frames = clip_to_frames(video)
    parts = []
    for i in range(0, frames.shape[0], chunk):
        encoding = vae.encode(frames[i : i + chunk].to(vae.quant_conv.weight.dtype))
        parts.append(vae.scaled_latents(encoding.posterior, posterior_noise[i : i + chunk]).float())
    z = torch.cat(parts)
    return z.reshape(b, t, *z.shape[1:]).transpose(1, 2).float()


def keyframe_concat(z: torch.Tensor) -> torch.Tensor:
    """c_concat: the first and last frame's latents at frames 0 and T−1, zeros between."""
    c = torch.zeros_like(z)
    c[:, :, 0] = z[:, :, 0]
    c[:, :, -1] = z[:, :, -1]
    return c


def conditioning_context(
    model: ToonCrafterModel, captions: list[str], first_frames: torch.Tensor, drop_text: list[bool], drop_image: list[bool]
) -> torch.Tensor:
    """(B, 77 + 16·T, D): text tokens then Resampler image tokens; the Resampler keeps its graph.

    The CLIP towers run without gradients; the Resampler runs with them when its weights train.
    """
    prompts = ["" if dropped else caption for caption, dropped in zip(captions, drop_text)]
    images = first_frames.clone()
    for i, dropped in enumerate(drop_image):
        if dropped:
            images[i] = 0.0
    with torch.no_grad():
        text = model.cond_stage_model.encode(prompts)
        tokens = model.embedder.encode(images.to(model.embedder.model.visual.conv1.weight.device))
    proj = model.image_proj_model
    image = proj(tokens.to(proj.proj_in.weight.device, proj.proj_in.weight.dtype))
    return torch.cat([text.to(image.device, image.dtype), image], dim=1)


def diffusion_inputs(
    model: ToonCrafterModel, batch: dict, dropout: ConditionDropout, device: torch.device
) -> DiffusionInputs:
    """Encode a batch of clips and draw each sample's noise, step and dropout from its seed."""
    video = batch["video"].to(device)
    b, _, t, height, width = video.shape
    d = model.first_stage_model.downscale
    c = model.config.unet.out_channels
    shape = (c, t, height // d, width // d)
    timesteps = model.alphas_cumprod.shape[0]
    draws = [draw(seed, shape, timesteps, dropout) for seed in batch["seed"]]
    posterior = torch.cat([s.posterior for s in draws]).to(device)
    z = encode_video(model, video, posterior)
    noise = torch.stack([s.noise for s in draws]).to(device)
    steps = torch.tensor([s.t for s in draws], dtype=torch.long, device=device)
    x_t, v = noised(model, z, noise, steps)
    context = conditioning_context(
        model, batch["caption"], video[:, :, 0], [s.drop_text for s in draws], [s.drop_image for s in draws]
    )
    return DiffusionInputs(x_t, v, steps, keyframe_concat(z), context, batch["fs"].to(device), z)


def noised(model: ToonCrafterModel, z: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, v target) from the model's float32 schedule buffers."""
    shape = (-1,) + (1,) * (z.ndim - 1)
    sqrt_a = model.sqrt_alphas_cumprod.to(z.device)[t].reshape(shape)
    sqrt_1m_a = model.sqrt_one_minus_alphas_cumprod.to(z.device)[t].reshape(shape)
    return sqrt_a * z + sqrt_1m_a * noise, sqrt_a * noise - sqrt_1m_a * z
