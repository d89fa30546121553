"""`inbetween-train` / `python -m training`: rectify, decoder and sketch jobs from the command line.

One process: `inbetween-train rectify --init model.ckpt --data clips/ --out runs/toon`
Several GPUs or nodes: `torchrun --nproc-per-node 8 -m training rectify ...` (add `--fsdp` to shard).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .settings import DEFAULT_LR, JOBS, OPTIMIZERS, PRECISIONS, TrainSettings

HELP = {
    "rectify": "toon rectification: train the UNet's spatial layers and the image-context projector, temporal layers frozen",
    "decoder": "dual-reference 3D decoder: L1 + LPIPS + adversarial, encoder frozen",
    "sketch": "sketch encoder (ControlNet) on bisection-selected sketches, denoiser frozen",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inbetween-train", description="Train ToonCrafter's parts on your own footage.")
    sub = parser.add_subparsers(dest="job", required=True)
    for job in JOBS:
        p = sub.add_parser(job, help=HELP[job], description=HELP[job])
        p.add_argument("--data", type=Path, required=True, help="folder of clips (videos or PNG folders) or a curation Parquet manifest")
        p.add_argument("--out", type=Path, required=True, help="run folder: weights, checkpoints/, logs/")
        p.add_argument("--init", type=Path, help="starting ToonCrafter checkpoint (official layout: model.ckpt or .safetensors)")
        p.add_argument("--clip", type=Path, help="OpenCLIP ViT-H-14 file when --init is a pruned checkpoint")
        p.add_argument("--model-config", type=Path, help="a reference config.json (tiny test models); default: the released model")
        p.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
        p.add_argument("--lr", type=float, help=f"learning rate (default: the paper's, {DEFAULT_LR[job]:g})")
        p.add_argument("--batch", type=int, default=32, help="global batch per step (default 32, the paper's)")
        p.add_argument("--micro-batch", type=int, default=1, help="clips per process per forward pass (default 1)")
        p.add_argument("--width", type=int, help="training width (default: the model's canvas)")
        p.add_argument("--height", type=int, help="training height (default: the model's canvas)")
        p.add_argument("--stride-min", type=int, default=1, help="smallest frame stride (default 1)")
        p.add_argument("--stride-max", type=int, default=4, help="largest frame stride (default 4)")
        p.add_argument("--seed", type=int, default=20241203)
        p.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK when available), cpu, cuda, cuda:N")
        p.add_argument("--precision", choices=PRECISIONS, default="auto", help="auto: bf16 autocast on GPUs that have it")
        p.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in backward (less memory)")
        p.add_argument("--frozen-dtype", choices=("fp32", "bf16"), default="fp32",
                       help="bf16: hold the networks this job only runs forward (VAE, CLIP, ...) in bf16 to save memory")
        p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="adamw8bit needs bitsandbytes")
        p.add_argument("--warmup-steps", type=int, default=0)
        p.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip (0: off)")
        p.add_argument("--ema-decay", type=float, default=0.9999, help="EMA of the trained weights (0: off)")
        p.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps")
        p.add_argument("--keep-checkpoints", type=int, default=2)
        p.add_argument("--log-every", type=int, default=1)
        p.add_argument("--resume", nargs="?", const="auto", help="resume from a checkpoint folder (no value: the newest in --out)")
        p.add_argument("--workers", type=int, default=0, help="data-loading processes")
        p.add_argument("--fsdp", action="store_true", help="shard the trained networks over the processes (torchrun)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        if job in ("rectify", "sketch"):
            p.add_argument("--text-dropout", type=float, default=0.05, help="classifier-free guidance: drop the caption")
            p.add_argument("--image-dropout", type=float, default=0.05, help="classifier-free guidance: drop the image context")
        if job == "sketch":
            p.add_argument("--sketch-init", type=Path, help="starting sketch encoder (default: initialised from the UNet)")
            p.add_argument("--anime2sketch", type=Path, help="Anime2Sketch generator weights (default: XDoG line extraction)")
        if job == "decoder":
            p.add_argument("--lpips-vgg", type=Path, help="torchvision VGG16 weights (vgg16-397923af.pth) for LPIPS")
            p.add_argument("--lpips-heads", type=Path, help="LPIPS linear heads (the lpips package's weights/v0.1/vgg.pth)")
            p.add_argument("--perceptual-weight", type=float, default=0.1)
            p.add_argument("--disc-start", type=int, default=2001, help="step from which the adversarial loss counts")
            p.add_argument("--disc-weight", type=float, default=0.5)
    return parser


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    values = {k: v for k, v in vars(args).items() if k != "no_progress"}
    values["progress"] = not args.no_progress
    return TrainSettings(**values)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    from .trainer import train

    try:
        settings = settings_from_args(args)
        result = train(settings)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"inbetween-train {args.job}: {exc}", file=sys.stderr)
        return 2
    if rank == 0:
        for path in result.outputs:
            print(path)
    return 0
