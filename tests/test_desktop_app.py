"""The studio window end to end: a real local engine server (RIFE backend), real widgets (offscreen).

One server serves the whole module (it is started as a child the way the app starts it); each test
gets its own window, settings file and autosave folder.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PIL import Image
from qtpy import QtCore, QtGui
from qtpy.QtTest import QTest

from desktop import commands, storage
from desktop.export_dialog import ExportOptions
from desktop.main_window import MainWindow
from desktop.project import Timing

W, H = 96, 64


def disc_key(cx: int) -> np.ndarray:
    """A dark disc with a soft edge on white paper: simple to interpolate, easy to locate."""
    yy, xx = np.mgrid[:H, :W]
    dist = np.sqrt((xx - cx) ** 2 + (yy - H / 2) ** 2)
    ink = np.clip(14 - dist, 0, 1)
    image = np.full((H, W, 4), 255, np.uint8)
    image[..., :3] = (255 - 235 * ink[..., None]).astype(np.uint8)
    return image


def centroid_x(image: np.ndarray) -> float:
    ink = 255.0 - image[..., :3].mean(axis=2)
    return float((ink.sum(axis=0) * np.arange(image.shape[1])).sum() / ink.sum())


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A real `inbetween serve` child advertised in a private state folder."""
    from engine.core.client import start_local_server

    state = tmp_path_factory.mktemp("engine_state")
    server = start_local_server(state_dir=state, startup_timeout=180)
    yield state
    server.stop()


@pytest.fixture
def key_files(tmp_path):
    paths = []
    for i, cx in enumerate((20, 48, 76)):
        path = tmp_path / f"key_{i}.png"
        Image.fromarray(disc_key(cx), "RGBA").save(path)
        paths.append(path)
    return paths


def make_window(qtbot, tmp_path, engine_state=None, connect=True, **options):
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    engine_options = {"state_dir": engine_state, **options} if engine_state else options
    window = MainWindow(settings=settings, engine_options=engine_options, autosave_dir=tmp_path / "autosave",
                        connect=connect)
    window.ask_unsaved = lambda: "keep"
    qtbot.addWidget(window)
    window.show()
    return window


def drag(widget, points, button=QtCore.Qt.MouseButton.LeftButton):
    QTest.mousePress(widget, button, QtCore.Qt.KeyboardModifier.NoModifier, points[0])
    for p in points[1:]:
        event = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, QtCore.QPointF(p), QtCore.QPointF(widget.mapToGlobal(p)),
                                  QtCore.Qt.MouseButton.NoButton, button, QtCore.Qt.KeyboardModifier.NoModifier)
        QtCore.QCoreApplication.sendEvent(widget, event)
    QTest.mouseRelease(widget, button, QtCore.Qt.KeyboardModifier.NoModifier, points[-1])


def canvas_point(window, x: float, y: float) -> QtCore.QPoint:
    return window.canvas.transform().map(QtCore.QPointF(x, y)).toPoint()


# ---- the main flow -------------------------------------------------------------------------------


