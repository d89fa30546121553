"""The studio window: canvas above, timeline below, Generate panel on the right.

Every action is a method that tests can call without dialogs (new_project_from_files,
open_project, save_project, generate, export); the menu entries only add the file pickers.
Problems appear in a banner at the top in plain words and never block the window.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from qtpy import QtCore, QtGui, QtWidgets

from engine.core import frontends
from engine.core.client import default_engine_python
from engine.core.planning import PlanningError

from . import cleanup, commands, importers, storage
from .banner import Banner
from .canvas import Canvas
from .document import Document
from .engine_link import ConnectWorker, GenerateWorker, SegmentResult, plan_jobs
from .errors import plain_message
from .export_dialog import ExportDialog, ExportOptions, ExportWorker, safe_name
from .generate_panel import GeneratePanel
from .menus import build_menus
from .playback import Player
from .project import Project, ProjectError, Timing
from .shortcuts import ShortcutMap, ShortcutsDialog
from .timeline import Timeline

APP_NAME = "Inbetweener Studio"
MAX_RECENT = 10
AUTOSAVE_DELAY_MS = 3000
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff)"
PROJECT_FILTER = "Inbetweener projects (*.inbetween project.json)"


class MainWindow(QtWidgets.QMainWindow):
    engineReady = QtCore.Signal()
    generationFinished = QtCore.Signal(str)  # "done" | "cancelled" | "failed"
    exportFinished = QtCore.Signal(object)  # dict of written files, or None on failure

    def __init__(
        self,
        settings: QtCore.QSettings | None = None,
        engine_options: dict | None = None,
        autosave_dir: Path | None = None,
        connect: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings or QtCore.QSettings("Inbetweener", "Studio")
        self.engine_options = dict(engine_options or {})
        base = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.AppDataLocation)
        self.autosave_root = Path(autosave_dir) if autosave_dir else Path(base or Path.home() / ".inbetweener") / "autosave"
        self.shortcuts = ShortcutMap(self.settings)
        self.client = None
        self.health: dict = {}
        self._connect_worker: ConnectWorker | None = None
        self._generate_worker: GenerateWorker | None = None
        self._export_worker: ExportWorker | None = None
        self._pending_generate: tuple[str, list[int]] | None = None
        self._run_id = ""
        self._keep_corrected = True
        self._session = uuid.uuid4().hex[:12]

        self.doc = Document()
        self.player = Player(self.doc, self)
        self.canvas = Canvas(self.doc)
        self.timeline = Timeline(self.doc)
        self.panel = GeneratePanel(self.doc)
        self.banner = Banner()
        self._build_layout()
        self._build_actions()
        self._wire()
        self._autosave_timer = QtCore.QTimer(self)
        self._autosave_timer.setSingleShot(True)
        self._autosave_timer.timeout.connect(self.autosave)
        self._adopt(self.doc)
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 820)
        self._offer_recovery()
        if connect:
            self.connect_engine()

    # ---- layout ----------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        splitter.addWidget(self.canvas)
        splitter.addWidget(self.timeline)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 1)
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)
        dock = QtWidgets.QDockWidget("Generate", self)
        dock.setObjectName("generate_dock")
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.panel)
        dock.setWidget(scroll)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.engine_label = QtWidgets.QLabel("Engine: not connected")
        self.statusBar().addPermanentWidget(self.engine_label)

    def make_action(self, action_id: str | None, text: str, slot, checkable: bool = False, tip: str = "") -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        action.setCheckable(checkable)
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        if action_id:
            self.shortcuts.bind(action_id, action)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        build_menus(self)

    def _wire(self) -> None:
        self.canvas.message.connect(self.status)
        self.canvas.colourPicked.connect(self._colour_picked)
        self.timeline.canvas.message.connect(self.status)
        self.timeline.canvas.cellMenuRequested.connect(self._cell_menu)
        self.timeline.canvas.rulerMenuRequested.connect(self._ruler_menu)
        self.panel.generateRequested.connect(self.generate)
        self.panel.cancelRequested.connect(self.cancel_generation)
        self.panel.acceptRequested.connect(self.accept_inbetweens)
        self.panel.message.connect(self.status)
        self.player.playingChanged.connect(self._playing_changed)

    # ---- the document --------------------------------------------------------------------------
    def set_document(self, doc: Document) -> None:
        old = self.doc
        self.doc = doc
        self.player.set_document(doc)
        self.canvas.set_document(doc)
        self.timeline.set_document(doc)
        self.panel.set_document(doc)
        self._release(old)
        self._adopt(doc)
        self._session = uuid.uuid4().hex[:12]
        old.undo_stack.clear()  # its commands hold the old project: free them while Python still runs
        old.deleteLater()
        self.panel.reset_status()
        self.banner.clear("generation", "project", "export")
        self.canvas.fit()

    def _release(self, doc: Document) -> None:
        """Undo _adopt: a stack being destroyed emits cleanChanged, which must not reach us."""
        if not doc.property("adopted"):
            return
        doc.setProperty("adopted", False)
        doc.changed.disconnect(self._doc_changed)
        doc.undo_stack.cleanChanged.disconnect(self._update_title)
        doc.undo_stack.canUndoChanged.disconnect(self.actions_by_id["undo"].setEnabled)
        doc.undo_stack.canRedoChanged.disconnect(self.actions_by_id["redo"].setEnabled)
        doc.undo_stack.undoTextChanged.disconnect(self._undo_text)
        doc.undo_stack.redoTextChanged.disconnect(self._redo_text)
        doc.undo_stack.indexChanged.disconnect(self._history_changed)
        doc.changed.disconnect(self._refresh_palette)

    def _adopt(self, doc: Document) -> None:
        """Window-level wiring of a document (title, undo actions, autosave, loop and fps)."""
        doc.setProperty("adopted", True)
        doc.changed.connect(self._doc_changed)
        doc.undo_stack.cleanChanged.connect(self._update_title)
        doc.undo_stack.canUndoChanged.connect(self.actions_by_id["undo"].setEnabled)
        doc.undo_stack.canRedoChanged.connect(self.actions_by_id["redo"].setEnabled)
        doc.undo_stack.undoTextChanged.connect(self._undo_text)
        doc.undo_stack.redoTextChanged.connect(self._redo_text)
        doc.undo_stack.indexChanged.connect(self._history_changed)
        doc.changed.connect(self._refresh_palette)
        self.actions_by_id["undo"].setEnabled(doc.undo_stack.canUndo())
        self.actions_by_id["redo"].setEnabled(doc.undo_stack.canRedo())
        self._undo_text(doc.undo_stack.undoText())
        self._redo_text(doc.undo_stack.redoText())
        self._refresh_palette()
        self.actions_by_id["loop"].setChecked(doc.project.loop)
        self.fps_spin.blockSignals(True)
        self.fps_spin.setValue(doc.project.fps)
        self.fps_spin.blockSignals(False)
        self._update_title()

    def _undo_text(self, text: str) -> None:
        """Edit ▸ Undo names the step it takes back ("Undo Generate 3 segments")."""
        self.actions_by_id["undo"].setText(f"Undo {text}" if text else "Undo")

    def _redo_text(self, text: str) -> None:
        self.actions_by_id["redo"].setText(f"Redo {text}" if text else "Redo")

    def _history_changed(self, _index: int) -> None:
        """Undo, redo or a new edit: a finished run's "Done" or percentage no longer describes the timeline."""
        if not self.generating() and self._pending_generate is None:
            self.panel.reset_status()
            self.banner.clear("generation")

    def _refresh_palette(self) -> None:
        """The clean-up palette follows the keys (their flat colours, most used first)."""
        keys = self.doc.project.keys
        signature = tuple(sorted((f, c.drawing.digest) for f, c in keys.items()))
        if signature == getattr(self, "_palette_for", None):
            return
        self._palette_for = signature
        self.palette_colours = cleanup.keys_palette([c.drawing.image for c in keys.values()])
        self.build_palette_bar()

    def build_palette_bar(self) -> None:
        """The current clean-up colour (click to choose any), then the keys' palette as swatches."""
        bar = self.palette_bar
        for action in self.swatch_actions:
            bar.removeAction(action)
            action.deleteLater()
        self.swatch_actions = []
        for rgb in self.palette_colours:
            colour = QtGui.QColor(*rgb)
            action = bar.addAction(_swatch(colour), colour.name())
            action.setToolTip(f"Clean-up colour {colour.name()} (from the keys)")
            action.triggered.connect(lambda _=False, c=colour: self.canvas.set_cleanup_colour(c))
            self.swatch_actions.append(action)
        if self.palette_colours and not getattr(self, "_colour_chosen", False):
            darkest = min(self.palette_colours, key=lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])
            self.canvas.brush.cleanup_colour = QtGui.QColor(*darkest)  # the keys' line colour
        self._show_colour(self.canvas.brush.cleanup_colour)

    def _show_colour(self, colour: QtGui.QColor) -> None:
        self.colour_button.setIcon(_swatch(colour))
        self.colour_button.setToolTip(f"Clean-up colour {colour.name()}: click to choose another")

    def _colour_picked(self, colour: QtGui.QColor) -> None:
        self._colour_chosen = True
        self._show_colour(colour)

    def choose_colour(self) -> None:
        colour = QtWidgets.QColorDialog.getColor(self.canvas.brush.cleanup_colour, self, "Clean-up colour")
        if colour.isValid():
            self.canvas.set_cleanup_colour(colour)

    def replace_project(self, project: Project, path: Path | None = None) -> None:
        self.set_document(Document(project, path))
        if path:
            self._add_recent(path)

    def _doc_changed(self) -> None:
        self._update_title()
        if self.doc.dirty:
            self._autosave_timer.start(AUTOSAVE_DELAY_MS)

    def _update_title(self) -> None:
        name = self.doc.path.name if self.doc.path else self.doc.project.name
        self.setWindowTitle(f"{name}{' *' if self.doc.dirty else ''} — {APP_NAME}")

    def status(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def show_problem(self, text: str, action: str | None = None, callback=None, topic: str = "") -> None:
        """A problem in the banner; `topic` lets the banner go away by itself once that is resolved."""
        self.banner.show_message(text, "error", action, callback, topic=topic)
        self.status(text.split(". ")[0])

    # ---- new / open / save ---------------------------------------------------------------------
    def new_project_from_files(self, paths, kind: str | None = None, inbetweens: int = 7, exposure: int = 1,
                               fit: bool = False, name: str | None = None, asked: bool = False) -> bool:
        """Start a project from keyframe images, a PNG sequence (folder or files) or a layered PSD."""
        paths = [Path(p) for p in paths]
        kind = kind or importers.detect_kind(paths)
        try:
            if kind == "psd":
                keys = importers.psd_layers(paths[0], inbetweens, exposure)
            elif kind == "sequence":
                keys = importers.png_sequence(paths[0] if len(paths) == 1 else paths)
            else:
                keys = importers.keyframe_images(paths, inbetweens, exposure, fit=fit)
            title = name or (paths[0].stem if kind == "psd" else paths[0].parent.name if kind == "keys" else paths[0].name)
            project = importers.project_from_keys(keys, name=title or "Untitled")
            if exposure != 1:
                project.timing = Timing(exposure=exposure)
        except ProjectError as exc:
            text = plain_message(exc)
            if "sizes differ" in str(exc) and kind == "keys":
                self.show_problem(text, "Fit to the first key's size",
                                  lambda: self.new_project_from_files(paths, kind, inbetweens, exposure, True, name))
            else:
                self.show_problem(text)
            return False
        if not asked and not self.maybe_keep_work():
            return False
        self.replace_project(project)
        self.banner.hide()
        self.status(f"New project: {len(project.keys)} keyframes. Sketch on an in-between, then Generate.")
        return True

    def open_project(self, path, asked: bool = False) -> bool:
        path = Path(path)
        try:
            project = storage.load_project(path)
        except (ProjectError, OSError) as exc:
            self.show_problem(plain_message(exc))
            self._forget_recent(path)
            return False
        if not asked and not self.maybe_keep_work():
            return False
        self.replace_project(project, path if path.name != storage.MANIFEST else path.parent)
        self.banner.hide()
        self.status(f"Opened {path}")
        return True

    def save_project(self, path) -> bool:
        path = Path(path)
        try:
            storage.save_project(self.doc.project, path)
        except (ProjectError, OSError) as exc:
            self.show_problem(f"Could not save: {plain_message(exc)} Your work is still in the autosave.")
            self.autosave()
            return False
        self.doc.mark_saved(path)
        self._add_recent(path)
        self._drop_autosave()
        self._update_title()
        self.status(f"Saved {path}")
        return True

    def save(self) -> bool:
        if self.doc.path is None:
            return self.save_as_dialog()
        return self.save_project(self.doc.path)

    def maybe_keep_work(self) -> bool:
        """Before replacing the open project: unsaved work is saved, kept in autosave, or discarded on purpose."""
        if not self.doc.dirty:
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save()
        if answer == "keep":  # leave it in the autosave folder, offered back at the next start
            return self.autosave() is not None
        if answer == "discard":
            self._drop_autosave()
            return True
        return False

    def ask_unsaved(self) -> str:
        """"save", "discard", "keep" or "cancel" (tests and the screenshot tour replace this)."""
        box = QtWidgets.QMessageBox(self)
        box.setWindowTitle(APP_NAME)
        box.setText("The open project has unsaved changes. Save them first?")
        save = box.addButton(QtWidgets.QMessageBox.StandardButton.Save)
        discard = box.addButton(QtWidgets.QMessageBox.StandardButton.Discard)
        box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.exec()
        return {save: "save", discard: "discard"}.get(box.clickedButton(), "cancel")

    # ---- autosave and recovery -----------------------------------------------------------------
    def autosave_path(self) -> Path:
        return self.autosave_root / self._session

    def autosave(self) -> Path | None:
        """Write the project to this session's autosave folder (only changed drawings are written)."""
        if not self.doc.project.keys and not self.doc.project.sketches:
            return None
        path = self.autosave_path()
        try:
            storage.save_project(self.doc.project, path)
            (path / "origin.txt").write_text(str(self.doc.path or ""), encoding="utf-8")
        except (ProjectError, OSError) as exc:
            self.show_problem(f"Autosave failed: {plain_message(exc)} Save the project with File ▸ Save as.")
            return None
        return path

    def _drop_autosave(self) -> None:
        shutil.rmtree(self.autosave_path(), ignore_errors=True)

    def _offer_recovery(self) -> None:
        if not self.autosave_root.is_dir():
            return
        found = sorted(
            (p for p in self.autosave_root.iterdir() if (p / storage.MANIFEST).exists()),
            key=lambda p: (p / storage.MANIFEST).stat().st_mtime,
        )
        if found:
            latest = found[-1]
            self.banner.show_message(
                "Unsaved work from an earlier session was kept. Open it to save it somewhere.",
                "offer", "Recover", lambda: self.recover(latest),
            )

    def recover(self, folder: Path) -> bool:
        try:
            project = storage.load_project(folder)
        except ProjectError as exc:
            self.show_problem(plain_message(exc))
            return False
        origin = (folder / "origin.txt").read_text(encoding="utf-8").strip() if (folder / "origin.txt").exists() else ""
        self.replace_project(project)
        self.doc.path = Path(origin) if origin else None
        self.doc.undo_stack.resetClean()  # recovered work is unsaved work
        self._session = folder.name
        self._update_title()
        self.status("Recovered unsaved work: save it with File ▸ Save.")
        return True

    # ---- recent files --------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: Path) -> None:
        entries = [str(path)] + [p for p in self.recent_files() if p != str(path)]
        self.settings.setValue("recent", entries[:MAX_RECENT])
        self.refresh_recent()

    def _forget_recent(self, path: Path) -> None:
        self.settings.setValue("recent", [p for p in self.recent_files() if p != str(path)])
        self.refresh_recent()

    def refresh_recent(self) -> None:
        self.recent_menu.clear()
        for entry in self.recent_files():
            action = self.recent_menu.addAction(entry)
            action.triggered.connect(lambda _=False, p=entry: self.open_project(p))
        self.recent_menu.setEnabled(bool(self.recent_files()))

    # ---- dialogs (thin wrappers) ---------------------------------------------------------------
    def _start_folder(self) -> str:
        return str(self.settings.value("last_folder", str(Path.home())))

    def _remember_folder(self, path) -> None:
        self.settings.setValue("last_folder", str(Path(path).parent))

    # The New and Open dialogs settle unsaved work first, before any file picker opens.
    def new_from_images_dialog(self) -> None:
        if not self.maybe_keep_work():
            return
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Keyframe images", self._start_folder(), IMAGE_FILTER)
        if not files:
            return
        self._remember_folder(files[0])
        count, ok = QtWidgets.QInputDialog.getInt(
            self, "Spacing the keys", "In-betweens between two keys (on ones):", 7, 1, 240
        )
        if ok:
            self.new_project_from_files(files, "keys", inbetweens=count, asked=True)

    def new_from_sequence_dialog(self) -> None:
        if not self.maybe_keep_work():
            return
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self, "PNG sequence (the numbers give the timing)", self._start_folder(), IMAGE_FILTER
        )
        if files:
            self._remember_folder(files[0])
            self.new_project_from_files(files, "sequence", asked=True)

    def new_from_psd_dialog(self) -> None:
        if not self.maybe_keep_work():
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Layered PSD", self._start_folder(), "PSD (*.psd)")
        if path:
            self._remember_folder(path)
            self.new_project_from_files([path], "psd", asked=True)

    def open_dialog(self) -> None:
        if not self.maybe_keep_work():
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open project", self._start_folder(), PROJECT_FILTER)
        if path:
            self._remember_folder(path)
            self.open_project(path, asked=True)

    def save_as_dialog(self) -> bool:
        suggested = str(Path(self._start_folder()) / f"{self.doc.project.name}{storage.ZIP_SUFFIX}")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save project (.inbetween is one file; no extension saves a folder)", suggested,
            "Inbetweener project (*.inbetween);;Project folder (*)",
        )
        if not path:
            return False
        self._remember_folder(path)
        return self.save_project(path)

    def import_sketch_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Sketch image", self._start_folder(), IMAGE_FILTER)
        if path:
            self.import_sketch(path, self.doc.current_frame)

    def import_sketch(self, path, frame: int) -> bool:
        reason = self.canvas.can_sketch(frame)
        try:
            if reason:
                raise ProjectError(reason)
            from .project import Drawing, SketchCell

            drawing = Drawing(importers.read_image(path))
            self.doc.project.check_size(drawing, Path(path).name)
            old = self.doc.project.sketches.get(frame)
            self.doc.push(commands.Edit(self.doc, f"Import sketch onto frame {frame}",
                                        [commands.CellChange("sketches", frame, old, SketchCell(drawing))]))
        except ProjectError as exc:
            self.show_problem(plain_message(exc))
            return False
        return True

    def default_export_folder(self) -> Path:
        """Beside the saved project, else in the Pictures folder; never where the keys came from
        (an export there would sit among, or clash with, the artist's source drawings)."""
        name = safe_name(self.doc.project.name)
        if self.doc.path is not None:
            return self.doc.path.parent / f"{name}_export"
        pictures = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.PicturesLocation)
        return Path(pictures or Path.home()) / "Inbetweener" / name

    def export_dialog(self) -> None:
        remembered = self.doc.project.settings.get("export")
        dialog = ExportDialog(self.doc.project, self.default_export_folder(), self,
                              remembered if isinstance(remembered, dict) else None)
        if dialog.exec():
            self.export(dialog.options())

    def shortcuts_dialog(self) -> None:
        ShortcutsDialog(self.shortcuts, self).exec()

    # ---- export --------------------------------------------------------------------------------
    def export(self, options: ExportOptions) -> bool:
        if self._export_worker is not None and self._export_worker.isRunning():
            self.status("An export is still being written")
            return False
        try:
            worker = ExportWorker(self.doc.project, options, self)
        except Exception as exc:
            self.show_problem(plain_message(exc))
            self.exportFinished.emit(None)
            return False
        worker.finishedOk.connect(self._export_done)
        worker.failed.connect(self._export_failed)
        self._export_worker = worker
        # The project remembers where and what it exported (saved with it), for the next export.
        self.doc.project.settings["export"] = options.remembered()
        self.status(f"Exporting {', '.join(options.formats)} to {options.folder}…")
        worker.start()
        return True

    def _export_done(self, written: dict) -> None:
        self.status("Exported " + ", ".join(f"{fmt}" for fmt in written) + f" to {self._export_worker.options.folder}")
        self.exportFinished.emit(written)

    def _export_failed(self, text: str) -> None:
        self.show_problem(f"Export failed: {text}")
        self.exportFinished.emit(None)

    # ---- frame edits ---------------------------------------------------------------------------
    def _try(self, build) -> bool:
        try:
            self.doc.push(build())
        except (ProjectError, PlanningError) as exc:
            self.status(str(exc))
            return False
        return True

    def mark_key(self, kind: str = "key") -> bool:
        return self._try(lambda: commands.mark_key(self.doc, self.doc.current_frame, kind))

    def unmark_key(self) -> bool:
        return self._try(lambda: commands.unmark_key(self.doc, self.doc.current_frame))

    def delete_cell(self, track: str) -> bool:
        return self._try(lambda: commands.delete_cell(self.doc, track, self.doc.current_frame))

    def set_exposure(self, exposure: int) -> bool:
        starts = self.panel.target_starts()
        if not starts:
            self.status("No segment here: exposure applies to the frames between two keys")
            return False
        timings = {self.doc.project.timing_for(s) for s in starts}
        base = timings.pop() if len(timings) == 1 else self.doc.project.timing
        spacing = base.spacing if isinstance(base.spacing, str) else "linear"
        return self._try(lambda: commands.set_timing(self.doc, starts, Timing(exposure=exposure, spacing=spacing)))

    def select_all_segments(self) -> None:
        self.doc.select_segments([s.start for s in self.doc.project.segments()])

    def set_playback_edge(self, which: int) -> None:
        start, end = self.doc.project.playback_range()
        frame = self.doc.current_frame
        new = (frame, max(frame, end)) if which == 0 else (min(start, frame), frame)
        self._try(lambda: commands.set_props(self.doc, "Set playback range", playback=new))

    def reset_playback_range(self) -> None:
        self._try(lambda: commands.set_props(self.doc, "Reset playback range", playback=None))

    def toggle_loop(self, checked: bool) -> None:
        if checked != self.doc.project.loop:
            self._try(lambda: commands.set_props(self.doc, "Loop playback" if checked else "Play once", loop=checked))

    def set_fps(self, fps: int) -> None:
        if fps != self.doc.project.fps:
            self._try(lambda: commands.set_props(self.doc, f"Frame rate {fps} fps", fps=fps))

    def step(self, delta: int) -> None:
        self.player.stop()
        self.doc.set_current_frame(self.doc.current_frame + delta)

    def jump_range_edge(self, which: int) -> None:
        self.player.stop()
        self.doc.set_current_frame(self.doc.project.playback_range()[which])

    def jump_key(self, direction: int) -> None:
        self.player.stop()
        key = self.doc.project.neighbour_key(self.doc.current_frame, direction)
        if key is not None:
            self.doc.set_current_frame(key)

    def toggle_onion(self, checked: bool) -> None:
        self.canvas.onion.enabled = checked
        self.canvas.update()

    def toggle_sketches(self, checked: bool) -> None:
        self.canvas.onion.show_sketches = checked
        self.canvas.update()

    def set_tool(self, tool: str) -> None:
        self.canvas.brush.tool = tool
        self.actions_by_id[tool].setChecked(True)
        self.size_spin.setEnabled(tool in ("pen", "eraser"))
        self.size_spin.blockSignals(True)
        self.size_spin.setValue(int(self.canvas.brush.size))
        self.size_spin.blockSignals(False)

    def set_brush_size(self, value: int) -> None:
        if self.canvas.brush.tool == "eraser":
            self.canvas.brush.eraser_size = value
        else:
            self.canvas.brush.pen_size = value

    def set_draw_layer(self, layer: str) -> None:
        """Where strokes on a frame with a drawing go: its clean-up layer or its sketch."""
        self.canvas.brush.layer = layer
        index = self.layer_combo.findData(layer)
        if index != self.layer_combo.currentIndex():
            self.layer_combo.setCurrentIndex(index)

    def set_onion_counts(self) -> None:
        self.canvas.onion.before = self.onion_before.value()
        self.canvas.onion.after = self.onion_after.value()
        self.canvas.onion.opacity = self.onion_opacity.value() / 100
        self.canvas.update()

    def toggle_onion_tint(self, checked: bool) -> None:
        self.canvas.onion.tint = checked
        self.canvas.update()

    def toggle_checkerboard(self, checked: bool) -> None:
        self.canvas.checkerboard = checked
        self.canvas.update()

    def _playing_changed(self, playing: bool) -> None:
        icon = QtWidgets.QStyle.StandardPixmap.SP_MediaPause if playing else QtWidgets.QStyle.StandardPixmap.SP_MediaPlay
        self.actions_by_id["play"].setIcon(self.style().standardIcon(icon))
        self.canvas.flipbook = playing
        self.canvas.update()

    def _cell_menu(self, frame: int, track: str, pos: QtCore.QPoint) -> None:
        menu = QtWidgets.QMenu(self)
        a = self.actions_by_id
        if track == "keys":
            menu.addActions([a["mark_key"], a["mark_breakdown"], a["unmark_key"]])
        elif track == "sketches":
            menu.addAction(a["delete_sketch"])
            menu.addAction(a["mark_breakdown"])
        else:
            menu.addActions([a["generate"], a["regenerate"], a["accept"]])
            menu.addSeparator()
            menu.addActions([a["on_ones"], a["on_twos"], a["on_threes"]])
            menu.addSeparator()
            menu.addActions([a["mark_key"], a["mark_breakdown"]])
        menu.popup(pos)

    def _ruler_menu(self, frame: int, pos: QtCore.QPoint) -> None:
        self.doc.set_current_frame(frame)
        menu = QtWidgets.QMenu(self)
        menu.addAction("Set playback start here", lambda: self.set_playback_edge(0))
        menu.addAction("Set playback end here", lambda: self.set_playback_edge(1))
        menu.addAction("Playback range: first to last key", self.reset_playback_range)
        menu.popup(pos)

    # ---- the engine ----------------------------------------------------------------------------
    def engine_python(self) -> str:
        """The Python that runs the engine: the one chosen in Engine ▸ Engine Python…, else this app's own
        (in the desktop bundle: the bundled `inbetween` executable beside the app)."""
        return str(self.settings.value("engine/python", "") or "") or default_engine_python()

    def set_engine_python(self, python: str) -> None:
        """Remember the engine's Python ("" = this app's own) and reconnect with it."""
        self.settings.setValue("engine/python", python)
        self.status(f"Engine Python: {python or default_engine_python()}")
        self.connect_engine()

    def engine_python_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "The Python of your Inbetweener folder (.venv/bin/python)", str(Path(self.engine_python()).parent))
        if path:
            self.set_engine_python(path)

    def connect_engine(self) -> None:
        if self._connect_worker is not None and self._connect_worker.isRunning():
            return
        self.engine_label.setText("Engine: starting…")
        options = {"python": self.engine_python(), **self.engine_options}
        worker = ConnectWorker(options, self)
        worker.connected.connect(self._engine_connected)
        worker.failed.connect(self._engine_failed)
        self._connect_worker = worker
        worker.start()

    def _engine_connected(self, client, health: dict) -> None:
        self.client, self.health = client, health
        backends = {name: (info.get("available", False), info.get("reason", ""))
                    for name, info in health.get("backends", {}).items()}
        self.panel.set_backend_availability(backends)
        ready = [name for name, (ok, _) in backends.items() if ok]
        device = health.get("device", {}).get("type", "?")
        self.panel.set_runtime_availability(frontends.runtime_availability(health))
        self.engine_label.setText(f"Engine: {', '.join(ready) or 'no backend'} on {device}")
        self.banner.clear("engine")
        self.engineReady.emit()
        if self._pending_generate is not None:
            scope, starts = self._pending_generate
            self._pending_generate = None
            self._run_generation(starts)

    def _engine_failed(self, text: str) -> None:
        """The engine could not be reached. A generation waiting for it keeps waiting: Reconnect
        (after starting the engine by hand, or choosing its Python) runs it; Cancel drops it."""
        self.client = None
        self.engine_label.setText("Engine: not reachable")
        self.show_problem(text, "Reconnect", self.connect_engine, topic="engine")
        if self._pending_generate is not None:
            self.panel.show_progress("engine", 0.0, "waiting for the engine: Engine ▸ Reconnect once it runs, "
                                     "or Cancel")

    def generating(self) -> bool:
        return self._generate_worker is not None and self._generate_worker.isRunning()

    def generate(self, scope: str = "targets") -> bool:
        """Generate the selected segments ("targets"), every segment ("all") or the one under the
        playhead ("current"). Returns False when there is nothing to do (the reason is shown)."""
        if self.generating():
            self.status("Already generating: cancel it first or wait")
            return False
        project = self.doc.project
        if scope == "all":
            starts = [s.start for s in project.segments()]
        elif scope == "current":
            seg = project.segment_at(self.doc.current_frame)
            starts = [seg.start] if seg else []
        else:
            starts = self.panel.target_starts()
        if not starts:
            self.show_problem("There is nothing to in-between yet: a project needs at least two keyframes.")
            return False
        broken = [s for s in project.segments() if s.start in starts and s.error]
        if broken:
            self.show_problem(plain_message(ProjectError(f"segment {broken[0].start}–{broken[0].end}: {broken[0].error}")))
            return False
        corrected = commands.corrected_frames(project, starts)
        self._keep_corrected = True
        if corrected:
            answer = self.ask_corrections(corrected)
            if answer == "cancel":
                self.status("Nothing was generated: your corrected in-betweens are as they were")
                return False
            self._keep_corrected = answer == "keep"
        self.panel.set_running(True)
        if self.client is None:
            self._pending_generate = (scope, starts)
            self.panel.show_progress("engine", 0.0, "waiting for the engine to start")
            self.connect_engine()
            return True
        return self._run_generation(starts)

    def ask_corrections(self, frames: list[int]) -> str:
        """"keep", "replace" or "cancel" when a run would redraw corrected in-betweens (tests replace this)."""
        box = QtWidgets.QMessageBox(self)
        box.setWindowTitle(APP_NAME)
        listed = ", ".join(str(f) for f in frames[:8]) + (" …" if len(frames) > 8 else "")
        box.setText(f"Frame(s) {listed} have your clean-up corrections. Regenerating would replace them.")
        keep = box.addButton("Keep corrected frames", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        replace = box.addButton("Replace them too", QtWidgets.QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(keep)
        box.exec()
        return {keep: "keep", replace: "replace"}.get(box.clickedButton(), "cancel")

    def backend_reads_sketches(self, backend: str) -> bool:
        """The cel and ToonCrafter backends follow sketches; `auto` is what the engine resolves it to."""
        return frontends.reads_sketches(backend, self.health)

    def _run_generation(self, starts: list[int]) -> bool:
        settings = self.panel.settings_for_run()
        with_sketches = self.backend_reads_sketches(settings["backend"])
        targets = [g for g in self.doc.project.segments() if g.start in starts]
        sketched = [f for f in self.doc.project.sketches if any(g.start < f < g.end for g in targets)]
        if sketched and not with_sketches:
            self.status(f"RIFE does not read sketches: the {len(sketched)} sketch(es) stay on their track for ToonCrafter")
        try:
            specs = plan_jobs(self.doc.project, starts, settings, sketches=with_sketches)
        except (ValueError, KeyError) as exc:
            self.panel.set_running(False)
            self.show_problem(plain_message(exc))
            return False
        self._run_id = uuid.uuid4().hex
        worker = GenerateWorker(self.client, specs, self)
        worker.progress.connect(self.panel.show_progress)
        worker.segmentReady.connect(self._land_segment)
        worker.failed.connect(self._generation_failed)
        worker.done.connect(self._generation_done)
        self._generate_worker = worker
        self.banner.hide()
        worker.start()
        return True

    def _land_segment(self, result: SegmentResult) -> None:
        try:
            self.doc.push(commands.land_results(self.doc, result.segment, result.cells, self._run_id,
                                                keep_corrected=self._keep_corrected))
        except ProjectError as exc:
            self.show_problem(plain_message(exc))

    def _generation_failed(self, text: str) -> None:
        self.panel.set_running(False)
        self.panel.show_finished("Failed")
        self.show_problem(text, "Reconnect" if "not reachable" in text else None,
                          self.connect_engine if "not reachable" in text else None,
                          topic="engine" if "not reachable" in text else "generation")
        if "not reachable" in text:
            self.client = None
        self.generationFinished.emit("failed")

    def _generation_done(self, outcome: str) -> None:
        self.panel.set_running(False)
        if outcome == "cancelled":
            self.panel.progress.setValue(0)
            self.panel.show_finished("Cancelled: finished segments were kept (undo removes them)")
        else:
            self.panel.progress.setValue(1000)
            self.panel.show_finished("Done: play it back (Return), then Accept or Regenerate")
        self.status(f"Generation {outcome}")
        self.generationFinished.emit(outcome)

    def cancel_generation(self) -> None:
        if self._pending_generate is not None:
            self._pending_generate = None
            self.panel.set_running(False)
            self.panel.progress.setValue(0)
            self.panel.show_finished("Cancelled")
            self.generationFinished.emit("cancelled")
        elif self.generating():
            self.panel.show_progress("cancelling", self.panel.progress.value() / 1000, "asking the engine to stop")
            self._generate_worker.cancel()

    def accept_inbetweens(self) -> bool:
        project = self.doc.project
        starts = set(self.panel.target_starts())
        frames = [f for s in project.segments() if s.start in starts for f in s.planned_frames
                  if f in project.inbetweens and project.inbetween_state(f) == "generated"]
        return self._try(lambda: commands.set_status(self.doc, frames, "accepted", "Accept in-betweens"))

    # ---- closing -------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        if not self.maybe_keep_work():
            event.ignore()
            return
        if not self.doc.dirty:
            self._drop_autosave()
        self.player.stop()
        if self.generating():
            self._generate_worker.cancel()
            self._generate_worker.wait(5000)
        for worker in (self._connect_worker, self._export_worker):
            if worker is not None:
                worker.wait(10000)
        server = getattr(self.client, "local_server", None)
        if server is not None:
            server.stop()
        self._release(self.doc)
        super().closeEvent(event)


def _swatch(colour: QtGui.QColor, size: int = 16) -> QtGui.QIcon:
    pixmap = QtGui.QPixmap(size, size)
    pixmap.fill(colour)
    return QtGui.QIcon(pixmap)
