"""Run a backend over a case set and score it: the one harness behind the quality benchmarks.

A case set is a list of segments (two key files, the taus of the in-betweens, where each drawn
in-between goes). Two sources are built here: the real cartoon triplets of
`shared/cartoon/triplets.json` (keys = two frames of a ToonCrafter output sequence, ground truth
= the frames between them) and sequence folders in the scorer's folder layout (`frame_NN.png`,
`meta.json`, masks; e.g. tools/synthetic_cel.py's output) cut at any key spacing. Scoring always
runs `shared/tools/score_inbetweens.py` unchanged, as a subprocess; it scores a linear cross-fade
beside every prediction. bench/cel_quality.py compares backends with these pieces.

As a program it runs one backend over the cartoon triplets: PSNR / SSIM / line_f / edge_f per gap
and overall, against the cross-fade of `baseline_crossfade_scores.json` (> 1 is better).

    .venv/bin/python bench/quality.py --quick                 # RIFE, the 110 non-overlapping cases
    .venv/bin/python bench/quality.py --quick --preset fast   # without the full-size flow level
    .venv/bin/python bench/quality.py --variant hdv3 --scale 0.5
    .venv/bin/python bench/quality.py --quick --backend cel   # the cel in-betweener
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.api import Backend, CancelToken, GenerationSettings, InbetweenTask, no_progress  # noqa: E402
from engine.imaging import read_image  # noqa: E402
from engine.rife.interpolator import SCALES, RifeConfig  # noqa: E402
from engine.rife.variants import DEFAULT_VARIANT, VARIANTS  # noqa: E402

SHARED = Path(os.environ.get("INBETWEENER_SHARED", REPO.parent / "shared"))
SCORER = SHARED / "tools" / "score_inbetweens.py"
TRIPLETS = SHARED / "cartoon" / "triplets.json"
METRICS = ("psnr", "ssim", "line_f", "edge_f")
FIGURE_METRICS = ("figure_iou", "figure_recall", "ghost_ratio")


@dataclass
class Segment:
    """Two keys and the in-betweens to draw between them, each with the file it is written to."""

    key_start: Path
    key_end: Path
    taus: list[float]
    outputs: list[Path]
    rgba: bool = False  # write RGBA (transparent cels); otherwise RGB, as the ground truth is
    # the keys either side in a sequence cut at several keys, and their taus in this segment
    key_before: Path | None = None
    tau_before: float | None = None
    key_after: Path | None = None
    tau_after: float | None = None


def make_backend(name: str, *, variant: str = DEFAULT_VARIANT, scale: float = 1.0, reference_arithmetic: bool = False,
                 align: bool = True) -> Backend:
    """A CPU instance of backend `name`; RIFE takes this harness's network options, the others come
    from the engine's registry exactly as the product builds them."""
    if name == "rife":
        from engine.backends.rife import RifeBackend

        config = RifeConfig(variant, scale, reference_arithmetic=reference_arithmetic)
        return RifeBackend(GenerationSettings(backend="rife", device="cpu"), config, align_long_travels=align)
    from engine.backends import get_backend

    return get_backend(name, GenerationSettings(backend=name, device="cpu"))


def draw_segments(segments: Sequence[Segment], backend: Backend, settings: GenerationSettings,
                  log_every: int = 20, skip_existing: bool = False) -> tuple[int, float, float]:
    """Draw every segment's in-betweens to its output files; returns (frames drawn, wall seconds,
    process CPU seconds) spent in `interpolate` alone (reading keys and writing PNGs are not the
    backend's cost). CPU time is the steadier figure on a machine shared with other jobs.
    `skip_existing` resumes an interrupted run: segments whose files all exist are not drawn again
    (nor counted)."""
    keys: dict[Path, np.ndarray] = {}

    def key(path: Path) -> np.ndarray:
        if path not in keys:
            keys[path] = read_image(path)
        return keys[path]

    frames, seconds, cpu = 0, 0.0, 0.0
    for n, seg in enumerate(segments, 1):
        if skip_existing and all(p.exists() for p in seg.outputs):
            continue
        task = InbetweenTask(key(seg.key_start), key(seg.key_end), seg.taus, settings,
                             key_before=None if seg.key_before is None else key(seg.key_before), tau_before=seg.tau_before,
                             key_after=None if seg.key_after is None else key(seg.key_after), tau_after=seg.tau_after)
        start, start_cpu = time.perf_counter(), time.process_time()
        images = backend.interpolate(task, no_progress, CancelToken())
        seconds += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        for path, image in zip(seg.outputs, images, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image if seg.rgba else image[..., :3]).save(path)
        frames += len(images)
        if log_every and (n % log_every == 0 or n == len(segments)):
            print(f"  {backend.name}: {n}/{len(segments)} segments ({frames} in-betweens, {frames / max(seconds, 1e-9):.2f}/s)",
                  flush=True)
    return frames, seconds, cpu


