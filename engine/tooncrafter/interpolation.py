"""ToonCrafter's two-keyframe interpolation, written once for every runtime.

This is the original's interpolation path (i2v_test_application / inference.py --interp) over the
model contract (`runtimes.contract.ToonCrafterNetworks`), so PyTorch and ONNX Runtime run the same
maths and differ only in how each network is evaluated:
1. encode the keyframes with the VAE, SAMPLING the posterior (mean + std·noise, ×0.18215);
2. c_concat: the first keyframe's latent at frame 0, the last one's at frame T−1, zeros between;
3. context = text tokens + Resampler(CLIP tokens of the FIRST keyframe); the unconditional context
   is the empty prompt + Resampler(CLIP(all-zero image)), with the same c_concat and motion (fs);
4. DDIM with classifier-free guidance (sampler.py) from x_T, sketch residuals scaled by the
   strength in both guidance branches; 5. dual-reference decode, two passes as the official scripts do.

Parity (default) encodes T frames (the first keyframe T/2 times, then the last one T/2 times) as the
original does; the lean setting `encode_all_frames=False` encodes only the two keyframes with the
same noise slices (frames 0 and T−1 of the posterior noise), which gives the same latents up to
float rounding because the encoder works frame by frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..api import CancelToken
from .clip_preprocess import clip_preprocess
from .networks.autoencoder import (
    TwoPassFrames,
    decode_in_chunks,
    keyframe_references,
    two_pass_decode,
    video_references,
)
from .networks.config import OFFICIAL_FS, ToonCrafterConfig
from .runtimes.contract import ToonCrafterNetworks
from .sampler import Conditioning, DDIMSampler, NoiseSource, SamplerSettings, SamplerTrace, SeededNoise

# ----------------------------------------------------------------------------------------------
# Conditioning


def text_context(net: ToonCrafterNetworks, prompts: str | Sequence[str] | torch.Tensor) -> torch.Tensor:
    """Prompt(s) or CLIP tokens -> (B, 77, D)."""
    if isinstance(prompts, torch.Tensor):
        tokens = prompts
    else:
        tokens = net.tokenize([prompts] if isinstance(prompts, str) else list(prompts))
    return net.encode_text(tokens.to(net.device))


def image_context(net: ToonCrafterNetworks, images: torch.Tensor) -> torch.Tensor:
    """Keyframes (B, 3, H, W) in [-1, 1] -> image tokens (B, 16·T, D): CLIP resize, tower, Resampler."""
    pixels = clip_preprocess(images.to(net.device, torch.float32), net.clip_image_size)
    return net.resample_image_tokens(net.encode_image(pixels))


def unconditional_image_context(net: ToonCrafterNetworks, batch: int = 1) -> torch.Tensor:
    """Resampler output for an all-zero image (mid grey): the image half of the uncond context."""
    size = net.clip_image_size
    return image_context(net, torch.zeros(batch, 3, size, size, device=net.device))


@dataclass
class PromptContexts:
    """The parts of the guidance contexts that do not depend on the keyframes (cacheable)."""

    text: torch.Tensor  # (1, 77, D) of the prompt
    empty_text: torch.Tensor  # (1, 77, D) of ''
    zero_image: torch.Tensor  # (1, 16·T, D) Resampler(CLIP(zero image))


def prompt_contexts(net: ToonCrafterNetworks, prompt: str | torch.Tensor) -> PromptContexts:
    return PromptContexts(
        text=text_context(net, prompt),
        empty_text=text_context(net, [""]),
        zero_image=unconditional_image_context(net, 1),
    )


# ----------------------------------------------------------------------------------------------
# First stage


@dataclass
class KeyframeLatents:
    c_concat: torch.Tensor  # (1, 4, T, h, w) float32
    references: list[torch.Tensor]  # five (1, C, 2, H_i, W_i) maps for the dual-reference decoder
    z_all_frames: torch.Tensor | None = None  # (1, 4, T, h, w) in parity mode (every encoded frame)


def encode_keyframes(
    net: ToonCrafterNetworks,
    first: torch.Tensor,
    last: torch.Tensor,
    posterior_noise: torch.Tensor,
    encode_all_frames: bool = True,
) -> KeyframeLatents:
    """Keyframes (1, 3, H, W) in [-1, 1] -> c_concat and the decoder's reference maps.

    posterior_noise is (T, 4, h, w) as the original draws it for all T frames; only frames 0
    and T−1 of it matter.
    """
    t = net.config.frames
    scale = net.config.first_stage.scale_factor
    device = net.device
    first, last, posterior_noise = (x.to(device, torch.float32) for x in (first, last, posterior_noise))
    if encode_all_frames:
        video = torch.cat([first.expand(t // 2, -1, -1, -1), last.expand(t - t // 2, -1, -1, -1)])
        posterior, hidden = net.encode_frames(video)
        z = scale * posterior.sample(posterior_noise.to(posterior.mean))
        references = video_references(hidden, t)
        z_video = z.unsqueeze(0).transpose(1, 2)
        z_first, z_last = z_video[:, :, 0], z_video[:, :, -1]
    else:
        posterior, hidden = net.encode_frames(torch.cat([first, last]))
        noise = torch.stack([posterior_noise[0], posterior_noise[-1]]).to(posterior.mean)
        z = scale * posterior.sample(noise)
        references = keyframe_references([h[0:1] for h in hidden], [h[1:2] for h in hidden])
        z_video = None
        z_first, z_last = z[0:1], z[1:2]
    c_concat = torch.zeros(1, z_first.shape[1], t, *z_first.shape[2:], device=device, dtype=torch.float32)
    c_concat[:, :, 0] = z_first
    c_concat[:, :, -1] = z_last
    return KeyframeLatents(c_concat, references, z_video)


def decode_latents(
    net: ToonCrafterNetworks, latents: torch.Tensor, references: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Latents (B, 4, T, h, w) in the diffusion space -> frames (B, 3, T, H, W), one pass."""
    stage = net.config.first_stage
    return decode_in_chunks(net.decode_frames, latents, references, stage.scale_factor, stage.decode_chunk_frames)


