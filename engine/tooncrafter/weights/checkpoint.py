"""Reading ToonCrafter, sketch-encoder and OpenCLIP checkpoint files safely and without a second copy.

Accepted files:
- the official `model.ckpt` (a PyTorch zip pickle, `state_dict` wrapper, or a DeepSpeed `module`
  wrapper whose keys start with `_forward_module.`; the 256-model legacy name `framestride_embed` is
  renamed to `fps_embedding`), and safetensors repackagings with the same key names;
- kijai's pruned fp16 safetensors (no `cond_stage_model.*` / `embedder.*`) together with an OpenCLIP
  ViT-H-14 file (`open_clip_pytorch_model.bin` or `.safetensors`, open_clip's own key names), whose
  keys are mapped onto `cond_stage_model.model.*` (text tower) and `embedder.model.*` (image tower);
- `sketch_encoder.ckpt` / `sketch_encoder-fp16.safetensors` (bare ControlNet keys, possibly under
  `state_dict`).

Loading never executes pickled code: pickles are only ever read by torch's own weights-only
unpickler (`torch.load(weights_only=True, mmap=True)`), which allows data and nothing else. A pickle
that also holds foreign Python objects (training callbacks, hyperparameters) is read by the same
unpickler with each foreign class name bound to an inert placeholder, so the tensors load and the
objects do nothing; a name from a module that runs code (os, subprocess, builtins...) refuses the
file in one line. Only the dtypes network weights use are accepted (others are refused by name, never
guessed), and NaN or infinite weights are refused by name. Files are memory-mapped and converted
tensor by tensor, so peak RAM stays near one copy of the model. Every file is checked against the
bundled key/shape manifest before a single tensor is read.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ...api import EngineError
from . import safetensors_codec
from .manifest import CLIP_PREFIXES, Manifest, bundled_manifest, compare_keys

if TYPE_CHECKING:
    from ..model import ToonCrafterModel
    from ..networks.config import ToonCrafterConfig
    from ..networks.sketch_encoder import SketchEncoder

DEEPSPEED_PREFIX = "_forward_module."
CONTROL_PREFIX = "control_model."
TEXT_TOWER_PREFIX = "cond_stage_model.model."
IMAGE_TOWER_PREFIX = "embedder.model."
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class CheckpointError(EngineError):
    """A weights file that cannot be used; the message names the file and what is wrong with it."""


# ----------------------------------------------------------------------------------------------
# Reading one file without reading its tensors


class _Inert:
    """Stand-in for a class a checkpoint pickles besides tensors; building or calling it runs no code."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()


#: Modules whose names in a pickle mean "run code": such a file is refused, never read with placeholders.
CODE_MODULES = frozenset({
    "os", "posix", "nt", "sys", "subprocess", "builtins", "__builtin__", "shutil", "socket", "importlib", "runpy",
    "pickle", "_pickle", "marshal", "types", "ctypes", "code", "codeop", "pty", "webbrowser", "io", "_io",
    "functools", "operator", "multiprocessing", "signal", "tempfile", "pathlib", "platform", "torch", "numpy.testing",
})
#: Distinct foreign class names one checkpoint may hold (Lightning checkpoints hold a handful).
MAX_FOREIGN_NAMES = 64
_UNSUPPORTED = re.compile(r"GLOBAL ([\w.]+) (was not an allowed global|whose module)")
_REASON = re.compile(r"WeightsUnpickler error: ([^\n]+)")


def _one_line(exc: BaseException) -> str:
    """torch's reason for refusing a pickle, without its advice (which would run the file's code)."""
    text = str(exc)
    found = _REASON.search(text)
    line = found.group(1) if found else next((part for part in text.splitlines() if part.strip()), text)
    return line.strip().rstrip(".")


