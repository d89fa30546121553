"""Does an exported file compute what PyTorch computes? Run it in onnxruntime and measure.

Each graph is fed its example inputs, a second shape (to exercise the dynamic axes) and, for the
tiny reference model, the golden cases' inputs. The check reports the largest absolute difference
between onnxruntime and the same PyTorch module, and against the golden outputs where the reference
recorded them, and fails above the tolerance:
- float32: 1e-4, the reference's own tolerance for single forwards (its 1-vs-2-thread reruns differ
  by 1e-6 to 1e-5); RIFE: 5e-3 on flows (in pixels, tens of them) and fusion-mask logits, because
  five warping levels pass rounding on (noise keys amplify it most, to about 2e-3; drawn keys stay
  near 2e-4): 1/200 px, or 1/1000 of a pixel's blend weight, is far below what a drawing can show.
- float16: both sides round every layer to 11 bits and take different kernels, so the difference is
  measured relative to the output's magnitude: 2e-2 × max(1, max |PyTorch output|).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from engine.tooncrafter.runtimes.onnx_sessions import GraphSession

from .graphs import GraphSpec, InputSet

FP32_TOLERANCE = 1e-4
RIFE_TOLERANCE = 5e-3
FP16_RELATIVE_TOLERANCE = 2e-2


@dataclass
class CheckResult:
    graph: str
    label: str
    provider: str
    max_diff: float
    tolerance: float
    golden_diff: float | None = None
    golden_tolerance: float | None = None

    @property
    def passed(self) -> bool:
        ok = self.max_diff <= self.tolerance
        if self.golden_diff is not None and self.golden_tolerance is not None:
            ok = ok and self.golden_diff <= self.golden_tolerance
        return ok

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = f"{verdict} {self.graph:<15} {self.label:<47} max|ort-torch| {self.max_diff:.2e} (tol {self.tolerance:.0e})"
        if self.golden_diff is not None:
            text += f", max|ort-golden| {self.golden_diff:.2e}"
            if self.golden_tolerance is not None:
                text += f" (tol {self.golden_tolerance:.0e})"
        return text + f" [{self.provider}]"


def tolerance_for(graph: str, precision: str, reference: list[torch.Tensor], override: float | None) -> float:
    if override is not None:
        return override
    if precision == "fp16":
        scale = max([1.0] + [float(t.abs().max()) for t in reference if t.numel()])
        return FP16_RELATIVE_TOLERANCE * scale
    return RIFE_TOLERANCE if graph == "rife" else FP32_TOLERANCE


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x.float() - y.float()).abs().max()) for x, y in zip(a, b, strict=True))


def check_input_set(
    session: GraphSession, spec: GraphSpec, input_set: InputSet, precision: str, override: float | None, device: torch.device
) -> CheckResult:
    with torch.no_grad():
        expected = spec.module(*(t.to(device) for t in input_set.inputs))
    expected = [t.cpu() for t in (expected if isinstance(expected, tuple) else (expected,))]
    got = session.run(**dict(zip(spec.interface.inputs, input_set.inputs)))
    shapes_differ = [n for n, e, g in zip(spec.interface.outputs, expected, got) if tuple(e.shape) != tuple(g.shape)]
    diff = float("inf") if shapes_differ else _max_diff(got, expected)
    result = CheckResult(
        spec.name, input_set.label, session.providers[0], diff, tolerance_for(spec.name, precision, expected, override)
    )
    if input_set.golden and precision == "fp32":
        outputs = dict(zip(spec.interface.outputs, got))
        names = list(input_set.golden)
        result.golden_diff = _max_diff([outputs[n] for n in names], [input_set.golden[n] for n in names])
        result.golden_tolerance = input_set.golden_tolerance or FP32_TOLERANCE
    return result


def check_graph(folder: str | Path, spec: GraphSpec, precision: str, settings) -> list[CheckResult]:
    """Every input set of `spec` through the exported file and the PyTorch module.

    The PyTorch side runs on `settings.reference_device` (CUDA makes checking a full-size float16
    export practical: float16 on the CPU is very slow in PyTorch) and is put back on the CPU after.
    """
    session = GraphSession(Path(folder) / spec.interface.file, spec.interface, settings.providers, precision)
    sets = [InputSet("example inputs (traced shapes)", spec.example)] + list(spec.checks)
    device = torch.device(settings.reference_device)
    spec.module.to(device)
    try:
        return [check_input_set(session, spec, s, precision, settings.tolerance, device) for s in sets]
    finally:
        spec.module.to("cpu")