def triplet_segments(cases: Iterable[dict], root: Path, pred_root: Path) -> list[Segment]:
    """The cartoon README's layout: the prediction for GT file X of case C is pred_root/C/basename(X)."""
    return [Segment(root / c["start"], root / c["end"], list(c["gt_t"]), [pred_root / c["id"] / Path(g).name for g in c["gt"]])
            for c in cases]


def load_triplets(quick: bool = False, gaps: Sequence[int] | None = None, triplets: Path = TRIPLETS) -> list[dict]:
    if not triplets.exists():
        sys.exit(f"{triplets} is missing: the cartoon evaluation set sits in shared/ beside the repository")
    spec = json.loads(triplets.read_text())
    return [c for c in spec["cases"] if (not quick or c["quick"]) and (not gaps or c["gap"] in gaps)]


def folder_frames(gt_dir: Path) -> dict[int, Path]:
    return {int(p.stem.split("_")[-1]): p for p in sorted(gt_dir.glob("frame_*.png"))}


def folder_segments(gt_dir: Path, keys: Sequence[int], pred_dir: Path) -> list[Segment]:
    """Segments of a sequence folder cut at `keys`: the frames between two keys are in-betweens at
    t = (frame - key0) / (key1 - key0), the scorer's folder-mode convention. Each segment also
    carries its neighbouring keys, as the engine's pipeline gives them to a backend in a shot."""
    frames = folder_frames(gt_dir)
    missing = [k for k in keys if k not in frames]
    if missing:
        raise ValueError(f"{gt_dir}: key frame {missing[0]} has no frame_NN.png")
    rgba = Image.open(frames[keys[0]]).mode == "RGBA"
    segments = []
    for n, (k0, k1) in enumerate(zip(keys, keys[1:])):
        between = [f for f in frames if k0 < f < k1]
        before = keys[n - 1] if n > 0 else None
        after = keys[n + 2] if n + 2 < len(keys) else None
        segments.append(Segment(frames[k0], frames[k1], [(f - k0) / (k1 - k0) for f in between],
                                [pred_dir / frames[f].name for f in between], rgba,
                                None if before is None else frames[before], None if before is None else (before - k0) / (k1 - k0),
                                None if after is None else frames[after], None if after is None else (after - k0) / (k1 - k0)))
    return segments


