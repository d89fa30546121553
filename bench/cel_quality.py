"""The cel in-betweener against RIFE and a cross-fade: synthetic cels with exact truth, real anime triplets.

Two case sets, drawn by each backend in one run and scored by `shared/tools/score_inbetweens.py`
(unchanged, as a subprocess, through bench/quality.py's harness):

- synthetic cels from tools/synthetic_cel.py (9 frames per motion at 512x320), cut at gap 8 (keys 0
  and 8, 7 in-betweens), gap 4 and gap 2. Their masks and plates give figure_iou, figure_recall and
  ghost_ratio besides PSNR, SSIM, line_f and edge_f.
- the real anime triplets of `shared/cartoon/triplets.json` (gaps 2, 4, 8).

It prints, per set and gap, each method's means, the ratios against the cross-fade and against RIFE,
the per-motion figures at gap 8, the issue's targets with a pass/fail mark, and speed in
in-betweens per second at 512x320 (synthetic gap 8, after a warm-up, the backends side by side).
With --sheets it writes contact sheets (rows: truth / cel / RIFE / cross-fade) of every synthetic
motion and of the project's samples to <out>/sheets/.

    .venv/bin/python bench/cel_quality.py --quick --sheets          # quick triplet subset (110 cases)
    .venv/bin/python bench/cel_quality.py                           # all 334 triplet cases
    .venv/bin/python bench/cel_quality.py --no-triplets --sheets    # synthetic set only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.quality import (  # noqa: E402
    FIGURE_METRICS,
    METRICS,
    TRIPLETS,
    draw_segments,
    folder_segments,
    load_triplets,
    make_backend,
    score_folder,
    score_triplets,
    triplet_segments,
)
from engine.api import CancelToken, GenerationSettings, InbetweenTask, no_progress  # noqa: E402
from engine.imaging import read_image  # noqa: E402
from tools import synthetic_cel  # noqa: E402

ALL_METRICS = METRICS + FIGURE_METRICS
LABELS = {"xfade": "cross-fade", "rife": "RIFE", "cel": "cel"}
SAMPLES = (("arm_swing", ("key_a.png", "key_b.png")), ("bouncing_ball_alpha", ("key_a.png", "key_b.png")),
           ("three_keys", ("key_0.png", "key_1.png", "key_2.png")))


# ------------------------------------------------------------------------------ the synthetic set
def synthetic_set(root: Path, frames: int, seed: int) -> list[Path]:
    """The generator's sequences under root, drawn afresh (seconds) so they always match its code."""
    return [synthetic_cel.write_sequence(root / m, m, seed, synthetic_cel.DEFAULT_SIZE, frames, overwrite=True)
            for m in synthetic_cel.MOTIONS]


def run_synthetic(backend, name: str, folders: list[Path], gaps: list[int], out: Path, frames: int, resume: bool = False) -> dict:
    """Per gap: the scorer's per-frame rows of every motion, and the drawing time."""
    settings = GenerationSettings(backend=name, device="cpu")
    result = {}
    for gap in gaps:
        keys = list(range(0, frames, gap))
        rows, drawn, seconds, cpu = [], 0, 0.0, 0.0
        for folder in folders:
            pred = out / name / "synthetic" / f"g{gap}" / folder.name
            n, s, c = draw_segments(folder_segments(folder, keys, pred), backend, settings, log_every=0, skip_existing=resume)
            drawn, seconds, cpu = drawn + n, seconds + s, cpu + c
            scored = score_folder(folder, pred, keys)
            rows += [{**r, "motion": folder.name} for r in scored["per_frame"]]
        result[gap] = {"rows": rows, "frames": drawn, "seconds": seconds, "cpu": cpu}
        print(f"  {name}: synthetic gap {gap}: {drawn} in-betweens drawn" + (f", {drawn / seconds:.2f}/s" if drawn else ""), flush=True)
    return result