@pytest.mark.slow
def test_sketch_generate_play_accept_export_undo(qtbot, tmp_path, engine, key_files):
    window = make_window(qtbot, tmp_path, engine)
    with qtbot.waitSignal(window.engineReady, timeout=120_000):
        pass
    assert window.new_project_from_files(key_files[:2], inbetweens=3)
    project = window.doc.project
    assert project.key_frames() == [0, 4] and project.size == (W, H)
    keys_before = {f: c.drawing.digest for f, c in project.keys.items()}

    # Sketch on in-between frame 2 with the pen.
    window.doc.set_current_frame(2)
    drag(window.canvas, [canvas_point(window, 30 + 4 * i, 20 + 2 * i) for i in range(8)])
    assert 2 in project.sketches and not project.sketches[2].drawing.is_empty()

    # Generate with RIFE: the sketch stays on its track, keys stay untouched.
    window.panel.backend.setCurrentIndex(window.panel.backend.findData("rife"))
    with qtbot.waitSignal(window.generationFinished, timeout=120_000) as finished:
        assert window.generate("all")
        assert window.panel.cancel_button.isEnabled()  # the UI is live while the engine works
    assert finished.args == ["done"]
    assert sorted(project.inbetweens) == [1, 2, 3]
    xs = [centroid_x(project.inbetweens[f].drawing.image) for f in (1, 2, 3)]
    assert 20 < xs[0] < xs[1] < xs[2] < 48  # the disc moves between the keys, in order
    assert all(project.inbetween_state(f) == "generated" for f in (1, 2, 3))
    assert project.inbetweens[2].provenance["backend"] == "rife"
    assert {f: c.drawing.digest for f, c in project.keys.items()} == keys_before
    assert 2 in project.sketches

    # Play it back: the playhead moves on its own.
    window.doc.set_current_frame(0)
    window.player.play()
    qtbot.waitUntil(lambda: window.doc.current_frame >= 2, timeout=5000)
    window.player.stop()

    assert window.accept_inbetweens()
    assert all(project.inbetween_state(f) == "accepted" for f in (1, 2, 3))

    # Export a PNG sequence and a layered PSD through engine.exports.
    out = tmp_path / "export"
    with qtbot.waitSignal(window.exportFinished, timeout=60_000) as exported:
        window.export(ExportOptions(folder=out, name="hop", formats=("png", "psd"), start=1))
    assert exported.args[0] is not None
    files = sorted(p.name for p in out.glob("hop_*.png"))
    assert files == [f"hop_{n:04d}.png" for n in range(1, 6)]
    second = np.asarray(Image.open(out / "hop_0003.png").convert("RGBA"))
    assert np.array_equal(second, project.inbetweens[2].drawing.image)
    from psd_tools import PSDImage

    psd = PSDImage.open(out / "hop.psd")
    assert [layer.name for layer in psd] == ["f0000 key", "f0001 in-between", "f0002 in-between",
                                            "f0003 in-between", "f0004 key"]

    # Everything is undoable: accept, then the generation itself, then the sketch.
    window.doc.undo_stack.undo()
    assert project.inbetween_state(2) == "generated"
    window.doc.undo_stack.undo()
    assert project.inbetweens == {}
    window.doc.undo_stack.undo()
    assert 2 not in project.sketches


@pytest.mark.slow
def test_cancel_keeps_the_ui_live_and_lands_nothing_half_done(qtbot, tmp_path, engine):
    window = make_window(qtbot, tmp_path, engine)
    with qtbot.waitSignal(window.engineReady, timeout=120_000):
        pass
    big = [np.asarray(Image.fromarray(disc_key(cx), "RGBA").resize((384, 256))) for cx in (20, 76)]
    paths = []
    for i, image in enumerate(big):
        paths.append(tmp_path / f"big_{i}.png")
        Image.fromarray(image, "RGBA").save(paths[-1])
    window.new_project_from_files(paths, inbetweens=60)
    with qtbot.waitSignal(window.generationFinished, timeout=120_000) as finished:
        window.generate("all")
        qtbot.waitUntil(lambda: window.panel.progress.value() > 0 or "post" in window.panel.stage.text(),
                        timeout=60_000)
        window.cancel_generation()
        window.doc.set_current_frame(5)  # the window keeps answering meanwhile
    assert finished.args == ["cancelled"]
    assert window.doc.project.inbetweens == {}
    assert not window.generating()


def test_engine_not_reachable_is_said_in_plain_words(qtbot, tmp_path):
    state = tmp_path / "nothing_here"
    state.mkdir()
    window = make_window(qtbot, tmp_path, state, start=False)
    qtbot.waitUntil(lambda: "not reachable" in window.banner.text(), timeout=20_000)
    assert "inbetween serve" in window.banner.text()
    assert window.banner.action_button.text() == "Reconnect"


def test_generate_before_two_keys_explains_what_is_missing(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path, connect=False)
    assert not window.generate("all")
    assert "two keyframes" in window.banner.text()


# ---- drawing, timeline and shortcuts -------------------------------------------------------------


@pytest.fixture
def studio(qtbot, tmp_path, key_files):
    window = make_window(qtbot, tmp_path, connect=False)
    assert window.new_project_from_files(key_files, inbetweens=3)
    return window


