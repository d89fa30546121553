"""`inbetween-eval`: the paper's metrics table for several methods on the same cases."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .cases import CaseError, cases_from_manifest, cases_from_triplets
from .methods import MethodUnavailable, make_method
from .networks import load_networks
from .report import markdown, write_report
from .suite import evaluate

DEFAULT_TRIPLETS = Path(__file__).resolve().parents[1].parent / "shared" / "cartoon" / "triplets.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inbetween-eval",
        description="FVD, KVD, LPIPS, CLIP-img, CLIP-txt, CPBD, PSNR, SSIM and line/edge F per method and gap.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--triplets", help=f"triplets.json (default: {DEFAULT_TRIPLETS} when present)")
    source.add_argument("--manifest", help="a curation manifest.parquet: cases cut from its kept eval clips")
    parser.add_argument("--method", action="append", dest="methods", metavar="NAME",
                        help="crossfade, an engine backend (rife, tooncrafter, cel, ...) or NAME=DIR of predictions; repeatable")
    parser.add_argument("--gaps", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--quick", action="store_true", help="triplets: only the non-overlapping subset")
    parser.add_argument("--kinds", nargs="+", help="triplets: only these kinds (colour, line_art, ...)")
    parser.add_argument("--limit", type=int, help="at most this many cases")
    parser.add_argument("--out", default="eval_out", help="folder for metrics.{csv,json,md}, frames.csv and sheets/")
    parser.add_argument("--i3d-weights", help="I3D for FVD/KVD (default: <models dir>/evaluation/i3d_torchscript.pt)")
    parser.add_argument("--lpips-backbone-weights", help="AlexNet weights (default: <models dir>/evaluation/alexnet-owt-7be5be79.pth)")
    parser.add_argument("--lpips-heads-weights", help="LPIPS v0.1 heads (default: <models dir>/evaluation/lpips_alex_v0.1.pth)")
    parser.add_argument("--clip-weights", help="OpenCLIP weights (default: <models dir>/curation/open_clip_vit_l_14.bin)")
    parser.add_argument("--clip-architecture", default="ViT-L-14")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.manifest:
            cases = cases_from_manifest(args.manifest, gaps=args.gaps, limit=args.limit)
        else:
            triplets = args.triplets or DEFAULT_TRIPLETS
            if not os.path.exists(triplets):
                print(f"inbetween-eval: {triplets}: no triplets file (give --triplets or --manifest)", file=sys.stderr)
                return 2
            cases = cases_from_triplets(triplets, gaps=args.gaps, quick=args.quick, kinds=args.kinds, limit=args.limit)
    except CaseError as exc:
        print(f"inbetween-eval: {exc}", file=sys.stderr)
        return 2
    methods, unavailable = [], {}
    for spec in args.methods or ["crossfade", "rife"]:
        try:
            methods.append(make_method(spec))
        except MethodUnavailable as exc:
            unavailable[spec.split("=")[0]] = str(exc)
            print(f"inbetween-eval: {spec}: {exc}", file=sys.stderr)
    if not methods:
        return 2
    networks = load_networks(args.i3d_weights, args.lpips_backbone_weights, args.lpips_heads_weights, args.clip_weights,
                             args.clip_architecture, args.device)

    def progress(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        result = evaluate(cases, methods, networks, progress)
    except CaseError as exc:
        print(f"inbetween-eval: {exc}", file=sys.stderr)
        return 2
    result["unavailable"].update(unavailable)
    written = write_report(result, cases, args.out)
    print(markdown(result))
    print(f"wrote {', '.join(str(p) for p in written[:4])} and {len(written) - 4} contact sheet(s) under {args.out}")
    return 0