def _torch_load(path: Path) -> object:
    """torch.load(weights_only=True); each foreign class name it refuses is bound to an inert
    placeholder for the next try, names of code-running modules refuse the file."""
    placeholders: list[tuple[type, str]] = []
    for _ in range(MAX_FOREIGN_NAMES + 1):
        try:
            with torch.serialization.safe_globals(placeholders):
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except pickle.UnpicklingError as exc:
            found = _UNSUPPORTED.search(str(exc))
            if found is None:
                raise CheckpointError(
                    f"{path}: refused: its pickle does what a weights file never does ({_one_line(exc)}); nothing in "
                    "it was run. Use the file from its official source or a .safetensors version"
                ) from None
            name = found.group(1)
            module, _, attribute = name.rpartition(".")
            if not module or module.split(".")[0] in CODE_MODULES or found.group(2) == "whose module":
                raise CheckpointError(
                    f"{path}: refused: its pickle asks to call {name}, code a weights file never needs; nothing in "
                    "it was run. Use the file from its official source or a .safetensors version"
                ) from None
            placeholders.append((type(attribute, (_Inert,), {"__module__": "inert." + module}), name))
    raise CheckpointError(f"{path}: holds more than {MAX_FOREIGN_NAMES} kinds of Python objects besides tensors")


def _check_dtype(path: Path, key: str, dtype: torch.dtype | None, stored_as: str) -> torch.dtype:
    if dtype is None or dtype not in safetensors_codec.NAMES:
        raise CheckpointError(
            f"{path}: tensor {key} is stored as {stored_as}, a type weights of this model never use "
            f"(accepted: {', '.join(safetensors_codec.DTYPES)})"
        )
    return dtype


def _is_tensor_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and any(isinstance(v, torch.Tensor) for v in obj.values())


def unwrap_state_dict(obj: object, source: str) -> dict[str, torch.Tensor]:
    """The tensor dict inside a loaded pickle: `state_dict` (possibly twice), DeepSpeed `module`, or flat."""
    for _ in range(2):
        if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
            obj = obj["state_dict"]
    if isinstance(obj, Mapping) and isinstance(obj.get("module"), Mapping) and not _is_tensor_dict(obj):
        obj = {
            (k[len(DEEPSPEED_PREFIX) :] if k.startswith(DEEPSPEED_PREFIX) else k): v for k, v in obj["module"].items()
        }
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: holds a {type(obj).__name__}, not a dictionary of tensors")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{source}: contains no tensors (not a weights file)")
    return {k.replace("framestride_embed", "fps_embedding"): v for k, v in tensors.items()}


class TensorFile:
    """One weights file opened for reading tensor by tensor (memory-mapped); shapes need no reads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: file not found")
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, torch.dtype] = {}
        self._tensors: dict[str, torch.Tensor] | None = None
        self._safe = None
        if self.path.suffix == ".safetensors":
            self._open_safetensors()
        else:
            self._open_pickle()

    def _open_safetensors(self) -> None:
        from safetensors import SafetensorError, safe_open

        try:
            self._safe = safe_open(str(self.path), framework="pt", device="cpu")
            for key in self._safe.keys():
                sl = self._safe.get_slice(key)
                self.shapes[key] = tuple(sl.get_shape())
                name = sl.get_dtype()
                self.dtypes[key] = _check_dtype(self.path, key, safetensors_codec.torch_dtype(name), name)
        except SafetensorError as exc:
            raise CheckpointError(
                f"{self.path}: not a readable safetensors file ({exc}); it may be truncated: download it again"
            ) from None
        if not self.shapes:
            raise CheckpointError(f"{self.path}: contains no tensors (not a weights file)")

    def _open_pickle(self) -> None:
        if not zipfile.is_zipfile(self.path):
            raise CheckpointError(
                f"{self.path}: not a PyTorch checkpoint (no zip archive found: truncated or another format); "
                "download it again"
            )
        try:
            loaded = _torch_load(self.path)
        except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, zipfile.BadZipFile) as exc:
            raise CheckpointError(f"{self.path}: cannot be read as a PyTorch checkpoint ({_one_line(exc)})") from None
        self._tensors = unwrap_state_dict(loaded, str(self.path))
        for key, tensor in self._tensors.items():
            self.shapes[key] = tuple(tensor.shape)
            self.dtypes[key] = _check_dtype(self.path, key, tensor.dtype, str(tensor.dtype).removeprefix("torch."))

    def get(self, key: str) -> torch.Tensor:
        if self._tensors is not None:
            return self._tensors[key]
        return self._safe.get_tensor(key)

    def close(self) -> None:
        self._tensors = None
        self._safe = None

    def __enter__(self) -> "TensorFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------
# Official key names over one or more files


@dataclass
class WeightSource:
    """Official key -> (file, key in that file): a model's weights, possibly spread over files."""

    entries: dict[str, tuple[TensorFile, str]] = field(default_factory=dict)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: f.shapes[k] for key, (f, k) in self.entries.items()}

    def dtype(self, key: str) -> torch.dtype:
        f, k = self.entries[key]
        return f.dtypes[k]

    def get(self, key: str) -> torch.Tensor:
        f, k = self.entries[key]
        return f.get(k)

    @property
    def files(self) -> list[TensorFile]:
        seen: dict[int, TensorFile] = {}
        for f, _ in self.entries.values():
            seen.setdefault(id(f), f)
        return list(seen.values())

    def close(self) -> None:
        for f in self.files:
            f.close()


