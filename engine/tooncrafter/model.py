"""The whole ToonCrafter interpolation model and its two-keyframe pipeline.

`ToonCrafterModel` holds the parts under the official checkpoint's names, so its state_dict keys are
exactly those of `model.ckpt`: `model.diffusion_model` (video UNet), `first_stage_model` (VAE with the
dual-reference decoder), `cond_stage_model` (OpenCLIP text tower), `embedder` (OpenCLIP image tower),
`image_proj_model` (Resampler) and the 13 schedule buffers.

`interpolate()` is the original's interpolation path (i2v_test_application / inference.py --interp):
1. encode the keyframes with the VAE, SAMPLING the posterior (mean + std·noise, ×0.18215);
2. c_concat: the first keyframe's latent at frame 0, the last one's at frame T−1, zeros between;
3. context = text tokens + Resampler(CLIP tokens of the FIRST keyframe); the unconditional context
   is the empty prompt + Resampler(CLIP(all-zero image)), with the same c_concat and motion (fs);
4. DDIM (sampler.py) from x_T; 5. dual-reference decode, two passes as the official scripts do.

Parity (default) encodes T frames (the first keyframe T/2 times, then the last one T/2 times) as the
original does; the lean setting `encode_all_frames=False` encodes only the two keyframes with the
same noise slices (frames 0 and T−1 of the posterior noise), which gives the same latents up to
float rounding because the encoder works frame by frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..api import CancelToken
from .networks.autoencoder import DualRefAutoencoder, keyframe_references, video_references
from .networks.clip_towers import CLIPImageEncoder, CLIPTextEncoder
from .networks.config import OFFICIAL_FS, ToonCrafterConfig
from .networks.resampler import Resampler
from .networks.sketch_encoder import SketchEncoder
from .networks.unet import ToonCrafterUNet
from .sampler import Conditioning, DDIMSampler, NoiseSource, SamplerSettings, SamplerTrace, SeededNoise
from .schedule import schedule_buffers


class DiffusionWrapper(nn.Module):
    """Only there so the UNet's keys read `model.diffusion_model.*` as in the checkpoint."""

    def __init__(self, unet: ToonCrafterUNet) -> None:
        super().__init__()
        self.diffusion_model = unet


