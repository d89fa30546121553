"""Conformance checks of the diffusion schedule, the DDIM sampler and the interpolation pipeline."""

from __future__ import annotations

import torch

from engine.tooncrafter.interpolation import (
    InterpolationNoise,
    InterpolationSettings,
    PromptContexts,
    interpolate,
    text_context,
    unconditional_image_context,
)
from engine.tooncrafter.networks.config import diffusion_from_reference
from engine.tooncrafter.sampler import RecordedNoise, SamplerSettings, SamplerTrace
from engine.tooncrafter.schedule import ddim_schedule, schedule_buffers

from .models import tiny_networks
from .runner import CaseContext


def check_schedule(ctx: CaseContext) -> dict[str, torch.Tensor]:
    buffers = schedule_buffers(diffusion_from_reference(ctx.config))
    out = dict(buffers)
    for steps in (4, 50):
        ddim = ddim_schedule(buffers["alphas_cumprod"], steps, buffers["scale_arr"])
        out[f"ddim{steps}_timesteps"] = ddim.timesteps
        out[f"ddim{steps}_alphas"] = ddim.alphas
        out[f"ddim{steps}_alphas_prev"] = ddim.alphas_prev
        out[f"ddim{steps}_sigmas_eta1"] = ddim.sigmas(1.0)
        out[f"ddim{steps}_scale_arr"] = ddim.scale_arr
        out[f"ddim{steps}_scale_arr_prev"] = ddim.scale_arr_prev
    return out


def run_sampling_case(
    ctx: CaseContext,
    with_sketch: bool = False,
    decode: bool = True,
    encode_all_frames: bool = True,
    batch_cond_uncond: bool = False,
) -> dict[str, torch.Tensor]:
    """The whole interpolation pipeline on the case's keyframes and recorded noises.

    The defaults are parity; the two lean settings can be switched on to measure what they change.
    """
    net = tiny_networks(ctx)
    p, i = ctx.params, ctx.inputs
    settings = InterpolationSettings(
        sampler=SamplerSettings(
            steps=int(p["ddim_steps"]),
            eta=float(p["ddim_eta"]),
            cfg_scale=float(p["unconditional_guidance_scale"]),
            guidance_rescale=float(p.get("sampler_kwargs_seen", {}).get("guidance_rescale", 0.7)),
            batch_cond_uncond=batch_cond_uncond,
        ),
        fs=int(p["fs"]),
        prompt=p["prompt"],
        sketch_strength=float(p.get("control_scale", 0.0)),
        encode_all_frames=encode_all_frames,
    )
    contexts = PromptContexts(
        text=text_context(net, i["tokens"]),
        empty_text=text_context(net, [""]),
        zero_image=unconditional_image_context(net, 1),
    )
    noise = InterpolationNoise(i["posterior_noise"], RecordedNoise(i["x_T"], i["step_noise"]))
    trace = SamplerTrace()
    result = interpolate(
        net,
        i["image1"],
        i["image2"],
        settings,
        noise,
        contexts=contexts,
        sketch_hint=i["sketch"] if with_sketch else None,
        trace=trace,
        decode=decode,
    )
    out = {"latents": result.latents, **result.intermediates}
    if decode:
        out["frames"] = result.frames
    steps = trace.steps
    out["ddim_timesteps"] = torch.tensor(sorted(s.t for s in steps), dtype=torch.int64)
    out["step_t"] = torch.tensor([[s.t] for s in steps], dtype=torch.int64)
    for name in ("x_in", "v_cond", "v_uncond", "pred_x0", "x_out"):
        out[f"step_{name}"] = torch.stack([getattr(s, name) for s in steps])
    return out


def check_sample_ddim(ctx: CaseContext) -> dict[str, torch.Tensor]:
    wanted = set(ctx.case.get("outputs", {})) | set(ctx.case.get("intermediates") or {})
    out = run_sampling_case(ctx, decode="frames" in wanted)
    return {name: value for name, value in out.items() if name in wanted}


def check_sample_ddim_sketch(ctx: CaseContext) -> dict[str, torch.Tensor]:
    out = run_sampling_case(ctx, with_sketch=True, decode=False)
    return {"latents": out["latents"]}


CASES = {
    "schedule": check_schedule,
    "sample_ddim_eta0": check_sample_ddim,
    "sample_ddim_eta1": check_sample_ddim,
    "sample_ddim_sketch": check_sample_ddim_sketch,
}
