"""`inbetween-studio` / `python -m desktop`: open the studio window.

    inbetween-studio [PROJECT_OR_IMAGES...] [--engine-python PATH] [--no-engine]

With a project (.inbetween file or project folder) it opens it; with keyframe images, a PNG
sequence folder or a layered PSD it starts a new project from them.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="inbetween-studio", description="Draw, time and generate in-betweens.")
    parser.add_argument("paths", nargs="*", help="a project to open, or keyframe images / a PSD / a sequence folder")
    parser.add_argument("--engine-python", help="Python that has the engine installed (default: this one)")
    parser.add_argument("--no-engine", action="store_true", help="do not connect to or start the engine at launch")
    parser.add_argument("--inbetweens", type=int, default=7, help="in-betweens between keys for new projects (7)")
    parser.add_argument("--self-check", metavar="OUT", type=Path,
                        help="check the installation: generate the given keys and export PNG + PSD into OUT, then quit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from qtpy import QtWidgets

    from .main_window import MainWindow
    from .storage import MANIFEST, ZIP_SUFFIX

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("Inbetweener Studio")
    app.setOrganizationName("Inbetweener")
    options = {"python": args.engine_python} if args.engine_python else {}
    window = MainWindow(engine_options=options, connect=not args.no_engine)

    def keep_work_on_crash(kind, value, tb) -> None:
        """An unexpected error: save the artist's work to the autosave folder, then say so."""
        traceback.print_exception(kind, value, tb)
        saved = window.autosave()
        where = f" Your work was autosaved to {saved}." if saved else ""
        window.show_problem(f"Something went wrong inside the app ({kind.__name__}: {value}).{where}")

    sys.excepthook = keep_work_on_crash
    paths = [Path(p) for p in args.paths]
    if args.self_check:
        from .self_check import run_self_check

        return run_self_check(window, app, paths, args.self_check)
    if len(paths) == 1 and (paths[0].suffix.lower() == ZIP_SUFFIX or (paths[0] / MANIFEST).exists()
                            or paths[0].name == MANIFEST):
        window.open_project(paths[0])
    elif paths:
        window.new_project_from_files(paths, inbetweens=args.inbetweens)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
