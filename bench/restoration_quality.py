"""Full-resolution restoration against plain bicubic enlargement, on sequences with exact truth.

What the ToonCrafter backend does to big keys: it fits them onto its 512×320 canvas, the model draws
there, and the frames are enlarged back (bicubic). This benchmark needs no weights: it takes the true
in-between, brings it onto the canvas and degrades it the way the model's VAE round trip does (the
"simulated model output"), then compares, against the full-resolution truth:
  bicubic   the simulated output enlarged to the keys' size (what the backend hands over today)
  restored  the same frame through the pipeline stage (engine/restoration, restore_detail=auto)

Degradation model (deterministic per case): area-downscale onto the canvas, dark thin lines thinned
(35 % of each line pixel replaced by its lighter 3×3 neighbourhood), Gaussian blur σ = 0.7 px,
per-channel gain ±3 % and offset ±5 levels of colour drift, Gaussian noise σ = 1.5 levels.

Sets
  cel    tools/synthetic_cel.py, all motions rendered at 1920×1080 (the transparent one as RGBA);
         keys at τ = 0 and 1, in-betweens at τ = 1/4, 1/2, 3/4
  anime  shared/cartoon ToonCrafter output sequences (512×320) enlarged ×2, ×3 and ×3.75 (Lanczos)
         as keys and truth; keys = frames i and i + 4, truth the frame between at i + 2
Metrics
  psnr     dB over RGB (RGBA over grey 128), the shared scorer's definition
  line_f   the shared scorer's dark-line F-score (shared/tools/score_inbetweens.py, imported), its
           line-finding disc scaled with the frame height (see line_scale)
  cpbd     CPBD-style sharpness (Narvekar & Karam 2011): share of edge pixels whose width is within
           the just-noticeable-blur width (higher = sharper; the truth's own value is the reference)
  pal_err  share of the truth's flat-area pixels whose colour is more than 6 levels from the keys'
           palette (flat-colour sets only; lower is better)
  key line_f   "self-consistency": line_f of a key itself sent through the same canvas round trip
           and restored at τ = 0; the in-betweens' target is ≥ 0.9 of it

    .venv/bin/python bench/restoration_quality.py                      # both sets, sheets in out/restoration/
    .venv/bin/python bench/restoration_quality.py --sets cel --quick    # τ = 1/2 only
    .venv/bin/python bench/restoration_quality.py --screenshots docs/screenshots   # also the README crops
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.api import GenerationSettings  # noqa: E402
from engine.restoration import restore_inbetweens  # noqa: E402
from engine.restoration.palette import extract_palette  # noqa: E402
from engine.tooncrafter.fitting import fit_to_canvas  # noqa: E402

SHARED = Path(os.environ.get("INBETWEENER_SHARED", REPO.parent / "shared"))
CANVAS = (512, 320)
CEL_SIZE = (1920, 1080)
ANIME_SCALES = (2.0, 3.0, 3.75)


def scorer():
    """The shared scorer, imported from shared/ (never copied into the repository)."""
    path = SHARED / "tools" / "score_inbetweens.py"
    if not path.exists():
        sys.exit(f"{path} is missing: the scorer sits in shared/ beside the repository")
    spec = importlib.util.spec_from_file_location("score_inbetweens", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- the model's output
def simulate_model_output(truth: np.ndarray, seed: int) -> np.ndarray:
    """The true in-between as the backend would hand it over: onto the canvas, degraded like the VAE
    round trip, enlarged back to the keys' size (bicubic), straight-alpha RGBA uint8."""
    rng = np.random.default_rng(seed)
    height, width = truth.shape[:2]
    fit = fit_to_canvas(width, height, *CANVAS)
    rgba = truth if truth.shape[-1] == 4 else np.dstack([truth, np.full((height, width), 255, np.uint8)])
    work = rgba.astype(np.float32)
    work[..., :3] *= work[..., 3:4] / 255.0
    low = cv2.resize(work, (fit.fitted_width, fit.fitted_height), interpolation=cv2.INTER_AREA)
    rgb, alpha = low[..., :3], low[..., 3:4]
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32) + (255.0 - alpha[..., 0]) * 0.5
    kernel = np.ones((3, 3), np.uint8)
    thin = np.clip((cv2.morphologyEx(luma, cv2.MORPH_CLOSE, kernel) - luma) / 120.0, 0.0, 1.0)[..., None] * 0.35
    rgb = rgb * (1 - thin) + cv2.dilate(rgb, kernel) * thin
    low = cv2.GaussianBlur(np.concatenate([rgb, alpha], -1), (0, 0), 0.7)
    gain = 1.0 + rng.uniform(-0.03, 0.03, 3).astype(np.float32)
    offset = rng.uniform(-5, 5, 3).astype(np.float32)
    low[..., :3] = low[..., :3] * gain + offset * (low[..., 3:4] / 255.0) + rng.normal(0, 1.5, low[..., :3].shape)
    low[..., 3] = np.clip(low[..., 3], 0, 255)
    low[..., :3] = np.clip(low[..., :3], 0, low[..., 3:4])
    up = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    up[..., 3] = np.clip(up[..., 3], 0, 255)
    up[..., :3] = np.clip(up[..., :3], 0, up[..., 3:4])
    out = np.zeros((height, width, 4), np.uint8)
    safe = np.maximum(up[..., 3:4], 1e-3)
    out[..., :3] = np.clip(np.round(np.where(up[..., 3:4] > 0.5, up[..., :3] * 255.0 / safe, 0)), 0, 255)
    out[..., 3] = np.clip(np.round(up[..., 3]), 0, 255)
    return out


