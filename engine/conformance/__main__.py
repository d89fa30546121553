"""Command line of the conformance runner.

    python -m engine.conformance ../shared/reference/tiny_a [--case NAME ...] [-v]
    python -m engine.conformance ../shared/reference/tiny_a --runtime onnx [--export-dir DIR]
    python -m engine.conformance --manifest ../shared/reference/manifest_sketch_encoder.json

Exits 0 when everything passes, 1 on any failure (a case without a check counts as a failure),
2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys

from .runner import RUNTIMES, run_folder


def check_manifest(path: str, echo=print) -> bool:
    """Build the full-size model on the meta device and compare its state_dict with the manifest."""
    from engine.tooncrafter.model import build_meta_model
    from engine.tooncrafter.weights.manifest import compare_keys, load_manifest

    manifest = load_manifest(path)
    model = build_meta_model(manifest.kind)
    actual = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    report = compare_keys(manifest.shapes, actual)
    echo(f"manifest {path}: {manifest.kind}, {len(manifest.shapes)} keys expected, {len(actual)} built")
    echo(f"  missing: {len(report.missing)}  unexpected: {len(report.unexpected)}  mis-shaped: {len(report.mismatched)}")
    if not report.ok:
        for line in report.summary(limit=10).splitlines():
            echo("  " + line)
    echo("PASS" if report.ok else "FAIL")
    return report.ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.conformance", description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="case folder (cases.json, cases.safetensors, weights)")
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    parser.add_argument("--manifest", action="append", help="check the full-size model against a manifest JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="per-tensor differences and tracebacks")
    parser.add_argument(
        "--runtime", choices=RUNTIMES, default="torch",
        help="run the model cases on PyTorch (default) or on ONNX Runtime (the tiny models are exported first)",
    )
    parser.add_argument("--export-dir", help="with --runtime onnx: keep (and reuse) the tiny export here")
    args = parser.parse_args(argv)
    if not args.folder and not args.manifest:
        parser.error("give a case folder and/or --manifest FILE")
    ok = True
    for path in args.manifest or []:
        try:
            ok = check_manifest(path) and ok
        except (OSError, ValueError) as exc:
            print(f"FAIL  manifest {path}: {exc}")
            ok = False
    if args.folder:
        try:
            results = run_folder(
                args.folder, cases=args.case, verbose=args.verbose, runtime=args.runtime, export_dir=args.export_dir
            )
        except (OSError, KeyError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        ok = ok and all(r.passed for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
