"""The Inbetweener docker: pick the keys layer, see its segments, generate, follow progress.

The panel reads the document on Krita's main thread, talks to the engine in a worker thread (so
Krita stays responsive and Cancel works) and lands the result back on the main thread.
"""

from __future__ import annotations

import json
import random
import threading
import weakref
from dataclasses import asdict

from krita import DockWidget, Krita

from . import document, engine_link, generation, panel_state, segments, takes
from ._qt import QtCore, QtWidgets, Signal
from ._shared import client as engine_client
from ._shared import frontends, planning, vocabulary
from ._shared import timing as shared_timing
from .import_pacing import paced_import

DOCKER_ID = "inbetweener_docker"
DOCKER_TITLE = "Inbetweener"
SPACING_CHOICES = shared_timing.SPACING_CHOICES
BACKEND_CHOICES = vocabulary.BACKEND_CHOICES
SPAN_ROLE = QtCore.Qt.ItemDataRole.UserRole
MAX_SEED = int(vocabulary.SEED.high)
FOLLOW_INTERVAL_MS = 1000  # how often the docker checks which document and layers Krita shows
COMBO_MIN_CHARS = 6  # drop-downs may shrink to this many characters; the full text is in the list
SPIN_MIN_WIDTH = 64
LABEL_MIN_WIDTH = 110


class WheelGuard(QtCore.QObject):
    """Lets the wheel reach a spin box or drop-down only when it has the focus; otherwise the
    wheel scrolls the docker's scroll area (the box's value never changes by passing over it)."""

    def eventFilter(self, watched, event) -> bool:
        if event.type() != QtCore.QEvent.Type.Wheel or watched.hasFocus():
            return False
        area = watched.parentWidget()
        while area is not None and not isinstance(area, QtWidgets.QAbstractScrollArea):
            area = area.parentWidget()
        if area is not None:
            QtWidgets.QApplication.sendEvent(area.verticalScrollBar(), event)
        return True


def _form(parent=None):
    """A form with each label above its field (a docker is narrow); labels wrap."""
    form = QtWidgets.QFormLayout(parent) if parent is not None else QtWidgets.QFormLayout()
    form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapAllRows)
    form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


def _add(form, text: str, field) -> None:
    label = _wrapping_label()
    label.setText(text)
    form.addRow(label, field)


def _combo(tooltip: str = ""):
    combo = QtWidgets.QComboBox()
    combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(COMBO_MIN_CHARS)
    combo.setToolTip(tooltip)
    return combo


def _row(first, second, stretch: bool = True):
    """Two widgets side by side; the first takes the room (or both share it)."""
    row = QtWidgets.QHBoxLayout()
    row.addWidget(first, 1)
    row.addWidget(second, 0 if stretch else 1)
    return row


def _wrapping_label(selectable: bool = False):
    """A label that wraps at words; its fixed small minimum keeps one long path from widening the docker."""
    label = QtWidgets.QLabel()
    label.setWordWrap(True)
    label.setMinimumWidth(LABEL_MIN_WIDTH)
    if selectable:
        label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class Background(QtCore.QObject):
    """Runs one function in a worker thread and reports back through queued Qt signals."""

    progress = Signal(float, str)
    note = Signal(str)
    succeeded = Signal(object)
    failed = Signal(object)

    def start(self, fn, *args) -> None:
        """Call after connecting the signals; the object deletes itself once it has reported."""
        self.succeeded.connect(lambda _: self.deleteLater())
        self.failed.connect(lambda _: self.deleteLater())

        def work() -> None:
            try:
                result = fn(*args)
            except BaseException as exc:  # reported to the panel, never lost in the thread
                self.failed.emit(exc)
            else:
                self.succeeded.emit(result)

        threading.Thread(target=work, name="inbetweener-worker", daemon=True).start()


