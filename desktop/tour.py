"""A scripted walk through the studio that saves a screenshot of each main state.

    xvfb-run -a python -m desktop.tour --out docs/screenshots

It starts the real window (and its own engine server), loads the sample keyframes, puts the sample
sketch on an in-between, generates with RIFE and saves desktop_empty.png, desktop_onion.png,
desktop_generating.png and desktop_results.png. The docs' screenshots are made with it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHOTS = ("desktop_empty.png", "desktop_onion.png", "desktop_generating.png", "desktop_results.png")


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