def run_straight_reference(folders: list[Path], gaps: list[int], out: Path, frames: int, seed: int) -> dict:
    """The generator's rig with every pose moved straight from key to key (tools/synthetic_cel.py's
    `straight_between`), scored like a backend: the ceiling of any in-betweener that sees only the
    two keys of a segment and carries each part straight between them."""
    result = {}
    ts = synthetic_cel.taus(frames)
    for gap in gaps:
        keys = list(range(0, frames, gap))
        rows = []
        for folder in folders:
            scene = synthetic_cel.build(folder.name, seed)
            pred = out / "straight" / "synthetic" / f"g{gap}" / folder.name
            pred.mkdir(parents=True, exist_ok=True)
            for k0, k1 in zip(keys, keys[1:]):
                straight = synthetic_cel.straight_between(scene, ts[k0], ts[k1])
                for f in range(k0 + 1, k1):
                    image = synthetic_cel.render(straight, (f - k0) / (k1 - k0)).image
                    code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
                    cv2.imwrite(str(pred / f"frame_{f:02d}.png"), cv2.cvtColor(image, code))
            rows += [{**r, "motion": folder.name} for r in score_folder(folder, pred, keys)["per_frame"]]
        result[gap] = {"rows": rows}
    return result


def reference_table(reference: dict, syn_results: dict, gaps: list[int]) -> list[str]:
    """Cel beside the straight-line reference, per gap: how much of the gap between cel and the
    truth any two-key method could close."""
    metrics = ("psnr", "figure_iou", "ghost_ratio")
    lines = ["### Reference: the rig moved straight from key to key (a ceiling for two-key in-betweeners)", "",
             "| gap | " + " | ".join(f"{k} (straight / cel)" for k in metrics) + " |", "|---|" + "---|" * len(metrics)]
    def rows(res: dict, gap) -> list[dict]:
        return res[gap]["rows"] if gap != "all" else [r for g in gaps for r in res[g]["rows"]]

    for gap in [*gaps, "all"]:
        cells = [f"{fmt(k, mean(rows(reference, gap), 'pred', k))} / {fmt(k, mean(rows(syn_results['cel'], gap), 'pred', k))}"
                 for k in metrics]
        lines.append(f"| {gap} | " + " | ".join(cells) + " |")
    return lines + ["", "The reference draws each segment from its two keys alone; cel also sees the neighbouring "
                        "keys at gaps 4 and 2 (arcs through the keys), so it can pass the reference there.", ""]


def mean(rows: list[dict], side: str, metric: str) -> float | None:
    values = [r[side][metric] for r in rows if r.get(side) and r[side].get(metric) is not None]
    return float(np.mean(values)) if values else None


# ------------------------------------------------------------------------------------- reporting
def fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if metric == "psnr" else f"{value:.3f}"


def compare(metric: str, a: float | None, b: float | None) -> str:
    """cel against a reference: the dB difference for PSNR, a ratio otherwise (for ghost_ratio,
    where lower is better, the ratio is still cel / reference: below 1 is better)."""
    if a is None or b is None:
        return "—"
    if metric == "psnr":
        return f"{a - b:+.2f} dB"
    return f"{a / b:.3f}" if b else "—"


def gap_table(title: str, groups: dict[str, dict[str, dict]], metrics: tuple[str, ...], backends: list[str]) -> list[str]:
    """groups: gap label -> {method: {metric: mean}, 'n': frames}."""
    lines = [f"### {title}", "", "| gap | frames | method | " + " | ".join(metrics) + " |",
             "|---|---|---|" + "---|" * len(metrics)]
    for gap, g in groups.items():
        methods = ["xfade", *backends]
        for m in methods:
            lines.append(f"| {gap} | {g['n']} | {LABELS.get(m, m)} | " + " | ".join(fmt(k, g[m].get(k)) for k in metrics) + " |")
        if "cel" in backends:
            for ref in [r for r in ("xfade", "rife") if r in methods and r != "cel"]:
                lines.append(f"| {gap} | | cel vs {LABELS[ref]} | "
                             + " | ".join(compare(k, g["cel"].get(k), g[ref].get(k)) for k in metrics) + " |")
    return lines + [""]


def synthetic_groups(results: dict[str, dict], backends: list[str], gaps: list[int]) -> dict[str, dict]:
    groups = {}
    for gap in [*gaps, "all"]:
        rows_by = {b: (results[b][gap]["rows"] if gap != "all" else [r for g in gaps for r in results[b][g]["rows"]]) for b in backends}
        first = rows_by[backends[0]]
        group = {"n": len(first), "xfade": {k: mean(first, "base", k) for k in ALL_METRICS}}
        for b in backends:
            group[b] = {k: mean(rows_by[b], "pred", k) for k in ALL_METRICS}
        groups[str(gap)] = group
    return groups


