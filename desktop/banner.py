"""The banner at the top of the studio window: problems and offers in plain words, never modal.

A message may name its topic ("engine", "generation", "export", "project"): when that situation is
resolved (the engine connects, a new run starts, another project opens) the window clears the topic
and the banner goes away by itself instead of staying until dismissed.
"""

from __future__ import annotations

from qtpy import QtCore, QtWidgets


class Banner(QtWidgets.QFrame):
    """A dismissable line at the top of the window for problems and offers (never modal)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = QtWidgets.QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action_button = QtWidgets.QPushButton()
        self.close_button = QtWidgets.QPushButton("Dismiss")
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(self.close_button)
        self.close_button.clicked.connect(self.hide)
        self._callback = None
        self.topic = ""
        self.action_button.clicked.connect(self._act)
        self.hide()

    def clear(self, *topics: str) -> None:
        """Hide the banner if it shows one of these topics (all topics when none are given)."""
        if self.isVisible() and (not topics or self.topic in topics):
            self.hide()
            self._callback = None
            self.topic = ""

    def show_message(self, text: str, kind: str = "error", action: str | None = None, callback=None,
                     topic: str = "") -> None:
        self.topic = topic
        colours = {"error": "#7a2a24", "info": "#28476e", "offer": "#2f5b34"}
        self.setStyleSheet(f"#banner {{ background: {colours[kind]}; }} #banner QLabel {{ color: white; }}")
        self.label.setText(text)
        self._callback = callback
        self.action_button.setVisible(bool(action))
        self.action_button.setText(action or "")
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""

    def _act(self) -> None:
        callback, self._callback = self._callback, None
        self.hide()
        if callback:
            callback()