def test_a_key_is_corrected_on_its_clean_up_layer_never_drawn_over(studio):
    key = studio.doc.project.keys[4].drawing.image.copy()
    studio.doc.set_current_frame(4)
    studio.set_draw_layer("sketch")  # sketches steer in-betweens: a key refuses them
    drag(studio.canvas, [canvas_point(studio, 10, 10), canvas_point(studio, 40, 40)])
    assert studio.doc.project.sketches == {} and not studio.doc.undo_stack.canUndo()
    studio.set_draw_layer("cleanup")
    drag(studio.canvas, [canvas_point(studio, 10, 10), canvas_point(studio, 40, 40)])
    assert np.array_equal(studio.doc.project.keys[4].drawing.image, key)  # the key's own pixels
    assert studio.doc.project.cleanups[4].paint.image[25, 25, 3] > 0
    assert studio.doc.project.image_of(4)[25, 25, 3] == 255  # what plays, exports and steers the engine
    studio.doc.undo_stack.undo()
    assert 4 not in studio.doc.project.cleanups


def test_eraser_removes_sketch_lines_and_undo_brings_them_back(studio):
    studio.doc.set_current_frame(2)
    line = [canvas_point(studio, 10 + 5 * i, 32) for i in range(15)]
    drag(studio.canvas, line)
    sketch = studio.doc.project.sketches[2].drawing.image
    assert sketch[32, 40, 3] > 0
    studio.set_tool("eraser")
    drag(studio.canvas, line)
    assert studio.doc.project.sketches[2].drawing.image[32, 40, 3] == 0
    studio.doc.undo_stack.undo()
    assert studio.doc.project.sketches[2].drawing.image[32, 40, 3] > 0


def test_timeline_click_selects_segment_and_drag_moves_key(studio, qtbot):
    tl = studio.timeline.canvas
    row = tl.row_rect("inbetweens").center().y()
    QTest.mouseClick(tl, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                     QtCore.QPoint(tl.frame_x(6) + 3, row))
    assert studio.doc.selected_segments == [4] and studio.doc.current_frame == 6
    QTest.mouseClick(tl, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.ControlModifier,
                     QtCore.QPoint(tl.frame_x(2) + 3, row))
    assert studio.doc.selected_segments == [0, 4]
    key_row = tl.row_rect("keys").center().y()
    drag(tl, [QtCore.QPoint(tl.frame_x(4) + 3, key_row), QtCore.QPoint(tl.frame_x(6) + 3, key_row)])
    assert studio.doc.project.key_frames() == [0, 6, 8]
    studio.doc.undo_stack.undo()
    assert studio.doc.project.key_frames() == [0, 4, 8]


