"""Configurations of the whole ToonCrafter model: the released 512×320 one and tiny test models.

`ToonCrafterConfig()` is the released interpolation model (configs/inference_512_v1.0.yaml of the
original); `tiny_from_reference(config_json)` rebuilds a tiny golden model from a reference folder's
`config.json`, so the same code path runs the conformance cases and fast end-to-end tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..schedule import DiffusionConfig
from .autoencoder import DualRefAutoencoderConfig
from .clip_towers import DEFAULT_ARCHITECTURE
from .resampler import ResamplerConfig
from .sketch_encoder import SketchEncoderConfig
from .unet import UNetConfig

#: The motion (fs) value the official scripts and demo pass.
OFFICIAL_FS = 10


@dataclass(frozen=True)
class ToonCrafterConfig:
    """Every hyperparameter the interpolation model needs; defaults are the released model's."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    first_stage: DualRefAutoencoderConfig = field(default_factory=DualRefAutoencoderConfig)
    #: open_clip architecture name or config dict of both CLIP towers.
    open_clip: Any = DEFAULT_ARCHITECTURE
    image_proj: ResamplerConfig = field(default_factory=ResamplerConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    sketch_encoder: SketchEncoderConfig = field(default_factory=SketchEncoderConfig)
    #: Frames per model pass (keyframes included) and the pixel canvas (width × height).
    frames: int = 16
    width: int = 512
    height: int = 320
    name: str = "tooncrafter_512_interp"

    @property
    def latent_downscale(self) -> int:
        return 2 ** (len(self.first_stage.ch_mult) - 1)

    def latent_shape(self, batch: int = 1) -> tuple[int, int, int, int, int]:
        """(B, 4, T, h, w) of one pass."""
        d = self.latent_downscale
        return (batch, self.unet.out_channels, self.frames, self.height // d, self.width // d)

    @property
    def is_official(self) -> bool:
        """True for the released model's architecture (the one the bundled manifests describe)."""
        return self == ToonCrafterConfig()


def full_size_config() -> ToonCrafterConfig:
    return ToonCrafterConfig()


def diffusion_from_reference(config_json: Mapping[str, Any]) -> DiffusionConfig:
    """The diffusion settings of a reference folder's `config.json` (official values by default)."""
    d = config_json.get("diffusion", {})
    return DiffusionConfig(
        timesteps=d.get("timesteps", 1000),
        linear_start=d.get("linear_start", 0.00085),
        linear_end=d.get("linear_end", 0.012),
        rescale_betas_zero_snr=d.get("rescale_betas_zero_snr", True),
        parameterization=d.get("parameterization", "v"),
        use_dynamic_rescale=d.get("use_dynamic_rescale", True),
        base_scale=d.get("base_scale", 0.7),
        turning_step=d.get("turning_step", 400),
        scale_factor=d.get("scale_factor", 0.18215),
    )


def tiny_from_reference(config_json: Mapping[str, Any]) -> ToonCrafterConfig:
    """The tiny golden model described by a reference folder's `config.json`."""
    d = config_json.get("diffusion", {})
    diffusion = diffusion_from_reference(config_json)
    overrides = {"scale_factor": diffusion.scale_factor}
    if d.get("temporal_length"):
        overrides["decode_chunk_frames"] = d["temporal_length"]
    video = config_json["video"]
    unet = UNetConfig.from_dict(config_json["unet"])
    if "text_context_len" in d or "image_tokens_per_frame" in d:
        unet = UNetConfig.from_dict(
            {
                **config_json["unet"],
                "text_context_len": d.get("text_context_len", unet.text_context_len),
                "image_tokens_per_frame": d.get("image_tokens_per_frame", unet.image_tokens_per_frame),
            }
        )
    return ToonCrafterConfig(
        unet=unet,
        first_stage=DualRefAutoencoderConfig.from_dict(config_json["first_stage"], **overrides),
        open_clip=dict(config_json["open_clip_model_config"]),
        image_proj=ResamplerConfig.from_dict(config_json["image_proj"]),
        diffusion=diffusion,
        sketch_encoder=SketchEncoderConfig.from_dict(config_json["sketch_controlnet"]),
        frames=video["frames"],
        width=video["width"],
        height=video["height"],
        name=f"tiny ({config_json.get('set', 'reference')})",
    )
