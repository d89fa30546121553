"""Make a small synthetic cartoon clip set: flat colours and ink outlines on moving shapes.

Each clip is a folder of numbered PNGs (or, with --video, an .mp4 read through PyAV) showing a few
cel-style shapes — discs, boxes, triangles with a flat fill and a dark ink line — gliding and
turning over a flat background, with a caption file beside it. `--manifest` also writes the
curation pipeline's Parquet manifest for the set (all clips kept, the last one in the eval split).

    python tools/make_synthetic_clips.py OUT --clips 8 --frames 24 --size 128x64
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PALETTE = [(230, 80, 60), (60, 140, 220), (250, 200, 60), (90, 190, 110), (200, 110, 210), (240, 150, 90)]
BACKGROUNDS = [(245, 240, 225), (220, 235, 245), (235, 245, 220), (250, 230, 235)]
INK = (30, 25, 35)
SHAPES = ("disc", "box", "triangle")


def _shape_points(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    corners = {"box": 4, "triangle": 3}[kind]
    return [(cx + r * math.cos(angle + 2 * math.pi * k / corners), cy + r * math.sin(angle + 2 * math.pi * k / corners))
            for k in range(corners)]


def draw_clip(rng: np.random.Generator, frames: int, width: int, height: int) -> list[np.ndarray]:
    """One clip: (H, W, 3) uint8 frames, anti-aliased by drawing at 4× and downsampling."""
    s = 4
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    actors = []
    for _ in range(int(rng.integers(1, 4))):
        r = float(rng.uniform(0.12, 0.25) * height)
        start = np.array([rng.uniform(r, width - r), rng.uniform(r, height - r)])
        end = np.array([rng.uniform(r, width - r), rng.uniform(r, height - r)])
        actors.append({
            "kind": SHAPES[rng.integers(len(SHAPES))], "r": r, "start": start, "end": end,
            "fill": PALETTE[rng.integers(len(PALETTE))], "spin": float(rng.uniform(-1.5, 1.5)),
            "arc": float(rng.uniform(-0.3, 0.3) * height),
        })
    out = []
    for f in range(frames):
        u = f / max(frames - 1, 1)
        ease = 0.5 - 0.5 * math.cos(math.pi * u)  # slow in, slow out, as an animator times it
        image = Image.new("RGB", (width * s, height * s), background)
        d = ImageDraw.Draw(image)
        for a in actors:
            cx, cy = a["start"] + (a["end"] - a["start"]) * ease
            cy += a["arc"] * math.sin(math.pi * ease)
            r = a["r"]
            if a["kind"] == "disc":
                d.ellipse([(cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s], fill=a["fill"], outline=INK, width=2 * s)
            else:
                points = [(x * s, y * s) for x, y in _shape_points(a["kind"], cx, cy, r, a["spin"] * ease)]
                d.polygon(points, fill=a["fill"], outline=INK, width=2 * s)
        out.append(np.asarray(image.resize((width, height), Image.Resampling.BOX), dtype=np.uint8))
    return out


def _write_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_clips(out: str | Path, clips: int = 8, frames: int = 24, width: int = 128, height: int = 64, seed: int = 0,
               video: bool = False, fps: int = 24, manifest: bool = False) -> list[Path]:
    """Write the clip set under `out`; returns the clip paths (PNG folders or videos)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(clips):
        images = draw_clip(rng, frames, width, height)
        name = f"clip_{index:03d}"
        caption = "a cartoon of simple shapes moving"
        if video:
            path = out / f"{name}.mp4"
            _write_video(path, images, fps)
            path.with_suffix(".txt").write_text(caption)
        else:
            path = out / name
            path.mkdir(exist_ok=True)
            for f, image in enumerate(images):
                Image.fromarray(image).save(path / f"{f:04d}.png")
            (path / "caption.txt").write_text(caption)
        paths.append(path)
    if manifest:
        import pandas as pd

        rows = [{
            "clip_id": p.stem, "source": p.name, "start_frame": 0, "end_frame": frames, "fps": float(fps),
            "width": width, "height": height, "split": "eval" if i == clips - 1 and clips > 1 else "train",
            "kept": True, "reject_reason": "", "caption": "a cartoon of simple shapes moving", "motion_score": 1.0,
        } for i, p in enumerate(paths)]
        pd.DataFrame(rows).to_parquet(out / "manifest.parquet", index=False)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", default="128x64", help="WIDTHxHEIGHT (default 128x64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video", action="store_true", help="write .mp4 files instead of PNG folders")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--manifest", action="store_true", help="also write manifest.parquet (curation layout)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    for path in make_clips(args.out, args.clips, args.frames, width, height, args.seed, args.video, args.fps, args.manifest):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
