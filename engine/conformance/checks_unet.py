"""Conformance checks of the video UNet and the sketch encoder (cases unet, unet_context_broadcast,
unet_with_sketch of a golden folder such as shared/reference/tiny_a), through the model contract."""

from __future__ import annotations

import torch

from .models import tiny_networks, unet_for_context_length
from .runner import CaseContext


def _unet_input(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Noisy latent channels first, then the keyframe conditioning channels."""
    return torch.cat([inputs["x_noisy"], inputs["c_concat"]], dim=1)


def check_unet(ctx: CaseContext) -> dict[str, torch.Tensor]:
    i = ctx.inputs
    v = tiny_networks(ctx).unet(_unet_input(i), i["timesteps"], i["context"], i["fs"])
    return {"model_output": v}


def check_unet_context_broadcast(ctx: CaseContext) -> dict[str, torch.Tensor]:
    i = ctx.inputs
    unet = unet_for_context_length(ctx, i["context"].shape[1])
    x = _unet_input(i)
    return {
        "model_output": unet(x, i["timesteps"], i["context"], i["fs"]),
        "model_output_fs_none": unet(x, i["timesteps"], i["context"], None),
    }


def check_unet_with_sketch(ctx: CaseContext) -> dict[str, torch.Tensor]:
    i = ctx.inputs
    net = tiny_networks(ctx)
    x = _unet_input(i)
    residuals = net.sketch_residuals(i["x_noisy"], i["sketch"], i["timesteps"], i["context"])
    scale = float(ctx.params["control_scale"])
    out: dict[str, torch.Tensor] = {f"control_{n:02d}": r for n, r in enumerate(residuals)}
    out["num_control_residuals"] = torch.tensor(len(residuals), dtype=torch.int64)
    out["model_output"] = net.unet(x, i["timesteps"], i["context"], i["fs"], control=[r * scale for r in residuals])
    out["model_output_without_control"] = net.unet(x, i["timesteps"], i["context"], i["fs"])
    return out


CASES = {
    "unet": check_unet,
    "unet_context_broadcast": check_unet_context_broadcast,
    "unet_with_sketch": check_unet_with_sketch,
}
