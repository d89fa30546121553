"""Training steps of the full-size model on a GPU with random weights: seconds per optimizer step and
peak GPU memory for each memory plan of docs/training.md (which were estimates until measured).

The real trainer runs (`training.trainer.Trainer`: checkpoint loading, data loader on synthetic
cel clips, bf16 autocast, AdamW, gradient clipping, EMA); only its checkpoint and output writes are
skipped, since a full-size run would write ~30 GB per plan that nobody reads. The random starting
checkpoint is written once in the official layout (float16) and loaded by each plan as a user's is.

    python bench/gpu_training.py [--steps 4] [--plans rectify,rectify-lean,sketch-lean] [--json out.json]
    python bench/gpu_training.py --tiny ../shared/reference/tiny_a --device cpu --steps 2   # dry run

Plans: rectify (plain AdamW, no checkpointing: the "80 GB" column), rectify-lean (gradient
checkpointing + bf16 frozen networks; the "24 GB" column without 8-bit AdamW, which needs
bitsandbytes), sketch-lean (the sketch encoder with the same savers). Figures go to BENCHMARKS.md
("Training on GPU").
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from bench.gpu_tooncrafter import randomize_zero_layers  # noqa: E402
from tools.make_synthetic_clips import make_clips  # noqa: E402
from training.settings import TrainSettings  # noqa: E402
from training.trainer import Trainer  # noqa: E402

PLANS = {
    "rectify": {"job": "rectify"},
    "rectify-lean": {"job": "rectify", "gradient_checkpointing": True, "frozen_dtype": "bf16"},
    "sketch-lean": {"job": "sketch", "gradient_checkpointing": True, "frozen_dtype": "bf16"},
}


class MeasuredTrainer(Trainer):
    """The trainer as users run it, minus the weight files a measurement does not need."""

    def save_checkpoint(self, next_step: int) -> None:
        return None

    def write_outputs(self) -> list[Path]:
        return []


def write_random_checkpoint(config, path: Path, device: str) -> float:
    """A full ToonCrafter checkpoint of random weights in the official layout; returns its GB.
    Built on `device` (initialising 2.6 B weights is slow on a CPU), stored from the CPU."""
    from engine.tooncrafter.model import ToonCrafterModel

    torch.manual_seed(0)
    with torch.device(device):
        model = ToonCrafterModel(config)
    randomize_zero_layers(model)
    weights = {name for name, _ in model.named_parameters()}  # buffers (the schedule) stay as built
    tensors = {k: (v.half() if k in weights else v).detach().cpu().contiguous() for k, v in model.state_dict().items()}
    del model
    save_file(tensors, str(path))
    return path.stat().st_size / 1e9


def run_plan(name: str, args, config_path: Path | None, weights: Path, clips: Path, out: Path) -> dict:
    cuda = args.device.startswith("cuda")
    settings = TrainSettings(
        data=clips,
        out=out,
        init=weights,
        model_config=config_path,
        steps=args.steps,
        batch=1,
        micro_batch=1,
        device=args.device,
        precision="bf16" if cuda else "fp32",
        save_every=10**9,
        progress=False,
        **PLANS[name],
    )
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer = MeasuredTrainer(settings)
    setup = time.perf_counter() - start
    resident = torch.cuda.memory_allocated() / 2**30 if cuda else None
    result = trainer.run()
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    with (out / "logs" / "train.csv").open() as fh:
        seconds = [float(row["seconds"]) for row in csv.DictReader(fh)]
    del trainer
    gc.collect()
    return {
        "plan": name,
        **{k: v for k, v in PLANS[name].items()},
        "steps": args.steps,
        "setup_seconds": setup,
        "seconds_per_step": statistics.median(seconds[1:] or seconds),
        "first_step_seconds": seconds[0],
        "peak_gib": peak,
        "resident_after_setup_gib": resident,
        "trained_parameters": result.trained_parameters,
        "frozen_parameters": result.frozen_parameters,
        "losses": result.losses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per plan (s/step: median after the first)")
    parser.add_argument("--plans", default=",".join(PLANS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", type=Path, help="a reference folder: its tiny config (dry run)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    plans = [p.strip() for p in args.plans.split(",") if p.strip()]
    unknown = [p for p in plans if p not in PLANS]
    if unknown:
        parser.error(f"unknown plan {', '.join(unknown)} (known: {', '.join(PLANS)})")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "bench/gpu_training.py measures GPU training and needs a CUDA GPU; none is visible to PyTorch here "
            "(use --tiny DIR --device cpu for a dry run).",
            file=sys.stderr,
        )
        return 2
    from engine.tooncrafter.networks.config import ToonCrafterConfig, tiny_from_reference

    config_path = args.tiny / "config.json" if args.tiny else None
    config = tiny_from_reference(json.loads(config_path.read_text())) if args.tiny else ToonCrafterConfig()
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu (dry run)"
    print(f"device: {name}, torch {torch.__version__}, model {config.name}, {args.steps} steps per plan", flush=True)
    report: dict = {"device": name, "torch": torch.__version__, "model": config.name, "plans": []}
    with tempfile.TemporaryDirectory(prefix="gpu-training-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        gb = write_random_checkpoint(config, tmp / "random.safetensors", args.device)
        make_clips(tmp / "clips", clips=2, frames=config.frames + 4, width=config.width, height=config.height, seed=5)
        print(f"random checkpoint ({gb:.1f} GB) and clips written in {time.perf_counter() - start:.0f} s", flush=True)
        for plan in plans:
            try:
                r = run_plan(plan, args, config_path, tmp / "random.safetensors", tmp / "clips", tmp / plan)
            except Exception as exc:  # recorded, not raised: an out-of-memory plan must not cost the others
                r = {"plan": plan, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                print(f"{plan:<14} failed: {r['error']}", flush=True)
                gc.collect()
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
            else:
                peak = f"peak {r['peak_gib']:.1f} GiB (after setup {r['resident_after_setup_gib']:.1f})" if r["peak_gib"] else ""
                print(
                    f"{plan:<14} {r['seconds_per_step']:.2f} s/step (first {r['first_step_seconds']:.1f} s, setup "
                    f"{r['setup_seconds']:.0f} s)  {peak}  trained {r['trained_parameters'] / 1e6:.0f} M, "
                    f"losses {[round(x, 4) for x in r['losses']]}",
                    flush=True,
                )
            report["plans"].append(r)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
