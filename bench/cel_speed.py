"""In-betweens per second of the cel backend at 512×320 on this machine's CPU.

Times whole `CelBackend.interpolate` calls on `samples/arm_swing` (segment analysis once, then one
cheap render per tau; each timed call on a fresh backend, which has not seen the keys) after a
warm-up, for segments of 1, 3 and 7 in-betweens, and reports the
median of several repetitions in wall-clock and in process CPU time with the load average: on a
shared machine the CPU figure is what the machine would give idle.

    .venv/bin/python bench/cel_speed.py
    .venv/bin/python bench/cel_speed.py --repeats 5 --json out.json
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

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.api import CancelToken, GenerationSettings, InbetweenTask, no_progress  # noqa: E402
from engine.backends.cel import CelBackend  # noqa: E402
from engine.core.files import atomic_write_bytes  # noqa: E402


def load(path: Path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    key_a, key_b = load(REPO / "samples/arm_swing/key_a.png"), load(REPO / "samples/arm_swing/key_b.png")
    settings = GenerationSettings()
    backend = CelBackend(settings)
    rows = []
    for count in (1, 3, 7):
        taus = [(k + 1) / (count + 1) for k in range(count)]
        backend.interpolate(InbetweenTask(key_a, key_b, taus, settings), no_progress, CancelToken())  # warm-up
        walls, cpus = [], []
        for _ in range(args.repeats):
            backend = CelBackend(settings)  # a fresh backend: it keeps the key pairs it took apart
            wall, cpu = time.perf_counter(), time.process_time()
            backend.interpolate(InbetweenTask(key_a, key_b, taus, settings), no_progress, CancelToken())
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        rows.append({"inbetweens": count, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                     "per_s_wall": round(count / wall, 2), "per_s_cpu": round(count / cpu, 2)})
        print(f"{count} in-between(s) per segment: {wall:.2f} s wall ({count / wall:.2f}/s), "
              f"{cpu:.2f} s CPU ({count / cpu:.2f}/s)")
    report = {"machine": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
              "method": backend.describe().get("method"), "size": "512x320", "rows": rows}
    print(f"load average {report['load_average']}, method {report['method']}")
    if args.json:
        atomic_write_bytes(args.json, json.dumps(report, indent=1).encode(), overwrite=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