def decode_two_pass(net: ToonCrafterNetworks, latents: torch.Tensor, references: Sequence[torch.Tensor]) -> TwoPassFrames:
    """The official two-pass dual-reference decode on any runtime."""
    return two_pass_decode(lambda z: decode_latents(net, z, references), latents)


# ----------------------------------------------------------------------------------------------
# Denoiser


def predict_v(net: ToonCrafterNetworks, x: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    """The UNet's v for noisy latents x (B, 4, T, h, w), with sketch residuals when cond has a hint."""
    control = None
    if cond.sketch_hint is not None:
        if not net.has_sketch_encoder:
            raise ValueError("a sketch hint was given but no sketch encoder is loaded")
        control = net.sketch_residuals(x, cond.sketch_hint, t, cond.context)
        if cond.sketch_strength != 1.0:
            control = [r * cond.sketch_strength for r in control]
    return net.unet(torch.cat([x, cond.c_concat.to(x.dtype)], dim=1), t, cond.context, cond.fs, control=control)


def sampler_for(net: ToonCrafterNetworks) -> DDIMSampler:
    return DDIMSampler.from_buffers(net.schedule_buffers())


# ----------------------------------------------------------------------------------------------
# One pass


@dataclass(frozen=True)
class InterpolationSettings:
    """What one model pass uses besides the keyframes; defaults are the official values."""

    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    fs: int = OFFICIAL_FS
    prompt: str = "an anime scene"
    sketch_strength: float = 0.6
    #: Parity: encode T frames as the original does. Lean (False): only the two keyframes.
    encode_all_frames: bool = True


@dataclass
class InterpolationNoise:
    """All random numbers of one pass: the posterior noise (T, 4, h, w), then the sampler's."""

    posterior: torch.Tensor
    sampler: NoiseSource

    @classmethod
    def seeded(cls, seed: int, config: ToonCrafterConfig, device: torch.device | str = "cpu") -> "InterpolationNoise":
        """The original's draws after seeding: posterior noise on the CPU generator, then x_T and one
        noise per step on the model device's generator (the same generator when that is the CPU)."""
        device = torch.device(device)
        cpu = torch.Generator("cpu").manual_seed(seed)
        _, c, t, h, w = config.latent_shape()
        posterior = torch.randn((t, c, h, w), generator=cpu)
        on_device = cpu if device.type == "cpu" else torch.Generator(device).manual_seed(seed)
        return cls(posterior, SeededNoise(on_device))


@dataclass
class InterpolationResult:
    latents: torch.Tensor  # (1, 4, T, h, w)
    frames: torch.Tensor  # (1, 3, T, H, W) in about [-1, 1], unclamped
    intermediates: dict[str, torch.Tensor] = field(default_factory=dict)


def interpolate(
    net: ToonCrafterNetworks,
    first: torch.Tensor,
    last: torch.Tensor,
    settings: InterpolationSettings,
    noise: InterpolationNoise,
    *,
    contexts: PromptContexts | None = None,
    image: torch.Tensor | None = None,
    sketch_hint: torch.Tensor | None = None,
    on_stage: Callable[[str, float, str], None] | None = None,
    cancel: CancelToken | None = None,
    trace: SamplerTrace | None = None,
    decode: bool = True,
) -> InterpolationResult:
    """One model pass between two keyframes (1, 3, H, W) in [-1, 1] on the model canvas.

    `contexts` and `image` (the first keyframe's image context) may be precomputed, e.g. while the
    CLIP towers visit the GPU. `sketch_hint` (1, 1, T, H, W) in [0, 1] steers frames through the
    model's sketch encoder in both guidance branches. `on_stage(stage, fraction, message)` reports
    "encode", "denoise i/N" and "decode".
    """
    report = on_stage or (lambda stage, fraction, message: None)
    device = net.device
    report("encode", 0.0, "encoding the keyframes")
    if contexts is None:
        contexts = prompt_contexts(net, settings.prompt)
    latents_in = encode_keyframes(net, first, last, noise.posterior, settings.encode_all_frames)
    image = image_context(net, first) if image is None else image
    text = contexts.text.to(device, torch.float32)
    cond_context = torch.cat([text, image.to(device, torch.float32)], dim=1)
    uncond_context = torch.cat(
        [contexts.empty_text.to(device, torch.float32), contexts.zero_image.to(device, torch.float32)], dim=1
    )
    c_concat = latents_in.c_concat.to(device)
    fs = torch.tensor([settings.fs], dtype=torch.long, device=device)
    hint = sketch_hint.to(device) if sketch_hint is not None else None
    cond = Conditioning(cond_context, c_concat, fs, hint, settings.sketch_strength)
    uncond = Conditioning(uncond_context, c_concat, fs, hint, settings.sketch_strength)

    steps = settings.sampler.steps

    def on_step(i: int, n: int) -> None:
        report(f"denoise {i + 1}/{n}", (i + 1) / n, f"denoising step {i + 1} of {n}")

    report(f"denoise 0/{steps}", 0.0, "denoising")
    latents = sampler_for(net).sample(
        lambda x, t, c: predict_v(net, x, t, c),
        cond,
        uncond,
        net.config.latent_shape(),
        settings.sampler,
        noise.sampler,
        device=device,
        on_step=on_step,
        cancel=cancel,
        trace=trace,
    )
    intermediates = {
        "text_context": contexts.text,
        "image_context": image,
        "c_concat": c_concat,
        "cond_context": cond_context,
        "uncond_context": uncond_context,
    }
    if latents_in.z_all_frames is not None:
        intermediates["z_all_frames"] = latents_in.z_all_frames
    frames = torch.empty(0)
    if decode:
        if cancel is not None:
            cancel.check()
        report("decode", 0.0, "decoding frames")
        frames = decode_two_pass(net, latents, latents_in.references).frames
        report("decode", 1.0, "decoded")
    return InterpolationResult(latents, frames, intermediates)
