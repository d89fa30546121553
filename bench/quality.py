"""RIFE in-betweens on the real cartoon triplets, scored by the project's scoring tool next to a cross-fade.

For every case of `shared/cartoon/triplets.json` (keys = two frames of a ToonCrafter output
sequence, ground truth = the frames between them), the RIFE backend draws the in-betweens at the
ground-truth taus; they are written as `<pred_root>/<case id>/<gt file name>` (the layout the
cartoon README prescribes) and scored with `shared/tools/score_inbetweens.py`, unchanged, run as a
subprocess. The table lists PSNR / SSIM / line_f / edge_f per gap and overall, the cross-fade
baseline from `baseline_crossfade_scores.json` and the ratio RIFE / cross-fade (> 1 is better).

    .venv/bin/python bench/quality.py --quick                 # the 110 non-overlapping cases
    .venv/bin/python bench/quality.py --quick --preset fast   # without the full-size flow level
    .venv/bin/python bench/quality.py --variant hdv3 --scale 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.api import CancelToken, GenerationSettings, InbetweenTask, no_progress  # noqa: E402
from engine.backends.rife import RifeBackend  # noqa: E402
from engine.imaging import read_image  # noqa: E402
from engine.rife.interpolator import SCALES, RifeConfig  # noqa: E402
from engine.rife.variants import DEFAULT_VARIANT, VARIANTS  # noqa: E402

SHARED = Path(os.environ.get("INBETWEENER_SHARED", REPO.parent / "shared"))
METRICS = ("psnr", "ssim", "line_f", "edge_f")


def predict(cases: list[dict], root: Path, pred_root: Path, backend: RifeBackend, preset: str) -> tuple[int, float]:
    """Draw every case's in-betweens into pred_root; returns (frames drawn, seconds spent drawing)."""
    keys: dict[str, np.ndarray] = {}

    def key(rel: str) -> np.ndarray:
        if rel not in keys:
            keys[rel] = read_image(root / rel)
        return keys[rel]

    frames, seconds = 0, 0.0
    for n, case in enumerate(cases, 1):
        task = InbetweenTask(key(case["start"]), key(case["end"]), case["gt_t"],
                             GenerationSettings(backend="rife", preset=preset))
        start = time.perf_counter()
        images = backend.interpolate(task, no_progress, CancelToken())
        seconds += time.perf_counter() - start
        out_dir = pred_root / case["id"]
        out_dir.mkdir(parents=True, exist_ok=True)
        for rel, image in zip(case["gt"], images):
            mode = "RGBA" if (image[..., 3] < 255).any() else "RGB"
            Image.fromarray(image if mode == "RGBA" else image[..., :3], mode).save(out_dir / Path(rel).name)
        frames += len(images)
        if n % 20 == 0 or n == len(cases):
            print(f"  drawn {n}/{len(cases)} cases ({frames} in-betweens, {frames / seconds:.2f}/s)", flush=True)
    return frames, seconds


