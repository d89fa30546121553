"""Where a shot's keys come from when the batch names a source instead of key files.

- A folder of numbered PNGs (`hop_0001.png`, `hop_0013.png`, ... or `0001.png`): each file is a key and
  its number is its timeline frame, so the gaps between numbers are the gaps between keys.
- A layered PSD: the app's own PSD export names layers 'f0012 key' / 'f0014 in-between'; its keys are
  taken at their frames and its in-betweens ignored. Any other PSD gives one key per layer, bottom first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..api import EngineError
from ..imaging import MAX_PIXELS, read_image

_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)\.png$", re.IGNORECASE)
_OUR_LAYER = re.compile(r"^f(?P<frame>\d+) (?P<kind>key|in-between|hold of f\d+)$")


@dataclass(frozen=True)
class SourceKey:
    path: Path
    frame: int
    layer: int | None = None  # index among the PSD's top-level layers (bottom first)


def keys_from_source(path: Path, where: str) -> list[SourceKey]:
    if path.is_dir():
        return _numbered_pngs(path, where)
    if path.suffix.lower() == ".psd":
        return _psd_keys(path, where)
    raise EngineError(f"{where}: {path} is neither a folder of numbered PNGs nor a .psd file")


def _numbered_pngs(folder: Path, where: str) -> list[SourceKey]:
    found: dict[int, Path] = {}
    prefixes = set()
    for path in sorted(folder.iterdir()):
        match = _NUMBERED.match(path.name)
        if not match or path.name.startswith("."):
            continue
        number = int(match["number"])
        prefixes.add(match["prefix"])
        if number in found:
            raise EngineError(f"{where}: {found[number].name} and {path.name} both claim frame {number}")
        found[number] = path
    if len(prefixes) > 1:
        raise EngineError(f"{where}: {folder} mixes sequences ({', '.join(sorted(repr(p) for p in prefixes))}); "
                          "keep one numbered sequence per folder")
    if len(found) < 2:
        raise EngineError(f"{where}: {folder} holds {len(found)} numbered PNG(s); a shot needs at least two keys")
    return [SourceKey(found[n], n) for n in sorted(found)]


def _open_psd(path: Path, where: str):
    from psd_tools import PSDImage

    try:
        psd = PSDImage.open(path)
    except Exception as exc:  # psd-tools raises many types for damaged files
        raise EngineError(f"{where}: {path} is not a readable PSD ({type(exc).__name__}: {exc})") from None
    width, height = psd.size
    if width * height > MAX_PIXELS:
        raise EngineError(f"{where}: {path} is {width}x{height}, more than the {MAX_PIXELS} pixels a key may have")
    return psd


def _psd_keys(path: Path, where: str) -> list[SourceKey]:
    layers = list(_open_psd(path, where))
    ours = [_OUR_LAYER.match(layer.name or "") for layer in layers]
    if layers and all(ours):
        keys = [SourceKey(path, int(m["frame"]), i) for i, m in enumerate(ours) if m["kind"] == "key"]
    else:
        keys = [SourceKey(path, i, i) for i in range(len(layers))]
    if len(keys) < 2:
        raise EngineError(f"{where}: {path} has {len(keys)} key layer(s); a shot needs at least two keys")
    return keys


def read_key(path: Path, layer: int | None) -> np.ndarray:
    """The key's RGBA pixels at the document's size (a PSD layer is placed on its full canvas)."""
    if layer is None:
        return read_image(path)
    psd = _open_psd(path, str(path))
    image = list(psd)[layer].composite(viewport=psd.viewbox)
    if image is None:  # an empty layer
        return np.zeros((psd.height, psd.width, 4), np.uint8)
    return np.asarray(image.convert("RGBA"), dtype=np.uint8).copy()
