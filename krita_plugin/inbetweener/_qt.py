"""The Qt binding Krita itself runs on: PyQt5 in Krita 5, PyQt6 in Krita 6.

Krita's `krita` module re-exports its binding's qVersion(); its major version picks the binding,
so the plugin never loads a second Qt into Krita. Code that uses Qt writes enums fully scoped
(Qt.AlignmentFlag.AlignTop), which both bindings accept.
"""

from __future__ import annotations

import importlib

import krita


def binding_for(qt_version: str) -> str:
    """'PyQt6' for Qt 6, 'PyQt5' for Qt 5."""
    major = int(str(qt_version).split(".")[0])
    if major not in (5, 6):
        raise ImportError(f"Krita runs on Qt {qt_version}; the Inbetweener plugin knows Qt 5 and Qt 6")
    return f"PyQt{major}"


BINDING = binding_for(krita.qVersion())
QtCore = importlib.import_module(f"{BINDING}.QtCore")
QtGui = importlib.import_module(f"{BINDING}.QtGui")
QtWidgets = importlib.import_module(f"{BINDING}.QtWidgets")
Signal = QtCore.pyqtSignal

__all__ = ["BINDING", "QtCore", "QtGui", "QtWidgets", "Signal", "binding_for"]
