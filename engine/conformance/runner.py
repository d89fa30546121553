"""Runs golden conformance cases (a folder in the format of shared/reference/tiny_a) against the engine.

A case folder holds `config.json` (hyperparameters of tiny models), `weights.safetensors` and
`sketch_weights.safetensors` (their weights under official key names), `cases.safetensors` (golden
tensors) and `cases.json` (the contract of every case: inputs/outputs/intermediates with the stored
`key` of each tensor, params, a suggested tolerance).

Plug-in contract: every module `engine/conformance/checks_*.py` exposes
`CASES: dict[str, Callable[[CaseContext], dict[str, torch.Tensor]]]`. A check receives the case's
context and returns tensors named as the case's `outputs` (and optionally `intermediates`); the runner
compares every returned name that has a golden and fails when a required output is missing.
Modules are discovered with pkgutil, so adding a file adds cases.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import pkgutil
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

DEFAULT_ATOL = 1e-4
#: The runtimes the model cases can run on.
RUNTIMES = ("torch", "onnx")

CheckFn = Callable[["CaseContext"], "dict[str, torch.Tensor]"]


class LazyTensorFile(Mapping):
    """A safetensors file read on first access: checks that never touch the weights stay cheap."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tensors: dict[str, torch.Tensor] | None = None

    def _load(self) -> dict[str, torch.Tensor]:
        if self._tensors is None:
            if not self.path.is_file():
                raise FileNotFoundError(f"{self.path} is missing from the case folder")
            self._tensors = load_file(str(self.path))
        return self._tensors

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


@dataclass
class CaseContext:
    """What a check gets: the folder's config and weights plus this case's inputs and contract.

    `cache` is shared by every case of one folder, so checks can build a tiny model once and reuse it.
    """

    name: str
    config: dict
    weights: Mapping[str, torch.Tensor]
    sketch_weights: Mapping[str, torch.Tensor]
    inputs: dict[str, torch.Tensor]
    params: dict
    case: dict
    cache: dict = field(default_factory=dict)
    stored: Mapping[str, torch.Tensor] = field(default_factory=dict)
    #: The runtime the model cases run on ("torch" or "onnx"; see models.py).
    runtime: str = "torch"
    folder: Path | None = None

    def golden(self, name: str) -> torch.Tensor:
        """A stored output or intermediate of this case (for teacher-forced per-step checks)."""
        entry = {**self.case.get("outputs", {}), **(self.case.get("intermediates") or {})}[name]
        return self.stored[entry["key"]]


class CaseFolder:
    """A folder of golden cases."""

    def __init__(self, path: str | Path, runtime: str = "torch") -> None:
        self.path = Path(path)
        self.runtime = runtime
        cases_json = self.path / "cases.json"
        if not cases_json.is_file():
            raise FileNotFoundError(f"{self.path} is not a case folder: cases.json is missing")
        self.spec = json.loads(cases_json.read_text())
        self.config = json.loads((self.path / "config.json").read_text())
        self.tensors = LazyTensorFile(self.path / self.spec.get("tensor_file", "cases.safetensors"))
        self.weights = LazyTensorFile(self.path / "weights.safetensors")
        self.sketch_weights = LazyTensorFile(self.path / "sketch_weights.safetensors")
        self.aliases: dict[str, str] = self.spec.get("aliases", {})
        self.cache: dict[str, Any] = {}

    @property
    def case_names(self) -> list[str]:
        return list(self.spec["cases"])

    def stored_key(self, case: str, name: str, entry: dict) -> str:
        own = f"{case}.{name}"
        return entry.get("key") or self.aliases.get(own, own)

    def tensor(self, case: str, name: str, entry: dict) -> torch.Tensor:
        key = self.stored_key(case, name, entry)
        try:
            return self.tensors[key]
        except KeyError:
            raise KeyError(f"case {case!r}: tensor {name!r} (stored key {key!r}) is not in the tensor file") from None

    def context(self, case: str) -> CaseContext:
        spec = self.spec["cases"][case]
        inputs = {name: self.tensor(case, name, entry) for name, entry in spec.get("inputs", {}).items()}
        return CaseContext(
            name=case,
            config=self.config,
            weights=self.weights,
            sketch_weights=self.sketch_weights,
            inputs=inputs,
            params=spec.get("params", {}),
            case=spec,
            cache=self.cache,
            stored=self.tensors,
            runtime=self.runtime,
            folder=self.path,
        )

    def goldens(self, case: str) -> dict[str, tuple[torch.Tensor, bool]]:
        """name -> (golden tensor, required): outputs are required, intermediates optional."""
        spec = self.spec["cases"][case]
        out: dict[str, tuple[torch.Tensor, bool]] = {}
        for name, entry in (spec.get("intermediates") or {}).items():
            out[name] = (self.tensor(case, name, entry), False)
        for name, entry in spec.get("outputs", {}).items():
            out[name] = (self.tensor(case, name, entry), True)
        return out


