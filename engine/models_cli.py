"""`inbetween models ...`: see, check, import and download the ToonCrafter weights.

    inbetween models list                 what the store holds and what can be downloaded
    inbetween models verify FILE          is FILE a usable ToonCrafter / sketch encoder / OpenCLIP file?
    inbetween models import FILE [--clip F]  convert FILE to fp16 safetensors in the store
    inbetween models download [NAME ...]  fetch known files (resumable, sha256-checked)
    inbetween models export-onnx [--fp16]  export the installed weights for ONNX Runtime (--runtime onnx)

The lead's CLI calls `register(subparsers)` and `run(args)`.
"""

from __future__ import annotations

import argparse
import sys
import time

from .api import EngineError


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from .tooncrafter.weights.store import KNOWN_FILES

    parser = subparsers.add_parser(
        "models",
        help="manage ToonCrafter weights",
        description="See, check, import and download the ToonCrafter weights (the model store).",
    )
    store_help = "model store folder (default: $INBETWEENER_MODELS or your data folder)"
    parser.add_argument("--models-dir", help=store_help)
    # Also accepted after the subcommand (`inbetween models list --models-dir D`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--models-dir", default=argparse.SUPPRESS, help=store_help)
    sub = parser.add_subparsers(
        dest="models_command", required=True, metavar="{list,verify,import,download,export-onnx}"
    )
    sub.add_parser("list", parents=[common], help="show the model store and the known downloads")
    verify = sub.add_parser("verify", parents=[common], help="check a weights file against the expected keys and shapes")
    verify.add_argument("file")
    verify.add_argument("--sha256", help="also check the file's sha256")
    imp = sub.add_parser("import", parents=[common], help="convert a weights file to fp16 safetensors in the store")
    imp.add_argument("file")
    imp.add_argument("--clip", help="OpenCLIP ViT-H-14 file to merge into a pruned checkpoint")
    imp.add_argument("--precision", choices=("fp16", "bf16", "fp32"), default="fp16")
    down = sub.add_parser("download", parents=[common], help="download known weights (resumes, checks sha256)")
    down.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"any of {', '.join(KNOWN_FILES)} (default: tooncrafter sketch-encoder)",
    )
    down.add_argument("--quiet", action="store_true", help="no progress output")
    export = sub.add_parser(
        "export-onnx", parents=[common],
        help="export the installed weights to ONNX in the model store (for --runtime onnx)",
        description="Export the installed ToonCrafter weights (and the sketch encoder when installed) to ONNX "
        "files in the model store, next to the weights. Resumes an interrupted export; see docs/onnx.md.",
    )
    export.add_argument("--fp16", action="store_true", help="float16 weights (for the CUDA provider; default float32)")
    export.add_argument("--checkpoint", help="weights file or store name to export (default: the store's best)")
    export.add_argument("--sketch-checkpoint", help="sketch encoder weights (default: the store's, when installed)")
    export.add_argument("--model-config", help="a reference config.json for weights of another architecture "
                        "(tiny test models); default: the released model")
    export.add_argument("--force", action="store_true", help="replace an existing export of these weights")
    export.add_argument("--check", action="store_true", help="also run every graph in onnxruntime against PyTorch")
    return parser


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.1f} GB"


class _Progress:
    """A progress line on stderr: rewritten in place on a terminal, every 10 % otherwise."""

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label = label
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = -1.0
        self.started = time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        if self.quiet:
            return
        fraction = done / total if total else None
        if self.tty:
            pct = f"{100 * fraction:5.1f}%" if fraction is not None else ""
            print(f"\r{self.label}: {_size(done)} of {_size(total)} {pct}", end="", file=sys.stderr, flush=True)
        elif fraction is not None and fraction - self.last >= 0.1:
            self.last = fraction
            print(f"{self.label}: {100 * fraction:.0f}%", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty and not self.quiet:
            print(file=sys.stderr)


def _list(store) -> int:
    from .tooncrafter.weights.store import KNOWN_FILES, locate_weights

    print(f"model store: {store.root}")
    present = {f.path.name: f for f in store.files()}
    for known in KNOWN_FILES.values():
        stored = present.pop(known.filename, None)
        state = f"installed, {_size(stored.size)}" if stored else "not installed"
        print(f"  {known.name:<20} {known.filename:<44} {state}")
        print(f"  {'':<20} {known.description}")
    for name, stored in present.items():
        print(f"  {'(other)':<20} {name:<44} {_size(stored.size)} {stored.kind or ''}")
    try:
        files = locate_weights(store)
        print(f"tooncrafter backend would load: {files.tooncrafter.name}"
              + (f" + {files.clip.name}" if files.clip else ""))
        print(f"sketch guidance: {files.sketch_encoder.name if files.sketch_encoder else 'not installed'}")
    except EngineError as exc:
        print(f"tooncrafter backend: unavailable: {exc}")
    _list_exports(store)
    return 0


def _list_exports(store) -> None:
    import json

    from .tooncrafter.runtimes.onnx_folder import PARTIAL_NAME, STORE_SUBDIR, store_exports

    exports = store_exports(store.root)
    base = store.root / STORE_SUBDIR
    unfinished = sorted(p for p in base.iterdir() if (p / PARTIAL_NAME).is_file()) if base.is_dir() else []
    if not exports and not unfinished:
        print("ONNX exports: none (`inbetween models export-onnx` makes one for --runtime onnx)")
        return
    print(f"ONNX exports in {base}:")
    for folder in exports:
        manifest = json.loads((folder / "onnx_export.json").read_text(encoding="utf-8"))
        graphs = manifest.get("graphs", {})
        size = sum(g.get("bytes", 0) for g in graphs.values())
        sketch = "with sketch guidance" if "unet_sketch" in graphs else "without sketch guidance"
        print(f"  {folder.name:<44} {manifest.get('precision', '?')}, {len(graphs)} graphs, {_size(size)}, {sketch}")
    for folder in unfinished:
        if folder not in exports:
            print(f"  {folder.name:<44} unfinished: `inbetween models export-onnx` resumes it")


def _verify(args) -> int:
    from .tooncrafter.weights.checkpoint import verify_file
    from .tooncrafter.weights.store import sha256_of

    verified = verify_file(args.file)
    dtypes = ", ".join(f"{n} {d}" for d, n in verified.dtypes.items())
    print(f"{verified.path}: OK, {verified.kind}, {verified.tensors} tensors, {verified.elements:,} elements ({dtypes})")
    if args.sha256:
        actual = sha256_of(verified.path)
        if actual.lower() != args.sha256.lower():
            print(f"{verified.path}: sha256 {actual} does not match {args.sha256}", file=sys.stderr)
            return 1
        print(f"sha256 matches: {actual}")
    return 0


def _import(store, args) -> int:
    import torch

    from .tooncrafter.weights.store import import_weights

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.precision]
    progress = _Progress("converting")
    path, kind, sha = import_weights(store, args.file, clip_path=args.clip, dtype=dtype,
                                     progress=lambda done, total: progress(done, total))
    progress.close()
    print(f"imported {args.file} as {path} ({kind}, {args.precision}, sha256 {sha})")
    return 0


