"""The Krita side of tests/test_krita_integration.py: runs inside real Krita, not in pytest.

It holds no pytest tests; pytest only imports it (standard library at module level). The test
installs a tiny driver plugin into the temporary Krita profile next to the real Inbetweener plugin;
when Krita's first window is up, that plugin calls `schedule(...)`'s entry:

    integration   generate a take through the docker and inspect it ($INBETWEENER_KRITA_TEST: config)
    screenshot    the docs/screenshots/krita_*.png picture

Each entry writes its findings to the config's `result` file and ends with os._exit(0): a normal
exit may crash Krita at teardown and its exit code says nothing, so the result file is the only
verdict.
"""

import json
import os
import sys
import time
import traceback

CONFIG_ENV = "INBETWEENER_KRITA_TEST"
WIDTH, HEIGHT = 96, 64


def _config() -> dict:
    with open(os.environ[CONFIG_ENV], encoding="utf-8") as fh:
        return json.load(fh)


def _save(config: dict, result: dict) -> None:
    tmp = config["result"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1, default=repr)
    os.replace(tmp, config["result"])


def _finish(config: dict, result: dict) -> None:
    result["finished"] = True
    _save(config, result)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def disk_rgba(width: int, height: int, cx: float, cy: float, radius: float, colour) -> bytes:
    """A filled disk on transparency, as RGBA bytes (the test's keyframe drawings)."""
    out = bytearray(width * height * 4)
    for y in range(height):
        for x in range(width):
            if (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= radius * radius:
                out[(y * width + x) * 4 : (y * width + x) * 4 + 4] = bytes(colour)
    return bytes(out)


def _wait(app, predicate, timeout: float) -> bool:
    """Let Krita's event loop run (queued signals from the plugin's worker) until predicate()."""
    from inbetweener._qt import QtCore

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 100)
        time.sleep(0.02)
    return True


def _keys_document(app, window, folder: str, frames: dict, name: str = "scene"):
    """A document whose 'Keys' layer has keyframes at `frames` (frame -> RGBA bytes), saved in `folder`."""
    from inbetweener import pixels

    doc = app.createDocument(WIDTH, HEIGHT, name, "RGBA", "U8", "", 72.0)
    window.addView(doc)
    app.setActiveDocument(doc)
    files = []
    ordered = sorted(frames)
    step = ordered[1] - ordered[0] if len(ordered) > 1 else 1
    for frame in ordered:
        path = os.path.join(folder, f"key_{frame:03d}.png")
        with open(path, "wb") as fh:
            fh.write(pixels.encode_png(frames[frame], WIDTH, HEIGHT))
        files.append(path)
    from inbetweener.import_pacing import paced_import

    before = {str(n.uniqueId()) for n in doc.topLevelNodes()}
    with paced_import(doc):
        imported = doc.importAnimation(files, ordered[0], step)
    if not imported:
        raise RuntimeError("Krita could not import the test keys")
    keys = [n for n in doc.topLevelNodes() if str(n.uniqueId()) not in before][0]
    keys.setName("Keys")
    doc.setPlayBackRange(0, 24)
    doc.saveAs(os.path.join(folder, f"{name}.kra"))
    doc.waitForDone()
    return doc, keys


def schedule(entry: str) -> None:
    """Run `entry` once Krita's main window exists (called by the driver plugin at Krita's start)."""
    import faulthandler

    from krita import Krita

    config = _config()
    # a crash inside Krita leaves the Python stacks of all threads here
    faulthandler.enable(open(os.path.join(config["workdir"], "faults.txt"), "w"), all_threads=True)

    from inbetweener._qt import QtCore

    def start() -> None:
        QtCore.QTimer.singleShot(500, globals()[entry])

    Krita.instance().notifier().windowCreated.connect(start)


