"""The model store: a folder in the user's data directory holding the ToonCrafter weights.

Where it is: `--models-dir`, else `$INBETWEENER_MODELS`, else the platform's user data folder
(`$XDG_DATA_HOME` or ~/.local/share on Linux, ~/Library/Application Support on macOS, %APPDATA% on
Windows) + `Inbetweener/models`. An `index.json` there records what each file is, where it came from
and its sha256, so provenance can name the exact weights without re-hashing gigabytes.

Known sources are listed in `KNOWN_FILES`; sha256 values that are not published are None (the
download then records the hash it computed).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from ...api import EngineError
from .safetensors_codec import write_safetensors_streaming

ENV_VAR = "INBETWEENER_MODELS"
APP_DIR = "Inbetweener"
INDEX_NAME = "index.json"


@dataclass(frozen=True)
class KnownFile:
    """A weights file the store knows how to get."""

    name: str  # store name used on the command line
    filename: str
    url: str
    kind: str  # tooncrafter | tooncrafter_pruned | sketch_encoder | open_clip
    description: str
    size: int | None = None  # bytes, when known
    sha256: str | None = None  # None: not published; the download records the computed hash


KNOWN_FILES: dict[str, KnownFile] = {
    f.name: f
    for f in (
        KnownFile(
            "tooncrafter",
            "model.ckpt",
            "https://huggingface.co/Doubiiu/ToonCrafter/resolve/main/model.ckpt",
            "tooncrafter",
            "official ToonCrafter 512 interpolation model, fp32, CLIP towers included (~10.5 GB)",
        ),
        KnownFile(
            "sketch-encoder",
            "sketch_encoder.ckpt",
            "https://huggingface.co/Doubiiu/ToonCrafter/resolve/main/sketch_encoder.ckpt",
            "sketch_encoder",
            "official sketch encoder (ControlNet) for sketch-guided in-betweens, fp32 (~1.5 GB)",
        ),
        KnownFile(
            "tooncrafter-fp16",
            "tooncrafter_512_interp-fp16.safetensors",
            "https://huggingface.co/Kijai/DynamiCrafter_pruned/resolve/main/tooncrafter_512_interp-fp16.safetensors",
            "tooncrafter_pruned",
            "kijai's fp16 repackaging (the file's keys decide: without the CLIP towers it also needs `clip`)",
        ),
        KnownFile(
            "sketch-encoder-fp16",
            "sketch_encoder-fp16.safetensors",
            "https://huggingface.co/Kijai/DynamiCrafter_pruned/resolve/main/sketch_encoder-fp16.safetensors",
            "sketch_encoder",
            "kijai's fp16 repackaging of the sketch encoder (~0.7 GB)",
        ),
        KnownFile(
            "clip",
            "open_clip_pytorch_model.bin",
            "https://huggingface.co/laion/CLIP-ViT-H-14-laion2B-s32B-b79K/resolve/main/open_clip_pytorch_model.bin",
            "open_clip",
            "OpenCLIP ViT-H-14 (laion2b_s32b_b79k) text and image towers, for the pruned fp16 file (~3.9 GB)",
        ),
    )
}

#: What `inbetween models import` writes for each kind of input.
IMPORTED_FILENAMES = {
    "tooncrafter": "tooncrafter_512_interp-full-fp16.safetensors",
    "tooncrafter_pruned": "tooncrafter_512_interp-fp16.safetensors",
    "sketch_encoder": "sketch_encoder-fp16.safetensors",
    "open_clip": "open_clip_vit_h14-fp16.safetensors",
}
#: Interpolation weights in the order the backend prefers them (full files need no CLIP file).
TOONCRAFTER_PREFERENCE = (
    "tooncrafter_512_interp-full-fp16.safetensors",
    "model.ckpt",
    "tooncrafter_512_interp-fp16.safetensors",
    "tooncrafter_512_interp-pruned-fp16.safetensors",
)
SKETCH_PREFERENCE = ("sketch_encoder-fp16.safetensors", "sketch_encoder.ckpt")
CLIP_PREFERENCE = ("open_clip_vit_h14-fp16.safetensors", "open_clip_pytorch_model.bin", "open_clip_model.safetensors")


def default_models_dir() -> Path:
    """The platform's per-user data folder for Inbetweener's models."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / APP_DIR / "models"


