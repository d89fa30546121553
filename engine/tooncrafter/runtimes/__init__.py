"""The runtimes that execute ToonCrafter: PyTorch and ONNX Runtime, behind one model contract.

- contract.py: what the sampler and the segment strategy need from a model (`ToonCrafterNetworks`);
- runner.py: one model pass, written once (`ModelRunner`), with hooks for what a runtime adds;
- torch_runtime.py: the contract on the nn.Modules; placement, precision, low-VRAM retry;
- onnx_folder.py / onnx_sessions.py / onnx_runtime.py: the export folder contract, sessions with
  checked execution providers and IO binding, the contract on the exported graphs.

This module decides which runtime runs (`resolve_runtime`, the `runtime` generation setting) and
says for each why it can or cannot run here (`runtime_report`, shown by `/v1/health`).

`auto` picks PyTorch when it can load the installed weights, except that it picks ONNX Runtime when
an export of those weights is in the model store and PyTorch cannot use the GPU while onnxruntime
can (a CPU build of torch beside onnxruntime-gpu), or when PyTorch cannot load any weights but an
export is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...api import EngineError, GenerationSettings


@dataclass(frozen=True)
class RuntimeStatus:
    available: bool
    reason: str = ""
    #: ONNX only: the export folder that would be opened.
    folder: Path | None = None

    def as_dict(self) -> dict:
        out: dict = {"available": self.available, "reason": self.reason}
        if self.folder is not None:
            out["export"] = str(self.folder)
        return out


def torch_has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def onnx_has_gpu() -> bool:
    from .onnx_sessions import CUDA, TENSORRT, available_providers

    return any(p in (CUDA, TENSORRT) for p in available_providers())


def torch_status(settings: GenerationSettings, store) -> RuntimeStatus:
    """Ready when torch imports and the weights are in the store (or given as a file)."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return RuntimeStatus(False, f"PyTorch is not installed ({exc})")
    from ..weights.store import locate_weights
    from .torch_runtime import resolve_device

    if settings.checkpoint and Path(settings.checkpoint).expanduser().is_dir():
        return RuntimeStatus(False, f"{settings.checkpoint} is a folder (an ONNX export?), not a weights file")
    try:
        locate_weights(store, settings.checkpoint, settings.sketch_checkpoint)
        resolve_device(settings)
    except EngineError as exc:
        return RuntimeStatus(False, str(exc))
    return RuntimeStatus(True)


def find_export(settings: GenerationSettings, store) -> Path:
    """The export folder for these settings: `checkpoint` naming an export folder itself, else the
    store's export of the weights `checkpoint` names (or the store's best weights), in the precision
    asked for (auto: fp16 when onnxruntime can use a GPU, else fp32; the other one when only it exists)."""
    from ..weights.store import TOONCRAFTER_PREFERENCE
    from .onnx_folder import is_export_folder, precision_order, store_export_folder, store_exports

    if settings.checkpoint:
        direct = Path(settings.checkpoint).expanduser()
        if direct.is_dir():
            if not is_export_folder(direct):
                raise EngineError(f"{direct} is a folder without an ONNX export manifest (onnx_export.json)")
            return direct
    gpu = settings.device != "cpu" and onnx_has_gpu()
    wanted = precision_order(settings.precision, gpu)
    fallback = [p for p in ("fp16", "fp32") if p not in wanted] if settings.precision == "auto" else []
    weights = store.resolve(settings.checkpoint) if settings.checkpoint else store.find(TOONCRAFTER_PREFERENCE)
    if weights is None:
        exports = store_exports(store.root)
        for precision in (*wanted, *fallback):
            for folder in exports:
                if folder.name.endswith("-" + precision):
                    return folder
        raise EngineError(
            f"no ONNX export in the model store {store.root}: install the weights (`inbetween models download`) "
            "and run `inbetween models export-onnx`"
        )
    for precision in (*wanted, *fallback):
        folder = store_export_folder(store.root, weights, precision)
        if is_export_folder(folder):
            return folder
    flag = " --fp16" if "fp16" in wanted[:1] else ""
    raise EngineError(
        f"{weights.name} has no {'/'.join(wanted)} ONNX export in {store.root / 'onnx'}: "
        f"run `inbetween models export-onnx{flag}`"
    )


def onnx_status(settings: GenerationSettings, store) -> RuntimeStatus:
    """Ready when onnxruntime imports, an export folder for the settings exists and its manifest reads."""
    from .onnx_sessions import available_providers

    if not available_providers():
        return RuntimeStatus(False, "onnxruntime is not installed (pip install onnxruntime, or onnxruntime-gpu for CUDA)")
    try:
        from .onnx_folder import read_manifest

        folder = find_export(settings, store)
        read_manifest(folder)
        if settings.device.startswith("cuda") and not onnx_has_gpu():
            from .onnx_sessions import plan_providers

            plan_providers(settings.device)  # raises, saying how to get the CUDA provider
    except EngineError as exc:
        return RuntimeStatus(False, str(exc))
    return RuntimeStatus(True, folder=folder)


def runtime_report(settings: GenerationSettings, store) -> dict[str, dict]:
    """Every runtime, available or why not, and which one `auto` would pick (for /v1/health)."""
    statuses = {"torch": torch_status(settings, store), "onnx": onnx_status(settings, store)}
    report = {name: status.as_dict() for name, status in statuses.items()}
    try:
        chosen = resolve_runtime(settings, store, statuses)
    except EngineError:
        chosen = None
    report["auto"] = {"available": chosen is not None, "picks": chosen}
    return report


def resolve_runtime(settings: GenerationSettings, store, statuses: dict[str, RuntimeStatus] | None = None) -> str:
    """"torch" or "onnx" for the settings (see the module docstring for what auto picks)."""
    statuses = statuses or {}

    def status(name: str) -> RuntimeStatus:
        if name not in statuses:
            statuses[name] = (torch_status if name == "torch" else onnx_status)(settings, store)
        return statuses[name]

    if settings.runtime != "auto":
        chosen = status(settings.runtime)
        if not chosen.available:
            label = "PyTorch" if settings.runtime == "torch" else "ONNX Runtime"
            raise EngineError(f"the {label} runtime cannot run: {chosen.reason}")
        return settings.runtime
    torch_ok = status("torch")
    if torch_ok.available:
        gpu_wanted = settings.device != "cpu"
        if gpu_wanted and not torch_has_cuda() and onnx_has_gpu() and status("onnx").available:
            return "onnx"
        return "torch"
    if status("onnx").available:
        return "onnx"
    raise EngineError(f"ToonCrafter cannot run: {torch_ok.reason} (ONNX Runtime: {status('onnx').reason})")