def integration(*_args) -> None:
    config = _config()
    result: dict = {"steps": []}

    def step(name: str) -> None:  # saved as it goes: a crash still says how far Krita got
        result["steps"].append(name)
        _save(config, result)
    try:
        from krita import Krita

        app = Krita.instance()
        window = app.activeWindow()
        step("window")

        import inbetweener
        from inbetweener import document, engine_link, generation, takes
        from inbetweener.docker import InbetweenDocker
        from inbetweener.extension import InbetweenerExtension

        result["plugin_file"] = inbetweener.__file__
        result["bundled_core"] = inbetweener._shared.client.__name__
        result["extension_registered"] = any(isinstance(e, InbetweenerExtension) for e in app.extensions())
        action = app.action("inbetweener_generate")
        result["action_text"] = action.text() if action is not None else None
        step("plugin")

        work = config["workdir"]
        red, blue = (220, 30, 30, 255), (30, 30, 220, 255)
        doc, keys = _keys_document(
            app, window, work,
            {0: disk_rgba(WIDTH, HEIGHT, 20, 32, 10, red), 12: disk_rgba(WIDTH, HEIGHT, 76, 32, 10, blue)},
        )
        result["key_layer_keyframes"] = [t for t in range(0, 25) if keys.hasKeyframeAtTime(t)]
        step("document")

        action.trigger()
        result["docker_found"] = bool(list(InbetweenDocker.instances))
        dock = next(iter(InbetweenDocker.instances))
        panel = dock.panel
        panel.refresh()
        _wait(app, lambda: False, 1.0)
        result["docker_layout"] = _clipped(dock)
        panel.select_layers(document.node_uid(keys))
        panel.python_edit.setText(config["engine_python"])  # as the animator types them in the docker
        panel.root_edit.setText(config["engine_root"])
        result["segments_listed"] = [panel.segment_list.item(i).text() for i in range(panel.segment_list.count())]
        panel.mode_combo.setCurrentIndex(1)  # on twos
        panel.backend_combo.setCurrentIndex(panel.backend_combo.findData("rife"))
        panel.seed_spin.setValue(7)
        panel.include_keys_check.setChecked(True)
        panel.keep_frames_check.setChecked(True)
        landed, failed = [], []
        panel.takeLanded.connect(landed.append)
        panel.generationFailed.connect(failed.append)
        layers_before = [n.name() for n in doc.topLevelNodes()]
        result["generate_started"] = panel.generate(panel.ticked_spans())
        result["finished_in_time"] = _wait(app, lambda: landed or failed, config.get("timeout", 300))
        result["landed"], result["failed"] = list(landed), list(failed)
        result["status_text"] = panel.status_label.text()
        result["saved_engine_python"] = engine_link.EngineSetup.load(app).python
        if not landed:
            raise RuntimeError(f"no take landed: {failed or result['status_text']}")
        step("generated")

        layer = panel.last_layer
        top = doc.topLevelNodes()
        result["layers_after"] = [n.name() for n in top]
        result["layers_before"] = layers_before
        result["new_layer_on_top"] = layer is not None and document.node_uid(top[-1]) == document.node_uid(layer)
        result["new_layer_keyframes"] = [t for t in range(0, 40) if layer.hasKeyframeAtTime(t)]
        dump = os.path.join(work, "layer_pixels")
        os.makedirs(dump, exist_ok=True)
        for t in result["new_layer_keyframes"]:
            with open(os.path.join(dump, f"take_{t:03d}.bgra"), "wb") as fh:
                fh.write(bytes(layer.pixelDataAtTime(0, 0, WIDTH, HEIGHT, t)))
        for t in result["key_layer_keyframes"]:
            with open(os.path.join(dump, f"keys_{t:03d}.bgra"), "wb") as fh:
                fh.write(bytes(keys.pixelDataAtTime(0, 0, WIDTH, HEIGHT, t)))
        result["takes"] = takes.read_takes(doc)
        panel.follow_document()
        result["keys_choice_after_take"] = panel.key_combo.currentText()
        step("inspected")

        undo, redo = app.action("edit_undo"), app.action("edit_redo")
        undo.trigger()
        doc.waitForDone()
        result["layers_after_one_undo"] = [n.name() for n in doc.topLevelNodes()]
        panel.follow_document()
        result["takes_listed_after_undo"] = [panel.takes_combo.itemText(i) for i in range(panel.takes_combo.count())]
        redo.trigger()
        doc.waitForDone()
        result["layers_after_redo"] = [n.name() for n in doc.topLevelNodes()]
        panel.follow_document()
        step("undo")

        # regenerate from the take recorded in the document, after the form was changed
        panel.seed_spin.setValue(1)
        panel.mode_combo.setCurrentIndex(0)
        result["takes_listed"] = [panel.takes_combo.itemText(i) for i in range(panel.takes_combo.count())]
        landed.clear()
        panel.regenerate()
        _wait(app, lambda: landed or failed, config.get("timeout", 300))
        result["regenerated"] = list(landed)
        result["regenerate_form"] = {
            "seed": panel.seed_spin.value(),
            "drawings": panel.mode_combo.currentText(),
            "backend": panel.backend_combo.currentData(),
            "ticked": panel.ticked_spans(),
        }
        again_layer = panel.last_layer
        result["regenerated_keyframes"] = [t for t in range(0, 40) if again_layer.hasKeyframeAtTime(t)]
        with open(os.path.join(dump, "regenerated_006.bgra"), "wb") as fh:
            fh.write(bytes(again_layer.pixelDataAtTime(0, 0, WIDTH, HEIGHT, 6)))
        step("regenerated")

        doc.save()
        doc.waitForDone()
        path = doc.fileName()
        doc.close()
        reopened = app.openDocument(path)
        result["reopened_takes"] = takes.read_takes(reopened)
        again = reopened.nodeByName(layer.name()) if layer is not None else None
        result["reopened_layer_keyframes"] = [t for t in range(0, 40) if again.hasKeyframeAtTime(t)] if again else None
        result["reopened_layer_uid"] = document.node_uid(again) if again else None
        step("reopened")

        refusals = {}
        gray = app.createDocument(32, 32, "gray", "GRAYA", "U8", "", 72.0)
        try:
            generation.prepare_take(gray, gray.topLevelNodes()[0], None, generation.segments.Timing(),
                                    generation.DrawSettings())
        except document.DocumentError as exc:
            refusals["gray_document"] = str(exc)
        window.addView(reopened)
        app.setActiveDocument(reopened)
        single = reopened.nodeByName("Keys")
        reopened.setPlayBackRange(5, 24)  # only the key at f12 is in range
        try:
            generation.prepare_take(reopened, single, None, generation.segments.Timing(), generation.DrawSettings())
        except document.DocumentError as exc:
            refusals["single_key"] = str(exc)
        result["refusals"] = refusals
        panel._set_status("Cancelled: nothing was added to the document.", error=True)
        fresh = app.createDocument(64, 48, "fresh", "RGBA", "U8", "", 72.0)
        window.addView(fresh)
        app.setActiveDocument(fresh)
        _wait(app, lambda: False, 1.5)  # the docker follows Krita to the new document by itself
        result["status_on_new_document"] = panel.status_label.text()
        result["keys_choice_on_new_document"] = panel.key_combo.currentText()
        step("refusals")
        state = engine_link.LINK._client
        result["engine_started_by_plugin"] = engine_link.LINK.started_here
        result["engine_pid"] = state.local_server.pid if state is not None and state.local_server else None
    except Exception:
        result["error"] = traceback.format_exc()
    _finish(config, result)


