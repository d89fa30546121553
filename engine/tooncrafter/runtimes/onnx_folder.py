"""The ONNX export folder: the one home of its contract (file names, tensor names, manifest format).

`inbetween models export-onnx` (or `python -m export_onnx`) writes a folder with one ONNX file per
network and a manifest (`onnx_export.json`, written last: a folder with a manifest is complete).
The exporter writes what this module names and the ONNX runtime reads it back through it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ...api import EngineError
from ..networks.autoencoder import DualRefAutoencoderConfig
from ..networks.config import ToonCrafterConfig
from ..networks.resampler import ResamplerConfig
from ..networks.sketch_encoder import SketchEncoderConfig
from ..networks.unet import UNetConfig
from ..schedule import DiffusionConfig

#: The manifest every export folder carries.
MANIFEST_NAME = "onnx_export.json"
#: The entries of an unfinished export (removed when the manifest is written).
PARTIAL_NAME = "onnx_export.partial.json"
#: Bumped whenever a graph's tensors or the manifest change meaning; older folders are refused.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class GraphInterface:
    """File and tensor names of one exported network (inputs in call order)."""

    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def control_names(count: int) -> tuple[str, ...]:
    return tuple(f"control_{i:02d}" for i in range(count))


def graph_interfaces(num_control: int, num_hidden: int) -> dict[str, GraphInterface]:
    """The contract between exporter and runtime. `num_control`: sketch residuals (13 for the released
    model); `num_hidden`: VAE feature maps handed to the dual-reference decoder (5)."""
    hidden = tuple(f"hidden_{i}" for i in range(num_hidden))
    refs = tuple(f"ref_{i}" for i in range(num_hidden))
    controls = control_names(num_control)
    return {
        "unet": GraphInterface("unet.onnx", ("x", "timesteps", "context", "fs"), ("v",)),
        "unet_sketch": GraphInterface("unet_sketch.onnx", ("x", "timesteps", "context", "fs", *controls), ("v",)),
        "sketch_encoder": GraphInterface("sketch_encoder.onnx", ("x", "hint", "timesteps", "context"), controls),
        "vae_encoder": GraphInterface("vae_encoder.onnx", ("frames",), ("mean", "logvar", *hidden)),
        "vae_decoder": GraphInterface("vae_decoder.onnx", ("z", *refs), ("frames",)),
        "resampler": GraphInterface("resampler.onnx", ("clip_tokens",), ("image_context",)),
        "clip_text": GraphInterface("clip_text.onnx", ("tokens",), ("context",)),
        "clip_image": GraphInterface("clip_image.onnx", ("pixels",), ("clip_tokens",)),
    }

#: Networks the interpolation path cannot run without.
REQUIRED_GRAPHS = ("unet", "vae_encoder", "vae_decoder", "resampler", "clip_text", "clip_image")


class OnnxExportError(EngineError):
    """An export folder that cannot be used; the message names the folder and what is wrong."""


# ----------------------------------------------------------------------------------------------
# The configuration stored in the manifest


def config_to_dict(config: ToonCrafterConfig) -> dict[str, Any]:
    """A JSON-able form of the whole model configuration (read back by `config_from_dict`)."""
    return asdict(config)


def config_from_dict(data: Mapping[str, Any]) -> ToonCrafterConfig:
    top = {f.name for f in fields(ToonCrafterConfig)}
    unknown = set(data) - top
    if unknown:
        raise ValueError(f"unknown model settings {sorted(unknown)}")
    diffusion = DiffusionConfig(**data["diffusion"])
    return ToonCrafterConfig(
        unet=UNetConfig.from_dict(data["unet"]),
        first_stage=DualRefAutoencoderConfig.from_dict(data["first_stage"]),
        open_clip=data["open_clip"],
        image_proj=ResamplerConfig.from_dict(data["image_proj"]),
        diffusion=diffusion,
        sketch_encoder=SketchEncoderConfig.from_dict(data["sketch_encoder"]),
        frames=data["frames"],
        width=data["width"],
        height=data["height"],
        name=data["name"],
    )


def num_control_residuals(config: ToonCrafterConfig) -> int:
    return config.sketch_encoder.num_residuals


def num_hidden_maps(config: ToonCrafterConfig) -> int:
    return len(config.first_stage.ch_mult) + 1



# ----------------------------------------------------------------------------------------------
# Reading a folder


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of an export folder, checked for existence and format version."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OnnxExportError(f"ONNX export folder {folder} does not exist (run `inbetween models export-onnx`)")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise OnnxExportError(f"{folder} is not an ONNX export folder: {MANIFEST_NAME} is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OnnxExportError(f"{path} is unreadable: {exc}") from None
    version = manifest.get("format")
    if version != FORMAT_VERSION:
        raise OnnxExportError(
            f"{path} has export format {version!r}; this engine reads format {FORMAT_VERSION}: export the model again"
        )
    return manifest


# ----------------------------------------------------------------------------------------------
# Exports in the model store: <store>/onnx/<weights file stem>-<precision>/


#: Sub-folder of the model store holding ONNX exports (and the TensorRT engine cache).
STORE_SUBDIR = "onnx"
EXPORT_PRECISIONS = ("fp16", "fp32")


def store_export_folder(store_root: Path, weights: Path, precision: str) -> Path:
    """Where `inbetween models export-onnx` puts the export of `weights` in `precision`."""
    return Path(store_root) / STORE_SUBDIR / f"{weights.name.split('.')[0]}-{precision}"


def trt_cache_folder(store_root: Path) -> Path:
    """TensorRT's engine cache, next to the exports (engines are built once per GPU and shape)."""
    return Path(store_root) / STORE_SUBDIR / "tensorrt-cache"


def store_exports(store_root: Path) -> list[Path]:
    """Complete export folders in the store (a manifest is written last, so these are whole)."""
    base = Path(store_root) / STORE_SUBDIR
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if is_export_folder(p))


def is_export_folder(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST_NAME).is_file()


def precision_order(precision: str, gpu: bool) -> tuple[str, ...]:
    """Which export precisions to look for, best first, for a precision setting."""
    if precision in EXPORT_PRECISIONS:
        return (precision,)
    if precision == "bf16":
        return ("fp16",) if gpu else ("fp32",)
    return ("fp16", "fp32") if gpu else ("fp32", "fp16")
