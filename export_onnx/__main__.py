"""`python -m export_onnx OUT ...`: export the engine's networks to ONNX, optionally checking them.

Examples:
  python -m export_onnx out/onnx --checkpoint ~/models/model.ckpt --sketch-checkpoint sketch_encoder.ckpt --fp16
  python -m export_onnx out/tiny --tiny-reference ../shared/reference/tiny_a --check
  python -m export_onnx out/tiny --tiny-reference ../shared/reference/tiny_a --check-only
Exit status: 0 when everything was exported (and every check passed), 1 when a check failed,
2 for unusable arguments, weights or folders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .exporter import EXPORTERS, GRAPH_ORDER, ExportError, ExportSettings, export_folder, graphs_for
from .graphs import PARTS


def parse_size(text: str) -> tuple[int, int]:
    """'512x320' (width x height) -> (height, width)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x320 (width x height), got {text!r}") from None
    return height, width


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export_onnx", description="Export ToonCrafter and RIFE to ONNX (see docs/onnx.md)."
    )
    parser.add_argument("out", type=Path, help="folder to write (or to check with --check-only)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", type=Path, help="ToonCrafter weights: model.ckpt or its safetensors repackaging")
    source.add_argument("--tiny-reference", type=Path, help="a reference folder (config.json, weights, cases) for tests")
    parser.add_argument("--clip", type=Path, help="OpenCLIP ViT-H-14 file, for a checkpoint without CLIP towers (fp16 pruned)")
    parser.add_argument(
        "--sketch-checkpoint", type=Path, help="sketch_encoder.ckpt: also export the sketch encoder and the controlled UNet"
    )
    parser.add_argument(
        "--parts", default=None,
        help=f"comma-separated subset of {','.join(PARTS)} (default: all the given weights allow)",
    )
    parser.add_argument("--fp16", action="store_true", help="float16 weights (for the CUDA provider); I/O stays float32")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (at least 17; default 18)")
    parser.add_argument("--exporter", choices=EXPORTERS, default="torchscript", help="torch.onnx exporter for the ToonCrafter graphs")
    parser.add_argument("--rife-size", type=parse_size, default=(320, 512), help="frame size of the RIFE export, WxH (default 512x320)")
    parser.add_argument("--check", action="store_true", help="run every exported file in onnxruntime against PyTorch")
    parser.add_argument("--check-only", action="store_true", help="check an existing export folder, export nothing")
    parser.add_argument("--tolerance", type=float, default=None, help="override the check's max abs difference")
    parser.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto", help="onnxruntime provider for the check")
    parser.add_argument("--reference-device", default="cpu", help="torch device of the check's PyTorch side (cpu, cuda)")
    parser.add_argument("--force", action="store_true", help="replace an existing export in OUT")
    return parser


def default_parts(args: argparse.Namespace) -> list[str]:
    has_toon = args.checkpoint is not None or args.tiny_reference is not None
    parts = ["clip", "resampler", "vae", "unet"] if has_toon else []
    sketch = args.sketch_checkpoint is not None or (
        args.tiny_reference is not None and (args.tiny_reference / "sketch_weights.safetensors").is_file()
    )
    if sketch:
        parts.insert(3, "sketch")
    return parts + ["rife"]


def providers_for(choice: str) -> tuple[str, ...] | None:
    if choice == "cpu":
        return ("CPUExecutionProvider",)
    if choice == "cuda":
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from engine.api import EngineError

    from .sources import from_checkpoint, from_tiny_reference, rife_source

    try:
        parts = args.parts.split(",") if args.parts else default_parts(args)
        graphs = graphs_for([p.strip() for p in parts if p.strip()])
        if args.check_only:
            from engine.tooncrafter.runtimes.onnx_folder import read_manifest

            manifest = read_manifest(args.out)
            if not args.parts:  # check what the folder holds
                graphs = [g for g in GRAPH_ORDER if g in manifest.get("graphs", {})]
        settings = ExportSettings(
            opset=args.opset,
            exporter=args.exporter,
            check=args.check or args.check_only,
            providers=providers_for(args.provider),
            tolerance=args.tolerance,
            reference_device=args.reference_device,
        )
        precision = "fp16" if args.fp16 else "fp32"
        if args.check_only:
            precision = manifest.get("precision", precision)
        toon = None
        if any(g != "rife" for g in graphs):
            if args.checkpoint is not None:
                toon = from_checkpoint(args.checkpoint, args.clip, args.sketch_checkpoint, precision)
            elif args.tiny_reference is not None:
                toon = from_tiny_reference(args.tiny_reference, precision)
            else:
                raise ExportError("give --checkpoint or --tiny-reference (or --parts rife for RIFE alone)")
            if toon.sketch_encoder is None and "sketch_encoder" in graphs:
                raise ExportError("the sketch part needs --sketch-checkpoint")
        rife = rife_source() if "rife" in graphs else None
        rife_size = args.rife_size
        if args.check_only and "rife" in graphs:
            rife_size = tuple(manifest["graphs"]["rife"]["size"])
        _, results = export_folder(
            args.out, toon, rife, graphs, settings, rife_size=rife_size, force=args.force, skip_export=args.check_only
        )
    except (ExportError, EngineError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in results if not r.passed]
    if settings.check:
        print(f"{len(results) - len(failed)}/{len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