def _has_prefix(keys: Iterable[str], prefixes: tuple[str, ...]) -> bool:
    return any(k.startswith(prefixes) for k in keys)


def is_open_clip_file(keys: Iterable[str]) -> bool:
    """open_clip's own ViT layout: visual tower and text transformer side by side, no prefix."""
    keys = set(keys)
    return "visual.conv1.weight" in keys and "token_embedding.weight" in keys


def clip_tower_entries(clip: TensorFile, manifest: Manifest) -> dict[str, tuple[TensorFile, str]]:
    """Map an OpenCLIP file's keys onto the checkpoint's text- and image-tower keys."""
    entries = {}
    for key in manifest.shapes:
        for prefix in (TEXT_TOWER_PREFIX, IMAGE_TOWER_PREFIX):
            if key.startswith(prefix):
                inner = key[len(prefix) :]
                if inner in clip.shapes:
                    entries[key] = (clip, inner)
    return entries


def tooncrafter_source(
    path: str | Path, clip_path: str | Path | None = None, manifest: Manifest | None = None
) -> WeightSource:
    """Open a ToonCrafter checkpoint (full, or pruned + OpenCLIP file) and check it against the manifest.

    `manifest` defaults to the official 512 model's; tiny test models pass their own.
    """
    manifest = manifest or bundled_manifest("tooncrafter_512_interp")
    main = TensorFile(path)
    if "input_hint_block.0.weight" in main.shapes:
        raise CheckpointError(f"{main.path}: this is a sketch encoder, not the ToonCrafter interpolation model")
    if is_open_clip_file(main.shapes):
        raise CheckpointError(f"{main.path}: this is an OpenCLIP model, not the ToonCrafter interpolation model")
    source = WeightSource({key: (main, key) for key in main.shapes})
    has_clip = _has_prefix(main.shapes, CLIP_PREFIXES)
    if clip_path is not None:
        clip = TensorFile(clip_path)
        if not is_open_clip_file(clip.shapes):
            raise CheckpointError(
                f"{clip.path}: not an OpenCLIP ViT-H-14 file (expected open_clip keys such as "
                "'visual.conv1.weight' and 'token_embedding.weight')"
            )
        source.entries = {k: v for k, v in source.entries.items() if not k.startswith(CLIP_PREFIXES)}
        source.entries.update(clip_tower_entries(clip, manifest))
    elif not has_clip:
        raise CheckpointError(
            f"{main.path}: a pruned checkpoint without the CLIP text and image towers; it needs the OpenCLIP "
            "ViT-H-14 file too (open_clip_pytorch_model.bin): `inbetween models download clip`"
        )
    check_against_manifest(source, manifest, str(main.path))
    return source


def sketch_encoder_source(path: str | Path, manifest: Manifest | None = None) -> WeightSource:
    """Open a sketch encoder checkpoint (bare ControlNet keys) and check it against the manifest."""
    manifest = manifest or bundled_manifest("sketch_encoder")
    f = TensorFile(path)
    keys = list(f.shapes)
    if keys and all(k.startswith(CONTROL_PREFIX) for k in keys):
        source = WeightSource({k[len(CONTROL_PREFIX) :]: (f, k) for k in keys})
    else:
        source = WeightSource({k: (f, k) for k in keys})
    if any(k.startswith("model.diffusion_model.") for k in source.entries):
        raise CheckpointError(f"{f.path}: this is the ToonCrafter interpolation model, not the sketch encoder")
    check_against_manifest(source, manifest, str(f.path))
    return source


