"""Export the engine's networks to ONNX and prove the files compute what PyTorch computes.

`python -m export_onnx OUT --checkpoint model.ckpt` (or `--tiny-reference DIR` for the golden tiny
model) writes one ONNX file per ToonCrafter network (UNet, sketch-controlled UNet, sketch encoder, VAE
encoder, dual-reference decoder, Resampler, CLIP text and image towers) plus the RIFE flow network,
and a manifest that `engine.tooncrafter.runtimes` reads. `--check` runs every file in
onnxruntime on random and golden inputs and fails when it strays from PyTorch by more than the
tolerance. See docs/onnx.md.
"""

from .check import CheckResult, check_graph
from .exporter import ExportSettings, export_folder

__all__ = ["CheckResult", "ExportSettings", "check_graph", "export_folder"]
