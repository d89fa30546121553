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
    "apng": "Animated PNG (keeps soft transparency)",
    "mp4": "MP4 video",
}
#: Formats written here rather than by engine.exports.export_all (they take the dialog's options).
OWN_WRITERS = ("psd", "gif", "apng")


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
    keep_transparency: bool = True  # GIF: transparent pixels stay transparent (1-bit) instead of white
    psd_one_visible: bool = False  # PSD: frames as layers, only the first visible

    def remembered(self) -> dict:
        """What the project keeps for the next export (folder, name, formats, choices)."""
        return {"folder": str(self.folder), "name": self.name, "formats": list(self.formats),
                "padding": self.padding, "start": self.start, "duplicate_holds": self.duplicate_holds,
                "keep_transparency": self.keep_transparency, "psd_one_visible": self.psd_one_visible}


def frames_to_export(project: Project, frames: tuple[int, int] | None = None):
    """The playback range as engine.exports frames (frame, image, kind, drawing), clean-up included."""
    start, end = frames or project.playback_range()
    shown = project.shown_frames(range(start, end + 1))
    if not shown:
        raise exports.ExportError("nothing to export: the project has no keyframes in the playback range")
    return shown


def own_targets(options: ExportOptions) -> dict[str, Path]:
    """Where the PSD, GIF and animated PNG go: beside the sequence, named after the shot."""
    names = {"psd": f"{options.name}.psd", "gif": f"{options.name}.gif", "apng": f"{options.name}_animated.png"}
    exports.check_name(options.name)
    return {fmt: Path(options.folder) / names[fmt] for fmt in options.formats if fmt in OWN_WRITERS}


def write_export(frames, fps: float, options: ExportOptions) -> dict:
    """Write the chosen formats; returns {format: path} (the sequence as engine.exports' SequenceFiles).

    Every destination is checked before anything is written, so without *Replace existing files*
    a name clash never leaves some formats written and others not.
    """
    if not options.formats:
        raise exports.ExportError("choose at least one format to export")
    own = own_targets(options)
    if not options.overwrite:
        clashes = [path for path in own.values() if path.exists()]
        if clashes:
            raise exports.ExportExistsError(
                f"{clashes[0]} already exists: tick Replace existing files, or choose another name or folder")
    standard = [fmt for fmt in options.formats if fmt not in OWN_WRITERS]
    written = {}
    if standard:
        written = exports.export_all(
            frames, options.folder, options.name, standard, fps=fps, padding=options.padding,
            start=options.start, duplicate_holds=options.duplicate_holds, overwrite=options.overwrite,
        )
    for fmt, path in own.items():
        if fmt == "psd":
            written[fmt] = exports.write_psd(frames, path, overwrite=options.overwrite,
                                             only_first_visible=options.psd_one_visible)
        elif fmt == "gif":
            background = None if options.keep_transparency else exports.DEFAULT_BACKGROUND
            written[fmt] = exports.write_gif(frames, path, fps=fps, background=background, overwrite=options.overwrite)
        else:
            written[fmt] = exports.write_animated_png(frames, path, fps=fps, overwrite=options.overwrite)
    return written


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
    """The export choices, filled from what this project exported last (`remembered`)."""

    def __init__(self, project: Project, folder: Path, parent=None, remembered: dict | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        last = dict(remembered or {})
        form = QtWidgets.QFormLayout(self)
        self.checks = {}
        formats = set(last.get("formats") or ["png"])
        for fmt, title in FORMAT_TITLES.items():
            box = QtWidgets.QCheckBox(title)
            box.setChecked(fmt in formats)
            self.checks[fmt] = box
            form.addRow(box)
        self.folder = QtWidgets.QLineEdit(str(last.get("folder") or folder))
        browse = QtWidgets.QPushButton("…")
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Folder", row)
        self.name = QtWidgets.QLineEdit(str(last.get("name") or safe_name(project.name)))
        form.addRow("Name", self.name)
        self.padding = QtWidgets.QSpinBox()
        self.padding.setRange(1, 9)
        self.padding.setValue(int(last.get("padding", 4)))
        form.addRow("Digits", self.padding)
        self.start = QtWidgets.QSpinBox()
        self.start.setRange(0, 99999)
        self.start.setValue(int(last.get("start", 1)))
        form.addRow("First number", self.start)
        self.holds = QtWidgets.QCheckBox("Write held frames as files (otherwise a timing sheet lists them)")
        self.holds.setChecked(bool(last.get("duplicate_holds", True)))
        form.addRow(self.holds)
        self.transparency = QtWidgets.QCheckBox("GIF: keep transparency (on/off per pixel; Animated PNG keeps it soft)")
        self.transparency.setChecked(bool(last.get("keep_transparency", True)))
        form.addRow(self.transparency)
        self.psd_one_visible = QtWidgets.QCheckBox("PSD: frames as layers, only the first visible")
        self.psd_one_visible.setChecked(bool(last.get("psd_one_visible", False)))
        form.addRow(self.psd_one_visible)
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
            keep_transparency=self.transparency.isChecked(),
            psd_one_visible=self.psd_one_visible.isChecked(),
        )


def safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
    return cleaned or "shot"