def _clipped(dock) -> dict:
    """How the docker fits its dock: widths, and any widget that reaches past the visible width."""
    from inbetweener._qt import QtCore, QtWidgets

    panel, scroll = dock.panel, dock.widget()
    visible = scroll.viewport().width()
    cut = []
    for w in panel.findChildren(QtWidgets.QWidget):
        if not w.isVisibleTo(panel) or isinstance(w.parent(), (QtWidgets.QComboBox, QtWidgets.QAbstractSpinBox)):
            continue
        right = w.mapTo(panel, QtCore.QPoint(w.width(), 0)).x()
        if right > visible + 1:
            cut.append(f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r} to x={right}")
    unreadable = [w.text() for w in panel.findChildren(QtWidgets.QLabel)
                  if w.isVisibleTo(panel) and w.text() and w.width() < min(w.sizeHint().width(), 40)]
    return {"dock_width": dock.width(), "visible_width": visible, "panel_min_width": panel.minimumSizeHint().width(),
            "sideways_scroll": scroll.horizontalScrollBar().isVisible(), "cut_off": cut, "unreadable_labels": unreadable}


#: Dockers left open in the screenshot (Krita's object names): layers, timeline, and the plugin's own.
SCREENSHOT_DOCKERS = ("KisLayerBox", "TimelineDocker", "AnimationCurvesDocker", "OnionSkinsDocker")