def open_clip_manifest(manifest: Manifest) -> Manifest:
    """What an OpenCLIP file must hold to fill both towers of `manifest` (open_clip's own key names)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for key, shape in manifest.shapes.items():
        for prefix in (TEXT_TOWER_PREFIX, IMAGE_TOWER_PREFIX):
            if key.startswith(prefix):
                shapes[key[len(prefix) :]] = shape
    return Manifest(manifest.name + "-open_clip", shapes)


def identify(keys: Iterable[str]) -> str:
    """Which kind of weights a key set is: tooncrafter, tooncrafter_pruned, sketch_encoder, open_clip."""
    keys = set(keys)
    if is_open_clip_file(keys):
        return "open_clip"
    if "input_hint_block.0.weight" in keys or f"{CONTROL_PREFIX}input_hint_block.0.weight" in keys:
        return "sketch_encoder"
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return "tooncrafter" if _has_prefix(keys, CLIP_PREFIXES) else "tooncrafter_pruned"
    return "unknown"


@dataclass
class VerifiedFile:
    path: Path
    kind: str
    tensors: int
    elements: int
    dtypes: dict[str, int]


def verify_file(path: str | Path, config: "ToonCrafterConfig | None" = None) -> VerifiedFile:
    """Identify a weights file and check it against its manifest (raises CheckpointError)."""
    from ..networks.config import ToonCrafterConfig

    config = config or ToonCrafterConfig()
    f = TensorFile(path)
    try:
        kind = identify(f.shapes)
        if kind == "sketch_encoder":
            source = sketch_encoder_source(f.path, manifest_for(config, "sketch_encoder"))
        elif kind == "tooncrafter":
            source = tooncrafter_source(f.path, manifest=manifest_for(config, "tooncrafter"))
        elif kind == "tooncrafter_pruned":
            source = WeightSource({k: (f, k) for k in f.shapes})
            pruned = manifest_for(config, "tooncrafter").without_prefixes(CLIP_PREFIXES)
            check_against_manifest(source, pruned, str(f.path))
        elif kind == "open_clip":
            source = WeightSource({k: (f, k) for k in f.shapes})
            check_against_manifest(source, open_clip_manifest(manifest_for(config, "tooncrafter")), str(f.path))
        else:
            raise CheckpointError(
                f"{f.path}: not a ToonCrafter, sketch encoder or OpenCLIP weights file "
                f"(first keys: {', '.join(list(f.shapes)[:3])})"
            )
        check_finite(source, str(f.path))
        dtypes: dict[str, int] = {}
        elements = 0
        for key, shape in source.shapes.items():
            name = str(source.dtype(key)).removeprefix("torch.")
            dtypes[name] = dtypes.get(name, 0) + 1
            n = 1
            for d in shape:
                n *= d
            elements += n
        return VerifiedFile(f.path, kind, len(source.entries), elements, dtypes)
    finally:
        f.close()


def _not_finite(key: str, tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())


def _refuse_not_finite(bad: list[str], what: str) -> None:
    if bad:
        raise CheckpointError(
            f"{what}: {len(bad)} tensors hold values that are not finite (NaN or infinity), e.g. {bad[0]}: "
            "the file is damaged or was saved from a diverged training run"
        )


def check_finite(source: WeightSource, what: str) -> None:
    """Refuse weights holding NaN or infinity, naming the first tensor (reads every tensor once)."""
    _refuse_not_finite([key for key in source.entries if _not_finite(key, source.get(key))], what)


def check_against_manifest(source: WeightSource, manifest: Manifest, what: str) -> None:
    """Raise a CheckpointError naming missing, unexpected and mis-shaped keys (first few + counts)."""
    report = compare_keys(manifest.shapes, source.shapes)
    if not report.ok:
        raise CheckpointError(f"{what} does not match the expected {manifest.name} layout:\n{report.summary()}")
    not_float = [k for k in source.entries if not source.dtype(k).is_floating_point]
    if not_float:
        raise CheckpointError(f"{what}: {len(not_float)} tensors are not floating point, e.g. {not_float[0]}")


# ----------------------------------------------------------------------------------------------
# Filling a model


def fill_model(
    model: nn.Module,
    source: WeightSource,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | Callable[[str], str | torch.device] = "cpu",
    keep_float32: Iterable[str] = (),
) -> nn.Module:
    """Load `source` into a (meta-built) model strictly, converting tensor by tensor to `dtype` on `device`.

    Tensors are read one at a time from the memory-mapped file and converted straight to their
    target, so peak memory stays near one copy of the model. `device` may be a function of the key
    (e.g. the CLIP towers on the CPU, the rest on the GPU). `keep_float32` lists keys that stay
    float32 whatever `dtype` is (the diffusion schedule).
    """
    keep = set(keep_float32)
    expected = model.state_dict().keys()
    missing = sorted(expected - source.entries.keys())
    unexpected = sorted(source.entries.keys() - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"weights do not fit the model: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    state: dict[str, torch.Tensor] = {}
    not_finite: list[str] = []
    for key in expected:
        tensor = source.get(key)
        target = device(key) if callable(device) else device
        state[key] = tensor.to(device=target, dtype=torch.float32 if key in keep else dtype, copy=True)
        if _not_finite(key, state[key]):
            not_finite.append(key)
    _refuse_not_finite(not_finite, str(source.files[0].path) if source.files else "the weights")
    model.load_state_dict(state, strict=True, assign=True)
    del state
    leftovers = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftovers:
        raise CheckpointError(f"the model has tensors no checkpoint fills: {leftovers[:3]}")
    return model.requires_grad_(False)


# ----------------------------------------------------------------------------------------------
# Whole models from files


def manifest_for(config: "ToonCrafterConfig", kind: str = "tooncrafter") -> Manifest:
    """The manifest a file must match: the bundled official one, or the layout a test model builds."""
    from ..model import build_model, build_sketch_encoder, state_shapes

    if config.is_official:
        return bundled_manifest("tooncrafter_512_interp" if kind == "tooncrafter" else "sketch_encoder")
    cache_key = (repr(config), kind)
    if cache_key not in _BUILT_MANIFESTS:
        model = build_model(config) if kind == "tooncrafter" else build_sketch_encoder(config)
        _BUILT_MANIFESTS[cache_key] = Manifest(f"{config.name} {kind}", state_shapes(model))
    return _BUILT_MANIFESTS[cache_key]


_BUILT_MANIFESTS: dict[tuple[str, str], Manifest] = {}


def load_tooncrafter(
    path: str | Path,
    clip_path: str | Path | None = None,
    config: "ToonCrafterConfig | None" = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | Callable[[str], str | torch.device] = "cpu",
) -> "ToonCrafterModel":
    """Check a ToonCrafter checkpoint against its manifest, then build and fill the model.

    `device` may be a function of the state-dict key (see `fill_model`)."""
    from ..model import build_model
    from ..networks.config import ToonCrafterConfig
    from ..schedule import SCHEDULE_BUFFER_NAMES

    config = config or ToonCrafterConfig()
    source = tooncrafter_source(path, clip_path, manifest_for(config, "tooncrafter"))
    try:
        low_precision = [k for k in SCHEDULE_BUFFER_NAMES if k in source.entries and source.dtype(k) != torch.float32]
        model = fill_model(build_model(config), source, dtype, device, keep_float32=SCHEDULE_BUFFER_NAMES)
    finally:
        source.close()
    if low_precision:
        _restore_schedule(model, config, low_precision, str(path))
    return model


def _restore_schedule(model: "ToonCrafterModel", config: "ToonCrafterConfig", keys: list[str], what: str) -> None:
    """A half-precision file rounds the schedule; put back the exact float32 values it rounds."""
    from ..schedule import schedule_buffers

    exact = schedule_buffers(config.diffusion)
    for key in keys:
        stored = getattr(model, key)
        if not torch.allclose(stored.cpu(), exact[key], rtol=1e-2, atol=1e-3):
            raise CheckpointError(f"{what}: its '{key}' schedule is not ToonCrafter's (v, zero-terminal-SNR betas)")
        model._buffers[key] = exact[key].to(stored.device)


def load_sketch_encoder(
    path: str | Path,
    config: "ToonCrafterConfig | None" = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> "SketchEncoder":
    from ..model import build_sketch_encoder
    from ..networks.config import ToonCrafterConfig

    config = config or ToonCrafterConfig()
    source = sketch_encoder_source(path, manifest_for(config, "sketch_encoder"))
    try:
        return fill_model(build_sketch_encoder(config), source, dtype, device)
    finally:
        source.close()
