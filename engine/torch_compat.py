"""Make `torchvision` (and so `open_clip`) importable next to a CPU-only torch.

PyPI's torchvision wheel is a CUDA build: its compiled operators (`torchvision/_C.so`) link against
CUDA torch libraries, so with the CPU torch they fail to load. torchvision tolerates that for most
operators, but its import then registers fake (meta) kernels for `torchvision::nms` and
`torchvision::qnms` without checking, and the import dies with "operator torchvision::nms does not
exist". open_clip imports torchvision for its image transforms, so it dies too.

The workaround runs only when that exact failure happens: the first import is the normal one (on a
machine whose torchvision loads its operators nothing changes); if it fails because those operators
are missing, their schemas are declared with `torch.library` (no kernels: torchvision itself refuses
to run them when its extension did not load) and the import is retried. Everything the engine uses
from torchvision/open_clip is plain PyTorch and works either way.
"""

from __future__ import annotations

import importlib
import re
import sys
from types import ModuleType

import torch

#: Schemas of the torchvision operators whose fake kernels torchvision registers unconditionally.
_UNGUARDED_OPERATOR_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_MISSING_OPERATOR = re.compile(r"operator torchvision::(\w+) does not exist")

_declared_library: torch.library.Library | None = None


def _operator_exists(name: str) -> bool:
    return hasattr(torch.ops.torchvision, name)


def _declare_missing_operators() -> list[str]:
    """Declare the schemas torchvision's import needs and its extension failed to provide."""
    global _declared_library
    missing = [name for name in _UNGUARDED_OPERATOR_SCHEMAS if not _operator_exists(name)]
    if missing:
        if _declared_library is None:
            _declared_library = torch.library.Library("torchvision", "FRAGMENT")
        for name in missing:
            _declared_library.define(_UNGUARDED_OPERATOR_SCHEMAS[name])
    return missing


def _forget_partial_import(package: str) -> None:
    """Drop the modules a failed import left behind, so the retry runs them again from the start."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]


def import_torchvision() -> ModuleType:
    """`import torchvision`, declaring its operators first if its compiled extension cannot load."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        match = _MISSING_OPERATOR.search(str(exc))
        if match is None or match.group(1) not in _UNGUARDED_OPERATOR_SCHEMAS:
            raise
        _forget_partial_import("torchvision")
        if not _declare_missing_operators():
            raise
    return importlib.import_module("torchvision")


def import_open_clip() -> ModuleType:
    """`import open_clip` on any machine (the one place the engine imports it from)."""
    import_torchvision()
    return importlib.import_module("open_clip")


def torchvision_ops_available() -> bool:
    """Whether torchvision's compiled operators loaded (False on CPU torch with a CUDA torchvision)."""
    torchvision = import_torchvision()
    return bool(torchvision.extension._has_ops())