def models_dir(override: str | os.PathLike | None = None) -> Path:
    """--models-dir, else $INBETWEENER_MODELS, else the platform default."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_models_dir()


def sha256_of(path: Path, progress: Callable[[int, int], None] | None = None, chunk: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class StoredFile:
    path: Path
    kind: str | None
    sha256: str | None
    source: str | None
    size: int


class ModelStore:
    """One models folder and its index."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = models_dir(root)

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_NAME

    def index(self) -> dict[str, dict]:
        try:
            return json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise EngineError(f"{self.index_path} is damaged ({exc}); delete it and run `inbetween models list`") from None

    def record(self, filename: str, **info) -> None:
        index = self.index()
        index[filename] = {**index.get(filename, {}), **info, "recorded": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json_atomic(self.index_path, index)

    def path(self, filename: str) -> Path:
        return self.root / filename

    def files(self) -> list[StoredFile]:
        """Weights files present in the store (partial downloads excluded)."""
        if not self.root.is_dir():
            return []
        index = self.index()
        out = []
        for path in sorted(self.root.iterdir()):
            if not path.is_file() or path.name == INDEX_NAME or path.suffix in (".part", ".tmp"):
                continue
            info = index.get(path.name, {})
            out.append(StoredFile(path, info.get("kind"), info.get("sha256"), info.get("source"), path.stat().st_size))
        return out

    def find(self, preference: Iterable[str]) -> Path | None:
        for filename in preference:
            candidate = self.path(filename)
            if candidate.is_file():
                return candidate
        return None

    def resolve(self, name_or_path: str) -> Path:
        """A path, a store file name or a known store name (e.g. 'tooncrafter') -> an existing file."""
        direct = Path(name_or_path).expanduser()
        if direct.is_file():
            return direct
        if name_or_path in KNOWN_FILES:
            candidate = self.path(KNOWN_FILES[name_or_path].filename)
        else:
            candidate = self.path(name_or_path)
        if candidate.is_file():
            return candidate
        raise EngineError(
            f"weights {name_or_path!r} not found (neither a file nor in the model store {self.root}); "
            "see `inbetween models list`"
        )

    def sha256(self, path: Path) -> str | None:
        """The recorded sha256 of a store file (None when unknown; never hashes here)."""
        if path.parent.resolve() != self.root.resolve():
            return None
        return self.index().get(path.name, {}).get("sha256")


# ----------------------------------------------------------------------------------------------
# Filling the store


def import_weights(
    store: ModelStore,
    path: str | os.PathLike,
    clip_path: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.float16,
    progress: Callable[[int, int], None] | None = None,
    config=None,
) -> tuple[Path, str, str]:
    """Check a weights file, convert it to a `dtype` safetensors file in the store (tensor by tensor,
    atomically) and record it. A pruned file given with its OpenCLIP file becomes one full file.

    Returns (stored path, kind, sha256). The diffusion schedule stays float32.
    """
    from ..networks.config import ToonCrafterConfig
    from ..schedule import SCHEDULE_BUFFER_NAMES
    from .checkpoint import (
        TensorFile,
        WeightSource,
        manifest_for,
        sketch_encoder_source,
        tooncrafter_source,
        verify_file,
    )

    config = config or ToonCrafterConfig()
    path = Path(path)
    kind = verify_file(path, config).kind
    if kind == "tooncrafter" or (kind == "tooncrafter_pruned" and clip_path is not None):
        source = tooncrafter_source(path, clip_path, manifest_for(config, "tooncrafter"))
        kind = "tooncrafter"
    elif kind == "sketch_encoder":
        source = sketch_encoder_source(path, manifest_for(config, "sketch_encoder"))
    else:
        f = TensorFile(path)
        source = WeightSource({k: (f, k) for k in f.shapes})
    keep = set(SCHEDULE_BUFFER_NAMES)
    entries = []
    for key, shape in source.shapes.items():
        target = source.dtype(key) if (key in keep or not source.dtype(key).is_floating_point) else dtype
        entries.append((key, shape, torch.float32 if key in keep else target))
    target_path = store.path(IMPORTED_FILENAMES[kind])
    try:
        sha = write_safetensors_streaming(
            target_path, entries, source.get, metadata={"format": "pt", "source": path.name}, progress=progress
        )
    finally:
        source.close()
    sources = f"imported from {path}" + (f" with {clip_path}" if clip_path else "")
    store.record(target_path.name, kind=kind, sha256=sha, source=sources)
    return target_path, kind, sha


def download_known(
    store: ModelStore,
    name: str,
    progress: Callable[[int, int | None], None] | None = None,
    cancel=None,
    config=None,
) -> tuple[Path, str]:
    """Download one of KNOWN_FILES into the store (resumable), check it, record its sha256."""
    from .checkpoint import CheckpointError, verify_file
    from .download import download

    if name not in KNOWN_FILES:
        raise EngineError(f"unknown model {name!r}: choose one of {', '.join(KNOWN_FILES)}")
    known = KNOWN_FILES[name]
    dest = store.path(known.filename)
    sha = download(known.url, dest, sha256=known.sha256, progress=progress, cancel=cancel)
    try:
        verified = verify_file(dest, config)
    except CheckpointError as exc:
        dest.unlink(missing_ok=True)
        raise EngineError(f"{known.url} did not give a usable file, so it was removed: {exc}") from None
    store.record(known.filename, kind=verified.kind, sha256=sha, source=known.url, sha256_published=known.sha256)
    return dest, sha


@dataclass
class WeightFiles:
    """The files one ToonCrafter backend loads."""

    tooncrafter: Path | None  # None: a model handed over in memory
    clip: Path | None  # the OpenCLIP file, for a pruned checkpoint
    sketch_encoder: Path | None  # None: sketch guidance unavailable


def _is_pruned(store: ModelStore, path: Path) -> bool:
    recorded = store.index().get(path.name, {}).get("kind") if path.parent == store.root else None
    if recorded:
        return recorded == "tooncrafter_pruned"
    from .checkpoint import TensorFile, identify

    with TensorFile(path) as f:
        return identify(f.shapes) == "tooncrafter_pruned"


def missing_weights_message(store: ModelStore) -> str:
    return (
        f"ToonCrafter weights not installed (looked in {store.root}): run `inbetween models download` "
        "(about 12 GB), or `inbetween models import FILE` for a model.ckpt you already have"
    )


def locate_weights(store: ModelStore, checkpoint: str | None = None, sketch_checkpoint: str | None = None) -> WeightFiles:
    """The files to load for the given settings (paths or store names) or the store's best ones."""
    main = store.resolve(checkpoint) if checkpoint else store.find(TOONCRAFTER_PREFERENCE)
    if main is None:
        raise EngineError(missing_weights_message(store))
    clip = None
    if _is_pruned(store, main):
        clip = store.find(CLIP_PREFERENCE)
        if clip is None:
            raise EngineError(
                f"{main.name} has no CLIP towers and the OpenCLIP ViT-H-14 file is not in {store.root}: "
                "run `inbetween models download clip`"
            )
    sketch = store.resolve(sketch_checkpoint) if sketch_checkpoint else store.find(SKETCH_PREFERENCE)
    return WeightFiles(main, clip, sketch)