def test_default_shortcuts_step_jump_and_toggle_onion(studio, qtbot):
    win = studio
    win.doc.set_current_frame(0)
    win.activateWindow()
    QTest.keyClick(win, QtCore.Qt.Key.Key_Period)
    assert win.doc.current_frame == 1
    QTest.keyClick(win, QtCore.Qt.Key.Key_Period, QtCore.Qt.KeyboardModifier.AltModifier)
    assert win.doc.current_frame == 4
    QTest.keyClick(win, QtCore.Qt.Key.Key_Comma, QtCore.Qt.KeyboardModifier.AltModifier)
    assert win.doc.current_frame == 0
    onion = win.canvas.onion.enabled
    QTest.keyClick(win, QtCore.Qt.Key.Key_O)
    assert win.canvas.onion.enabled is not onion
    win.doc.set_current_frame(6)
    QTest.keyClick(win, QtCore.Qt.Key.Key_2)  # this segment on twos
    assert win.doc.project.timing_for(4) == Timing(exposure=2)
    QTest.keyClick(win, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert win.doc.project.timing_for(4) == Timing()
    QTest.keyClick(win, QtCore.Qt.Key.Key_Z,
                   QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert win.doc.project.timing_for(4) == Timing(exposure=2)


def test_shortcuts_are_rebindable_and_remembered(studio, tmp_path, qtbot):
    studio.shortcuts.rebind("next_frame", QtGui.QKeySequence("N"))
    studio.doc.set_current_frame(0)
    QTest.keyClick(studio, QtCore.Qt.Key.Key_N)
    assert studio.doc.current_frame == 1
    QTest.keyClick(studio, QtCore.Qt.Key.Key_Period)
    assert studio.doc.current_frame == 1
    again = make_window(qtbot, tmp_path, connect=False)
    assert again.actions_by_id["next_frame"].shortcut().toString() == "N"


def test_generate_panel_timing_edits_are_undoable(studio):
    panel = studio.panel
    studio.doc.select_segments([0])
    panel.mode.setCurrentIndex(1)  # on twos
    assert studio.doc.project.timing_for(0) == Timing(exposure=2)
    assert studio.doc.project.segments()[0].planned_frames == [2]
    panel.spacing.setCurrentIndex(panel.spacing.findData("custom"))
    assert studio.doc.project.timing_for(0).spacing == (0.5,)
    panel.chart.tausChanged.emit([0.3])
    assert studio.doc.project.timing_for(0).spacing == (0.3,)
    for _ in range(3):
        studio.doc.undo_stack.undo()
    assert studio.doc.project.timing_for(0) == Timing()


def test_mark_breakdown_from_sketch_and_generation_targets(studio):
    studio.doc.set_current_frame(2)
    drag(studio.canvas, [canvas_point(studio, 30, 30), canvas_point(studio, 50, 30)])
    assert studio.mark_key("breakdown")
    assert studio.doc.project.keys[2].kind == "breakdown"
    assert [s.start for s in studio.doc.project.segments()] == [0, 2, 4]
    studio.doc.set_current_frame(6)
    assert studio.panel.target_starts() == [4]


# ---- files ---------------------------------------------------------------------------------------


def test_save_open_recent_autosave_and_recovery(studio, tmp_path, qtbot):
    path = tmp_path / "hop.inbetween"
    assert studio.save_project(path)
    assert not studio.doc.dirty and studio.recent_files()[0] == str(path)
    studio.doc.set_current_frame(2)
    drag(studio.canvas, [canvas_point(studio, 30, 30), canvas_point(studio, 60, 40)])
    assert studio.doc.dirty
    saved = studio.autosave()
    assert saved is not None and (saved / storage.MANIFEST).exists()
    # A later session (as after a crash) offers the kept work back.
    again = make_window(qtbot, tmp_path, connect=False)
    assert "Unsaved work" in again.banner.text()
    again.banner.action_button.click()
    assert 2 in again.doc.project.sketches and again.doc.dirty
    assert again.doc.path == path
    assert again.open_project(path)
    assert 2 not in again.doc.project.sketches


def test_open_damaged_project_is_refused_by_name(studio, tmp_path):
    bad = tmp_path / "bad.inbetween"
    bad.write_bytes(b"not a zip")
    before = studio.doc
    assert not studio.open_project(bad)
    assert "bad.inbetween" in studio.banner.text() and studio.doc is before


def test_keys_of_different_sizes_offer_fitting(qtbot, tmp_path, key_files):
    window = make_window(qtbot, tmp_path, connect=False)
    odd = tmp_path / "odd.png"
    Image.fromarray(np.zeros((40, 50, 4), np.uint8), "RGBA").save(odd)
    assert not window.new_project_from_files([key_files[0], odd])
    assert "50×40" in window.banner.text() and "same canvas size" in window.banner.text()
    window.banner.action_button.click()
    assert window.doc.project.size == (W, H) and len(window.doc.project.keys) == 2


def test_import_sketch_onto_in_between_only(studio, tmp_path):
    sketch = tmp_path / "sketch.png"
    Image.fromarray(disc_key(40), "RGBA").save(sketch)
    assert studio.import_sketch(sketch, 2)
    assert not studio.import_sketch(sketch, 4)
    assert "keyframe" in studio.banner.text()
    studio.doc.push(commands.delete_cell(studio.doc, "sketches", 2))
    assert studio.doc.project.sketches == {}


# ---- architecture and entry point ----------------------------------------------------------------


def test_app_runs_without_torch_or_heavy_engine_modules():
    """The front end reaches the engine over HTTP only: opening the window imports no torch/cv2."""
    import subprocess
    import sys

    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from qtpy import QtWidgets; app = QtWidgets.QApplication([])\n"
        "import desktop.__main__, desktop.main_window, desktop.tour\n"
        "w = desktop.main_window.MainWindow(connect=False, autosave_dir=sys.argv[1])\n"
        "heavy = sorted(m for m in ('torch', 'cv2', 'onnxruntime', 'engine.pipeline', 'engine.backends',"
        " 'engine.server') if m in sys.modules)\n"
        "print('heavy:' + ','.join(heavy))\n"
    )
    import tempfile

    out = subprocess.run([sys.executable, "-c", code, tempfile.mkdtemp()], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "heavy:"


def test_entry_point_help():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "desktop", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "inbetween-studio" in out.stdout and "--no-engine" in out.stdout
