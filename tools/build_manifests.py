"""Regenerate the checkpoint manifests shipped in engine/tooncrafter/weights/manifests/ from the reference data.

The product must not read ../shared at runtime, so the key/shape lists are copied into the package
in a compact form. Run after the reference manifests change:

    .venv/bin/python tools/build_manifests.py [--reference ../shared/reference]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.tooncrafter.weights.manifest import BUNDLED, compact_manifest  # noqa: E402

SOURCES = {
    "tooncrafter_512_interp": "manifest_tooncrafter_512_interp.json",
    "sketch_encoder": "manifest_sketch_encoder.json",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=REPO.parent / "shared" / "reference")
    args = parser.parse_args(argv)
    for name, filename in SOURCES.items():
        reference = json.loads((args.reference / filename).read_text())
        target = BUNDLED[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(compact_manifest(reference, name), separators=(",", ":")) + "\n")
        os.replace(tmp, target)
        print(f"{target.relative_to(REPO)}: {len(reference['entries'])} keys")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