class InbetweenPanel(QtWidgets.QWidget):
    """Everything the docker shows; usable on its own (the menu action opens it when no docker)."""

    takeLanded = Signal(str)  # name of the new layer
    generationFailed = Signal(str)
    engineChecked = Signal(str)

    def __init__(self, parent=None, app=None) -> None:
        super().__init__(parent)
        self.app = app or Krita.instance()
        self.setup = engine_link.EngineSetup.load(self.app)
        self.busy = False
        self.last_layer = None
        self.last_error: str | None = None
        self._cancel = threading.Event()
        self._planned: list[segments.Segment] = []
        self._scanned = None  # (KeyScan, sketch frames) of the picked layers, re-planned on timing changes
        self._engine_checked = False
        self.memory = panel_state.LayerMemory(self.app)
        self._signature: tuple | None = None  # the document and layers the lists were read from
        self._busy_document = ""  # the document a running generation belongs to
        self._build()
        self._restore_options()
        self.set_busy(False)
        self._follow = QtCore.QTimer(self)
        self._follow.setInterval(FOLLOW_INTERVAL_MS)
        self._follow.timeout.connect(self.follow_document)
        self._follow.start()

    # ---- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        """A narrow layout: labels above their fields, one button a row (or a small one beside a
        field), wrapping text, so nothing is cut off at the docker's default width in Krita's
        Animation workspace."""
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        layers = _form()
        self.key_combo = _combo("The paint layer whose keyframes anchor the motion (by default the layer with the most "
                                "keyframes that is not a take; your pick is remembered per document)")
        self.refresh_button = QtWidgets.QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the layers and keyframes again")
        _add(layers, "Keys layer", _row(self.key_combo, self.refresh_button))
        self.sketch_combo = _combo("Optional: rough drawings on in-between frames that steer the ToonCrafter engine")
        _add(layers, "Sketch layer", self.sketch_combo)
        layout.addLayout(layers)

        self.scan_label = _wrapping_label()
        layout.addWidget(self.scan_label)
        self.segment_list = QtWidgets.QListWidget()
        self.segment_list.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.segment_list.setMinimumHeight(60)
        self.segment_list.setMaximumHeight(150)
        self.segment_list.setWordWrap(True)
        self.segment_list.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout.addWidget(self.segment_list)

        timing_box = QtWidgets.QGroupBox("Timing")
        form = _form(timing_box)
        self.mode_combo = _combo("On ones/twos/threes: a drawing every 1, 2 or 3 frames of the gap between keys")
        for label, _ in segments.DRAWING_MODES:
            self.mode_combo.addItem(label)
        self.count_spin = QtWidgets.QSpinBox()
        self.count_spin.setRange(1, planning.MAX_INBETWEENS_PER_SEGMENT)
        self.count_spin.setToolTip("Exactly this many in-betweens per segment, spread as evenly as whole frames allow")
        _add(form, "Drawings", _row(self.mode_combo, self.count_spin))
        self.spacing_combo = _combo("How the in-betweens are spaced between the keys")
        for value, label in SPACING_CHOICES:
            self.spacing_combo.addItem(label, value)
        _add(form, "Spacing", self.spacing_combo)
        self.chart_edit = QtWidgets.QLineEdit()
        self.chart_edit.setPlaceholderText("e.g. 0.1, 0.3, 0.7")
        self.chart_edit.setToolTip("Timing chart: where each in-between sits between the keys, as fractions in (0, 1)")
        _add(form, "Chart", self.chart_edit)
        layout.addWidget(timing_box)

        engine_box = QtWidgets.QGroupBox("Drawing")
        form = _form(engine_box)
        self.backend_combo = _combo("Which engine draws the in-betweens")
        for value, label in BACKEND_CHOICES:
            self.backend_combo.addItem(label, value)
        _add(form, "Engine", self.backend_combo)
        self.motion_spin = QtWidgets.QSpinBox()
        self.motion_spin.setRange(int(vocabulary.MOTION.low), int(vocabulary.MOTION.high))
        self.motion_spin.setToolTip("How much motion ToonCrafter puts between the keys (its frame-stride "
                                    "conditioning; 10 is the official value)")
        self.steps_spin = QtWidgets.QSpinBox()
        self.steps_spin.setRange(int(vocabulary.STEPS.low), int(vocabulary.STEPS.high))
        self.steps_spin.setToolTip("Denoising steps of ToonCrafter (50 is the official value)")
        _add(form, "Motion · Steps", _row(self.motion_spin, self.steps_spin))
        self.seed_spin = QtWidgets.QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setMinimumWidth(SPIN_MIN_WIDTH)  # ten digits need not all show at once
        self.new_seed_button = QtWidgets.QPushButton("New")
        self.new_seed_button.setToolTip("Draw a new random seed")
        _add(form, "Seed", _row(self.seed_spin, self.new_seed_button))
        self.sketch_strength_spin = QtWidgets.QDoubleSpinBox()
        self.sketch_strength_spin.setRange(vocabulary.SKETCH_STRENGTH.low, vocabulary.SKETCH_STRENGTH.high)
        self.sketch_strength_spin.setSingleStep(0.05)
        self.sketch_strength_spin.setToolTip("How strongly the sketches steer the in-betweens")
        _add(form, "Sketch strength", self.sketch_strength_spin)
        self.choice_combos: dict = {}
        for spec in frontends.CHOICE_SETTINGS:  # runtime, detail, palette: shared with the desktop app
            combo = _combo(spec.tooltip)
            for value, label in spec.choices:
                combo.addItem(label, value)
            self.choice_combos[spec.field] = combo
            _add(form, spec.label, combo)
        self.backend_note = _wrapping_label()
        form.addRow(self.backend_note)
        self.include_keys_check = QtWidgets.QCheckBox("Copy the keys")
        self.include_keys_check.setToolTip("The take then plays on its own: hide the keys layer to review it")
        form.addRow(self.include_keys_check)
        self.keep_frames_check = QtWidgets.QCheckBox("Keep PNG frames")
        self.keep_frames_check.setToolTip("Keep the generated frames in a folder next to the .kra")
        form.addRow(self.keep_frames_check)
        layout.addWidget(engine_box)

        self.generate_button = QtWidgets.QPushButton("Generate ticked")
        self.generate_all_button = QtWidgets.QPushButton("Generate all")
        layout.addWidget(self.generate_button)
        layout.addWidget(self.generate_all_button)
        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        layout.addLayout(_row(self.progress_bar, self.cancel_button))
        self.status_label = _wrapping_label(selectable=True)
        layout.addWidget(self.status_label)

        takes_box = QtWidgets.QGroupBox("Takes")
        takes_layout = QtWidgets.QVBoxLayout(takes_box)
        self.takes_combo = _combo("Takes whose layer is in the document (the list follows the Layers docker)")
        takes_layout.addWidget(self.takes_combo)
        self.load_take_button = QtWidgets.QPushButton("Use settings")
        self.load_take_button.setToolTip("Put this take's layers, segments and settings back into the docker")
        self.regenerate_button = QtWidgets.QPushButton("Regenerate")
        self.regenerate_button.setToolTip("Generate this take again as a new take (the old one stays)")
        takes_layout.addWidget(self.load_take_button)
        takes_layout.addWidget(self.regenerate_button)
        layout.addWidget(takes_box)

        engine_setup = QtWidgets.QGroupBox("Engine")
        form = _form(engine_setup)
        self.engine_label = _wrapping_label(selectable=True)
        self.engine_label.setText("not checked yet")
        self.start_engine_button = QtWidgets.QPushButton("Start")
        self.start_engine_button.setToolTip("Connect to the running engine, or start it")
        form.addRow(self.engine_label)
        form.addRow(self.start_engine_button)
        self.python_edit = QtWidgets.QLineEdit(self.setup.python)
        self.python_edit.setPlaceholderText(engine_link.guess_engine_python() or ".venv/bin/python of Inbetweener")
        self.python_edit.setToolTip("The Python that has the Inbetweener engine installed: the .venv/bin/python "
                                    "of your Inbetweener folder (Krita's own Python cannot run it)")
        _add(form, "Engine Python", self.python_edit)
        self.root_edit = QtWidgets.QLineEdit(self.setup.engine_root)
        self.root_edit.setPlaceholderText("only for a checkout that is not installed")
        _add(form, "Engine folder", self.root_edit)
        layout.addWidget(engine_setup)
        layout.addStretch(1)

        # Scrolling the docker must scroll it, not change the seed: spin boxes and drop-downs take
        # the wheel only when they have the keyboard focus (clicked or tabbed into).
        self._wheel_guard = WheelGuard(self)
        for widget in self.findChildren((QtWidgets.QAbstractSpinBox, QtWidgets.QComboBox)):
            widget.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
            widget.installEventFilter(self._wheel_guard)

        self.refresh_button.clicked.connect(self.refresh)
        self.key_combo.activated.connect(lambda _: self._layers_picked())
        self.sketch_combo.activated.connect(lambda _: self._layers_picked())
        self.mode_combo.currentIndexChanged.connect(self._timing_changed)
        self.count_spin.valueChanged.connect(self._timing_changed)
        self.spacing_combo.currentIndexChanged.connect(self._timing_changed)
        self.chart_edit.editingFinished.connect(self._timing_changed)
        self.backend_combo.currentIndexChanged.connect(lambda _: self._backend_fields())
        self.new_seed_button.clicked.connect(lambda: self.seed_spin.setValue(random.randint(0, MAX_SEED)))
        self.generate_button.clicked.connect(lambda: self.generate(self.ticked_spans()))
        self.generate_all_button.clicked.connect(lambda: self.generate(None))
        self.cancel_button.clicked.connect(self.cancel)
        self.load_take_button.clicked.connect(self.use_take_settings)
        self.regenerate_button.clicked.connect(self.regenerate)
        self.start_engine_button.clicked.connect(lambda: self.check_engine(start=True))
        self.python_edit.editingFinished.connect(self._save_setup)
        self.root_edit.editingFinished.connect(self._save_setup)

    def _backend_fields(self) -> None:
        """Grey out what the chosen engine ignores (engine.core.frontends decides, for the desktop app too)."""
        backend = self.backend_combo.currentData()
        fields = {"motion": [self.motion_spin], "steps": [self.steps_spin], "sketch_strength": [self.sketch_strength_spin],
                  "seed": [self.seed_spin, self.new_seed_button],
                  **{name: [combo] for name, combo in self.choice_combos.items()}}
        for name, widgets in fields.items():
            for widget in widgets:
                widget.setEnabled(frontends.setting_applies(name, backend))
        self.backend_note.setText(frontends.backend_note(backend))
        self.backend_note.setVisible(bool(self.backend_note.text()))

    # ---- reading the document -------------------------------------------------------------------

    def document(self):
        return self.app.activeDocument()

    def follow_document(self) -> None:
        """Follow Krita: another document gets a fresh status and its own layers; layers added or
        removed (a take landing, Ctrl+Z) update the lists. Cheap enough to run every second."""
        doc = self.document()
        signature = panel_state.document_signature(doc)
        if signature == self._signature:
            return
        previous = self._signature[0] if self._signature else None
        if previous != (signature[0] if signature else None) and not self.busy:
            self.clear_status()
        if not self.busy:
            self.refresh()

    def clear_status(self) -> None:
        """What the status line, bar and last error said belonged to another document."""
        self.last_error = None
        self.progress_bar.setValue(0)
        self._set_status("")

    def refresh(self) -> None:
        """Re-read the layer lists and the keys' segments. The keys layer is the one picked for this
        document, else the layer with the most keyframes that is not a take."""
        if not self._engine_checked:
            self.check_engine(start=False)
        doc = self.document()
        self._signature = panel_state.document_signature(doc)
        self.key_combo.clear()
        self.sketch_combo.clear()
        self.sketch_combo.addItem("(none)", None)
        if doc is None:
            self._show_scan("Open an animated document to generate in-betweens.", [])
            self._refresh_takes()
            return
        layers = document.paint_layers(doc)
        for info in layers:
            self.key_combo.addItem(info.label, info.uid)
            self.sketch_combo.addItem(info.label, info.uid)
        known = {info.uid for info in layers}
        take_uids = {t.get("layer_uid") for t in takes.read_takes(doc)}
        picked = self.memory.recall(doc)
        key_uid = picked.get("keys") if picked.get("keys") in known else None
        self._select_data(self.key_combo, key_uid or panel_state.default_keys_layer(doc, layers, take_uids))
        self._select_data(self.sketch_combo, picked.get("sketch") if picked.get("sketch") in known else None)
        self.rescan()
        self._refresh_takes()

    def _layers_picked(self) -> None:
        """The artist chose layers: remember them for this document, then read them."""
        doc = self.document()
        if doc is not None:
            self.memory.remember(doc, keys=self.key_combo.currentData(), sketch=self.sketch_combo.currentData())
        self.rescan()

    def select_layers(self, key_uid: str, sketch_uid: str | None = None) -> None:
        self._select_data(self.key_combo, key_uid)
        self._select_data(self.sketch_combo, sketch_uid)
        self._layers_picked()

    @staticmethod
    def _select_data(combo, data) -> None:
        """Select the item holding `data`; with nothing to select, no layer rather than a wrong one
        (the sketch list falls back to its "(none)")."""
        index = combo.findData(data) if data is not None else -1
        if index < 0 and combo.count() and combo.itemData(0) is None:
            index = 0
        combo.setCurrentIndex(index)

    def _layer(self, combo):
        uid = combo.currentData()
        doc = self.document()
        return document.find_layer(doc, uid) if doc is not None and uid else None

    def rescan(self) -> None:
        """Scan the picked layers' keyframes in the playback range, then list the segments."""
        self._scanned = None
        doc = self.document()
        key_layer = self._layer(self.key_combo)
        if doc is None or key_layer is None:
            self._show_scan("Pick the paint layer that holds the keyframes.", [])
            return
        try:
            self._scanned = generation.scan_layers(doc, key_layer, self._layer(self.sketch_combo))
        except document.DocumentError as exc:
            self._show_scan(str(exc), [])
            return
        self.replan()

    def replan(self) -> None:
        """List the scanned segments as the current timing plans them (no pixels are read again)."""
        if self._scanned is None:
            return
        found, sketches = self._scanned
        try:
            planned = generation.plan(found, sketches, self.timing())
        except (planning.PlanningError, ValueError) as exc:
            self._show_scan(f"{found.describe()}\n{exc}", [])
            return
        self._show_scan(found.describe(), planned)

    def _show_scan(self, text: str, planned: list[segments.Segment]) -> None:
        ticked = set(self.ticked_spans())
        listed = {seg.span for seg in self._planned}
        self._planned = planned
        self.scan_label.setText(text)
        self.segment_list.clear()
        for seg in planned:
            item = QtWidgets.QListWidgetItem(seg.describe())
            item.setData(SPAN_ROLE, list(seg.span))
            if seg.plan is None:
                item.setFlags(QtCore.Qt.ItemFlag.NoItemFlags)
            else:
                item.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
                on = seg.span in ticked or seg.span not in listed
                item.setCheckState(QtCore.Qt.CheckState.Checked if on else QtCore.Qt.CheckState.Unchecked)
            self.segment_list.addItem(item)

    def ticked_spans(self) -> list[tuple[int, int]]:
        out = []
        for i in range(self.segment_list.count()):
            item = self.segment_list.item(i)
            if item.flags() & QtCore.Qt.ItemFlag.ItemIsUserCheckable and item.checkState() == QtCore.Qt.CheckState.Checked:
                out.append(tuple(item.data(SPAN_ROLE)))
        return out

    # ---- settings -------------------------------------------------------------------------------

    def timing(self) -> segments.Timing:
        _, exposure = segments.DRAWING_MODES[self.mode_combo.currentIndex()]
        spacing = self.spacing_combo.currentData()
        if spacing == "custom":
            if not self.chart_edit.text().strip():
                raise planning.PlanningError("type the timing chart: one fraction in (0, 1) per in-between, e.g. 0.1, 0.4, 0.8")
            spacing = planning.parse_spacing(self.chart_edit.text())
        if exposure is None:
            return segments.Timing(exposure=1, count=self.count_spin.value(), spacing=spacing)
        return segments.Timing(exposure=exposure, spacing=spacing)

    def draw_settings(self) -> generation.DrawSettings:
        return generation.DrawSettings(
            backend=self.backend_combo.currentData(),
            motion=self.motion_spin.value(),
            seed=self.seed_spin.value(),
            steps=self.steps_spin.value(),
            sketch_strength=round(self.sketch_strength_spin.value(), 3),
            **{name: combo.currentData() for name, combo in self.choice_combos.items()},
        )

    def take_options(self) -> generation.TakeOptions:
        return generation.TakeOptions(
            include_keys=self.include_keys_check.isChecked(), keep_frames=self.keep_frames_check.isChecked()
        )

    def apply(self, timing: segments.Timing, settings: generation.DrawSettings, options: generation.TakeOptions) -> None:
        """Show these settings in the panel (restored options, a take's settings)."""
        if timing.count:
            self.mode_combo.setCurrentIndex(len(segments.DRAWING_MODES) - 1)
            self.count_spin.setValue(timing.count)
        else:
            index = next((i for i, (_, e) in enumerate(segments.DRAWING_MODES) if e == timing.exposure), 0)
            self.mode_combo.setCurrentIndex(index)
        if isinstance(timing.spacing, str):
            self.spacing_combo.setCurrentIndex(max(0, self.spacing_combo.findData(timing.spacing)))
        else:
            self.spacing_combo.setCurrentIndex(self.spacing_combo.findData("custom"))
            self.chart_edit.setText(", ".join(f"{t:g}" for t in timing.spacing))
        self.backend_combo.setCurrentIndex(max(0, self.backend_combo.findData(settings.backend)))
        self.motion_spin.setValue(settings.motion)
        self.seed_spin.setValue(settings.seed)
        self.steps_spin.setValue(settings.steps)
        self.sketch_strength_spin.setValue(settings.sketch_strength)
        for name, combo in self.choice_combos.items():
            combo.setCurrentIndex(max(0, combo.findData(getattr(settings, name))))
        self._backend_fields()
        self.include_keys_check.setChecked(options.include_keys)
        self.keep_frames_check.setChecked(options.keep_frames)

    def _timing_changed(self, *_) -> None:
        custom = self.spacing_combo.currentData() == "custom"
        self.chart_edit.setEnabled(custom)
        self.count_spin.setEnabled(segments.DRAWING_MODES[self.mode_combo.currentIndex()][1] is None)
        self.replan()

    def _restore_options(self) -> None:
        raw = self.app.readSetting(engine_link.SETTINGS_GROUP, "last_options", "")
        try:
            data = json.loads(raw) if raw else {}
            timing = segments.Timing.from_json(data.get("timing", {}))
            settings = generation.DrawSettings.from_json(data.get("settings", {}))
            options = generation.TakeOptions(**data.get("options", {}))
        except (ValueError, TypeError, planning.PlanningError):
            timing, settings, options = segments.Timing(), generation.DrawSettings(), generation.TakeOptions()
        self.apply(timing, settings, options)
        self._timing_changed()

    def _remember_options(self, request: generation.TakeRequest) -> None:
        data = {
            "timing": request.timing.to_json(),
            "settings": asdict(request.settings),
            "options": asdict(request.options),
        }
        self.app.writeSetting(engine_link.SETTINGS_GROUP, "last_options", json.dumps(data))

    def _save_setup(self) -> None:
        self.setup = engine_link.EngineSetup(self.python_edit.text().strip(), self.root_edit.text().strip())
        self.setup.save(self.app)

    # ---- takes ----------------------------------------------------------------------------------

    def _refresh_takes(self) -> None:
        self.takes_combo.clear()
        doc = self.document()
        if doc is None:
            return
        uids = {info.uid for info in document.paint_layers(doc)}
        for take in takes.takes_on_layers(doc, uids):
            self.takes_combo.addItem(take.get("layer_name", "?"), take)
        has = self.takes_combo.count() > 0
        self.load_take_button.setEnabled(has and not self.busy)
        self.regenerate_button.setEnabled(has and not self.busy)

    def use_take_settings(self) -> dict | None:
        """Put the picked take's layers, segments and settings back into the panel."""
        take = self.takes_combo.currentData()
        if not take:
            return None
        try:
            self.apply(
                segments.Timing.from_json(take.get("timing", {})),
                generation.DrawSettings.from_json(take.get("settings", {})),
                generation.TakeOptions(**take.get("options", {})),
            )
        except (ValueError, TypeError, planning.PlanningError) as exc:
            self._set_status(f"That take's settings cannot be used: {exc}", error=True)
            return None
        self.select_layers(take.get("key_layer_uid"), take.get("sketch_layer_uid"))
        spans = {tuple(s) for s in take.get("segments", [])}
        for i in range(self.segment_list.count()):
            item = self.segment_list.item(i)
            if item.flags() & QtCore.Qt.ItemFlag.ItemIsUserCheckable:
                on = tuple(item.data(SPAN_ROLE)) in spans
                item.setCheckState(QtCore.Qt.CheckState.Checked if on else QtCore.Qt.CheckState.Unchecked)
        return take

    def regenerate(self) -> None:
        take = self.use_take_settings()
        if take:
            self.generate([tuple(s) for s in take.get("segments", [])])

    # ---- engine ---------------------------------------------------------------------------------

    def check_engine(self, start: bool = False) -> None:
        """Show whether an engine answers (and, with `start`, start one); never blocks Krita."""
        self._engine_checked = True
        self._save_setup()
        self.engine_label.setText("starting…" if start else "checking…")
        task = Background(self)

        def probe():
            client = engine_link.LINK.client(self.setup, start=start)
            return client.health()

        task.succeeded.connect(lambda health: self._engine_state(engine_link.describe_health(health)))
        task.failed.connect(lambda exc: self._engine_state(_engine_problem(exc, start)))
        task.start(probe)

    def _engine_state(self, text: str) -> None:
        self.engine_label.setText(text)
        self.engine_label.setToolTip(text)
        self.engineChecked.emit(text)

    # ---- generating -----------------------------------------------------------------------------

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        for widget in (self.generate_button, self.generate_all_button, self.refresh_button, self.key_combo,
                       self.sketch_combo, self.start_engine_button):
            widget.setEnabled(not busy)
        self.load_take_button.setEnabled(not busy and self.takes_combo.count() > 0)
        self.regenerate_button.setEnabled(not busy and self.takes_combo.count() > 0)
        self.cancel_button.setEnabled(busy)
        if not busy:
            self.progress_bar.setValue(0)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet("color: #d04040;" if error else "")
        self.status_label.setText(text)
        self.status_label.setToolTip(text)

    def generate(self, picked: list[tuple[int, int]] | None) -> bool:
        """Start generating the picked segments (None: all); False when refused before starting."""
        if self.busy:
            return False
        doc = self.document()
        try:
            request = generation.prepare_take(
                doc, self._layer(self.key_combo), picked, self.timing(), self.draw_settings(),
                self.take_options(), self._layer(self.sketch_combo),
            )
        except (document.DocumentError, planning.PlanningError, ValueError) as exc:
            self._fail(str(exc))
            return False
        self._remember_options(request)
        self._save_setup()
        self._cancel = threading.Event()
        self.last_error = None
        self.set_busy(True)
        self._set_status(f"Generating {request.name} …")
        setup, cancel = self.setup, self._cancel
        task = Background(self)

        def work():
            task.progress.emit(0.0, "connecting to the engine (it starts if it is not running)")
            client = engine_link.LINK.client(setup, start=True)
            task.note.emit(engine_link.describe_health(client.health()))
            return generation.run_take(request, client, task.progress.emit, cancel)

        task.progress.connect(self._progress)
        task.note.connect(self._engine_state)
        task.succeeded.connect(lambda result: self._land(doc, request, result))
        task.failed.connect(lambda exc: self._fail(_generation_problem(exc)))
        task.start(work)
        return True

    def cancel(self) -> None:
        if self.busy:
            self._cancel.set()
            self._set_status("Cancelling…")

    def _progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        self._set_status(message)

    def _land(self, doc, request: generation.TakeRequest, result: generation.TakeFrames) -> None:
        try:
            layer = generation.land_take(doc, request, result, guard=paced_import)
        except Exception as exc:  # Krita refused the import: say so instead of staying busy
            self._fail(f"Could not add the in-betweens layer: {exc}")
            return
        self.set_busy(False)
        self.last_layer = layer
        text = f"Added layer '{layer.name()}' ({len(result.plan.changes())} keyframes) at the top of the layer stack."
        if result.warnings:
            text += " Warnings: " + "; ".join(result.warnings)
        self._set_status(text)
        self._refresh_takes()
        self.takeLanded.emit(layer.name())

    def _fail(self, message: str) -> None:
        self.set_busy(False)
        self.last_error = message
        self._set_status(message, error=True)
        self.generationFailed.emit(message)