def per_motion(results: dict[str, dict], backends: list[str], gap: int) -> list[str]:
    metrics = ("psnr", "line_f", "figure_iou", "ghost_ratio")
    lines = [f"### Synthetic cels per motion, gap {gap}", "",
             "| motion | " + " | ".join(f"{k} ({'/'.join(LABELS[m] for m in ['xfade', *backends])})" for k in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    motions = sorted({r["motion"] for r in results[backends[0]][gap]["rows"]}, key=synthetic_cel.MOTIONS.index)
    for motion in motions:
        cells = []
        for k in metrics:
            base = [r for r in results[backends[0]][gap]["rows"] if r["motion"] == motion]
            vals = [mean(base, "base", k)] + [mean([r for r in results[b][gap]["rows"] if r["motion"] == motion], "pred", k) for b in backends]
            cells.append(" / ".join(fmt(k, v) for v in vals))
        lines.append(f"| {motion} | " + " | ".join(cells) + " |")
    return lines + [""]


def triplet_groups(results: dict[str, dict], backends: list[str]) -> dict[str, dict]:
    first = results[backends[0]]
    names = sorted((g for g in first["groups"] if g.count("/") == 0), key=lambda g: int(g[3:]))
    groups = {}
    for name in [*names, "all"]:
        src = {b: (results[b]["groups"][name] if name != "all" else results[b]) for b in backends}
        group = {"n": src[backends[0]]["n"], "xfade": src[backends[0]]["baseline"]}
        for b in backends:
            group[b] = src[b]["pred"]
        groups[name.replace("gap", "")] = group
    return groups


def targets(syn: dict, trip: dict | None, speed: dict[str, float], backends: list[str]) -> list[str]:
    """The issue's acceptance figures, each with the measured value and a pass/fail mark."""
    if "cel" not in backends:
        return []
    lines = ["### Targets (issue #10)", ""]

    def mark(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    s = syn["all"]
    if "rife" in backends:
        gain = s["cel"]["psnr"] - s["rife"]["psnr"]
        lines.append(f"- synthetic mean PSNR ≥ RIFE + 2 dB: cel {s['cel']['psnr']:.2f}, RIFE {s['rife']['psnr']:.2f} "
                     f"({gain:+.2f} dB) {mark(gain >= 2)}")
    lines.append(f"- synthetic figure_iou ≥ 0.75: {s['cel']['figure_iou']:.3f} {mark(s['cel']['figure_iou'] >= 0.75)}")
    lines.append(f"- synthetic ghost_ratio ≤ 0.15: {s['cel']['ghost_ratio']:.3f} {mark(s['cel']['ghost_ratio'] <= 0.15)}")
    if trip is not None and "rife" in backends:
        worse = [f"gap {g} {k} {fmt(k, v['cel'][k])} < {fmt(k, v['rife'][k])}" for g, v in trip.items() if g != "all"
                 for k in METRICS if v["cel"][k] < v["rife"][k]]
        lines.append("- real anime triplets no worse than RIFE on any metric at any gap: "
                     + (mark(True) if not worse else mark(False) + " (" + "; ".join(worse) + ")"))
    lines.append(f"- ≥ 2 in-betweens/s at 512x320: cel {speed['cel']:.2f}/s {mark(speed['cel'] >= 2)}")
    return lines + [""]


# --------------------------------------------------------------------------------- contact sheets
def _rgb(image: np.ndarray) -> np.ndarray:
    """RGBA over a light checkerboard so transparency shows; RGB as is."""
    if image.shape[2] == 3:
        return image
    h, w = image.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    board = np.where(((yy // 16 + xx // 16) % 2)[..., None] == 0, 205, 235).astype(np.float32)
    a = image[..., 3:].astype(np.float32) / 255
    return (image[..., :3] * a + board * (1 - a)).astype(np.uint8)


def crossfade(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The scorer's baseline, premultiplied for RGBA."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    aa, ab = a[..., 3:] / 255, b[..., 3:] / 255
    al = (1 - t) * aa + t * ab
    rgb = np.where(al > 0, ((1 - t) * a[..., :3] * aa + t * b[..., :3] * ab) / np.maximum(al, 1e-12), 0)
    return np.clip(np.round(np.concatenate([rgb, al * 255], -1)), 0, 255).astype(np.uint8)


def sheet(rows: list[tuple[str, list[np.ndarray]]], scale: float = 0.5) -> np.ndarray:
    """One labelled row per method, frames left to right, keys at both ends."""
    out = []
    for label, frames in rows:
        tiles = [cv2.resize(_rgb(f), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for f in frames]
        tiles = [np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=40) for t in tiles]
        strip = np.concatenate(tiles, 1)
        tag = np.full((strip.shape[0], 110, 3), 250, np.uint8)
        cv2.putText(tag, label, (6, strip.shape[0] // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
        out.append(np.concatenate([tag, strip], 1))
    return np.concatenate(out, 0)


def write_sheets(backends: dict, folders: list[Path], out: Path, frames: int) -> list[Path]:
    """Synthetic motions (truth / methods / cross-fade, keys 0 and last) and the samples (no truth)."""
    from PIL import Image

    written = []
    sheets = out / "sheets"
    sheets.mkdir(parents=True, exist_ok=True)
    ts = synthetic_cel.taus(frames)
    for folder in folders:
        truth = [read_image(folder / f"frame_{i:02d}.png") for i in range(frames)]
        rows = [("truth", truth)]
        for name in backends:
            pred = out / name / "synthetic" / f"g{frames - 1}" / folder.name
            rows.append((LABELS[name], [truth[0]] + [read_image(pred / f"frame_{i:02d}.png") for i in range(1, frames - 1)] + [truth[-1]]))
        rows.append(("cross-fade", [crossfade(truth[0], truth[-1], t) for t in ts]))
        path = sheets / f"synthetic_{folder.name}.png"
        Image.fromarray(sheet(rows)).save(path)
        written.append(path)
    for name, files in SAMPLES:
        keys = [read_image(REPO / "samples" / name / f) for f in files]
        rows = []
        for bname, backend in backends.items():
            drawn = [keys[0]]
            for n, (ka, kb) in enumerate(zip(keys, keys[1:])):  # a shot of several keys: each segment sees its neighbours
                task = InbetweenTask(ka, kb, ts[1:-1], GenerationSettings(backend=bname, device="cpu"),
                                     key_before=keys[n - 1] if n > 0 else None, tau_before=-1.0 if n > 0 else None,
                                     key_after=keys[n + 2] if n + 2 < len(keys) else None,
                                     tau_after=2.0 if n + 2 < len(keys) else None)
                drawn += [*backend.interpolate(task, no_progress, CancelToken()), kb]
            rows.append((LABELS[bname], drawn))
        rows.append(("cross-fade", [keys[0]] + [im for ka, kb in zip(keys, keys[1:]) for im in [crossfade(ka, kb, t) for t in ts[1:]]]))
        path = sheets / f"sample_{name}.png"
        Image.fromarray(sheet(rows)).save(path)
        written.append(path)
    return written


def write_report(args, names: list[str], folders: list[Path], syn_results: dict, trip_results: dict, started: float,
                 timing: dict[str, tuple[int, float, float]], reference: dict | None = None) -> None:
    """Print the tables and write <out>/report.md and summary.json (called again as results come in)."""
    top_gap = max(args.synthetic_gaps)

    def rate(n: str) -> tuple[float | None, float | None]:
        frames, wall, cpu = timing[n]
        return (frames / wall, 1000 * cpu / frames) if frames else (None, None)

    speed = {n: rate(n)[0] for n in names}
    cpu_ms = {n: rate(n)[1] for n in names}
    load = os.getloadavg()[0]
    syn = synthetic_groups(syn_results, names, args.synthetic_gaps)
    lines = [f"## cel_quality: {', '.join(LABELS.get(n, n) for n in names)} vs cross-fade "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch threads {args.threads})", ""]
    lines += gap_table(f"Synthetic cels ({len(folders)} motions, 512x320, seed {args.seed})", syn, ALL_METRICS, names)
    lines += per_motion(syn_results, names, top_gap)
    if reference and "cel" in syn_results:
        lines += reference_table(reference, syn_results, args.synthetic_gaps)
    trip = None
    if trip_results:
        trip = triplet_groups(trip_results, names)
        lines += gap_table(f"Real anime triplets ({'quick subset' if args.quick else 'all cases'})", trip, METRICS, names)

    def show(v: float | None, f: str) -> str:
        return "—" if v is None else format(v, f)

    lines += [f"### Speed at 512x320 ({timing[names[0]][0]} in-betweens of the synthetic set, gap {top_gap}: {top_gap - 1} "
              f"per segment; load average {load:.1f} on {os.cpu_count()} cores)", "",
              "| | " + " | ".join(LABELS.get(n, n) for n in names) + " |", "|---|" + "---|" * len(names),
              "| in-betweens/s (wall) | " + " | ".join(show(speed[n], ".2f") for n in names) + " |",
              "| CPU ms per in-between | " + " | ".join(show(cpu_ms[n], ".0f") for n in names) + " |", ""]
    if trip_results:
        lines.append("Triplets (1, 3 or 7 per segment): " + ", ".join(
            f"{LABELS.get(n, n)} {show(trip_results[n]['speed'], '.2f')}/s ({show(trip_results[n]['cpu_ms'], '.0f')} CPU ms each)"
            for n in names))
        lines.append("")
    if speed.get("cel") is not None:
        lines += targets(syn, trip, speed, names)
    report = "\n".join(lines)
    print("\n" + report, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(report + "\n")
    (args.out / "summary.json").write_text(json.dumps(
        {"synthetic": syn, "triplets": trip, "speed": speed, "cpu_ms_per_inbetween": cpu_ms, "load_average": load,
         "quick": args.quick, "threads": args.threads, "minutes": (time.time() - started) / 60}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", nargs="+", default=["cel", "rife"], help="backends to run side by side (default cel rife)")
    ap.add_argument("--frames", type=int, default=9, help="frames per synthetic sequence (keys 0 and frames-1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synthetic-gaps", type=int, nargs="+", default=[8, 4, 2])
    ap.add_argument("--no-triplets", action="store_true", help="skip the real anime triplets")
    ap.add_argument("--quick", action="store_true", help="triplets: only the non-overlapping subset (110 cases)")
    ap.add_argument("--triplet-gaps", type=int, nargs="*", help="triplets: only these gaps (2, 4, 8)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2: this machine's cores)")
    ap.add_argument("--sheets", action="store_true", help="write contact sheets to <out>/sheets")
    ap.add_argument("--speed-motions", type=int, default=2, help="synthetic motions in the timed pass (default 2: 14 in-betweens)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the in-betweens an interrupted run drew (speed then covers only what this run draws)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "cel_quality")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    for gap in args.synthetic_gaps:
        if (args.frames - 1) % gap:
            sys.exit(f"--synthetic-gaps {gap} does not divide the {args.frames - 1} steps of a {args.frames}-frame sequence")
    backends = {name: make_backend(name) for name in args.backends}
    names = list(backends)
    folders = synthetic_set(args.out / "synthetic_truth", args.frames, args.seed)

    # warm-up (first-call costs are not the backend's steady speed) on a motion the timed pass does not
    # draw (the cel backend keeps the last key pairs it took apart), then the timed pass, side by side
    if not 0 < args.speed_motions < len(folders):
        sys.exit(f"--speed-motions must be 1 to {len(folders) - 1} (one motion is kept for the warm-up)")
    top = [0, args.frames - 1]
    warm = folder_segments(folders[-1], top, args.out / "warmup")
    for name, backend in backends.items():
        draw_segments(warm, backend, GenerationSettings(backend=name, device="cpu"), log_every=0)
    timing = {}
    for name, backend in backends.items():
        segs = [s for f in folders[:args.speed_motions] for s in folder_segments(f, top, args.out / name / "speed" / f.name)]
        timing[name] = draw_segments(segs, backend, GenerationSettings(backend=name, device="cpu"), log_every=0)

    syn_results, trip_results = {}, {}
    started = time.time()
    for name, backend in backends.items():
        syn_results[name] = run_synthetic(backend, name, folders, args.synthetic_gaps, args.out, args.frames, args.resume)
    reference = run_straight_reference(folders, args.synthetic_gaps, args.out, args.frames, args.seed)
    write_report(args, names, folders, syn_results, trip_results, started, timing, reference)
    if not args.no_triplets:
        cases = load_triplets(args.quick, args.triplet_gaps)
        for name, backend in backends.items():
            pred_root = args.out / name / ("triplets_quick" if args.quick else "triplets")
            n, s, c = draw_segments(triplet_segments(cases, TRIPLETS.parent, pred_root), backend,
                                    GenerationSettings(backend=name, device="cpu"), log_every=50, skip_existing=args.resume)
            trip_results[name] = score_triplets(pred_root, args.quick, args.triplet_gaps)
            trip_results[name]["speed"] = n / s if n else None
            trip_results[name]["cpu_ms"] = 1000 * c / n if n else None
            if len(trip_results) == len(names):
                write_report(args, names, folders, syn_results, trip_results, started, timing, reference)
    if args.sheets:
        for path in write_sheets(backends, folders, args.out, args.frames):
            print(path)


if __name__ == "__main__":
    main()
