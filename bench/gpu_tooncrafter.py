"""GPU speed of the full-size ToonCrafter model (random weights: speed does not depend on them).

Reports, for each setting, seconds per denoising step, end-to-end seconds for one 16-frame pass at
512×320 (fitting, CLIP, VAE encode, 50 DDIM steps with guidance, two-pass dual-reference decode,
keying back) and the peak GPU memory:
- parity: the original's computation (two UNet calls per step, T frames VAE-encoded);
- lean: the "fast" preset (cond and uncond in one batched UNet call, only the two keys encoded);
- low-vram: parity numbers with parts moved to the GPU only while they run and chunked attention.
Each mode runs without sketches and, with --sketches (default on), again with sketches on four
in-betweens, so the per-frame sketch encoder's cost reads as the difference.

    .venv/bin/python bench/gpu_tooncrafter.py [--steps 50] [--precision fp16] [--modes parity,lean,low-vram]

Refuses to run without a CUDA GPU. Figures go to BENCHMARKS.md (section "ToonCrafter on GPU").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.api import CancelToken, GenerationSettings, InbetweenTask  # noqa: E402

MODES = {
    "parity": {"preset": "parity", "low_vram": False},
    "lean": {"preset": "fast", "low_vram": False},
    "low-vram": {"preset": "parity", "low_vram": True},
}


def keyframe(cx: float, width: int = 512, height: int = 320) -> np.ndarray:
    """A flat-coloured disc with an outline on paper: enough structure for a realistic run."""
    yy, xx = np.mgrid[:height, :width]
    d = np.sqrt((xx - cx) ** 2 + (yy - height / 2) ** 2)
    image = np.full((height, width, 4), (245, 240, 225, 255), np.uint8)
    image[d < 60] = (230, 80, 60, 255)
    image[(d >= 56) & (d < 62)] = (30, 25, 35, 255)
    return image


def build_random_model(dtype: torch.dtype):
    from engine.tooncrafter.model import ToonCrafterModel

    torch.manual_seed(0)
    with torch.device("cuda"):
        model = ToonCrafterModel()
    return model.cast_weights(dtype).eval().requires_grad_(False)


def build_random_sketch_encoder(dtype: torch.dtype):
    from engine.tooncrafter.networks.sketch_encoder import SketchEncoder

    torch.manual_seed(1)
    with torch.device("cuda"):
        encoder = SketchEncoder()
    return encoder.to(dtype).eval().requires_grad_(False)


def sketch(cx: float) -> np.ndarray:
    """A rough dark circle on white, as an artist's guidance sketch."""
    image = np.full((320, 512, 4), 255, np.uint8)
    yy, xx = np.mgrid[:320, :512]
    ring = np.abs(np.sqrt((xx - cx) ** 2 + (yy - 160) ** 2) - 60) < 2
    image[ring, :3] = 40
    return image


def run_mode(model, name: str, steps: int, precision: str, sketch_encoder=None) -> dict:
    from engine.backends.tooncrafter import ToonCrafterBackend

    settings = GenerationSettings(backend="tooncrafter", steps=steps, precision=precision, device="cuda", **MODES[name])
    backend = ToonCrafterBackend(settings, model=model)
    sketches = {}
    if sketch_encoder is not None:
        backend.sketch_encoder = sketch_encoder
        sketches = {k / 15: sketch(140 + (372 - 140) * k / 15) for k in (3, 6, 9, 12)}
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    task = InbetweenTask(keyframe(140), keyframe(372), [k / 15 for k in range(1, 15)], settings, sketches=sketches)
    marks: list[tuple[str, float]] = []

    def progress(stage: str, fraction: float, message: str) -> None:
        torch.cuda.synchronize()
        marks.append((stage, time.perf_counter()))

    start = time.perf_counter()
    frames = backend.interpolate(task, progress, CancelToken())
    torch.cuda.synchronize()
    total = time.perf_counter() - start
    step_times = [b[1] - a[1] for a, b in zip(marks, marks[1:]) if b[0].startswith("denoise") and a[0].startswith("denoise")]
    return {
        "mode": name + (" + sketches" if sketches else ""),
        "precision": precision,
        "steps": steps,
        "seconds_per_step": statistics.median(step_times[1:] or step_times),
        "end_to_end_seconds": total,
        "peak_vram_gib": torch.cuda.max_memory_allocated() / 2**30,
        "frames": len(frames) + 2,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--precision", choices=("fp16", "bf16", "fp32"), default="fp16")
    parser.add_argument("--modes", default="parity,lean,low-vram")
    parser.add_argument("--warmup-steps", type=int, default=2, help="a short untimed pass first (kernels, caches)")
    parser.add_argument("--no-sketches", action="store_true", help="skip the runs with sketch guidance")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench/gpu_tooncrafter.py measures GPU speed and needs a CUDA GPU; none is visible to PyTorch "
              "here (CPU speed is measured by bench/cpu_speed.py).", file=sys.stderr)
        return 2
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode {', '.join(unknown)}: choose from {', '.join(MODES)}")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.precision]
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, {args.precision}", flush=True)
    t0 = time.perf_counter()
    model = build_random_model(dtype)
    print(f"built the full-size model with random weights in {time.perf_counter() - t0:.1f} s", flush=True)
    if args.warmup_steps:
        run_mode(model, modes[0], args.warmup_steps, args.precision)
    encoder = None if args.no_sketches else build_random_sketch_encoder(dtype)
    runs = [(name, None) for name in modes] + ([(name, encoder) for name in modes] if encoder is not None else [])
    results = []
    for name, sketch_encoder in runs:
        result = run_mode(model, name, args.steps, args.precision, sketch_encoder)
        results.append(result)
        print(
            f"{result['mode']:<20} {result['seconds_per_step']:.3f} s/step   {result['end_to_end_seconds']:.1f} s for "
            f"{result['frames']} frames at 512x320 ({args.steps} steps)   peak VRAM {result['peak_vram_gib']:.1f} GiB",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
