"""Keyboard shortcuts: defaults that follow Pencil2D / Krita / OpenToonz habits, all rebindable.

Bindings are stored in QSettings under "shortcuts/<action id>"; the Shortcuts dialog edits them.
"""

from __future__ import annotations

from dataclasses import dataclass

from qtpy import QtCore, QtGui, QtWidgets


@dataclass(frozen=True)
class ShortcutSpec:
    id: str
    title: str
    default: str  # QKeySequence portable text; "" for none
    also: tuple[str, ...] = ()  # further default keys (arrows step frames as in Krita)


SPECS = (
    ShortcutSpec("new", "New project from keyframes…", "Ctrl+N"),
    ShortcutSpec("open", "Open project…", "Ctrl+O"),
    ShortcutSpec("save", "Save project", "Ctrl+S"),
    ShortcutSpec("save_as", "Save project as…", "Ctrl+Shift+S"),
    ShortcutSpec("export", "Export…", "Ctrl+E"),
    ShortcutSpec("undo", "Undo", "Ctrl+Z"),
    ShortcutSpec("redo", "Redo", "Ctrl+Shift+Z"),
    ShortcutSpec("quit", "Quit", "Ctrl+Q"),
    ShortcutSpec("prev_frame", "Previous frame", ",", ("Left",)),
    ShortcutSpec("next_frame", "Next frame", ".", ("Right",)),
    ShortcutSpec("prev_key", "Previous keyframe", "Alt+,"),
    ShortcutSpec("next_key", "Next keyframe", "Alt+."),
    ShortcutSpec("first_frame", "First frame of the playback range", "Home"),
    ShortcutSpec("last_frame", "Last frame of the playback range", "End"),
    ShortcutSpec("play", "Play / pause", "Return"),
    ShortcutSpec("loop", "Loop playback", "Ctrl+L"),
    ShortcutSpec("onion", "Onion skin", "O"),
    ShortcutSpec("mark_key", "Mark frame as key", "K"),
    ShortcutSpec("mark_breakdown", "Mark frame as breakdown", "Shift+K"),
    ShortcutSpec("unmark_key", "Unmark key (drawing becomes a sketch)", "Ctrl+K"),
    ShortcutSpec("on_ones", "Segment on ones", "1"),
    ShortcutSpec("on_twos", "Segment on twos", "2"),
    ShortcutSpec("on_threes", "Segment on threes", "3"),
    ShortcutSpec("pen", "Pen", "P"),
    ShortcutSpec("eraser", "Eraser", "E"),
    ShortcutSpec("fill", "Fill", "F"),
    ShortcutSpec("picker", "Colour picker", "I"),
    ShortcutSpec("reconnect", "Reconnect to the engine", ""),
    ShortcutSpec("delete_sketch", "Delete this frame's sketch", "Del"),
    ShortcutSpec("generate", "Generate in-betweens", "Ctrl+G"),
    ShortcutSpec("cancel", "Cancel generation", "Esc"),
    ShortcutSpec("accept", "Accept in-betweens", "Ctrl+Return"),
    ShortcutSpec("regenerate", "Regenerate this segment", "Ctrl+Shift+G"),
    ShortcutSpec("select_all_segments", "Select all segments", "Ctrl+A"),
    ShortcutSpec("zoom_in", "Zoom in", "Ctrl+="),
    ShortcutSpec("zoom_out", "Zoom out", "Ctrl+-"),
    ShortcutSpec("zoom_fit", "Fit canvas to window", "Ctrl+0"),
)
SPEC_BY_ID = {spec.id: spec for spec in SPECS}


class ShortcutMap:
    """Action id -> key sequence, from QSettings overrides on top of the defaults."""

    def __init__(self, settings: QtCore.QSettings) -> None:
        self.settings = settings
        self._actions: dict[str, QtGui.QAction] = {}

    def sequence(self, action_id: str) -> QtGui.QKeySequence:
        text = self.settings.value(f"shortcuts/{action_id}", SPEC_BY_ID[action_id].default)
        return QtGui.QKeySequence(str(text))

    def sequences(self, action_id: str) -> list[QtGui.QKeySequence]:
        """The bound key, plus the spec's further default keys unless the artist rebound it."""
        main = self.sequence(action_id)
        if self.settings.contains(f"shortcuts/{action_id}"):
            return [main]
        return [main, *(QtGui.QKeySequence(k) for k in SPEC_BY_ID[action_id].also)]

    def bind(self, action_id: str, action: QtGui.QAction) -> QtGui.QAction:
        action.setShortcuts(self.sequences(action_id))
        action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        self._actions[action_id] = action
        return action

    def rebind(self, action_id: str, sequence: QtGui.QKeySequence) -> None:
        text = sequence.toString(QtGui.QKeySequence.SequenceFormat.PortableText)
        if text == SPEC_BY_ID[action_id].default:
            self.settings.remove(f"shortcuts/{action_id}")
        else:
            self.settings.setValue(f"shortcuts/{action_id}", text)
        if action_id in self._actions:
            self._actions[action_id].setShortcuts(self.sequences(action_id))

    def conflicts(self) -> dict[str, list[str]]:
        """Key sequence text -> action ids bound to it, where more than one is."""
        seen: dict[str, list[str]] = {}
        for spec in SPECS:
            text = self.sequence(spec.id).toString(QtGui.QKeySequence.SequenceFormat.PortableText)
            if text:
                seen.setdefault(text, []).append(spec.id)
        return {k: v for k, v in seen.items() if len(v) > 1}


class ShortcutsDialog(QtWidgets.QDialog):
    """A table of actions with an editable key sequence each; Reset restores the default."""

    def __init__(self, shortcuts: ShortcutMap, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.shortcuts = shortcuts
        self.table = QtWidgets.QTableWidget(len(SPECS), 3, self)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut", ""])
        self.table.verticalHeader().setVisible(False)
        self.editors: dict[str, QtWidgets.QKeySequenceEdit] = {}
        for row, spec in enumerate(SPECS):
            self.table.setItem(row, 0, QtWidgets.QTableWidgetItem(spec.title))
            editor = QtWidgets.QKeySequenceEdit(shortcuts.sequence(spec.id), self)
            self.editors[spec.id] = editor
            self.table.setCellWidget(row, 1, editor)
            reset = QtWidgets.QPushButton("Default", self)
            reset.clicked.connect(lambda _=False, s=spec: editor_reset(self.editors[s.id], s))
            self.table.setCellWidget(row, 2, reset)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, 640)

    def accept(self) -> None:
        for action_id, editor in self.editors.items():
            self.shortcuts.rebind(action_id, editor.keySequence())
        clashes = self.shortcuts.conflicts()
        if clashes:
            lines = [f"{seq}: {', '.join(SPEC_BY_ID[i].title for i in ids)}" for seq, ids in clashes.items()]
            QtWidgets.QMessageBox.warning(
                self, "Shortcut used twice", "These keys are bound to more than one action:\n" + "\n".join(lines)
            )
        super().accept()


def editor_reset(editor: QtWidgets.QKeySequenceEdit, spec: ShortcutSpec) -> None:
    editor.setKeySequence(QtGui.QKeySequence(spec.default))
