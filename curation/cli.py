"""`inbetween-data curate VIDEOS... --out DATASET`: the curation pipeline's command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields

from .config import CurationConfig
from .runner import MANIFEST_NAME, SUMMARY_NAME, curate, format_summary
from .video import find_videos

#: Config fields given on the command line as --<field with dashes>.
_THRESHOLDS = ("cut_threshold", "min_shot_frames", "min_clip_frames", "max_clip_frames", "min_motion", "max_text_area",
               "min_aesthetic", "min_text_video_similarity", "eval_fraction", "analysis_width")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inbetween-data", description="Curate cartoon footage into a training manifest.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("curate", help="split, filter, caption and score clips; write manifest.parquet")
    run.add_argument("videos", nargs="+", help="video files or folders (searched recursively)")
    run.add_argument("--out", required=True, help="dataset folder (manifest.parquet, summary.json; re-running resumes)")
    defaults = CurationConfig()
    for name in _THRESHOLDS:
        kind = type(getattr(defaults, name))
        run.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(defaults, name), metavar=kind.__name__.upper())
    for key in ("clip", "aesthetic", "craft", "captioner"):
        run.add_argument(f"--{key}-weights", metavar="PATH", help=f"{key} weights (default: the model store's curation/ folder)")
    run.add_argument("--clip-architecture", default=defaults.clip_architecture,
                     help="open_clip architecture name or config JSON of --clip-weights (default ViT-L-14)")
    run.add_argument("--no-captions", action="store_true", help="do not caption (and so skip caption alignment)")
    run.add_argument("--device", default="cpu", help="torch device for the networks in local runs (cpu, cuda)")
    run.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="local worker processes")
    run.add_argument("--ray", metavar="ADDRESS", help="run the stages on a Ray cluster (an address, or 'auto')")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    known = {f.name for f in fields(CurationConfig)}
    options = {name: getattr(args, name) for name in _THRESHOLDS}
    options.update({f"{key}_weights": getattr(args, f"{key}_weights") for key in ("clip", "aesthetic", "craft", "captioner")})
    options.update(clip_architecture=args.clip_architecture, captions=not args.no_captions, device=args.device)
    try:
        config = CurationConfig(**{k: v for k, v in options.items() if k in known})
    except ValueError as exc:
        print(f"inbetween-data: {exc}", file=sys.stderr)
        return 2
    videos = find_videos(args.videos)
    missing = [v for v in videos if not os.path.exists(v)]
    for path in missing:
        print(f"inbetween-data: {path}: no such file (skipped)", file=sys.stderr)
    videos = [v for v in videos if v not in missing]
    if not videos:
        print("inbetween-data: no videos to curate", file=sys.stderr)
        return 2
    summary = curate(videos, args.out, config, workers=args.workers, ray_address=args.ray, progress=not args.no_progress)
    print(json.dumps(summary, indent=1) if args.json else format_summary(summary))
    print(f"manifest: {os.path.join(args.out, MANIFEST_NAME)}  summary: {os.path.join(args.out, SUMMARY_NAME)}")
    return 0
