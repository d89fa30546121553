"""Exporting the timeline through engine.exports (the one home of the file writers).

What is exported is what playback shows: every frame of the playback range as a key, an
in-between or a hold. Writing runs in a QThread so a long MP4 never freezes the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qtpy import QtCore, QtWidgets

from engine import exports

from .errors import plain_message
from .project import Project

FORMAT_TITLES = {
    "png": "PNG sequence",
    "psd": "Layered PSD (one layer per drawing)",
    "gif": "Animated GIF",
    "mp4": "MP4 video",
}


@dataclass
class ExportOptions:
    folder: Path
    name: str = "shot"
    formats: tuple[str, ...] = ("png",)
    padding: int = 4
    start: int = 1
    duplicate_holds: bool = True
    overwrite: bool = False
    frames: tuple[int, int] | None = None  # None: the playback range


def frames_to_export(project: Project, frames: tuple[int, int] | None = None):
    """The playback range as engine.exports frames (frame, image, kind, drawing)."""
    start, end = frames or project.playback_range()
    shown = project.shown_frames(range(start, end + 1))
    if not shown:
        raise exports.ExportError("nothing to export: the project has no keyframes in the playback range")
    return shown


def write_export(frames, fps: float, options: ExportOptions) -> dict:
    """Write the chosen formats; returns engine.exports.export_all's {format: path}."""
    if not options.formats:
        raise exports.ExportError("choose at least one format to export")
    return exports.export_all(
        frames, options.folder, options.name, options.formats, fps=fps, padding=options.padding,
        start=options.start, duplicate_holds=options.duplicate_holds, overwrite=options.overwrite,
    )


class ExportWorker(QtCore.QThread):
    finishedOk = QtCore.Signal(dict)
    failed = QtCore.Signal(str)

    def __init__(self, project: Project, options: ExportOptions, parent=None) -> None:
        super().__init__(parent)
        self.frames = frames_to_export(project, options.frames)  # taken now: later edits do not leak in
        self.project_fps = project.fps
        self.options = options

    def run(self) -> None:
        try:
            written = write_export(self.frames, self.project_fps, self.options)
        except Exception as exc:  # shown to the artist, never a crash
            self.failed.emit(plain_message(exc))
            return
        self.finishedOk.emit(written)


class ExportDialog(QtWidgets.QDialog):
    def __init__(self, project: Project, folder: Path, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        form = QtWidgets.QFormLayout(self)
        self.checks = {}
        for fmt, title in FORMAT_TITLES.items():
            box = QtWidgets.QCheckBox(title)
            box.setChecked(fmt == "png")
            self.checks[fmt] = box
            form.addRow(box)
        self.folder = QtWidgets.QLineEdit(str(folder))
        browse = QtWidgets.QPushButton("…")
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Folder", row)
        self.name = QtWidgets.QLineEdit(_safe_name(project.name))
        form.addRow("Name", self.name)
        self.padding = QtWidgets.QSpinBox()
        self.padding.setRange(1, 9)
        self.padding.setValue(4)
        form.addRow("Digits", self.padding)
        self.start = QtWidgets.QSpinBox()
        self.start.setRange(0, 99999)
        self.start.setValue(1)
        form.addRow("First number", self.start)
        self.holds = QtWidgets.QCheckBox("Write held frames as files (otherwise a timing sheet lists them)")
        self.holds.setChecked(True)
        form.addRow(self.holds)
        self.overwrite = QtWidgets.QCheckBox("Replace existing files")
        form.addRow(self.overwrite)
        start, end = project.playback_range()
        form.addRow(QtWidgets.QLabel(f"Frames {start}–{end} at {project.fps} fps (the playback range)"))
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Export into folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def options(self) -> ExportOptions:
        return ExportOptions(
            folder=Path(self.folder.text()),
            name=self.name.text().strip(),
            formats=tuple(fmt for fmt, box in self.checks.items() if box.isChecked()),
            padding=self.padding.value(),
            start=self.start.value(),
            duplicate_holds=self.holds.isChecked(),
            overwrite=self.overwrite.isChecked(),
        )


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
    return cleaned or "shot"