# ----------------------------------------------------------------------------------- the metrics
def cpbd(rgb: np.ndarray, samples: int = 6000) -> float:
    """CPBD-style sharpness: the share of Canny edge pixels whose edge width (Marziliano: between
    the luma extrema either side, along the dominant gradient axis) gives a blur probability at most
    63 % against the just-noticeable-blur width (5 px up to contrast 50, else 3 px), β = 3.6."""
    luma = (rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    edges = cv2.Canny(np.clip(luma, 0, 255).astype(np.uint8), 60, 160)
    ys, xs = np.nonzero(edges)
    if len(ys) == 0:
        return 0.0
    step = max(1, len(ys) // samples)
    ys, xs = ys[::step], xs[::step]
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0)[ys, xs]
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1)[ys, xs]
    horizontal = np.abs(gx) >= np.abs(gy)
    sign = np.where(horizontal, np.sign(gx), np.sign(gy))
    h, w = luma.shape
    widths = np.zeros(len(ys), np.float32)
    extremes = []
    for direction in (1, -1):  # walk up the edge (towards brighter) and down it
        previous = luma[ys, xs]
        going = np.ones(len(ys), bool)
        distance = np.zeros(len(ys), np.float32)
        for k in range(1, 31):
            yy = np.clip(ys + np.where(horizontal, 0, direction * k), 0, h - 1)
            xx = np.clip(xs + np.where(horizontal, direction * k, 0), 0, w - 1)
            value = luma[yy, xx]
            rising = (value - previous) * sign * direction > 0
            going &= rising
            distance += going
            previous = np.where(going, value, previous)
        widths += distance
        extremes.append(previous)
    contrast = np.abs(extremes[0] - extremes[1])
    jnb = np.where(contrast <= 50, 5.0, 3.0)
    p_blur = 1.0 - np.exp(-((np.maximum(widths, 1.0) / jnb) ** 3.6))
    return float((p_blur <= 0.63).mean())


def palette_error(image: np.ndarray, truth: np.ndarray, palette) -> float | None:
    """Share of the truth's flat pixels (opaque, 5×5 luma range ≤ 2) whose colour in `image` is more
    than 6 levels from the palette."""
    if palette is None or len(palette.colours) == 0:
        return None
    luma = truth[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    kernel = np.ones((5, 5), np.uint8)
    flat = (cv2.dilate(luma, kernel) - cv2.erode(luma, kernel) <= 2.0)
    if truth.shape[-1] == 4:
        flat &= truth[..., 3] == 255
    colours = image[..., :3][flat][::7].astype(np.float32)
    _, distance = palette.nearest(colours)
    return float((distance > 6.0).mean())


# ------------------------------------------------------------------------------------ the cases
@dataclass
class Case:
    name: str
    key_a: np.ndarray
    key_b: np.ndarray
    tau: float
    truth: np.ndarray


def _rgba(image: np.ndarray) -> np.ndarray:
    return image if image.shape[-1] == 4 else np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])


def cel_cases(quick: bool) -> list[Case]:
    sys.path.insert(0, str(REPO / "tools"))
    import synthetic_cel

    taus = [0.5] if quick else [0.25, 0.5, 0.75]
    cases = []
    for motion in synthetic_cel.MOTIONS:
        scene = synthetic_cel.build(motion, seed=0)
        frames = {tau: _rgba(synthetic_cel.render(scene, tau, CEL_SIZE).image) for tau in [0.0, 1.0, *taus]}
        for tau in taus:
            cases.append(Case(f"{motion}@{tau:.2f}", frames[0.0], frames[1.0], tau, frames[tau]))
    return cases


