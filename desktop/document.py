"""The open project as the widgets see it: the Project, its undo stack, the playhead and selection.

Widgets never edit the Project directly: they push commands (desktop.commands) and repaint on
`changed`. The playhead and the segment selection are view state, so they are not undoable.
"""

from __future__ import annotations

from pathlib import Path

from qtpy import QtCore, QtGui

from .project import Project


class Document(QtCore.QObject):
    changed = QtCore.Signal()  # the project's content or timing changed
    currentFrameChanged = QtCore.Signal(int)
    selectionChanged = QtCore.Signal()

    def __init__(self, project: Project | None = None, path: Path | None = None, parent=None) -> None:
        super().__init__(parent)
        self.project = project or Project()
        self.path = Path(path) if path else None
        self.undo_stack = QtGui.QUndoStack(self)
        self.undo_stack.setUndoLimit(300)
        self._current = self.project.key_frames()[0] if self.project.keys else 0
        self._selected: set[int] = set()  # segments, by their first key's frame

    # ---- edits ---------------------------------------------------------------------------------
    def push(self, command) -> None:
        self.undo_stack.push(command)

    def notify(self) -> None:
        valid = {seg.start for seg in self.project.segments()}
        if not self._selected <= valid:
            self._selected &= valid
            self.selectionChanged.emit()
        self.changed.emit()

    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def mark_saved(self, path: Path) -> None:
        self.path = Path(path)
        self.undo_stack.setClean()

    # ---- playhead ------------------------------------------------------------------------------
    @property
    def current_frame(self) -> int:
        return self._current

    def set_current_frame(self, frame: int) -> None:
        frame = max(0, int(frame))
        if frame != self._current:
            self._current = frame
            self.currentFrameChanged.emit(frame)

    # ---- segment selection ---------------------------------------------------------------------
    @property
    def selected_segments(self) -> list[int]:
        """Selected segments' first-key frames, in timeline order."""
        return sorted(self._selected)

    def select_segments(self, starts, add: bool = False) -> None:
        valid = {seg.start for seg in self.project.segments()}
        new = set(starts) & valid
        if add:
            new = self._selected ^ new
        if new != self._selected:
            self._selected = new
            self.selectionChanged.emit()

    def target_segments(self) -> list[int]:
        """What Generate works on: the selection, else the segment under the playhead, else all."""
        if self._selected:
            return self.selected_segments
        seg = self.project.segment_at(self._current)
        if seg is not None:
            return [seg.start]
        return [seg.start for seg in self.project.segments()]