def _sample_rgba(path: str) -> bytes:
    """One of our sample keyframes as RGBA bytes (read with Krita's Qt); sets the canvas size."""
    from inbetweener._qt import QtGui

    image = QtGui.QImage(path).convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    if image.isNull():
        raise RuntimeError(f"cannot read the sample keyframe {path}")
    globals()["WIDTH"], globals()["HEIGHT"] = image.width(), image.height()
    data = image.constBits()
    data.setsize(image.sizeInBytes())
    rows = bytes(data)
    stride = image.bytesPerLine()
    return b"".join(rows[y * stride : y * stride + 4 * image.width()] for y in range(image.height()))


def screenshot(*_args) -> None:
    """Krita with the docker at its default width after a generation on the sample keys
    (samples/arm_swing), for docs/screenshots (config: workdir, result, image)."""
    config = _config()
    result: dict = {"steps": []}

    def step(name: str) -> None:
        result["steps"].append(name)
        _save(config, result)

    try:
        from inbetweener import document
        from inbetweener._qt import QtCore
        from inbetweener.docker import DOCKER_ID, InbetweenDocker
        from krita import Krita

        app = Krita.instance()
        window = app.activeWindow()
        qwindow = window.qwindow()
        screen = qwindow.screen().geometry()
        qwindow.setGeometry(0, 0, screen.width(), screen.height())  # no window manager to maximize it
        samples = os.path.join(os.path.dirname(os.environ["INBETWEENER_KRITA_TEST_DIR"]), "samples", "arm_swing")
        frames = {0: _sample_rgba(os.path.join(samples, "key_a.png")), 12: _sample_rgba(os.path.join(samples, "key_b.png"))}
        doc, keys = _keys_document(app, window, config["workdir"], frames, name="arm_swing")
        step("document")
        docks = {d.objectName(): d for d in app.dockers()}
        result["dockers"] = sorted(docks)
        for name, dock in docks.items():
            if name not in SCREENSHOT_DOCKERS + (DOCKER_ID,):
                dock.hide()
        for name in SCREENSHOT_DOCKERS[:2]:
            if name in docks:
                docks[name].show()
        app.action("inbetweener_generate").trigger()
        ours, layers = docks[DOCKER_ID], docks["KisLayerBox"]
        _wait(app, lambda: False, 1.0)
        # The docker keeps Krita's default width (the picture shows what an animator first sees).
        qwindow.resizeDocks([layers, ours], [170, 900], QtCore.Qt.Orientation.Vertical)
        result["docker_layout"] = _clipped(ours)
        panel = next(iter(InbetweenDocker.instances)).panel
        panel.refresh()
        panel.select_layers(document.node_uid(keys))
        panel.python_edit.setText(config["engine_python"])
        panel.root_edit.setText(config["engine_root"])
        panel.mode_combo.setCurrentIndex(1)
        panel.spacing_combo.setCurrentIndex(panel.spacing_combo.findData("ease-in-out"))
        panel.backend_combo.setCurrentIndex(panel.backend_combo.findData("rife"))
        done = []
        panel.takeLanded.connect(done.append)
        panel.generationFailed.connect(done.append)
        panel.generate(None)
        _wait(app, lambda: done, config.get("timeout", 300))
        step(f"generated {done}")
        panel.check_engine()
        _wait(app, lambda: "checking" not in panel.engine_label.text(), 30)
        step("engine checked")
        keys.setVisible(False)  # the take carries the keys: review it on its own
        doc.setCurrentTime(6)
        doc.refreshProjection()
        _wait(app, lambda: False, 3.0)
        step("frame shown")
        result["docker_layout"] = _clipped(ours)
        if not qwindow.screen().grabWindow(0).save(config["image"]):
            raise RuntimeError(f"could not save the screenshot to {config['image']}")
        result["done"] = done
    except Exception:
        result["error"] = traceback.format_exc()
    _finish(config, result)
