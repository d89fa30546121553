"""Conformance checks of the video UNet and the sketch encoder (cases unet, unet_context_broadcast,
unet_with_sketch of a golden folder such as shared/reference/tiny_a)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from engine.tooncrafter.networks.sketch_encoder import SketchEncoder, SketchEncoderConfig
from engine.tooncrafter.networks.unet import UNET_KEY_PREFIX, ToonCrafterUNet, UNetConfig

from .runner import CaseContext


def _unet(ctx: CaseContext) -> ToonCrafterUNet:
    """The folder's tiny UNet, built and loaded strictly once per folder."""
    if "unet" not in ctx.cache:
        model = ToonCrafterUNet(UNetConfig.from_dict(ctx.config["unet"]))
        model.load_state_dict(unet_weights(ctx.weights), strict=True)
        ctx.cache["unet"] = model.eval()
    return ctx.cache["unet"]


def _sketch_encoder(ctx: CaseContext) -> SketchEncoder:
    if "sketch_encoder" not in ctx.cache:
        model = SketchEncoder(SketchEncoderConfig.from_dict(ctx.config["sketch_controlnet"]))
        model.load_state_dict(dict(ctx.sketch_weights), strict=True)
        ctx.cache["sketch_encoder"] = model.eval()
    return ctx.cache["sketch_encoder"]


def unet_weights(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The UNet's entries of a full ToonCrafter state dict, with the checkpoint prefix removed."""
    return {k[len(UNET_KEY_PREFIX) :]: v for k, v in weights.items() if k.startswith(UNET_KEY_PREFIX)}


def _unet_input(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Noisy latent channels first, then the keyframe conditioning channels."""
    return torch.cat([inputs["x_noisy"], inputs["c_concat"]], dim=1)


def check_unet(ctx: CaseContext) -> dict[str, torch.Tensor]:
    i = ctx.inputs
    v = _unet(ctx)(_unet_input(i), i["timesteps"], i["context"], i["fs"])
    return {"model_output": v}


def check_unet_context_broadcast(ctx: CaseContext) -> dict[str, torch.Tensor]:
    i = ctx.inputs
    unet = _unet(ctx)
    x = _unet_input(i)
    return {
        "model_output": unet(x, i["timesteps"], i["context"], i["fs"]),
        "model_output_fs_none": unet(x, i["timesteps"], i["context"], None),
    }


def check_unet_with_sketch(ctx: CaseContext) -> dict[str, torch.Tensor]:
    i = ctx.inputs
    unet, encoder = _unet(ctx), _sketch_encoder(ctx)
    x = _unet_input(i)
    residuals = encoder(i["x_noisy"], i["sketch"], i["timesteps"], i["context"])
    scale = float(ctx.params["control_scale"])
    out: dict[str, torch.Tensor] = {f"control_{n:02d}": r for n, r in enumerate(residuals)}
    out["num_control_residuals"] = torch.tensor(len(residuals), dtype=torch.int64)
    out["model_output"] = unet(x, i["timesteps"], i["context"], i["fs"], control=[r * scale for r in residuals])
    out["model_output_without_control"] = unet(x, i["timesteps"], i["context"], i["fs"])
    return out


CASES = {
    "unet": check_unet,
    "unet_context_broadcast": check_unet_context_broadcast,
    "unet_with_sketch": check_unet_with_sketch,
}