def anime_cases(quick: bool) -> list[Case]:
    spec = json.loads((SHARED / "cartoon" / "triplets.json").read_text())
    chosen = [c for c in spec["cases"] if c["gap"] == 4 and c["start_index"] % (8 if quick else 4) == 0]
    cases = []
    for n, case in enumerate(chosen):
        scale = ANIME_SCALES[n % len(ANIME_SCALES)]

        def load(relative: str, scale: float = scale) -> np.ndarray:
            image = cv2.cvtColor(cv2.imread(str(SHARED / "cartoon" / relative), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            big = cv2.resize(image, (round(512 * scale), round(320 * scale)), interpolation=cv2.INTER_LANCZOS4)
            return np.dstack([big, np.full(big.shape[:2], 255, np.uint8)])

        middle = case["gt"][len(case["gt"]) // 2]
        tau = case["gt_t"][len(case["gt"]) // 2]
        cases.append(Case(f"{case['id']}×{scale:g}", load(case["start"]), load(case["end"]), tau, load(middle)))
    return cases


# ------------------------------------------------------------------------------------------ run
def line_scale(sc, truth: np.ndarray) -> None:
    """The scorer's line masks find dark lines up to ~6 px wide at its native 512×320; at a larger
    frame size the same lines are proportionally wider, so its closing disc is scaled with the
    frame height (7 px at 320 rows, 23 px at 1080). The 2 px matching tolerance is kept."""
    sc.LINE_KERNEL = 2 * max(3, round(3 * truth.shape[0] / 320)) + 1


def score(sc, image: np.ndarray, truth: np.ndarray, palette) -> dict:
    return {"psnr": sc.psnr(sc.to_rgb(truth), sc.to_rgb(image)), "line_f": line_f(sc, image, truth),
            "cpbd": cpbd(image), "pal_err": palette_error(image, truth, palette)}


def line_f(sc, image: np.ndarray, truth: np.ndarray) -> float:
    """The scorer's line F-score (its own functions, threshold from the truth), disc scaled."""
    line_scale(sc, truth)
    g = sc.to_rgb(truth)
    threshold = sc.line_threshold(g)
    return sc.fscore(sc.line_mask(g, threshold), sc.line_mask(sc.to_rgb(image), threshold))


def restore(case: Case, frame: np.ndarray, tau: float) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = restore_inbetweens(case.key_a, case.key_b, [frame], [tau], GenerationSettings(), draws_at=CANVAS)[0]
    return out, time.perf_counter() - start


def crop_sheet(case: Case, images: list[np.ndarray], size: tuple[int, int] = (480, 300)) -> np.ndarray:
    """truth | bicubic | restored, 100 % crops around the place where they differ most."""
    diff = np.abs(images[1][..., :3].astype(int) - images[0][..., :3].astype(int)).sum(-1).astype(np.float32)
    diff = cv2.boxFilter(diff, -1, size)
    y, x = np.unravel_index(int(diff.argmax()), diff.shape)
    h, w = images[0].shape[:2]
    top = int(np.clip(y - size[1] // 2, 0, h - size[1]))
    left = int(np.clip(x - size[0] // 2, 0, w - size[0]))
    tiles = []
    for image in images:
        tile = image[top : top + size[1], left : left + size[0]]
        if tile.shape[-1] == 4:  # transparent art over a checkerboard, as a paint program shows it
            yy, xx = np.mgrid[0 : tile.shape[0], 0 : tile.shape[1]]
            board = np.where(((yy // 12 + xx // 12) % 2)[..., None] == 0, 200.0, 240.0)
            a = tile[..., 3:4].astype(np.float32) / 255.0
            tile = np.clip(tile[..., :3] * a + board * (1 - a), 0, 255).astype(np.uint8)
        tiles.append(np.pad(tile[..., :3], ((0, 0), (0, 4), (0, 0)), constant_values=255))
    return np.concatenate(tiles, 1)


def run_set(name: str, cases: list[Case], out_dir: Path, flat_art: bool) -> dict:
    sc = scorer()
    rows = []
    for n, case in enumerate(cases):
        palette = extract_palette(case.key_a, case.key_b) if flat_art else None
        frame = simulate_model_output(case.truth, seed=n)
        restored, seconds = restore(case, frame, case.tau)
        key_seen = simulate_model_output(case.key_a, seed=1000 + n)
        key_back, _ = restore(case, key_seen, 1e-3)
        row = {
            "case": case.name,
            "size": f"{case.truth.shape[1]}x{case.truth.shape[0]}",
            "seconds": seconds,
            "truth_cpbd": cpbd(case.truth),
            "bicubic": score(sc, frame, case.truth, palette),
            "restored": score(sc, restored, case.truth, palette),
            "key_line_f": line_f(sc, key_back, case.key_a),
        }
        rows.append(row)
        print(f"  {name} {case.name:28s} {row['size']:>9s}  psnr {row['bicubic']['psnr']:6.2f} -> {row['restored']['psnr']:6.2f}"
              f"  line_f {row['bicubic']['line_f']:.3f} -> {row['restored']['line_f']:.3f} (key {row['key_line_f']:.3f})"
              f"  cpbd {row['bicubic']['cpbd']:.3f} -> {row['restored']['cpbd']:.3f} (truth {row['truth_cpbd']:.3f})"
              f"  {seconds:5.1f} s", flush=True)
        sheet = crop_sheet(case, [case.truth, frame, restored])
        safe = case.name.replace("/", "_").replace("@", "_").replace("×", "x")
        cv2.imwrite(str(out_dir / f"{name}_{safe}.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return {"rows": rows, "summary": summarise(rows)}


def summarise(rows: list[dict]) -> dict:
    def mean(path):
        values = [r for r in (p(row) for row in rows for p in [path]) if r is not None]
        return float(np.mean(values)) if values else None

    summary = {"n": len(rows)}
    for method in ("bicubic", "restored"):
        summary[method] = {k: mean(lambda r, k=k, m=method: r[m][k]) for k in ("psnr", "line_f", "cpbd", "pal_err")}
    summary["truth_cpbd"] = mean(lambda r: r["truth_cpbd"])
    summary["key_line_f"] = mean(lambda r: r["key_line_f"])
    summary["psnr_gain_db"] = summary["restored"]["psnr"] - summary["bicubic"]["psnr"]
    summary["line_f_vs_keys"] = summary["restored"]["line_f"] / max(summary["key_line_f"], 1e-9)
    summary["seconds_per_frame"] = mean(lambda r: r["seconds"])
    return summary


def table(results: dict) -> list[str]:
    lines = ["| set | frames | method | PSNR dB | line F | CPBD | palette error |", "|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        s = result["summary"]
        for method in ("bicubic", "restored"):
            m = s[method]
            pal = "—" if m["pal_err"] is None else f"{m['pal_err']:.3f}"
            lines.append(f"| {name} | {s['n']} | {method} | {m['psnr']:.2f} | {m['line_f']:.3f} | {m['cpbd']:.3f} | {pal} |")
        lines.append(f"| {name} | | truth / keys | | key self-consistency {s['key_line_f']:.3f} | {s['truth_cpbd']:.3f} | |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="*", choices=("cel", "anime"), default=["cel", "anime"])
    ap.add_argument("--quick", action="store_true", help="fewer cases (cel: τ = 1/2 only; anime: every 8th start)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "restoration", help="contact sheets and results.json")
    ap.add_argument("--screenshots", type=Path, help="also copy two synthetic-art crops here (for the README)")
    args = ap.parse_args()
    cv2.setNumThreads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    if "cel" in args.sets:
        results["cel"] = run_set("cel", cel_cases(args.quick), args.out, flat_art=True)
    if "anime" in args.sets:
        if not (SHARED / "cartoon" / "triplets.json").exists():
            print(f"skipping the anime set: {SHARED / 'cartoon'} is not present")
        else:
            results["anime"] = run_set("anime", anime_cases(args.quick), args.out, flat_art=False)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print()
    for name, result in results.items():
        s = result["summary"]
        print(f"{name}: {s['psnr_gain_db']:+.2f} dB over bicubic, line F {s['line_f_vs_keys']:.2f} of the keys' "
              f"self-consistency, {s['seconds_per_frame']:.1f} s per frame")
    print("\n".join(table(results)))
    if args.screenshots and "cel" in results:
        args.screenshots.mkdir(parents=True, exist_ok=True)
        for name in ("cel_arm_swing_0.50.png", "cel_transparent_0.50.png"):
            source = args.out / name
            if source.exists():
                (args.screenshots / f"restoration_{name.removeprefix('cel_')}").write_bytes(source.read_bytes())


if __name__ == "__main__":
    main()