def score(triplets: Path, pred_root: Path, quick: bool, gaps: list[int] | None) -> dict:
    """Run the shared scoring tool as is and return its final JSON line."""
    cmd = [sys.executable, str(SHARED / "tools" / "score_inbetweens.py"), "--triplets", str(triplets),
           "--pred-root", str(pred_root)]
    if quick:
        cmd.append("--quick")
    if gaps:
        cmd += ["--gaps", *map(str, gaps)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(result: dict, baseline: dict) -> list[str]:
    """Rows per gap and overall: RIFE, cross-fade (shared baseline file) and their ratio."""
    groups = {name: result["groups"][name] for name in sorted(result["groups"]) if name.count("/") == 0}
    groups["all"] = result
    lines = [f"{'subset':8s} {'frames':>6s}  " + "  ".join(f"{m:>22s}" for m in METRICS),
             f"{'':8s} {'':6s}  " + "  ".join(f"{'rife / xfade = ratio':>22s}" for _ in METRICS)]
    for name, group in groups.items():
        base = baseline["groups"].get(name, {}).get("baseline") if name != "all" else baseline["baseline"]
        if base is None or any(abs(base[m] - group["baseline"][m]) > 1e-3 for m in METRICS):
            base = group["baseline"]  # the scorer's own cross-fade (same definition)
        cells = []
        for m in METRICS:
            pred, ref = group["pred"][m], base[m]
            fmt = "{:6.2f}" if m == "psnr" else "{:6.3f}"
            cells.append(f"{fmt.format(pred)} / {fmt.format(ref)} = {pred / ref:5.3f}")
        lines.append(f"{name:8s} {group['n']:6d}  " + "  ".join(f"{c:>22s}" for c in cells))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="only the non-overlapping `quick` cases")
    ap.add_argument("--gaps", type=int, nargs="*", help="only these gaps (2, 4, 8)")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default=DEFAULT_VARIANT)
    ap.add_argument("--scale", type=float, choices=SCALES, default=1.0)
    ap.add_argument("--no-align", action="store_true", help="skip the alignment of long travels (engine/rife/motion.py)")
    ap.add_argument("--preset", choices=("parity", "fast", "quality"), default="parity",
                    help="generation preset: `fast` skips RIFE 4.25's full-size flow level")
    ap.add_argument("--reference-arithmetic", action="store_true",
                    help="4.25: the released code's arithmetic (every level at full size) instead of the default")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--out", type=Path, help="prediction root (default: out/bench/quality/<configuration>)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    triplets = SHARED / "cartoon" / "triplets.json"
    if not triplets.exists():
        sys.exit(f"{triplets} is missing: the cartoon evaluation set sits in shared/ beside the repository")
    spec = json.loads(triplets.read_text())
    cases = [c for c in spec["cases"] if (not args.quick or c["quick"]) and (not args.gaps or c["gap"] in args.gaps)]
    tag = (f"{args.variant}_s{args.scale:g}_{args.preset}" + ("_noalign" if args.no_align else "") + ("_ref" if args.reference_arithmetic else "")
           + ("_quick" if args.quick else ""))
    pred_root = args.out or REPO / "out" / "bench" / "quality" / tag

    config = RifeConfig(args.variant, args.scale, reference_arithmetic=args.reference_arithmetic)
    backend = RifeBackend(GenerationSettings(backend="rife", device="cpu"), config, align_long_travels=not args.no_align)
    print(f"RIFE {args.variant} scale {args.scale}: {len(cases)} cases -> {pred_root}", flush=True)
    frames, seconds = predict(cases, triplets.parent, pred_root, backend, args.preset)
    result = score(triplets, pred_root, args.quick, args.gaps)

    baselines = json.loads((SHARED / "cartoon" / "baseline_crossfade_scores.json").read_text())
    baseline = baselines["quick_subset" if args.quick else "all_cases"]
    mode = (" (reference arithmetic)" if args.reference_arithmetic else "") + f", preset {args.preset}"
    print(f"\nRIFE {args.variant}{mode} scale {args.scale}, {'quick subset' if args.quick else 'all cases'}: "
          f"{frames} in-betweens in {seconds:.1f} s ({frames / seconds:.2f}/s, 512x320, noisy shared CPU)")
    print("\n".join(table(result, baseline)))
    summary = {"variant": args.variant, "scale": args.scale, "preset": args.preset,
               "reference_arithmetic": args.reference_arithmetic, "quick": args.quick, "gaps": args.gaps,
               "frames": frames, "draw_seconds": seconds, "groups": result["groups"],
               "all": {k: result[k] for k in ("n", "baseline", "pred", "ratio")}}
    (pred_root / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({"variant": args.variant, "scale": args.scale, "preset": args.preset,
                      "reference_arithmetic": args.reference_arithmetic, "quick": args.quick,
                      "pred": result["pred"], "ratio": result["ratio"]}))


if __name__ == "__main__":
    main()
