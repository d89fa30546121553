"""A scripted walk through the studio that saves a screenshot of each main state.

    xvfb-run -a python -m desktop.tour --out docs/screenshots

It starts the real window (and its own engine server), loads the sample keyframes, puts the sample
sketch on an in-between, generates with RIFE, shows the onion skin, then cleans up one in-between
by hand (eraser over the ghosted arm, a fill and a line in the keys' colours), accepts it and exports.
It saves desktop_empty.png, desktop_sketch.png, desktop_generating.png, desktop_results.png,
desktop_onion.png and desktop_cleanup.png. The docs' screenshots are made with it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHOTS = ("desktop_empty.png", "desktop_sketch.png", "desktop_generating.png", "desktop_results.png",
         "desktop_onion.png", "desktop_cleanup.png")

#: The tour's hand correction of the sample's middle in-between (RIFE ghosts the arm there), in
#: image pixels: eraser strokes over the ghost hand, the shirt's colour picked and filled over the
#: ghost forearm.
GHOST_STROKES = (
    [(298, 78), (312, 84), (300, 96), (314, 104), (298, 112), (306, 124), (292, 132), (300, 144)],
)
SHIRT = (240, 190)
GHOST_FOREARM = ((277, 196), (275, 183))


def wait_until(app, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the tour waited {timeout:.0f} s for {what}")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def stroke(app, window, points) -> None:
    """Drag the mouse over the canvas through image points, as a hand with a pen would."""
    from qtpy import QtCore, QtGui

    canvas = window.canvas
    at = [canvas.transform().map(QtCore.QPointF(x, y)) for x, y in points]
    left, none = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton
    modifiers = QtCore.Qt.KeyboardModifier.NoModifier
    kinds = ([QtCore.QEvent.Type.MouseButtonPress] + [QtCore.QEvent.Type.MouseMove] * (len(at) - 1)
             + [QtCore.QEvent.Type.MouseButtonRelease])
    for kind, point in zip(kinds, [*at, at[-1]]):
        button = none if kind == QtCore.QEvent.Type.MouseMove else left
        event = QtGui.QMouseEvent(kind, point, canvas.mapToGlobal(point), button, left, modifiers)
        _send(app, canvas, event)


def _send(app, widget, event) -> None:
    app.sendEvent(widget, event)
    app.processEvents()


def correct_frame(app, window, frame: int) -> None:
    """The hand clean-up of one in-between on its clean-up layer: erase the ghost hand, pick the
    shirt's colour and fill it over the ghost forearm."""
    window.doc.set_current_frame(frame)
    window.set_draw_layer("cleanup")
    window.set_tool("eraser")
    window.size_spin.setValue(14)
    for points in GHOST_STROKES:
        stroke(app, window, points)
    window.set_tool("picker")
    stroke(app, window, [SHIRT])
    window.set_tool("fill")
    for point in GHOST_FOREARM:
        stroke(app, window, [point])


def run_tour(out: Path, samples: Path, size=(1360, 860)) -> list[Path]:
    from qtpy import QtCore, QtWidgets

    from .export_dialog import ExportOptions
    from .main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["inbetween-studio"])
    app.setStyle("Fusion")
    work = Path(tempfile.mkdtemp(prefix="inbetween-tour-"))
    settings = QtCore.QSettings(str(work / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, engine_options={"state_dir": work / "engine"},
                        autosave_dir=work / "autosave")
    window.ask_unsaved = lambda: "discard"
    window.resize(*size)
    window.show()
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def shot(name: str) -> None:
        settle(app)
        path = out / name
        window.grab().save(str(path))
        written.append(path)

    ready = []
    window.engineReady.connect(lambda: ready.append(True))
    wait_until(app, lambda: ready or "not reachable" in window.banner.text(), 180, "the engine")
    if not ready:
        raise RuntimeError(window.banner.text())
    shot(SHOTS[0])

    keys = [samples / "arm_swing" / "key_a.png", samples / "arm_swing" / "key_b.png"]
    if not window.new_project_from_files(keys, "keys", inbetweens=7, name="arm swing"):
        raise RuntimeError(window.banner.text())
    window.import_sketch(samples / "sketches" / "arm_swing_middle.png", 4)
    window.doc.select_segments([0])
    window.doc.set_current_frame(4)
    window.canvas.fit()
    shot(SHOTS[1])

    finished = []
    window.generationFinished.connect(finished.append)
    window.panel.backend.setCurrentIndex(window.panel.backend.findData("rife"))
    window.generate("all")
    wait_until(app, lambda: finished or window.panel.progress.value() >= 300, 300, "generation progress")
    shot(SHOTS[2])
    wait_until(app, lambda: finished, 600, "generation to finish")
    if finished[0] != "done":
        raise RuntimeError(f"generation {finished[0]}: {window.banner.text()}")
    window.onion_before.setValue(1)
    window.onion_after.setValue(1)
    window.doc.set_current_frame(3)
    shot(SHOTS[3])

    # Onion skin: the frame in its true colours, two drawings either side faintly under it.
    window.actions_by_id["show_sketches"].setChecked(False)
    window.toggle_sketches(False)
    window.onion_before.setValue(2)
    window.onion_after.setValue(2)
    window.onion_opacity.setValue(40)
    window.doc.set_current_frame(5)
    shot(SHOTS[4])

    # Clean-up: correct the ghosted middle in-between by hand, accept it.
    window.actions_by_id["onion"].setChecked(False)
    window.toggle_onion(False)
    correct_frame(app, window, 4)
    window.accept_inbetweens()
    shot(SHOTS[5])

    exported = []
    window.exportFinished.connect(exported.append)
    window.export(ExportOptions(folder=work / "export", name="arm_swing", formats=("png", "psd")))
    wait_until(app, lambda: exported, 120, "the export")
    if exported[0] is None:
        raise RuntimeError(window.banner.text())
    window.close()
    settle(app)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--samples", type=Path, default=REPO / "samples")
    args = parser.parse_args(argv)
    for path in run_tour(args.out, args.samples):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