def discover_checks() -> tuple[dict[str, CheckFn], dict[str, str]]:
    """All CASES of engine/conformance/checks_*.py, plus import errors by module name."""
    package = importlib.import_module(__package__ or "engine.conformance")
    checks: dict[str, CheckFn] = {}
    owners: dict[str, str] = {}
    errors: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("checks_"):
            continue
        module_name = f"{package.__name__}.{info.name}"
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a broken plug-in must not hide the others' results
            errors[info.name] = f"{type(exc).__name__}: {exc}"
            continue
        for case, fn in getattr(module, "CASES", {}).items():
            if case in checks:
                raise RuntimeError(f"case {case!r} is checked by both {owners[case]} and {info.name}")
            checks[case] = fn
            owners[case] = info.name
    return checks, errors


@dataclass
class TensorResult:
    name: str
    max_abs_diff: float
    note: str = ""


@dataclass
class CaseResult:
    case: str
    passed: bool
    atol: float
    max_abs_diff: float = math.nan
    worst: str = ""
    tensors: list[TensorResult] = field(default_factory=list)
    error: str = ""

    def line(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        diff = "-" if math.isnan(self.max_abs_diff) else f"{self.max_abs_diff:.3e}"
        text = f"{status}  {self.case:<24} max_abs_diff={diff:<10} atol={self.atol:g}"
        if self.tensors:
            text += f"  ({len(self.tensors)} tensors"
            text += f", worst {self.worst})" if self.worst else ")"
        if self.error:
            text += f"  {self.error}"
        return text


def max_abs_diff(got: torch.Tensor, want: torch.Tensor) -> tuple[float, str]:
    """Largest absolute difference in float64; inf with a note on shape mismatch or non-finite values."""
    got = torch.as_tensor(got).detach().to("cpu")
    if tuple(got.shape) != tuple(want.shape):
        return math.inf, f"shape {tuple(got.shape)} != golden {tuple(want.shape)}"
    if got.numel() == 0:
        return 0.0, ""
    a, b = got.double(), want.double()
    if not torch.isfinite(a).all() and not torch.equal(torch.isfinite(a), torch.isfinite(b)):
        return math.inf, "non-finite values"
    diff = (a - b).abs()
    diff = torch.where(torch.isfinite(a) & torch.isfinite(b), diff, torch.zeros_like(diff))
    return float(diff.max()), ""


def run_case(folder: CaseFolder, case: str, check: CheckFn | None, verbose: bool = False) -> CaseResult:
    spec = folder.spec["cases"][case]
    atol = float(spec.get("suggested_atol") or DEFAULT_ATOL)
    if check is None:
        return CaseResult(case, False, atol, error="no check for this case")
    try:
        with torch.no_grad():
            produced = check(folder.context(case))
    except Exception as exc:
        detail = traceback.format_exc() if verbose else f"{type(exc).__name__}: {exc}"
        return CaseResult(case, False, atol, error=f"error: {detail}")
    result = CaseResult(case, True, atol, max_abs_diff=0.0)
    goldens = folder.goldens(case)
    missing = [name for name, (_, required) in goldens.items() if required and name not in produced]
    for name, tensor in produced.items():
        if name not in goldens:
            continue
        diff, note = max_abs_diff(tensor, goldens[name][0])
        result.tensors.append(TensorResult(name, diff, note))
        if diff > result.max_abs_diff or (not result.worst and diff == result.max_abs_diff):
            result.max_abs_diff, result.worst = diff, name
        if not diff <= atol:
            result.passed = False
    if missing:
        result.passed = False
        result.error = "missing outputs: " + ", ".join(missing)
    if not result.tensors and not missing:
        result.passed = False
        result.error = "the check returned no tensor with a golden"
    return result


def run_folder(
    path: str | Path,
    cases: list[str] | None = None,
    verbose: bool = False,
    echo: Callable[[str], None] = print,
    runtime: str = "torch",
    export_dir: str | Path | None = None,
) -> list[CaseResult]:
    """Run the cases of a folder (all of them unless `cases` names some), printing one line each.

    `runtime` "onnx" exports the folder's tiny models (fp32) into `export_dir` (default: a temporary
    folder; an existing export of the same model there is reused) and runs every model case through
    ONNX Runtime, with the same tolerances as on PyTorch.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    with contextlib.ExitStack() as stack:
        folder = CaseFolder(path, runtime)
        if runtime == "onnx":
            if export_dir is None:
                export_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="conformance-onnx-"))
            folder.cache["onnx.export_dir"] = Path(export_dir)
            folder.cache["onnx.echo"] = echo
        return _run_cases(folder, cases, verbose, echo)


def _run_cases(folder: CaseFolder, cases: list[str] | None, verbose: bool, echo: Callable[[str], None]) -> list[CaseResult]:
    checks, errors = discover_checks()
    for module, error in errors.items():
        echo(f"WARN  check module {module} failed to import: {error}")
    names = cases or folder.case_names
    unknown = [name for name in names if name not in folder.spec["cases"]]
    if unknown:
        raise KeyError(f"{folder.path} has no case named {', '.join(unknown)}")
    results = []
    for name in names:
        result = run_case(folder, name, checks.get(name), verbose=verbose)
        results.append(result)
        echo(result.line())
        if verbose:
            for t in result.tensors:
                echo(f"        {t.name:<28} {t.max_abs_diff:.3e} {t.note}")
    passed = sum(r.passed for r in results)
    echo(f"{len(results)} cases on {folder.runtime}: {passed} passed, {len(results) - passed} failed")
    return results