def _run_scorer(args: list[str]) -> dict:
    if not SCORER.exists():
        sys.exit(f"{SCORER} is missing: the scorer sits in shared/tools beside the repository")
    done = subprocess.run([sys.executable, str(SCORER), *args], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def score_triplets(pred_root: Path, quick: bool, gaps: Sequence[int] | None, triplets: Path = TRIPLETS) -> dict:
    """The shared scorer's final JSON line for the triplets under pred_root."""
    args = ["--triplets", str(triplets), "--pred-root", str(pred_root)]
    if quick:
        args.append("--quick")
    if gaps:
        args += ["--gaps", *map(str, gaps)]
    return _run_scorer(args)


def score_folder(gt_dir: Path, pred_dir: Path, keys: Sequence[int]) -> dict:
    """The shared scorer's folder-mode JSON (per-frame rows included) for one sequence cut at `keys`."""
    return _run_scorer([str(gt_dir), str(pred_dir), "--keys", *map(str, keys)])


def table(result: dict, baseline: dict, name: str = "rife") -> list[str]:
    """Rows per gap and overall: the backend, cross-fade (shared baseline file) and their ratio."""
    groups = {g: result["groups"][g] for g in sorted(result["groups"]) if g.count("/") == 0}
    groups["all"] = result
    lines = [f"{'subset':8s} {'frames':>6s}  " + "  ".join(f"{m:>22s}" for m in METRICS),
             f"{'':8s} {'':6s}  " + "  ".join(f"{name + ' / xfade = ratio':>22s}" for _ in METRICS)]
    for group_name, group in groups.items():
        base = baseline["groups"].get(group_name, {}).get("baseline") if group_name != "all" else baseline["baseline"]
        if base is None or any(abs(base[m] - group["baseline"][m]) > 1e-3 for m in METRICS):
            base = group["baseline"]  # the scorer's own cross-fade (same definition)
        cells = []
        for m in METRICS:
            pred, ref = group["pred"][m], base[m]
            fmt = "{:6.2f}" if m == "psnr" else "{:6.3f}"
            cells.append(f"{fmt.format(pred)} / {fmt.format(ref)} = {pred / ref:5.3f}")
        lines.append(f"{group_name:8s} {group['n']:6d}  " + "  ".join(f"{c:>22s}" for c in cells))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="rife", help="engine backend to score (rife, cel, tooncrafter)")
    ap.add_argument("--quick", action="store_true", help="only the non-overlapping `quick` cases")
    ap.add_argument("--gaps", type=int, nargs="*", help="only these gaps (2, 4, 8)")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default=DEFAULT_VARIANT, help="RIFE only")
    ap.add_argument("--scale", type=float, choices=SCALES, default=1.0, help="RIFE only")
    ap.add_argument("--no-align", action="store_true", help="RIFE: skip the alignment of long travels (engine/rife/motion.py)")
    ap.add_argument("--preset", choices=("parity", "fast", "quality"), default="parity",
                    help="generation preset: for RIFE `fast` skips 4.25's full-size flow level")
    ap.add_argument("--reference-arithmetic", action="store_true",
                    help="RIFE 4.25: the released code's arithmetic (every level at full size) instead of the default")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--out", type=Path, help="prediction root (default: out/bench/quality/<configuration>)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    cases = load_triplets(args.quick, args.gaps)
    if args.backend == "rife":
        tag = (f"{args.variant}_s{args.scale:g}_{args.preset}" + ("_noalign" if args.no_align else "")
               + ("_ref" if args.reference_arithmetic else ""))
    else:
        tag = f"{args.backend}_{args.preset}"
    tag += "_quick" if args.quick else ""
    pred_root = args.out or REPO / "out" / "bench" / "quality" / tag

    backend = make_backend(args.backend, variant=args.variant, scale=args.scale,
                           reference_arithmetic=args.reference_arithmetic, align=not args.no_align)
    settings = GenerationSettings(backend=args.backend, preset=args.preset, device="cpu")
    print(f"{args.backend} ({tag}): {len(cases)} cases -> {pred_root}", flush=True)
    frames, seconds, cpu = draw_segments(triplet_segments(cases, TRIPLETS.parent, pred_root), backend, settings)
    result = score_triplets(pred_root, args.quick, args.gaps)

    baselines = json.loads((SHARED / "cartoon" / "baseline_crossfade_scores.json").read_text())
    baseline = baselines["quick_subset" if args.quick else "all_cases"]
    print(f"\n{args.backend} {tag}, {'quick subset' if args.quick else 'all cases'}: "
          f"{frames} in-betweens in {seconds:.1f} s ({frames / seconds:.2f}/s, 512x320, noisy shared CPU; "
          f"{1000 * cpu / frames:.0f} CPU ms each)")
    print("\n".join(table(result, baseline, args.backend)))
    summary = {"backend": args.backend, "variant": args.variant, "scale": args.scale, "preset": args.preset,
               "reference_arithmetic": args.reference_arithmetic, "quick": args.quick, "gaps": args.gaps,
               "frames": frames, "draw_seconds": seconds, "cpu_seconds": cpu, "groups": result["groups"],
               "all": {k: result[k] for k in ("n", "baseline", "pred", "ratio")}}
    (pred_root / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({"backend": args.backend, "tag": tag, "quick": args.quick, "pred": result["pred"], "ratio": result["ratio"]}))


if __name__ == "__main__":
    main()
