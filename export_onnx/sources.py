"""Where the networks to export come from: a real checkpoint, the golden tiny model, RIFE's weights.

Real checkpoints go through the engine's own loader (manifest check, no pickled code, tensor by
tensor), so an export is made from exactly what the PyTorch backend would run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.tooncrafter.model import ToonCrafterModel
from engine.tooncrafter.networks.config import ToonCrafterConfig, tiny_from_reference
from engine.tooncrafter.networks.sketch_encoder import SketchEncoder

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}


@dataclass
class ToonCrafterSource:
    """The loaded ToonCrafter networks plus what the manifest records about their origin.

    `golden` is the reference folder's cases.safetensors (tiny model only): the check feeds its inputs.
    Parts are dropped with `release` once exported and checked, so a full-size export never holds
    two copies of the big networks.
    """

    model: ToonCrafterModel
    sketch_encoder: SketchEncoder | None
    config: ToonCrafterConfig
    precision: str
    description: dict[str, Any]
    golden: dict[str, torch.Tensor] | None = None
    golden_cases: dict[str, Any] = field(default_factory=dict)

    @property
    def dtype(self) -> torch.dtype:
        return PRECISIONS[self.precision]

    def release(self, part: str) -> None:
        """Free a submodule of the model (`model`, `first_stage_model`, ...) or the sketch encoder."""
        if part == "sketch_encoder":
            self.sketch_encoder = None
        else:
            setattr(self.model, part, None)


def _file_entry(path: Path) -> dict[str, Any]:
    return {"path": str(path), "bytes": path.stat().st_size}


def from_checkpoint(
    checkpoint: str | Path,
    clip: str | Path | None = None,
    sketch_checkpoint: str | Path | None = None,
    precision: str = "fp32",
    config: ToonCrafterConfig | None = None,
) -> ToonCrafterSource:
    """The released model from `model.ckpt` (or the fp16 safetensors plus an OpenCLIP file), or the
    weights of another architecture described by `config`."""
    from engine.tooncrafter.weights.checkpoint import load_sketch_encoder, load_tooncrafter

    config = config or ToonCrafterConfig()
    dtype = PRECISIONS[precision]
    model = load_tooncrafter(checkpoint, clip, config, dtype, "cpu")
    sketch = load_sketch_encoder(sketch_checkpoint, config, dtype, "cpu") if sketch_checkpoint else None
    description = {"checkpoint": _file_entry(Path(checkpoint))}
    if clip:
        description["clip"] = _file_entry(Path(clip))
    if sketch_checkpoint:
        description["sketch_checkpoint"] = _file_entry(Path(sketch_checkpoint))
    return ToonCrafterSource(model.eval(), sketch, config, precision, description)


def from_tiny_reference(folder: str | Path, precision: str = "fp32") -> ToonCrafterSource:
    """The golden tiny model of a reference folder (config.json, weights, sketch weights, cases)."""
    from safetensors.torch import load_file

    from engine.tooncrafter.model import build_model, build_sketch_encoder, load_state

    folder = Path(folder)
    for name in ("config.json", "weights.safetensors"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a reference folder: {name} is missing")
    config = tiny_from_reference(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    dtype = PRECISIONS[precision]
    model = load_state(build_model(config), load_file(str(folder / "weights.safetensors")))
    model.to(dtype)
    sketch = None
    if (folder / "sketch_weights.safetensors").is_file():
        sketch = load_state(build_sketch_encoder(config), load_file(str(folder / "sketch_weights.safetensors")))
        sketch.to(dtype)
    golden = cases = None
    if (folder / "cases.safetensors").is_file() and (folder / "cases.json").is_file():
        golden = load_file(str(folder / "cases.safetensors"))
        cases = json.loads((folder / "cases.json").read_text(encoding="utf-8"))["cases"]
    description = {"tiny_reference": str(folder)}
    return ToonCrafterSource(model.eval(), sketch, config, precision, description, golden, cases or {})


@dataclass
class RifeSource:
    network: nn.Module
    variant: str
    description: dict[str, Any]


def rife_source(variant: str | None = None) -> RifeSource:
    """The packaged RIFE weights in their network (default variant unless named)."""
    from engine.rife.variants import DEFAULT_VARIANT, VARIANTS
    from engine.rife.weights import load_into

    name = variant or DEFAULT_VARIANT
    if name not in VARIANTS:
        raise ValueError(f"unknown RIFE variant {name!r}: choose one of {', '.join(VARIANTS)}")
    chosen = VARIANTS[name]
    if not chosen.takes_tau:
        raise ValueError(f"RIFE {name} draws midpoints only; the ONNX export covers the variants that take tau")
    network = chosen.build().eval()
    path = load_into(network, chosen.weights)
    description = {"variant": name, "weights": str(path), "sha256": chosen.weights.sha256}
    return RifeSource(network.requires_grad_(False), name, description)