class ToonCrafterModel(nn.Module):
    def __init__(self, config: ToonCrafterConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ToonCrafterConfig()
        self.model = DiffusionWrapper(ToonCrafterUNet(config.unet))
        self.first_stage_model = DualRefAutoencoder(config.first_stage)
        self.cond_stage_model = CLIPTextEncoder(config.open_clip)
        self.embedder = CLIPImageEncoder(config.open_clip)
        self.image_proj_model = Resampler(config.image_proj)
        for name, value in schedule_buffers(config.diffusion).items():
            self.register_buffer(name, value.to(device="cpu"))

    @property
    def unet(self) -> ToonCrafterUNet:
        return self.model.diffusion_model

    @property
    def device(self) -> torch.device:
        """Where the UNet runs (the ONNX Runtime stand-in in onnx_runtime.py answers the same)."""
        return self.unet.out[2].weight.device

    def cast_weights(self, dtype: torch.dtype) -> "ToonCrafterModel":
        """Convert every part to `dtype`; the diffusion schedule stays float32 as the sampler needs."""
        for part in (self.model, self.first_stage_model, self.cond_stage_model, self.embedder, self.image_proj_model):
            part.to(dtype)
        return self

    def sampler(self) -> DDIMSampler:
        return DDIMSampler.from_buffers(self)

    # -- conditioning --------------------------------------------------------------------------

    def text_context(self, prompts: str | list[str] | torch.Tensor) -> torch.Tensor:
        """Prompt(s) or CLIP tokens -> (B, 77, D) from the text tower's penultimate block."""
        tokens = prompts if isinstance(prompts, torch.Tensor) else self.cond_stage_model.tokenize(prompts)
        return self.cond_stage_model(tokens.to(self.cond_stage_model.model.token_embedding.weight.device))

    def image_context(self, images: torch.Tensor) -> torch.Tensor:
        """Keyframes (B, 3, H, W) in [-1, 1] -> image tokens (B, 16·T, D)."""
        device = self.embedder.model.visual.conv1.weight.device
        tokens = self.embedder.encode(images.to(device))
        proj_device = self.image_proj_model.proj_in.weight.device
        return self.image_proj_model(tokens.to(proj_device, self.image_proj_model.proj_in.weight.dtype))

    def unconditional_image_context(self, batch: int = 1) -> torch.Tensor:
        """Resampler output for an all-zero image (mid grey): the image half of the uncond context."""
        size = self.embedder.image_size
        zeros = torch.zeros(batch, 3, size, size, device=self.embedder.model.visual.conv1.weight.device)
        return self.image_context(zeros)

    # -- first stage ---------------------------------------------------------------------------

    def encode_keyframes(
        self,
        first: torch.Tensor,
        last: torch.Tensor,
        posterior_noise: torch.Tensor,
        encode_all_frames: bool = True,
    ) -> "KeyframeLatents":
        """Keyframes (1, 3, H, W) in [-1, 1] -> c_concat and the decoder's reference maps.

        posterior_noise is (T, 4, h, w) as the original draws it for all T frames; only frames 0
        and T−1 of it matter.
        """
        t = self.config.frames
        vae = self.first_stage_model
        device = vae.quant_conv.weight.device
        dtype = vae.quant_conv.weight.dtype
        if encode_all_frames:
            video = torch.cat([first.expand(t // 2, -1, -1, -1), last.expand(t - t // 2, -1, -1, -1)])
            encoding = vae.encode(video.to(device, dtype))
            z = vae.scaled_latents(encoding.posterior, posterior_noise.to(device, dtype))
            references = video_references(encoding.hidden_states, t)
            z_video = z.unsqueeze(0).transpose(1, 2)
            z_first, z_last = z_video[:, :, 0], z_video[:, :, -1]
        else:
            encoding = vae.encode(torch.cat([first, last]).to(device, dtype))
            noise = torch.stack([posterior_noise[0], posterior_noise[-1]]).to(device, dtype)
            z = vae.scaled_latents(encoding.posterior, noise)
            references = keyframe_references([h[0:1] for h in encoding.hidden_states], [h[1:2] for h in encoding.hidden_states])
            z_video = None
            z_first, z_last = z[0:1], z[1:2]
        c_concat = torch.zeros(1, z_first.shape[1], t, *z_first.shape[2:], device=device, dtype=torch.float32)
        c_concat[:, :, 0] = z_first
        c_concat[:, :, -1] = z_last
        return KeyframeLatents(c_concat, references, z_video)

    def decode(self, latents: torch.Tensor, references: list[torch.Tensor], two_pass: bool = True) -> torch.Tensor:
        """Latents (B, 4, T, h, w) -> frames (B, 3, T, H, W), unclamped, via the dual-reference decoder."""
        vae = self.first_stage_model
        latents = latents.to(vae.quant_conv.weight.device, vae.quant_conv.weight.dtype)
        if two_pass:
            return vae.decode_two_pass(latents, references).frames
        return vae.decode(latents, references)

    # -- denoiser ------------------------------------------------------------------------------

    def predict_v(
        self, x: torch.Tensor, t: torch.Tensor, cond: Conditioning, sketch_encoder: SketchEncoder | None = None
    ) -> torch.Tensor:
        """The UNet's v for noisy latents x (B, 4, T, h, w), with sketch residuals when cond has a hint."""
        control = None
        if cond.sketch_hint is not None:
            if sketch_encoder is None:
                raise ValueError("a sketch hint was given but no sketch encoder is loaded")
            control = sketch_encoder(x, cond.sketch_hint, t, cond.context, cond.sketch_strength)
        return self.unet(torch.cat([x, cond.c_concat.to(x.dtype)], dim=1), t, cond.context, cond.fs, control=control)


@dataclass
class KeyframeLatents:
    c_concat: torch.Tensor  # (1, 4, T, h, w) float32
    references: list[torch.Tensor]  # five (1, C, 2, H_i, W_i) maps for the dual-reference decoder
    z_all_frames: torch.Tensor | None = None  # (1, 4, T, h, w) in parity mode (every encoded frame)


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
class PromptContexts:
    """The parts of the guidance contexts that do not depend on the keyframes (cacheable)."""

    text: torch.Tensor  # (1, 77, D) of the prompt
    empty_text: torch.Tensor  # (1, 77, D) of ''
    zero_image: torch.Tensor  # (1, 16·T, D) Resampler(CLIP(zero image))


def prompt_contexts(model: ToonCrafterModel, prompt: str | torch.Tensor) -> PromptContexts:
    return PromptContexts(
        text=model.text_context(prompt if isinstance(prompt, torch.Tensor) else [prompt]),
        empty_text=model.text_context([""]),
        zero_image=model.unconditional_image_context(1),
    )


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
    model: ToonCrafterModel,
    first: torch.Tensor,
    last: torch.Tensor,
    settings: InterpolationSettings,
    noise: InterpolationNoise,
    *,
    contexts: PromptContexts | None = None,
    image_context: torch.Tensor | None = None,
    sketch_hint: torch.Tensor | None = None,
    sketch_encoder: SketchEncoder | None = None,
    on_stage: Callable[[str, float, str], None] | None = None,
    cancel: CancelToken | None = None,
    trace: SamplerTrace | None = None,
    decode: bool = True,
) -> InterpolationResult:
    """One model pass between two keyframes (1, 3, H, W) in [-1, 1] on the model canvas.

    `contexts` and `image_context` (the first keyframe's image tokens) may be precomputed, e.g.
    while the CLIP towers visit the GPU. `sketch_hint` (1, 1, T, H, W) in [0, 1] steers frames through
    `sketch_encoder` in both guidance branches. `on_stage(stage, fraction, message)` reports "encode", "denoise i/N" and "decode".
    """
    report = on_stage or (lambda stage, fraction, message: None)
    device = model.device
    report("encode", 0.0, "encoding the keyframes")
    if contexts is None:
        contexts = prompt_contexts(model, settings.prompt)
    latents_in = model.encode_keyframes(first, last, noise.posterior, settings.encode_all_frames)
    image = model.image_context(first) if image_context is None else image_context
    cond_context = torch.cat([contexts.text.to(device), image.to(device, contexts.text.dtype)], dim=1)
    uncond_context = torch.cat([contexts.empty_text.to(device), contexts.zero_image.to(device, contexts.text.dtype)], dim=1)
    c_concat = latents_in.c_concat.to(device)
    fs = torch.tensor([settings.fs], dtype=torch.long, device=device)
    hint = sketch_hint.to(device) if sketch_hint is not None else None
    cond = Conditioning(cond_context, c_concat, fs, hint, settings.sketch_strength)
    uncond = Conditioning(uncond_context, c_concat, fs, hint, settings.sketch_strength)

    steps = settings.sampler.steps

    def on_step(i: int, n: int) -> None:
        report(f"denoise {i + 1}/{n}", (i + 1) / n, f"denoising step {i + 1} of {n}")

    def denoise(x: torch.Tensor, t: torch.Tensor, c: Conditioning) -> torch.Tensor:
        return model.predict_v(x, t, c, sketch_encoder)

    report(f"denoise 0/{steps}", 0.0, "denoising")
    latents = model.sampler().sample(
        denoise,
        cond,
        uncond,
        model.config.latent_shape(),
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
        frames = model.decode(latents, latents_in.references)
        report("decode", 1.0, "decoded")
    return InterpolationResult(latents, frames, intermediates)


# ----------------------------------------------------------------------------------------------
# Building


def build_model(config: ToonCrafterConfig | None = None, device: torch.device | str = "meta") -> ToonCrafterModel:
    """The model with uninitialised parameters on `device` ("meta": no memory) to be filled from a
    checkpoint; the schedule buffers are computed on the CPU."""
    with torch.device(device):
        model = ToonCrafterModel(config)
    return model.eval().requires_grad_(False)


def build_sketch_encoder(config: ToonCrafterConfig | None = None, device: torch.device | str = "meta") -> SketchEncoder:
    config = config or ToonCrafterConfig()
    with torch.device(device):
        encoder = SketchEncoder(config.sketch_encoder)
    return encoder.eval().requires_grad_(False)


def build_meta_model(kind: str) -> nn.Module:
    """The full-size model of a manifest kind ('tooncrafter' or 'sketch_encoder') on the meta device."""
    if kind == "tooncrafter":
        return build_model(ToonCrafterConfig(), "meta")
    if kind == "sketch_encoder":
        return build_sketch_encoder(ToonCrafterConfig(), "meta")
    raise ValueError(f"no model for manifest kind {kind!r}")


def state_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(t.shape) for key, t in module.state_dict().items()}


def load_state(module: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Fill a (meta-built) module strictly from an in-memory state dict (tests, golden weights)."""
    module.load_state_dict(dict(state), strict=True, assign=True)
    return module
