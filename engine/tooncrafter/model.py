"""The whole ToonCrafter network under the official checkpoint's names, and how to build it.

`ToonCrafterModel` holds the parts under the official checkpoint's names, so its state_dict keys are
exactly those of `model.ckpt`: `model.diffusion_model` (video UNet), `first_stage_model` (VAE with the
dual-reference decoder), `cond_stage_model` (OpenCLIP text tower), `embedder` (OpenCLIP image tower),
`image_proj_model` (Resampler) and the 13 schedule buffers. It is what the weights are loaded into
and what the ONNX export traces; running it is the runtimes' job (runtimes/torch_runtime.py answers
the model contract on it, interpolation.py holds the pipeline maths).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .networks.autoencoder import DualRefAutoencoder
from .networks.clip_towers import CLIPImageEncoder, CLIPTextEncoder
from .networks.config import ToonCrafterConfig
from .networks.resampler import Resampler
from .networks.sketch_encoder import SketchEncoder
from .networks.unet import ToonCrafterUNet
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
        """Where the UNet runs."""
        return self.unet.out[2].weight.device

    def cast_weights(self, dtype: torch.dtype) -> "ToonCrafterModel":
        """Convert every part to `dtype`; the diffusion schedule stays float32 as the sampler needs."""
        for part in (self.model, self.first_stage_model, self.cond_stage_model, self.embedder, self.image_proj_model):
            part.to(dtype)
        return self


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
