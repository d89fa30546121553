"""The case folder's tiny model on the runtime under test, behind the model contract.

Checks call only `tiny_networks(ctx)` (a `ToonCrafterNetworks`) and the shared maths of
engine/tooncrafter/interpolation.py, so every model case runs unchanged on PyTorch and on ONNX
Runtime. On "onnx" the tiny model is exported (fp32, every graph the folder has weights for) once
per run and opened on the CPU provider (or the best one this onnxruntime has).
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.tooncrafter.model import build_model, build_sketch_encoder, load_state
from engine.tooncrafter.networks.config import tiny_from_reference
from engine.tooncrafter.runtimes.contract import ToonCrafterNetworks

from .runner import CaseContext

#: Export parts of a tiny folder (sketch only when the folder has sketch weights).
TINY_PARTS = ("clip", "resampler", "vae", "sketch", "unet")


def tiny_networks(ctx: CaseContext) -> ToonCrafterNetworks:
    key = f"networks.{ctx.runtime}"
    if key not in ctx.cache:
        ctx.cache[key] = _onnx_networks(ctx) if ctx.runtime == "onnx" else _torch_networks(ctx)
    return ctx.cache[key]


def _torch_networks(ctx: CaseContext) -> ToonCrafterNetworks:
    from engine.tooncrafter.runtimes.torch_runtime import TorchNetworks

    config = tiny_from_reference(ctx.config)
    model = load_state(build_model(config), ctx.weights)
    sketch = None
    if ctx.folder is None or (ctx.folder / "sketch_weights.safetensors").is_file():
        sketch = load_state(build_sketch_encoder(config), ctx.sketch_weights)
    return TorchNetworks(model, sketch)


def onnx_export_folder(ctx: CaseContext) -> Path:
    """The tiny model's fp32 export for this run (made on first use, reused when already there)."""
    from engine.tooncrafter.runtimes.onnx_folder import config_to_dict, is_export_folder
    from export_onnx.exporter import ExportSettings, export_folder, graphs_for
    from export_onnx.sources import from_tiny_reference

    folder = ctx.cache["onnx.export_dir"] / "tiny"
    config = json.loads(json.dumps(config_to_dict(tiny_from_reference(ctx.config))))
    if is_export_folder(folder):
        manifest = json.loads((folder / "onnx_export.json").read_text(encoding="utf-8"))
        if manifest.get("config") == config and manifest.get("precision") == "fp32":
            return folder
    echo = ctx.cache.get("onnx.echo", print)
    source = from_tiny_reference(ctx.folder, "fp32")
    parts = [p for p in TINY_PARTS if p != "sketch" or source.sketch_encoder is not None]
    echo(f"exporting the tiny model to ONNX (fp32) in {folder} ...")
    export_folder(folder, source, None, graphs_for(parts), ExportSettings(), force=True, report=lambda line: None)
    return folder


def _onnx_networks(ctx: CaseContext) -> ToonCrafterNetworks:
    from engine.tooncrafter.runtimes.onnx_runtime import OnnxNetworks
    from engine.tooncrafter.runtimes.onnx_sessions import plan_providers

    return OnnxNetworks(onnx_export_folder(ctx), plan_providers("auto", "fp32"))


def unet_for_context_length(ctx: CaseContext, length: int):
    """A UNet call `(x, timesteps, context, fs)` for a context of `length` tokens.

    The product's export fixes the context at 77 + 16·T tokens; another length (the whole context
    broadcast to every frame) is a different graph, so on ONNX it is exported for the case.
    """
    net = tiny_networks(ctx)
    if ctx.runtime != "onnx" or length == net.context_length:
        return net.unet
    key = f"onnx.unet_context_{length}"
    if key not in ctx.cache:
        ctx.cache[key] = _export_unet_for_context(ctx, net, length)
    return ctx.cache[key]


def _export_unet_for_context(ctx: CaseContext, net, length: int):
    import torch

    from engine.tooncrafter.runtimes.onnx_folder import GraphInterface
    from engine.tooncrafter.runtimes.onnx_sessions import GraphSession
    from export_onnx.exporter import ExportSettings, trace_graph
    from export_onnx.graphs import EXAMPLE_LATENT, GraphSpec, UNetGraph
    from export_onnx.sources import from_tiny_reference

    config = net.config
    unet = from_tiny_reference(ctx.folder, "fp32").model.unet
    interface = GraphInterface(f"unet_context_{length}.onnx", ("x", "timesteps", "context", "fs"), ("v",))
    generator = torch.Generator().manual_seed(0)
    example = (
        torch.randn((2, config.unet.in_channels, config.frames, *EXAMPLE_LATENT), generator=generator),
        torch.tensor([999, 519]),
        torch.randn((2, length, config.unet.context_dim), generator=generator),
        torch.tensor([10, 24]),
    )
    axes = {name: {0: "batch"} for name in interface.inputs}
    axes["x"] = {0: "batch", 3: "height", 4: "width"}
    axes["v"] = {0: "batch", 3: "height", 4: "width"}
    spec = GraphSpec("unet", interface, UNetGraph(unet), example, axes, [])
    path = ctx.cache["onnx.export_dir"] / interface.file
    trace_graph(spec, path, ExportSettings())
    session = GraphSession(path, interface, net.plan, "fp32", net.device)

    def call(x, timesteps, context, fs=None, control=None):
        if fs is None:
            fs = torch.full((x.shape[0],), config.unet.default_fs, dtype=torch.long)
        return session.run(x=x, timesteps=timesteps.reshape(-1).expand(x.shape[0]), context=context, fs=fs)[0]

    return call
