"""ONNX Runtime sessions: execution providers chosen, checked and reported; tensors fed by IO binding.

Providers, best first: TensorRT when this onnxruntime build lists it (its engines cached in the
model store, fp16 for fp16 exports), CUDA, then CPU. A provider listed by
`get_available_providers()` may still fail to load (onnxruntime-gpu lists TensorRT and CUDA even
when libnvinfer, cuDNN or the CUDA runtime are missing, then quietly falls back), so after creating
a session we ask it which providers it really runs (`get_providers()`) and say so.

IO binding: every run binds the torch tensors' memory directly (CPU or CUDA pointers) and writes
the outputs into torch tensors allocated where the caller keeps its tensors. With the CUDA provider
and a CUDA build of PyTorch the latents therefore stay on the GPU between sampling steps; with a
CPU-only PyTorch onnxruntime copies the (few MB of) inputs and outputs per run. Output shapes are
learnt on the first run of each input shape, which lets later runs preallocate them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .onnx_folder import GraphInterface, OnnxExportError

log = logging.getLogger("engine.tooncrafter.onnx")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
#: The providers this engine uses, best first (others, e.g. Azure, are never picked).
PREFERENCE = (TENSORRT, CUDA, CPU)

_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}
_TORCH_TYPES = {np.float32: torch.float32, np.float16: torch.float16, np.int64: torch.int64, np.int32: torch.int32}


def available_providers() -> list[str]:
    """What this onnxruntime build lists (empty when onnxruntime is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


@dataclass
class ProviderPlan:
    """The providers asked for (with options), in order, and why the better ones are left out."""

    providers: list[tuple[str, dict[str, Any]]]
    device_id: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.providers]

    @property
    def wants_gpu(self) -> bool:
        return any(name in (CUDA, TENSORRT) for name in self.names)


def gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU (PyTorch sees one, or the driver's nvidia-smi is there)."""
    import shutil

    try:
        import torch as _torch

        if _torch.cuda.is_available():
            return True
    except ImportError:
        pass
    return shutil.which("nvidia-smi") is not None


def plan_providers(device: str = "auto", precision: str = "fp32", trt_cache: Path | None = None) -> ProviderPlan:
    """Providers for a device setting: "cpu"; "cuda" / "cuda:N" (an error when onnxruntime has no CUDA
    provider); "auto" (the GPU ones when this build has them, else the CPU, with a note saying how to
    get the GPU package when the machine has an NVIDIA GPU)."""
    available = available_providers()
    if not available:
        raise OnnxExportError("onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu for CUDA)")
    device_id = int(device.split(":", 1)[1]) if device.startswith("cuda:") else 0
    if device == "cpu":
        return ProviderPlan([(CPU, {})])
    notes = []
    providers: list[tuple[str, dict[str, Any]]] = []
    if TENSORRT in available:
        options: dict[str, Any] = {"device_id": device_id, "trt_fp16_enable": precision == "fp16"}
        if trt_cache is not None:
            options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(trt_cache), trt_timing_cache_enable=True,
                           trt_timing_cache_path=str(trt_cache))
        providers.append((TENSORRT, options))
    if CUDA in available:
        providers.append((CUDA, {"device_id": device_id}))
    if not providers:
        message = (
            "this onnxruntime has no CUDA provider (the CPU package `onnxruntime` is installed): "
            "uninstall it and install `onnxruntime-gpu` to run on the GPU (see docs/onnx.md)"
        )
        if device.startswith("cuda"):
            raise OnnxExportError(message)
        if gpu_present():
            notes.append(message)
    providers.append((CPU, {}))
    return ProviderPlan(providers, device_id, notes)


def check_providers(plan: ProviderPlan, actual: Sequence[str], what: str) -> list[str]:
    """Messages for every asked-for provider that did not load in a session (`actual` is its
    get_providers()); the first loaded one is what runs."""
    missing = [name for name in plan.names if name not in actual]
    if not missing:
        return []
    runs = actual[0] if actual else "nothing"
    hints = {
        TENSORRT: "TensorRT libraries (libnvinfer) missing or not matching this onnxruntime-gpu",
        CUDA: "the CUDA runtime or cuDNN that this onnxruntime-gpu needs is missing (see docs/onnx.md)",
    }
    return [f"{what}: {name} could not load ({hints.get(name, 'unavailable')}); running on {runs}" for name in missing]