def _engine_problem(exc: BaseException, started: bool) -> str:
    if isinstance(exc, engine_client.EngineUnavailable) and not started:
        return "not running (it starts when you generate, or press Start)"
    if isinstance(exc, (engine_client.EngineUnavailable, engine_link.EngineSetupError)):
        return frontends.explain_engine_problem(str(exc))
    return f"problem: {exc}"


def _generation_problem(exc: BaseException) -> str:
    if isinstance(exc, generation.Cancelled):
        return "Cancelled: nothing was added to the document."
    if isinstance(exc, engine_client.JobFailed):
        return f"The engine could not generate: {exc}"
    if isinstance(exc, (engine_client.ClientError, engine_link.EngineSetupError)):
        return frontends.known_engine_problem(str(exc)) or str(exc)
    return f"Generation failed: {type(exc).__name__}: {exc}"


class InbetweenDocker(DockWidget):
    """Krita docker hosting the panel; follows the active document. Krita makes one per window;
    `instances` lets the menu action find them (Krita 5.1's Window has no list of its dockers)."""

    instances: "weakref.WeakSet[InbetweenDocker]" = weakref.WeakSet()

    def __init__(self) -> None:
        super().__init__()
        InbetweenDocker.instances.add(self)
        self.setWindowTitle(DOCKER_TITLE)
        self.panel = InbetweenPanel(self)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        # The panel is laid out to fit the dock's width; it scrolls up and down only.
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.panel)
        self.setWidget(scroll)

    def canvasChanged(self, canvas) -> None:
        self.panel.follow_document()
