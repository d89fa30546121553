"""The Generate panel: which segments, how they are timed, how the engine draws them.

Timing edits (drawings on ones/twos/threes or an exact count, spacing, the timing chart) are
undoable edits of the selected segments (or of all of them). Engine settings (backend, motion,
seed, steps, CFG, sketch strength, runtime, detail restoration, palette) are remembered in the project. The panel never talks to the
engine itself: it asks the main window to start or cancel a run and shows its progress.
"""

from __future__ import annotations

import random

from qtpy import QtCore, QtWidgets

from engine.core import frontends, vocabulary
from engine.core import timing as shared_timing
from engine.core.planning import PlanningError, spacing_taus

from . import commands
from .document import Document
from .project import ProjectError, Timing
from .timing_chart import TimingChart

DRAWING_MODES = shared_timing.DRAWING_MODES
SPACING_CHOICES = shared_timing.SPACING_CHOICES
BACKENDS = vocabulary.BACKEND_CHOICES


class GeneratePanel(QtWidgets.QWidget):
    generateRequested = QtCore.Signal(str)  # "targets" | "all" | "current"
    cancelRequested = QtCore.Signal()
    acceptRequested = QtCore.Signal()
    message = QtCore.Signal(str)

    def __init__(self, doc: Document, parent=None) -> None:
        super().__init__(parent)
        self._updating = False
        self._running = False
        self._build()
        self.set_document(doc)
        self.set_running(False)

    # ---- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)

        scope_box = QtWidgets.QGroupBox("Segments")
        scope = QtWidgets.QVBoxLayout(scope_box)
        self.scope_label = QtWidgets.QLabel()
        self.scope_label.setWordWrap(True)
        self.scope_all = QtWidgets.QCheckBox("All segments")
        self.scope_all.setToolTip("Generate every segment; otherwise the selected ones (or the one under the playhead)")
        scope.addWidget(self.scope_label)
        scope.addWidget(self.scope_all)
        layout.addWidget(scope_box)

        timing_box = QtWidgets.QGroupBox("Timing")
        form = QtWidgets.QFormLayout(timing_box)
        self.mode = QtWidgets.QComboBox()
        for label, _ in DRAWING_MODES:
            self.mode.addItem(label)
        self.mode.setToolTip("On ones/twos/threes: a drawing every 1, 2 or 3 frames of the gap between keys")
        self.count = QtWidgets.QSpinBox()
        self.count.setRange(1, 240)
        self.count.setToolTip("Exactly this many in-betweens, spread as evenly as whole frames allow")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.mode, 1)
        row.addWidget(self.count)
        form.addRow("Drawings", row)
        self.spacing = QtWidgets.QComboBox()
        for value, label in SPACING_CHOICES:
            self.spacing.addItem(label, value)
        form.addRow("Spacing", self.spacing)
        self.chart = TimingChart()
        form.addRow(self.chart)
        layout.addWidget(timing_box)

        engine_box = QtWidgets.QGroupBox("Engine")
        form = QtWidgets.QFormLayout(engine_box)
        self.backend = QtWidgets.QComboBox()
        for value, label in BACKENDS:
            self.backend.addItem(label, value)
        form.addRow("Backend", self.backend)
        self.motion = QtWidgets.QSpinBox()
        self.motion.setRange(int(vocabulary.MOTION.low), int(vocabulary.MOTION.high))
        self.motion.setToolTip("How much motion the model puts between the keys (its frame-stride conditioning, "
                               "default 10). It is not a frame rate.")
        form.addRow("Motion", self.motion)
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(int(vocabulary.SEED.low), int(vocabulary.SEED.high))
        self.seed_lock = QtWidgets.QCheckBox("Lock")
        self.seed_lock.setToolTip("Locked: the same seed every time (repeatable). Unlocked: a new seed per run.")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.seed, 1)
        row.addWidget(self.seed_lock)
        form.addRow("Seed", row)
        self.steps = QtWidgets.QSpinBox()
        self.steps.setRange(int(vocabulary.STEPS.low), int(vocabulary.STEPS.high))
        form.addRow("Steps", self.steps)
        self.cfg = QtWidgets.QDoubleSpinBox()
        self.cfg.setRange(vocabulary.CFG_SCALE.low, vocabulary.CFG_SCALE.high)
        self.cfg.setSingleStep(vocabulary.CFG_SCALE.step)
        self.cfg.setToolTip("Guidance (CFG): how strongly the model follows the keys and prompt")
        form.addRow("CFG", self.cfg)
        self.sketch_strength = QtWidgets.QDoubleSpinBox()
        self.sketch_strength.setRange(vocabulary.SKETCH_STRENGTH.low, vocabulary.SKETCH_STRENGTH.high)
        self.sketch_strength.setSingleStep(vocabulary.SKETCH_STRENGTH.step)
        self.sketch_strength.setToolTip("How closely in-betweens follow your sketches")
        form.addRow("Sketch strength", self.sketch_strength)
        self.choices: dict[str, QtWidgets.QComboBox] = {}
        for spec in frontends.CHOICE_SETTINGS:  # runtime, detail restoration, palette (shared with Krita)
            combo = QtWidgets.QComboBox()
            for value, label in spec.choices:
                combo.addItem(label, value)
            combo.setToolTip(spec.tooltip)
            combo.currentIndexChanged.connect(self._settings_edited)
            self.choices[spec.field] = combo
            form.addRow(spec.label, combo)
        self.backend_note = QtWidgets.QLabel()
        self.backend_note.setWordWrap(True)
        form.addRow(self.backend_note)
        layout.addWidget(engine_box)

        self.generate_button = QtWidgets.QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.generate_button, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.stage = QtWidgets.QLabel("Idle")
        self.stage.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.stage)
        self.accept_button = QtWidgets.QPushButton("Accept in-betweens")
        self.accept_button.setToolTip("Mark the generated in-betweens of these segments as accepted (green)")
        self.regenerate_button = QtWidgets.QPushButton("Regenerate this segment")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.accept_button)
        row.addWidget(self.regenerate_button)
        layout.addLayout(row)
        layout.addStretch(1)

        self.mode.currentIndexChanged.connect(self._timing_edited)
        self.count.valueChanged.connect(self._timing_edited)
        self.spacing.currentIndexChanged.connect(self._timing_edited)
        self.chart.tausChanged.connect(self._chart_edited)
        self.scope_all.toggled.connect(self._refresh)
        for widget in (self.motion, self.seed, self.steps):
            widget.valueChanged.connect(self._settings_edited)
        for widget in (self.cfg, self.sketch_strength):
            widget.valueChanged.connect(self._settings_edited)
        self.seed_lock.toggled.connect(self._settings_edited)
        self.backend.currentIndexChanged.connect(self._settings_edited)
        self.generate_button.clicked.connect(lambda: self.generateRequested.emit(self.scope()))
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.accept_button.clicked.connect(self.acceptRequested)
        self.regenerate_button.clicked.connect(lambda: self.generateRequested.emit("current"))

    def set_document(self, doc: Document) -> None:
        self.doc = doc
        doc.changed.connect(self._refresh)
        doc.selectionChanged.connect(self._refresh)
        doc.currentFrameChanged.connect(self._refresh)
        self._load_settings()
        self._refresh()

    # ---- state shown ---------------------------------------------------------------------------
    def scope(self) -> str:
        return "all" if self.scope_all.isChecked() else "targets"

    def target_starts(self) -> list[int]:
        if self.scope_all.isChecked():
            return [seg.start for seg in self.doc.project.segments()]
        return self.doc.target_segments()

    def _refresh(self) -> None:
        project = self.doc.project
        starts = self.target_starts()
        segs = {seg.start: seg for seg in project.segments()}
        targets = [segs[s] for s in starts if s in segs]
        if not targets:
            self.scope_label.setText("No segment: a project needs two keyframes to in-between")
        else:
            spans = ", ".join(f"{s.start}–{s.end}" for s in targets[:6]) + (" …" if len(targets) > 6 else "")
            self.scope_label.setText(f"{len(targets)} segment(s): frames {spans}")
        self._updating = True
        try:
            timing = targets[0].timing if targets else project.timing
            mode_index = next((i for i, (_, e) in enumerate(DRAWING_MODES) if timing.count is None and e == timing.exposure), 3)
            self.mode.setCurrentIndex(mode_index)
            self.count.setEnabled(timing.count is not None)
            if timing.count is not None:
                self.count.setValue(timing.count)
            elif targets and targets[0].plan:
                self.count.setValue(len(targets[0].planned_frames))
            spacing_value = timing.spacing if isinstance(timing.spacing, str) else "custom"
            self.spacing.setCurrentIndex(self.spacing.findData(spacing_value))
            self._show_chart(targets[0] if targets else None, timing)
        finally:
            self._updating = False
        has_targets = bool(targets) and all(t.error is None for t in targets)
        self.generate_button.setEnabled(has_targets and not self._running)
        self.regenerate_button.setEnabled(project.segment_at(self.doc.current_frame) is not None and not self._running)
        self.accept_button.setEnabled(any(project.segment_state(t) in ("generated", "partial") for t in targets))
        errors = [f"{t.start}–{t.end}: {t.error}" for t in targets if t.error]
        if errors and not self._running:
            self.stage.setText("Cannot time segment " + errors[0])

    def _show_chart(self, seg, timing: Timing) -> None:
        editable = not isinstance(timing.spacing, str)
        if seg is not None and seg.plan is not None:
            gap = seg.end - seg.start
            frames = seg.planned_frames
            times = [(f - seg.start) / gap for f in frames]
            self.chart.set_chart(times, seg.plan.taus, [str(f) for f in frames], editable)
        elif seg is None:
            try:
                self.chart.show_curve(7, timing.spacing if isinstance(timing.spacing, str) else "linear")
            except PlanningError:
                self.chart.set_chart([], [])
        else:
            self.chart.set_chart([], [])

    # ---- timing edits --------------------------------------------------------------------------
    def _current_timing_request(self) -> Timing:
        _, exposure = DRAWING_MODES[self.mode.currentIndex()]
        count = self.count.value() if exposure is None else None
        spacing = self.spacing.currentData()
        starts = self.target_starts()
        segs = {seg.start: seg for seg in self.doc.project.segments()}
        first = segs.get(starts[0]) if starts else None
        if spacing == "custom":
            n = count
            if n is None and first is not None:
                gap = first.end - first.start
                n = len(range(first.start + (exposure or 1), first.end, exposure or 1)) or max(1, gap - 1)
            n = n or 7
            old = first.timing.spacing if first is not None else self.doc.project.timing.spacing
            if not isinstance(old, str) and len(old) == n:
                spacing = old
            else:  # start the chart from the curve the animator had, at the new drawing count
                base = old if isinstance(old, str) else "linear"
                spacing = tuple(round(t, 4) for t in spacing_taus(n, base))
        return Timing(exposure=exposure or 1, count=count, spacing=spacing)

    def _timing_edited(self) -> None:
        if self._updating:
            return
        self.count.setEnabled(DRAWING_MODES[self.mode.currentIndex()][1] is None)
        try:
            timing = self._current_timing_request()
            self._apply_timing(timing)
        except (ProjectError, PlanningError) as exc:
            self.message.emit(str(exc))
            self._refresh()

    def _chart_edited(self, taus: list) -> None:
        starts = self.target_starts()
        segs = {seg.start: seg for seg in self.doc.project.segments()}
        timing = segs[starts[0]].timing if starts and starts[0] in segs else self.doc.project.timing
        try:
            self._apply_timing(Timing(exposure=timing.exposure, count=timing.count, spacing=tuple(taus)))
        except ProjectError as exc:
            self.message.emit(str(exc))
            self._refresh()

    def _apply_timing(self, timing: Timing) -> None:
        starts = self.target_starts()
        if not starts:
            self.doc.push(commands.set_timing(self.doc, None, timing))
            return
        edit = commands.set_timing(self.doc, starts, timing)
        if edit.timings:
            self.doc.push(edit)

    # ---- engine settings -----------------------------------------------------------------------
    def _load_settings(self) -> None:
        s = self.doc.project.settings
        self._updating = True
        try:
            self.backend.setCurrentIndex(max(0, self.backend.findData(s.get("backend", "auto"))))
            self.motion.setValue(int(s.get("motion", 10)))
            self.seed.setValue(int(s.get("seed", 123)))
            self.seed_lock.setChecked(bool(s.get("seed_locked", True)))
            self.steps.setValue(int(s.get("steps", 50)))
            self.cfg.setValue(float(s.get("cfg_scale", 7.5)))
            self.sketch_strength.setValue(float(s.get("sketch_strength", 0.6)))
            for spec in frontends.CHOICE_SETTINGS:
                combo = self.choices[spec.field]
                combo.setCurrentIndex(max(0, combo.findData(s.get(spec.field, spec.default))))
        finally:
            self._updating = False
        self._backend_fields()

    def _settings_edited(self) -> None:
        if self._updating:
            return
        # Settings are not undo steps, but they are part of the project: mark it unsaved.
        self.doc.undo_stack.resetClean()
        self.doc.project.settings.update(
            backend=self.backend.currentData(),
            motion=self.motion.value(),
            seed=self.seed.value(),
            seed_locked=self.seed_lock.isChecked(),
            steps=self.steps.value(),
            cfg_scale=self.cfg.value(),
            sketch_strength=self.sketch_strength.value(),
            **{name: combo.currentData() for name, combo in self.choices.items()},
        )
        self._backend_fields()

    def _backend_fields(self) -> None:
        """Grey out what the chosen backend ignores (engine.core.frontends decides, for Krita too)."""
        backend = self.backend.currentData()
        fields = {"motion": [self.motion], "steps": [self.steps], "cfg_scale": [self.cfg],
                  "sketch_strength": [self.sketch_strength], "seed": [self.seed, self.seed_lock],
                  **{name: [combo] for name, combo in self.choices.items()}}
        for name, widgets in fields.items():
            for widget in widgets:
                widget.setEnabled(frontends.setting_applies(name, backend))
        self.backend_note.setText(frontends.backend_note(backend))

    def set_runtime_availability(self, runtimes: dict[str, tuple[bool, str]]) -> None:
        """Grey out runtimes the engine cannot use (from /v1/health), with its reason as the tooltip."""
        combo = self.choices["runtime"]
        model = combo.model()
        for i in range(combo.count()):
            ok, reason = runtimes.get(combo.itemData(i), (True, ""))
            model.item(i).setEnabled(ok)
            model.item(i).setToolTip("" if ok else reason)

    def set_backend_availability(self, backends: dict[str, tuple[bool, str]]) -> None:
        """Grey out backends the engine cannot run, with its reason as the tooltip."""
        model = self.backend.model()
        for i in range(self.backend.count()):
            name = self.backend.itemData(i)
            ok, reason = backends.get(name, (True, ""))
            item = model.item(i)
            item.setEnabled(ok)
            item.setToolTip("" if ok else reason)

    def settings_for_run(self) -> dict:
        """GenerationSettings fields for the next run; an unlocked seed is drawn anew and shown."""
        s = self.doc.project.settings
        if not self.seed_lock.isChecked():
            self.seed.setValue(random.randrange(0, 2**31 - 1))
        return {
            "backend": self.backend.currentData(),
            "motion": self.motion.value(),
            "seed": self.seed.value(),
            "steps": self.steps.value(),
            "cfg_scale": self.cfg.value(),
            "sketch_strength": self.sketch_strength.value(),
            "prompt": s.get("prompt", "an anime scene"),
            "preset": s.get("preset", "parity"),
            **{name: combo.currentData() for name, combo in self.choices.items()},
        }

    # ---- run state -----------------------------------------------------------------------------
    def set_running(self, running: bool) -> None:
        self._running = running
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setValue(0)
            self.stage.setText("Starting…")
        self._refresh()

    def show_progress(self, stage: str, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(max(0.0, min(1.0, fraction)) * 1000)))
        self.stage.setText(f"{stage}: {message}" if message else stage)

    def show_finished(self, text: str) -> None:
        self.stage.setText(text)

    def reset_status(self) -> None:
        """Back to idle: what the bar and line showed belonged to a run, a project or a history
        that has changed (undo, another project), so it must not linger."""
        if self._running:
            return
        self.progress.setValue(0)
        self.stage.setText("Idle")
