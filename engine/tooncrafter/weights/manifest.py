"""Expected keys and shapes of the official checkpoints, shipped with the package.

A checkpoint is checked against its manifest BEFORE any tensor is loaded, so a wrong, truncated or
foreign file gets an error that names what is missing, unexpected or mis-shaped, instead of a
PyTorch traceback halfway through a 10 GB load.

The bundled manifests (engine/tooncrafter/weights/manifests/*.json) are generated at development time from
the reference manifests by tools/build_manifests.py; `load_manifest` also reads the reference format
directly (used by `python -m engine.conformance --manifest FILE`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

MANIFEST_DIR = Path(__file__).with_name("manifests")
BUNDLED = {
    "tooncrafter_512_interp": MANIFEST_DIR / "tooncrafter_512_interp.json",
    "sketch_encoder": MANIFEST_DIR / "sketch_encoder.json",
}

#: Prefixes of the two OpenCLIP towers inside the full checkpoint (absent from the pruned fp16 file).
CLIP_PREFIXES = ("cond_stage_model.", "embedder.")


@dataclass(frozen=True)
class Manifest:
    """Key -> shape of one checkpoint kind, plus which keys are buffers and which go unused."""

    name: str
    shapes: dict[str, tuple[int, ...]]
    buffers: frozenset[str] = frozenset()
    unused: frozenset[str] = frozenset()
    dtype: str = "float32"

    @property
    def kind(self) -> str:
        """'tooncrafter' (the interpolation model) or 'sketch_encoder' (the sketch ControlNet)."""
        if any(key.startswith("model.diffusion_model.") for key in self.shapes):
            return "tooncrafter"
        if "input_hint_block.0.weight" in self.shapes:
            return "sketch_encoder"
        return "unknown"

    def numel(self, keys: Iterable[str] | None = None) -> int:
        total = 0
        for key in self.shapes if keys is None else keys:
            n = 1
            for d in self.shapes[key]:
                n *= d
            total += n
        return total

    def without_prefixes(self, prefixes: tuple[str, ...]) -> "Manifest":
        """The manifest of a pruned file (e.g. kijai's fp16 file without the CLIP towers)."""
        keep = {k: v for k, v in self.shapes.items() if not k.startswith(prefixes)}
        return Manifest(self.name + "-pruned", keep, self.buffers & keep.keys(), self.unused & keep.keys(), self.dtype)

    def only_prefixes(self, prefixes: tuple[str, ...]) -> "Manifest":
        keep = {k: v for k, v in self.shapes.items() if k.startswith(prefixes)}
        return Manifest(self.name + "-part", keep, self.buffers & keep.keys(), self.unused & keep.keys(), self.dtype)


def _from_reference(data: dict, name: str) -> Manifest:
    shapes = {e["key"]: tuple(e["shape"]) for e in data["entries"]}
    buffers = frozenset(e["key"] for e in data["entries"] if e.get("kind") == "buffer")
    unused: set[str] = set()
    for keys in (data.get("present_but_unused_at_inference") or {}).values():
        unused.update(keys)
    return Manifest(name, shapes, buffers, frozenset(unused))


def _from_bundled(data: dict) -> Manifest:
    shapes = {key: tuple(shape) for key, shape in data["entries"]}
    return Manifest(data["name"], shapes, frozenset(data.get("buffers", ())), frozenset(data.get("unused", ())))


def load_manifest(path: str | Path) -> Manifest:
    """Read a manifest in the bundled compact format or in the reference format."""
    path = Path(path)
    data = json.loads(path.read_text())
    if data.get("format") == "inbetweener-manifest-1":
        return _from_bundled(data)
    if isinstance(data.get("entries"), list) and data["entries"] and isinstance(data["entries"][0], dict):
        return _from_reference(data, path.stem.removeprefix("manifest_"))
    raise ValueError(f"{path} is not a checkpoint manifest (no 'entries' list)")


@cache
def bundled_manifest(name: str) -> Manifest:
    """One of the manifests shipped in the package: 'tooncrafter_512_interp' or 'sketch_encoder'."""
    if name not in BUNDLED:
        raise KeyError(f"no bundled manifest {name!r}: choose one of {', '.join(BUNDLED)}")
    return load_manifest(BUNDLED[name])


def compact_manifest(reference: dict, name: str) -> dict:
    """The bundled form of a reference manifest (keys, shapes, buffers, unused keys; nothing else)."""
    manifest = _from_reference(reference, name)
    return {
        "format": "inbetweener-manifest-1",
        "name": name,
        "source": reference.get("source", {}),
        "entries": [[key, list(shape)] for key, shape in manifest.shapes.items()],
        "buffers": sorted(manifest.buffers),
        "unused": sorted(manifest.unused),
    }


@dataclass
class KeyReport:
    """How a set of (key, shape) pairs differs from a manifest."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, limit: int = 5) -> str:
        """Counts plus the first few keys of each kind of problem, one line each."""
        lines = []

        def first(keys: list[str]) -> str:
            more = f", ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
            return ", ".join(keys[:limit]) + more

        if self.missing:
            lines.append(f"{len(self.missing)} missing keys: {first(self.missing)}")
        if self.unexpected:
            lines.append(f"{len(self.unexpected)} unexpected keys: {first(self.unexpected)}")
        if self.mismatched:
            shown = [f"{k} {list(got)} (expected {list(want)})" for k, want, got in self.mismatched]
            lines.append(f"{len(self.mismatched)} mis-shaped keys: {first(shown)}")
        return "\n".join(lines) if lines else "all keys and shapes match"


def compare_keys(expected: Mapping[str, tuple[int, ...]], actual: Mapping[str, Iterable[int]]) -> KeyReport:
    """Missing, unexpected and mis-shaped keys of `actual` against `expected` (both key -> shape)."""
    report = KeyReport()
    for key, shape in expected.items():
        if key not in actual:
            report.missing.append(key)
        elif tuple(actual[key]) != tuple(shape):
            report.mismatched.append((key, tuple(shape), tuple(actual[key])))
    report.unexpected = [key for key in actual if key not in expected]
    return report
