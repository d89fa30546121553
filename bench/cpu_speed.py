"""In-betweens per second of the RIFE backend at 512×320 on this machine's CPU.

Times whole `RifeBackend.interpolate` calls (keyframe preparation, network, conversion back to RGBA
uint8) on a synthetic pair of cartoon-like keyframes, after warm-up runs, and reports the median of
several repetitions. Process CPU time and the load average are printed too: on a shared machine
wall-clock figures are only as good as the machine is idle. A segment with one in-between pays the
per-segment preparation alone; longer segments share it, so both are reported.

    .venv/bin/python bench/cpu_speed.py                      # default release and scale
    .venv/bin/python bench/cpu_speed.py --variant hdv3 --scale 0.5 --threads 2
    .venv/bin/python bench/cpu_speed.py --reference-arithmetic   # 4.25 exactly as released
    .venv/bin/python bench/cpu_speed.py --preset fast             # without the full-size flow level
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.api import CancelToken, GenerationSettings, InbetweenTask, no_progress  # noqa: E402
from engine.backends.rife import RifeBackend  # noqa: E402
from engine.core.planning import spacing_taus  # noqa: E402
from engine.rife.interpolator import SCALES, RifeConfig  # noqa: E402
from engine.rife.variants import DEFAULT_VARIANT, VARIANTS  # noqa: E402


def cartoon_key(width: int, height: int, shift: float) -> np.ndarray:
    """Flat-coloured shapes with dark outlines on a pale background, moved right by `shift` pixels."""
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[:] = (236, 226, 205)
    shapes = [  # (centre x, centre y, radius, colour)
        (0.30 * width + shift, 0.55 * height, 0.22 * height, (220, 90, 60)),
        (0.62 * width + 0.5 * shift, 0.40 * height, 0.16 * height, (70, 120, 200)),
        (0.45 * width - 0.4 * shift, 0.80 * height, 0.10 * height, (90, 170, 80)),
    ]
    for cx, cy, r, colour in shapes:
        d = np.hypot(xx - cx, yy - cy)
        fill = np.clip(r - d + 0.5, 0, 1)[..., None]
        img = img * (1 - fill) + np.array(colour, np.float32) * fill
        line = np.clip(1.5 - np.abs(d - r), 0, 1)[..., None]
        img = img * (1 - line) + 30 * line
    rgba = np.full((height, width, 4), 255, np.uint8)
    rgba[..., :3] = np.round(img).astype(np.uint8)
    return rgba


def measure(backend: RifeBackend, key_a, key_b, count: int, warmup: int, reps: int, preset: str) -> dict:
    task = InbetweenTask(key_a, key_b, spacing_taus(count), GenerationSettings(backend="rife", preset=preset))
    for _ in range(warmup):
        backend.interpolate(task, no_progress, CancelToken())
    seconds, cpu_seconds = [], []
    for _ in range(reps):
        start, cpu_start = time.perf_counter(), time.process_time()
        backend.interpolate(task, no_progress, CancelToken())
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    median = statistics.median(seconds)
    return {
        "inbetweens_per_segment": count,
        "median_s_per_segment": median,
        "min_s_per_segment": min(seconds),
        "median_cpu_s_per_segment": statistics.median(cpu_seconds),
        "inbetweens_per_s": count / median,
        "reps": reps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=sorted(VARIANTS), default=DEFAULT_VARIANT)
    ap.add_argument("--scale", type=float, choices=SCALES, default=1.0)
    ap.add_argument("--preset", choices=("parity", "fast", "quality"), default="parity",
                    help="generation preset: `fast` skips RIFE 4.25's full-size flow level")
    ap.add_argument("--reference-arithmetic", action="store_true",
                    help="4.25: the released code's arithmetic (every level at full size) instead of the default")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--size", default="512x320", help="WIDTHxHEIGHT (default 512x320, the model canvas)")
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 7], help="in-betweens per segment to time")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    key_a, key_b = cartoon_key(width, height, 0.0), cartoon_key(width, height, 24.0)
    config = RifeConfig(args.variant, args.scale, reference_arithmetic=args.reference_arithmetic)
    backend = RifeBackend(GenerationSettings(backend="rife", device="cpu"), config)

    results = [measure(backend, key_a, key_b, n, args.warmup, args.reps, args.preset) for n in args.counts]
    mode = (" (reference arithmetic)" if args.reference_arithmetic else "") + f", preset {args.preset}"
    print(f"RIFE {args.variant}{mode} scale {args.scale} at {width}x{height}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    for r in results:
        print(f"  {r['inbetweens_per_segment']:2d} in-between(s)/segment: {r['inbetweens_per_s']:6.2f} in-betweens/s "
              f"(median {r['median_s_per_segment'] * 1000:.0f} ms per segment, "
              f"best {r['min_s_per_segment'] * 1000:.0f} ms, "
              f"process CPU time {r['median_cpu_s_per_segment'] * 1000:.0f} ms, {r['reps']} reps)")
    print(f"  load average while measuring: {os.getloadavg()[0]:.2f} (other processes share these cores)")
    print(json.dumps({"variant": args.variant, "scale": args.scale, "preset": args.preset,
                      "reference_arithmetic": args.reference_arithmetic, "size": [width, height],
                      "threads": torch.get_num_threads(), "results": results}))


if __name__ == "__main__":
    main()
