"""`inbetween-studio KEY_A KEY_B --self-check OUT`: prove an installation works end to end, without a click.

Installers and support run it on a freshly installed app (the desktop bundle's test does): the app
opens the keys as a new project, starts its engine the way it always does (in the bundle: the
bundled `inbetween` executable), generates every segment with the no-download backend, accepts the
in-betweens and exports a PNG sequence and a layered PSD into OUT. It prints one line per step and
exits 0 when the files are there, 1 with the reason otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qtpy import QtWidgets

from engine.core import vocabulary

from .tour import wait_until

TIMEOUT_S = 600


def run_self_check(window, app: QtWidgets.QApplication, keys: list[Path], out: Path) -> int:
    from .export_dialog import ExportOptions

    def say(text: str) -> None:
        print(f"self-check: {text}", file=sys.stderr, flush=True)

    outcome: list[str] = []
    exported: list[object] = []
    window.generationFinished.connect(outcome.append)
    window.exportFinished.connect(exported.append)
    try:
        if len(keys) < 2:
            raise ValueError("give two or more keyframe images before --self-check")
        window.new_project_from_files(keys)
        backend = next(name for name in vocabulary.BACKENDS if name in vocabulary.CLASSICAL_BACKENDS)
        window.panel.backend.setCurrentIndex(window.panel.backend.findData(backend))
        say(f"opened {len(keys)} keys; generating with the {backend} backend")
        if not window.generate("all"):
            raise RuntimeError("the app refused to generate (see the message above)")
        wait_until(app, lambda: bool(outcome), TIMEOUT_S, "the generation")
        if outcome[0] != "done":
            raise RuntimeError(f"generation {outcome[0]}")
        window.select_all_segments()
        if not window.accept_inbetweens():
            raise RuntimeError("the in-betweens could not be accepted")
        say(f"generated; engine: {window.engine_label.text()}")
        if not window.export(ExportOptions(folder=out, name="self_check", formats=("png", "psd"))):
            raise RuntimeError("export refused (see the message above)")
        wait_until(app, lambda: bool(exported), TIMEOUT_S, "the export")
        if not exported[0]:
            raise RuntimeError("export failed")
        pngs = sorted(out.glob("self_check_*.png"))
        if not pngs or not (out / "self_check.psd").exists():
            raise RuntimeError(f"the export is missing files in {out}")
        say(f"exported {len(pngs)} PNG frames and self_check.psd to {out}")
        return 0
    except Exception as exc:  # the self-check reports every failure as its result
        say(f"FAILED: {type(exc).__name__}: {exc}")
        return 1
    finally:
        # The check's project is throwaway: close the window as the app does on quit, without asking.
        window.doc.undo_stack.setClean()
        window.close()
