"""The Qt binding Krita itself runs on: PyQt5 in Krita 5, PyQt6 in Krita 6.

Krita's `krita` module re-exports its binding's qVersion(); its major version picks the binding,
so the plugin never loads a second Qt into Krita. Code that uses Qt writes enums fully scoped
(Qt.AlignmentFlag.AlignTop), which both bindings accept.
"""

from __future__ import annotations

import krita

QT_MAJOR = int(str(krita.qVersion()).split(".")[0])

if QT_MAJOR >= 6:
    from PyQt6 import QtCore, QtGui, QtWidgets
else:
    from PyQt5 import QtCore, QtGui, QtWidgets

Signal = QtCore.pyqtSignal

__all__ = ["QT_MAJOR", "QtCore", "QtGui", "QtWidgets", "Signal"]
