"""Registers the plugin with Krita: the Tools › Scripts › "Generate in-betweens" action and the docker."""

from __future__ import annotations

from krita import DockWidgetFactory, DockWidgetFactoryBase, Extension, Krita

from ._qt import QtWidgets
from .docker import DOCKER_ID, DOCKER_TITLE, InbetweenDocker, InbetweenPanel

ACTION_ID = "inbetweener_generate"
ACTION_TEXT = "Generate in-betweens"


class InbetweenerExtension(Extension):
    """The menu action brings up the docker (refreshed for the active layer), or a window with the
    same panel when the docker is not available."""

    def __init__(self, parent) -> None:
        super().__init__(parent)
        self._dialog = None

    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:
        action = window.createAction(ACTION_ID, ACTION_TEXT, "tools/scripts")
        action.triggered.connect(lambda *_: self.show_panel())

    def show_panel(self) -> InbetweenPanel:
        window = Krita.instance().activeWindow()
        main_window = window.qwindow() if window is not None else None
        docks = list(InbetweenDocker.instances)
        docks = [d for d in docks if main_window is not None and d.window() == main_window] or docks
        if docks:
            dock = docks[0]
            dock.show()
            dock.raise_()
            dock.panel.refresh()
            return dock.panel
        if self._dialog is None:
            self._dialog = QtWidgets.QDialog(main_window)
            self._dialog.setWindowTitle(DOCKER_TITLE)
            layout = QtWidgets.QVBoxLayout(self._dialog)
            layout.addWidget(InbetweenPanel(self._dialog))
        panel = self._dialog.findChild(InbetweenPanel)
        panel.refresh()
        self._dialog.show()
        self._dialog.raise_()
        return panel


def register(app=None) -> None:
    app = app or Krita.instance()
    app.addExtension(InbetweenerExtension(app))
    app.addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, _dock_right(), InbetweenDocker)
    )


def _dock_right():
    """DockRight, scoped in Krita 6 (PyQt6) and also reachable unscoped in Krita 5 (PyQt5)."""
    return getattr(DockWidgetFactoryBase, "DockPosition", DockWidgetFactoryBase).DockRight