class GraphSession:
    """One ONNX file in an onnxruntime session, fed and read as torch tensors by name.

    `device` is where the caller keeps its tensors (outputs are allocated there).
    """

    def __init__(
        self,
        path: Path,
        interface: GraphInterface,
        plan: ProviderPlan | Sequence[str] | None = None,
        precision: str = "fp32",
        device: torch.device | str = "cpu",
    ) -> None:
        import onnxruntime as ort

        if not path.is_file():
            raise OnnxExportError(f"{path} is missing from the ONNX export folder (export it again)")
        if plan is None or not isinstance(plan, ProviderPlan):
            plan = ProviderPlan([(name, {}) for name in plan]) if plan else plan_providers("auto", precision)
        options = ort.SessionOptions()
        # Sampling alternates PyTorch steps with graph runs; onnxruntime's worker threads would
        # otherwise keep spinning after each run and starve PyTorch's threads of the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if precision == "fp16":
            # onnxruntime 1.32's CPU layout optimisations (the level above EXTENDED) crash the process
            # on these float16 graphs; EXTENDED keeps every fusion and runs them.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        try:
            self.session = ort.InferenceSession(str(path), options, providers=plan.providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            raise OnnxExportError(f"onnxruntime cannot load {path}: {exc}") from None
        self.path = path
        self.plan = plan
        self.device = torch.device(device)
        self.warnings = check_providers(plan, self.session.get_providers(), path.name)
        for warning in self.warnings:
            log.warning(warning)
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        unexpected = sorted(set(inputs) - set(interface.inputs))
        if unexpected or self.output_names != list(interface.outputs):
            raise OnnxExportError(
                f"{path} does not have the expected tensors: inputs {sorted(inputs)} (expected a subset of "
                f"{list(interface.inputs)}), outputs {self.output_names} (expected {list(interface.outputs)})"
            )
        self.input_types = {name: _NUMPY_TYPES.get(i.type, np.float32) for name, i in inputs.items()}
        self.output_types = {o.name: _NUMPY_TYPES.get(o.type, np.float32) for o in self.session.get_outputs()}
        self._output_shapes: dict[tuple, list[tuple[int, ...]]] = {}

    @property
    def providers(self) -> list[str]:
        """The providers this session really runs, best first (the first one runs the graph)."""
        return self.session.get_providers()

    @property
    def runs_on_gpu(self) -> bool:
        return self.providers[0] in (CUDA, TENSORRT)

    def _ort_device(self) -> tuple[str, int]:
        return ("cuda", self.plan.device_id) if self.runs_on_gpu else ("cpu", 0)

    def run(self, **tensors: torch.Tensor | None) -> list[torch.Tensor]:
        """Feed the named tensors the graph declares (others are ignored: e.g. an unused fs); the
        outputs come back as torch tensors on `device`."""
        binding = self.session.io_binding()
        keep_alive = []
        shapes = []
        for name, np_type in self.input_types.items():
            value = tensors.get(name)
            if value is None:
                raise ValueError(f"{self.path.name} needs the input {name!r}")
            value = value.detach().to(dtype=_TORCH_TYPES[np_type]).contiguous()
            keep_alive.append(value)
            shapes.append(tuple(value.shape))
            kind = "cuda" if value.is_cuda else "cpu"
            binding.bind_input(name, kind, value.device.index or 0, np_type, tuple(value.shape), value.data_ptr())
        if any(v.is_cuda for v in keep_alive):
            torch.cuda.synchronize(self.device)  # torch's kernels that wrote the inputs have finished
        key = tuple(shapes)
        known = self._output_shapes.get(key)
        outputs = []
        if known is not None:
            kind = "cuda" if self.device.type == "cuda" else "cpu"
            for name, shape in zip(self.output_names, known):
                out = torch.empty(shape, dtype=_TORCH_TYPES[self.output_types[name]], device=self.device)
                binding.bind_output(name, kind, self.device.index or 0, self.output_types[name], shape, out.data_ptr())
                outputs.append(out)
        else:
            ort_kind, ort_id = self._ort_device()
            for name in self.output_names:
                binding.bind_output(name, ort_kind, ort_id)
        self.session.run_with_iobinding(binding)
        if known is not None:
            binding.synchronize_outputs()
            return outputs
        arrays = binding.copy_outputs_to_cpu()
        self._output_shapes[key] = [tuple(a.shape) for a in arrays]
        return [torch.from_numpy(np.asarray(a)).to(self.device) for a in arrays]


def session_summary(sessions: Mapping[str, GraphSession | None]) -> dict[str, str]:
    """graph name -> the provider that really runs it."""
    return {name: s.providers[0] for name, s in sessions.items() if s is not None}