def _download(store, args) -> int:
    from .tooncrafter.weights.store import KNOWN_FILES, download_known

    names = args.names or ["tooncrafter", "sketch-encoder"]
    unknown = [n for n in names if n not in KNOWN_FILES]
    if unknown:
        print(f"inbetween models: unknown name {', '.join(unknown)}: choose from {', '.join(KNOWN_FILES)}", file=sys.stderr)
        return 2
    for name in names:
        known = KNOWN_FILES[name]
        print(f"downloading {name} from {known.url} to {store.path(known.filename)}")
        progress = _Progress(name, quiet=args.quiet)
        try:
            path, sha = download_known(store, name, progress=progress)
        finally:
            progress.close()
        if known.sha256:
            print(f"{path.name}: sha256 verified ({sha})")
        else:
            print(f"{path.name}: no published sha256 to check against; recorded the computed sha256 {sha}")
    return 0


def _export_onnx(store, args) -> int:
    from export_onnx.exporter import ExportError, ExportSettings, export_folder, graphs_for
    from export_onnx.sources import from_checkpoint

    from .tooncrafter.runtimes.onnx_folder import MANIFEST_NAME, store_export_folder
    from .tooncrafter.weights.store import locate_weights

    files = locate_weights(store, args.checkpoint, args.sketch_checkpoint)
    precision = "fp16" if args.fp16 else "fp32"
    folder = store_export_folder(store.root, files.tooncrafter, precision)
    if (folder / MANIFEST_NAME).is_file() and not args.force:
        print(f"{files.tooncrafter.name} is already exported ({precision}) in {folder}; --force exports it again")
        return 0
    parts = ["clip", "resampler", "vae", "unet"] + (["sketch"] if files.sketch_encoder else [])
    print(f"exporting {files.tooncrafter.name}" + (f" and {files.sketch_encoder.name}" if files.sketch_encoder else "")
          + f" ({precision}) to {folder}")
    if not files.sketch_encoder:
        print("  the sketch encoder is not installed: the export will run without sketch guidance")
    config = None
    if args.model_config:
        import json
        from pathlib import Path

        from .tooncrafter.networks.config import tiny_from_reference

        config = tiny_from_reference(json.loads(Path(args.model_config).read_text(encoding="utf-8")))
    try:
        source = from_checkpoint(files.tooncrafter, files.clip, files.sketch_encoder, precision, config)
        _, results = export_folder(
            folder, source, None, graphs_for(parts), ExportSettings(check=args.check), force=args.force,
            report=lambda line: print("  " + line, flush=True),
        )
    except ExportError as exc:
        raise EngineError(str(exc)) from None
    failed = [r for r in results if not r.passed]
    if failed:
        print(f"{len(failed)} of {len(results)} checks failed: the export is not trustworthy", file=sys.stderr)
        return 1
    print(f"done: `--runtime onnx` (or auto) now finds {folder.name}")
    return 0


def run(args: argparse.Namespace) -> int:
    from .tooncrafter.weights.store import ModelStore

    store = ModelStore(getattr(args, "models_dir", None))
    try:
        if args.models_command == "list":
            return _list(store)
        if args.models_command == "verify":
            return _verify(args)
        if args.models_command == "import":
            return _import(store, args)
        if args.models_command == "export-onnx":
            return _export_onnx(store, args)
        return _download(store, args)
    except EngineError as exc:
        print(f"inbetween models: error: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inbetween")
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
