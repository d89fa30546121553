"""The Krita plugin's logic against a fake Krita document (the real-Krita run is test_krita_integration).

The fake mirrors what Krita 5.1 does, as observed in real Krita: pixelDataAtTime returns BGRA bytes
only at a keyframe (empty elsewhere), importAnimation adds one animated layer at the top of the stack
with an empty keyframe at frame 0 and a file every `step` frames, annotations are bytes.
"""

from __future__ import annotations

import ast
import importlib
import io
import json
import os
import subprocess
import sys
import threading
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.core.client import EngineClient
from engine.server.runner import EngineServer, ServerConfig
from krita_plugin.inbetweener import document, engine_link, generation, pixels, segments, takes
from krita_plugin.inbetweener.segments import Timing
from tests.krita_fakes import FakeDocument, FakeKrita, FakeNode

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "krita_plugin" / "inbetweener"
W, H = 96, 64


def disk(cx: float, cy: float = H / 2, r: float = 9, colour=(200, 40, 40, 255)) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    out = np.zeros((H, W, 4), np.uint8)
    out[(xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r] = colour
    return out


def bgra(rgba: np.ndarray) -> bytes:
    return rgba[..., [2, 1, 0, 3]].tobytes()


BLANK = bytes(W * H * 4)


def keys_doc(frames: dict[int, np.ndarray | None], **kw) -> tuple[FakeDocument, FakeNode]:
    keys = FakeNode("Keys", frames={f: BLANK if img is None else bgra(img) for f, img in frames.items()})
    background = FakeNode("Background", animated=False, frames={0: bgra(np.full((H, W, 4), 255, np.uint8))})
    return FakeDocument([background, keys], **kw), keys


# ---- pixels -------------------------------------------------------------------------------------


def test_krita_bgra_becomes_an_rgba_png_with_the_same_pixels():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    png = pixels.bgra_png(bgra(rgba), W, H)
    back = Image.open(io.BytesIO(png))
    assert back.mode == "RGBA" and back.size == (W, H)
    np.testing.assert_array_equal(np.asarray(back), rgba)
    assert pixels.bgra_to_rgba(bytes([1, 2, 3, 4, 5, 6, 7, 8])) == bytes([3, 2, 1, 4, 7, 6, 5, 8])
    with pytest.raises(ValueError, match="not whole BGRA pixels"):
        pixels.bgra_to_rgba(b"\x00" * 5)
    with pytest.raises(ValueError, match="not a 4x4 RGBA image"):
        pixels.encode_png(b"\x00" * 10, 4, 4)


def test_blank_means_fully_transparent():
    assert pixels.is_blank(BLANK)
    almost = bytearray(BLANK)
    almost[-1] = 1  # one pixel with a trace of alpha is a drawing
    assert not pixels.is_blank(bytes(almost))
    assert not np.asarray(Image.open(io.BytesIO(pixels.transparent_png(W, H))))[..., 3].any()


# ---- segments and timing ------------------------------------------------------------------------


def test_segments_are_planned_with_the_shared_planner_and_empty_keyframes_break_them():
    planned = segments.plan_segments([0, 12, 24, 25, 40], blanks={30}, timing=Timing(exposure=2), sketches=[6, 33])
    assert [s.span for s in planned] == [(0, 12), (12, 24), (24, 25), (25, 40)]
    assert [ib.frame for ib in planned[0].plan.inbetweens] == [2, 4, 6, 8, 10]
    assert planned[0].sketches == (6,)
    assert planned[2].plan is None and "leave no frame" in planned[2].problem
    assert planned[3].plan is None and "empty keyframe at f30" in planned[3].problem
    assert planned[0].describe() == "f0 → f12: 5 in-betweens · sketches f6"
    exact = segments.plan_segments([0, 10], (), Timing(count=3, spacing="ease-in"))[0]
    assert [ib.frame for ib in exact.plan.inbetweens] == [2, 5, 8]


def test_timing_validates_and_round_trips():
    assert Timing(spacing="0.2, 0.6").spacing == (0.2, 0.6)
    timing = Timing(exposure=3, count=None, spacing=(0.1, 0.5))
    assert Timing.from_json(json.loads(json.dumps(timing.to_json()))) == timing
    assert timing.describe() == "on threes, chart 0.1,0.5"
    with pytest.raises(ValueError, match="exposure"):
        Timing(exposure=0)
    with pytest.raises(ValueError, match="unknown spacing|neither"):
        Timing(spacing="bouncy")
    with pytest.raises(ValueError, match="increase"):
        Timing(spacing=(0.5, 0.4))


def test_picked_segments_split_into_runs_of_neighbours():
    planned = segments.plan_segments([0, 10, 20, 30, 40], (), Timing())
    picked = [planned[3], planned[0], planned[1]]
    assert [[s.span for s in run] for run in segments.runs(picked)] == [[(0, 10), (10, 20)], [(30, 40)]]


# ---- laying a take on Krita's timeline ----------------------------------------------------------


def frames_list(keys, drawings, holds=()):
    """An engine frame list: keys, in-betweens and holds (frame, drawing)."""
    out = [{"frame": k, "kind": "key", "drawing": k} for k in keys]
    out += [{"frame": d, "kind": "inbetween", "drawing": d} for d in drawings]
    out += [{"frame": f, "kind": "hold", "drawing": d} for f, d in holds]
    return sorted(out, key=lambda f: f["frame"])


def test_on_twos_the_take_holds_each_drawing_two_frames_without_duplicates():
    frames = frames_list([0, 12], [2, 4, 6, 8, 10], holds=[(f, f - 1) for f in (3, 5, 7, 9, 11)] + [(1, 0)])
    plan = takes.plan_import(takes.shown_drawings(frames))
    assert (plan.first, plan.step) == (0, 2)
    assert plan.sources == (0, 2, 4, 6, 8, 10, 12, None)
    assert plan.keyframe_times() == [0, 2, 4, 6, 8, 10, 12, 14]


def test_uneven_drawings_repeat_their_file_to_keep_exact_timing():
    # exactly 3 in-betweens in a 10-frame gap sit at 2, 5, 8: no common grid but single frames
    holds = [(1, 0), (3, 2), (4, 2), (6, 5), (7, 5), (9, 8)]
    plan = takes.plan_import(takes.shown_drawings(frames_list([0, 10], [2, 5, 8], holds)))
    assert plan.step == 1
    assert plan.sources == (0, 0, 2, 2, 2, 5, 5, 5, 8, 8, 10, None)
    assert plan.changes() == {0: 0, 2: 2, 5: 5, 8: 8, 10: 10, 11: None}


def test_without_keys_the_take_is_empty_on_key_frames_and_separate_runs_leave_a_gap():
    frames = frames_list([0, 4, 8, 12], [2, 10], holds=[(1, 0), (3, 2), (9, 8), (11, 10)])
    frames = [f for f in frames if not 4 < f["frame"] < 8]  # segment 4-8 was not picked
    plan = takes.plan_import(takes.shown_drawings(frames, include_keys=False))
    assert (plan.first, plan.step) == (0, 2)
    assert plan.sources == (None, 2, None, None, None, 10, None)


def test_layer_name_says_the_range_and_seed():
    assert takes.layer_name([(12, 24)], 123) == "[In-betweens] f12–f24 seed 123"
    assert takes.layer_name([(30, 40), (0, 10)], 5) == "[In-betweens] f0–f40 seed 5"


def test_takes_are_recorded_in_the_document_and_bad_annotations_read_as_none():
    doc, _ = keys_doc({0: disk(20), 12: disk(70)})
    assert takes.read_takes(doc) == []
    takes.record_take(doc, {"layer_uid": "a", "layer_name": "one"})
    takes.record_take(doc, {"layer_uid": "b", "layer_name": "two"})
    assert [t["layer_name"] for t in takes.read_takes(doc)] == ["one", "two"]
    assert [t["layer_name"] for t in takes.takes_on_layers(doc, {"b"})] == ["two"]
    doc.annotations[takes.ANNOTATION_TYPE] = b"\xff not json"
    assert takes.read_takes(doc) == []


def test_krita_import_runs_inside_the_guard_and_the_new_layer_is_named(tmp_path):
    import contextlib

    doc, _ = keys_doc({0: disk(20), 12: disk(70)})
    path = tmp_path / "empty.png"
    path.write_bytes(pixels.transparent_png(W, H))
    events = []
    real_import = doc.importAnimation
    doc.importAnimation = lambda *args: events.append("import") or real_import(*args)

    @contextlib.contextmanager
    def guard(guarded_doc):
        assert guarded_doc is doc
        events.append("enter")
        yield
        events.append("exit")

    layer = takes.import_take(doc, [str(path)], takes.ImportPlan(3, 1, (None,)), "[In-betweens] test", guard)
    assert events == ["enter", "import", "exit"]
    assert layer.name() == "[In-betweens] test" and sorted(layer.frames) == [0, 3]
    with pytest.raises(ValueError, match="1 files for 2 timeline positions"):
        takes.import_take(doc, [str(path)], takes.ImportPlan(0, 1, (None, None)), "x")


# ---- reading the document -----------------------------------------------------------------------


def test_keys_are_read_per_layer_and_empty_keyframes_are_told_apart():
    doc, keys = keys_doc({0: disk(20), 6: None, 12: disk(70), 150: disk(50)})
    found = document.scan_keys(doc, keys)
    assert found.frames == (0, 6, 12) and found.blanks == {6} and found.keys == [0, 12]
    assert found.describe() == "keys in f0–f100: f0, f12; empty frames: f6"
    # the layer's own pixels, not the white background under it
    assert document.read_frame(doc, keys, 0) == bgra(disk(20))


def test_layers_are_listed_top_first_with_their_group():
    inner = FakeNode("Lines")
    group = FakeNode("Character", "grouplayer", children=[inner])
    doc = FakeDocument([FakeNode("Background", animated=False), group, FakeNode("Notes", "vectorlayer")])
    assert [info.label for info in document.paint_layers(doc)] == ["Character / Lines", "Background"]
    assert document.find_layer(doc, document.node_uid(inner)) is inner


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: FakeDocument([], model="CMYKA"), "CMYKA U8; Inbetweener works on 8-bit RGBA"),
        (lambda: FakeDocument([], depth="U16"), "RGBA U16; Inbetweener works on 8-bit RGBA"),
        (lambda: None, "Open a document first"),
    ],
)
def test_documents_other_than_8_bit_rgba_are_refused(make, message):
    with pytest.raises(document.DocumentError, match=message):
        document.check_document(make())


def test_layers_and_timelines_it_cannot_use_are_refused_with_names():
    doc, keys = keys_doc({0: disk(20), 12: disk(70)})
    group = FakeNode("Group", "grouplayer")
    still = FakeNode("Still", animated=False)
    gray = FakeNode("Gray", model="GRAYA")
    for node, message in ((group, "'Group' is a grouplayer"), (still, "'Still' is not animated"),
                          (gray, "'Gray' is GRAYA U8")):
        with pytest.raises(document.DocumentError, match=message):
            generation.prepare_take(doc, node, None, Timing(), generation.DrawSettings())
    doc.playback = (20, 40)
    with pytest.raises(document.DocumentError, match="no keyframes with a drawing in the playback range f20–f40"):
        generation.prepare_take(doc, keys, None, Timing(), generation.DrawSettings())
    doc.playback = (5, 40)
    with pytest.raises(document.DocumentError, match=r"single keyframe \(f12\)"):
        generation.prepare_take(doc, keys, None, Timing(), generation.DrawSettings())


def test_prepare_reads_only_what_the_picked_segments_need():
    sketches = FakeNode("Sketches", frames={6: bgra(disk(45, r=4)), 18: bgra(disk(60, r=4)), 30: BLANK})
    doc, keys = keys_doc({0: disk(20), 12: disk(70), 24: disk(20), 36: disk(70)})
    doc.root.children.append(sketches)
    sketches.doc = doc
    request = generation.prepare_take(
        doc, keys, [(12, 24)], Timing(exposure=2), generation.DrawSettings(seed=9), sketch_layer=sketches
    )
    assert sorted(request.keys) == [12, 24] and sorted(request.sketches) == [18]
    assert request.name == "[In-betweens] f12–f24 seed 9"
    assert request.frames_folder is None and request.sketch_layer == "Sketches"
    with pytest.raises(document.DocumentError, match="f5 → f9 is no longer a segment"):
        generation.prepare_take(doc, keys, [(5, 9)], Timing(), generation.DrawSettings())
    with pytest.raises(document.DocumentError, match="at least one segment"):
        generation.prepare_take(doc, keys, [], Timing(), generation.DrawSettings())
    with pytest.raises(document.DocumentError, match="another layer than the keys layer"):
        generation.prepare_take(doc, keys, None, Timing(), generation.DrawSettings(), sketch_layer=keys)
    with pytest.raises(document.DocumentError, match="12 in-betweens do not fit"):
        generation.prepare_take(doc, keys, [(0, 12)], Timing(count=12), generation.DrawSettings())


def test_keeping_frames_next_to_an_unsaved_document_is_refused(tmp_path):
    doc, keys = keys_doc({0: disk(20), 12: disk(70)})
    options = generation.TakeOptions(keep_frames=True)
    with pytest.raises(document.DocumentError, match="Save the document first"):
        generation.prepare_take(doc, keys, None, Timing(), generation.DrawSettings(), options)
    doc.path = str(tmp_path / "shot 3.kra")
    request = generation.prepare_take(doc, keys, None, Timing(), generation.DrawSettings(seed=4), options)
    folder = Path(request.frames_folder)
    assert folder.parent == tmp_path / "shot 3_inbetweens" and folder.name.startswith("In-betweens_f0-f12_seed_4_")


def test_one_job_per_run_with_the_timing_and_settings():
    doc, keys = keys_doc({0: disk(20), 12: disk(70), 24: disk(20), 36: disk(70), 48: disk(20)})
    request = generation.prepare_take(
        doc, keys, [(0, 12), (12, 24), (36, 48)], Timing(count=3, spacing="ease-in"),
        generation.DrawSettings(backend="rife", motion=12, seed=3),
    )
    jobs = generation.build_jobs(request)
    assert [[k["frame"] for k in job["keyframes"]] for job in jobs] == [[0, 12, 24], [36, 48]]
    assert jobs[0]["timing"] == {"exposure": 1, "spacing": "ease-in", "count": 3}
    assert jobs[1]["settings"] == {"backend": "rife", "motion": 12, "seed": 3, "steps": 50, "sketch_strength": 0.6,
                                   "runtime": "auto", "restore_detail": "auto", "keep_palette": "auto"}
    import base64

    png = base64.b64decode(jobs[0]["keyframes"][1]["png"])
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), disk(70))


# ---- the whole path against a real engine server (rife) -----------------------------------------


@pytest.fixture
def engine(tmp_path):
    server = EngineServer(ServerConfig(state_dir=tmp_path / "state", advertise=False)).start_in_thread()
    yield EngineClient(server.url, server.token)
    server.stop()


@pytest.mark.slow
def test_generate_lands_a_new_layer_and_never_touches_the_keys(engine, tmp_path):
    doc, keys = keys_doc({0: disk(20), 12: disk(76)})
    keys_before = dict(keys.frames)
    seen = []
    layer = generation.generate(
        doc, keys, engine, timing=Timing(exposure=3), settings=generation.DrawSettings(backend="rife", seed=11),
        progress=lambda fraction, message: seen.append(fraction),
    )
    assert keys.frames == keys_before
    assert [n.name() for n in doc.topLevelNodes()] == ["Background", "Keys", "[In-betweens] f0–f12 seed 11"]
    assert layer is doc.topLevelNodes()[-1]
    (files, first, step), = doc.imports
    assert (first, step) == (0, 3) and sorted(layer.frames) == [0, 3, 6, 9, 12, 15]
    assert not Path(files[0]).parent.exists(), "the temporary frames folder is removed"
    assert layer.frames[0] == keys.frames[0] and layer.frames[12] == keys.frames[12]
    assert pixels.is_blank(layer.frames[15])
    xs = []
    for t in (3, 6, 9):
        alpha = np.frombuffer(layer.frames[t], np.uint8).reshape(H, W, 4)[..., 3]
        xs.append(np.nonzero(alpha > 128)[1].mean())
    assert 20 < xs[0] < xs[1] < xs[2] < 76
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    (take,) = takes.read_takes(doc)
    assert take["layer_uid"] == document.node_uid(layer) and take["segments"] == [[0, 12]]
    assert take["timing"]["exposure"] == 3 and take["settings"]["seed"] == 11
    assert take["keyframes"] == [0, 3, 6, 9, 12, 15] and take["provenance"][0]["backend"] == "rife"


def test_cancel_adds_nothing(engine):
    doc, keys = keys_doc({0: disk(20), 12: disk(76)})
    cancel = threading.Event()
    with pytest.raises(generation.Cancelled):
        generation.generate(doc, keys, engine, settings=generation.DrawSettings(backend="rife"),
                            progress=lambda fraction, message: cancel.set(), cancel=cancel)
    assert [n.name() for n in doc.topLevelNodes()] == ["Background", "Keys"]
    assert takes.read_takes(doc) == []


# ---- engine link, Qt binding, packaging ---------------------------------------------------------


def test_engine_setup_persists_in_kritas_settings_and_finds_the_inbetween_command(tmp_path):
    app = FakeKrita()
    engine_link.EngineSetup("/opt/engine/bin/python", "/src/inbetweener").save(app)
    assert engine_link.EngineSetup.load(app) == engine_link.EngineSetup("/opt/engine/bin/python", "/src/inbetweener")
    launcher = tmp_path / "inbetween"
    launcher.write_text(f"#!{sys.executable}\nimport engine\n")
    assert engine_link.guess_engine_python(lambda name: str(launcher)) == sys.executable
    launcher.write_text("#!/usr/bin/env python3\n")
    assert engine_link.guess_engine_python(lambda name: str(launcher)) is None
    assert engine_link.guess_engine_python(lambda name: None) is None
    with pytest.raises(engine_link.EngineSetupError, match="does not exist"):
        engine_link.EngineSetup(str(tmp_path / "nope")).resolved_python()


def test_engine_state_line_names_backends_and_why_not():
    health = {"version": "0.1.0", "device": {"type": "cpu"}, "backends": {
        "rife": {"available": True, "reason": ""},
        "tooncrafter": {"available": False, "reason": "weights not installed"}}}
    assert engine_link.describe_health(health) == (
        "ready (v0.1.0, cpu) · backends: rife · unavailable: tooncrafter: weights not installed"
    )


@pytest.mark.parametrize("qt_version, binding", [("5.15.8", "PyQt5"), ("6.7.2", "PyQt6")])
def test_the_qt_binding_follows_kritas_qt(monkeypatch, qt_version, binding):
    fake = types.ModuleType("krita")
    fake.qVersion = lambda: qt_version
    monkeypatch.setitem(sys.modules, "krita", fake)
    monkeypatch.delitem(sys.modules, "krita_plugin.inbetweener._qt", raising=False)
    try:
        qt = importlib.import_module("krita_plugin.inbetweener._qt")
    except ModuleNotFoundError as exc:  # the PyQt bindings live in Krita's Python, not in this venv
        assert exc.name == binding
    else:
        assert qt.BINDING == binding and qt.QtCore.__name__ == f"{binding}.QtCore"
    finally:
        sys.modules.pop("krita_plugin.inbetweener._qt", None)


def test_an_unknown_qt_is_refused(monkeypatch):
    fake = types.ModuleType("krita")
    fake.qVersion = lambda: "4.8.7"
    monkeypatch.setitem(sys.modules, "krita", fake)
    monkeypatch.delitem(sys.modules, "krita_plugin.inbetweener._qt", raising=False)
    with pytest.raises(ImportError, match="Qt 4.8.7"):
        importlib.import_module("krita_plugin.inbetweener._qt")
    sys.modules.pop("krita_plugin.inbetweener._qt", None)


def test_plugin_imports_only_the_standard_library_qt_krita_and_its_own_modules():
    allowed = set(sys.stdlib_module_names) | {"__future__", "krita", "PyQt5", "PyQt6"}
    for path in PLUGIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed or name == "engine.core", f"{path.name} imports {name}"


def test_importing_the_package_outside_krita_registers_nothing():
    code = "import sys, krita_plugin.inbetweener as p; assert 'krita' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def _builder():
    spec = importlib.util.spec_from_file_location("inbetweener_installer_build", REPO / "installer" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_krita_zip_has_what_kritas_importer_needs_and_runs_on_its_bundled_core(tmp_path):
    build = _builder()
    first = build.build_krita_zip(tmp_path / "a")
    again = build.build_krita_zip(tmp_path / "b")
    assert first.name == f"inbetweener-krita-{build.version()}.zip"
    assert first.read_bytes() == again.read_bytes(), "same sources, same zip"
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "installed")
        desktop = archive.read("inbetweener.desktop").decode()
        action = archive.read("inbetweener.action").decode()
    assert {"inbetweener/", "inbetweener/__init__.py", "inbetweener/engine_core/",
            "inbetweener/engine_core/client.py", "inbetweener/engine_core/planning.py",
            "inbetweener/engine_core/protocol.py", "inbetweener/docker.py", "inbetweener/manual.html"} <= set(names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert "X-KDE-Library=inbetweener" in desktop and "ServiceTypes=Krita/PythonPlugin" in desktop
    assert '<Action name="inbetweener_generate">' in action and "Generate in-betweens" in action
    # the installed copy plans and builds jobs with its own bundled core, no repository on the path
    code = (
        "import sys; sys.path[:] = [p for p in sys.path if p not in ('', {!r})]; sys.path.insert(0, {!r})\n"
        "from inbetweener import _shared, segments\n"
        "assert _shared.client.__name__ == 'inbetweener.engine_core.client'\n"
        "assert 'engine' not in sys.modules\n"
        "print(segments.plan_segments([0, 6], (), segments.Timing(exposure=2))[0].describe())\n"
    ).format(str(REPO), str(tmp_path / "installed"))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "f0 → f6: 2 in-betweens"


SYSTEM_PYTHON = "/usr/bin/python3"
PANEL_SCRIPT = r"""
import sys, time, types
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from PyQt5 import QtCore, QtWidgets
app = QtWidgets.QApplication([])
krita = types.ModuleType("krita")
krita.qVersion = QtCore.qVersion
krita.DockWidget = QtWidgets.QDockWidget
class Krita:
    settings = {}
    def readSetting(self, group, name, default): return self.settings.get((group, name), default)
    def writeSetting(self, group, name, value): self.settings[(group, name)] = value
    def activeDocument(self): return None
krita.Krita = types.SimpleNamespace(instance=Krita)
sys.modules["krita"] = krita
from inbetweener import docker
panel = docker.InbetweenPanel(app=Krita())
def settle(until):
    for _ in range(200):
        app.processEvents()
        if until(): return
        time.sleep(0.02)
panel.refresh()
print("refused:", panel.generate(None), panel.status_label.text())
settle(lambda: "checking" not in panel.engine_label.text())
print("engine:", panel.engine_label.text())
panel.spacing_combo.setCurrentIndex(panel.spacing_combo.findData("custom"))
try:
    panel.timing()
except ValueError as exc:
    print("chart:", exc)
panel.chart_edit.setText("0.2, 0.7")
panel.mode_combo.setCurrentIndex(3)
panel.count_spin.setValue(2)
print("timing:", panel.timing())
panel.python_edit.setText("/nowhere/python")
panel.check_engine(start=True)
settle(lambda: "starting" not in panel.engine_label.text())
print("start:", panel.engine_label.text())
print("saved:", Krita.settings[("inbetweener", "engine_python")])
"""


def _system_pyqt5() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import PyQt5.QtWidgets"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _system_pyqt5(), reason="the docker needs PyQt5 (Krita's binding): apt-get install -y python3-pyqt5")
def test_docker_panel_refuses_reports_the_engine_and_reads_its_timing(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "INBETWEENER_STATE_DIR": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [SYSTEM_PYTHON, "-c", PANEL_SCRIPT, str(REPO / "krita_plugin"), str(REPO)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())
    assert lines["refused"] == "False Open a document first: in-betweens are drawn from its animation timeline"
    assert lines["engine"] == "not running (it starts when you generate, or press Start)"
    assert lines["chart"].startswith("type the timing chart")
    assert lines["timing"] == "Timing(exposure=1, count=2, spacing=(0.2, 0.7))"
    assert lines["start"] == "That Engine Python does not exist: choose the .venv/bin/python of your Inbetweener folder."
    assert lines["saved"] == "/nowhere/python"


# ---- the docker an animator meets (issue #14) ------------------------------------------------------


def drawn(frames) -> dict[int, bytes]:
    """Keyframes with a drawing (any opaque pixel) on the fakes' canvas."""
    return {f: b"\x10\x10\x10\xff" * (W * H) for f in frames}


def test_the_keys_layer_is_the_one_with_most_keyframes_never_a_take_and_picks_are_remembered():
    from krita_plugin.inbetweener import panel_state

    background = FakeNode("Background", animated=False)
    empty = FakeNode("Paint Layer 1", frames={})
    keys = FakeNode("Keys", frames=drawn([0, 8, 16]))
    take = FakeNode(takes.layer_name([(0, 16)], 123), frames=drawn(range(17)))  # just landed, active
    doc = FakeDocument([background, empty, keys, take], active=take)
    layers = document.paint_layers(doc)
    assert panel_state.default_keys_layer(doc, layers, set()) == document.node_uid(keys)
    renamed_take = FakeNode("Arm take", frames=drawn(range(17)))  # the artist renamed a take
    doc2 = FakeDocument([FakeNode("Keys", frames=drawn([0, 8])), renamed_take])
    assert panel_state.default_keys_layer(doc2, document.paint_layers(doc2), {document.node_uid(renamed_take)}) \
        == document.node_uid(doc2.root.children[0])
    new_document = FakeDocument([FakeNode("Background", animated=False), FakeNode("Paint Layer 1", frames={})])
    assert panel_state.default_keys_layer(new_document, document.paint_layers(new_document), set()) is None
    # Picks are remembered per document: in the session, and for saved documents in Krita's settings.
    app = FakeKrita()
    memory = panel_state.LayerMemory(app)
    saved = FakeDocument([FakeNode("Keys")], path="/shots/arm.kra")
    memory.remember(saved, keys="{k}", sketch="{s}")
    memory.remember(doc, keys="{other}")
    assert memory.recall(saved) == {"keys": "{k}", "sketch": "{s}"} and memory.recall(doc) == {"keys": "{other}"}
    assert panel_state.LayerMemory(app).recall(saved) == {"keys": "{k}", "sketch": "{s}"}  # after a restart
    assert panel_state.LayerMemory(app).recall(doc) == {}  # an unsaved document's picks end with the session


def test_a_regenerated_take_gets_the_next_take_number():
    base = takes.layer_name([(0, 8)], 123)
    assert takes.unique_layer_name(base, ["Keys"]) == base
    assert takes.unique_layer_name(base, ["Keys", base]) == f"{base} take 2"
    assert takes.unique_layer_name(base, [base, f"{base} take 2", f"{base} take 5"]) == f"{base} take 6"
    assert takes.unique_layer_name(base, [f"{base}0 seed"]) == base  # another take's name is not this one


def test_draw_settings_carry_runtime_detail_and_palette_from_the_vocabulary():
    from engine.api import GenerationSettings
    from engine.core import frontends, vocabulary

    settings = generation.DrawSettings(backend="tooncrafter", runtime="onnx", restore_detail="on", keep_palette="off")
    GenerationSettings(**asdict_settings(settings))
    with pytest.raises(ValueError, match="runtime must be one of auto, torch, onnx"):
        generation.DrawSettings(runtime="tensorrt")
    assert generation.BACKENDS == vocabulary.BACKENDS
    assert not frontends.setting_applies("runtime", "rife") and frontends.setting_applies("keep_palette", "rife")
    text = frontends.explain_engine_problem("the engine did not start (looked in /usr/lib/python3/dist-packages)\n"
                                            "/usr/bin/python3: No module named engine")
    assert text == ("This Python has no Inbetweener engine installed: choose the .venv/bin/python of your "
                    "Inbetweener folder (or the folder's engine Python on Windows: .venv\\Scripts\\python.exe).")


def asdict_settings(settings) -> dict:
    from dataclasses import asdict

    return asdict(settings)


DOCKER_SCRIPT = r"""
import json, sys, time, types
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from PyQt5 import QtCore, QtGui, QtWidgets
app = QtWidgets.QApplication([])
app.setStyle("Fusion")
krita = types.ModuleType("krita")
krita.qVersion = QtCore.qVersion
krita.DockWidget = QtWidgets.QDockWidget
from tests.krita_fakes import FakeDocument, FakeKrita, FakeNode, W, H
app_krita = FakeKrita()
krita.Krita = types.SimpleNamespace(instance=lambda: app_krita)
sys.modules["krita"] = krita
from inbetweener import docker, takes, document
out = {}
def settle(seconds=0.3):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
def drawn(frames):
    return {f: bytes([16, 16, 16, 255]) * (W * H) for f in frames}

dock = docker.InbetweenDocker()
dock.resize(int(sys.argv[3]), 700)
dock.show()
settle()
panel = dock.panel
scroll = dock.widget()
out["panel_width"] = panel.width()
out["viewport_width"] = scroll.viewport().width()
out["min_width"] = panel.minimumSizeHint().width()
clipped = []
for w in panel.findChildren(QtWidgets.QWidget):
    if not w.isVisibleTo(panel) or isinstance(w, (QtWidgets.QScrollBar,)) or w.parent() is None:
        continue
    if w.window() is not panel.window() or isinstance(w.parent(), (QtWidgets.QComboBox, QtWidgets.QAbstractSpinBox)):
        continue
    right = w.mapTo(panel, QtCore.QPoint(w.width(), 0)).x()
    if right > scroll.viewport().width() + 1:
        clipped.append(f"{type(w).__name__}:{w.objectName() or getattr(w, 'text', lambda: '')()}:{right}")
out["clipped"] = clipped
out["unreadable_labels"] = [w.text() for w in panel.findChildren(QtWidgets.QLabel)
                            if w.isVisibleTo(panel) and w.text() and w.width() < min(w.sizeHint().width(), 40)]
out["hscroll"] = scroll.horizontalScrollBar().isVisible()

# The wheel scrolls the docker, not the seed; a focused spin box still takes it.
seed = panel.seed_spin.value()
bar = scroll.verticalScrollBar()
bar.setValue(0)
pos = QtCore.QPointF(5, 5)
def wheel(widget):
    event = QtGui.QWheelEvent(pos, QtCore.QPointF(widget.mapToGlobal(pos.toPoint())), QtCore.QPoint(0, 0),
                              QtCore.QPoint(0, -120), QtCore.Qt.NoButton, QtCore.Qt.NoModifier,
                              QtCore.Qt.NoScrollPhase, False)
    app.sendEvent(widget, event)
    settle(0.05)
wheel(panel.seed_spin)
out["seed_after_wheel"] = panel.seed_spin.value() == seed
out["scrolled"] = bar.value() > 0 or bar.maximum() == 0
panel.seed_spin.setFocus()
settle(0.1)
wheel(panel.seed_spin)
out["focused_wheel_changes"] = panel.seed_spin.value() != seed

# Documents: the keys layer follows the artist, status belongs to its document, takes follow layers.
keys = FakeNode("Keys", frames=drawn([0, 8, 16]))
take = FakeNode(takes.layer_name([(0, 16)], 123), frames=drawn(range(17)))
scene = FakeDocument([FakeNode("Background", animated=False), keys, take], active=take, path="/shots/a.kra")
takes.record_take(scene, {"layer_uid": document.node_uid(take), "layer_name": take.name()})
app_krita.active = scene
panel.follow_document()
out["keys_choice"] = panel.key_combo.currentText()
out["takes"] = panel.takes_combo.count()
panel._fail("Cancelled: nothing was added to the document.")
scene.root.children.remove(take)  # Ctrl+Z of the take
panel.follow_document()
out["takes_after_undo"] = panel.takes_combo.count()
out["status_same_document"] = panel.status_label.text()
fresh = FakeDocument([FakeNode("Background", animated=False), FakeNode("Paint Layer 1", frames={})])
app_krita.active = fresh
panel.follow_document()
out["status_new_document"] = panel.status_label.text()
out["keys_choice_new_document"] = panel.key_combo.currentText()
fresh.root.children[1].frames.update(drawn([0, 6]))  # the artist draws keys in the new document
panel.refresh()
out["keys_choice_after_drawing"] = panel.key_combo.currentText()
app_krita.active = scene
panel.follow_document()
panel.select_layers(panel.key_combo.itemData(panel.key_combo.findText("Background")))
app_krita.active = fresh
panel.follow_document()
app_krita.active = scene
panel.follow_document()
out["remembered"] = panel.key_combo.currentText()

# Engine status wraps instead of being cut off; settings follow the engine.
for _ in range(200):
    if "checking" not in panel.engine_label.text():
        break
    settle(0.05)
out["scroll_range"] = bar.maximum()
panel._engine_state(docker._engine_problem(docker.engine_client.EngineUnavailable(
    "the engine did not start (looked in /usr/lib/python3/dist-packages/very/long/path)\n"
    "/usr/bin/python3: No module named engine"), True))
settle(0.1)
out["engine_text"] = panel.engine_label.text()
out["engine_fits"] = panel.engine_label.mapTo(panel, QtCore.QPoint(panel.engine_label.width(), 0)).x() <= scroll.viewport().width() + 1
out["engine_wraps"] = panel.engine_label.wordWrap()
panel.backend_combo.setCurrentIndex(panel.backend_combo.findData("rife"))
out["runtime_enabled_rife"] = panel.choice_combos["runtime"].isEnabled()
out["palette_enabled_rife"] = panel.choice_combos["keep_palette"].isEnabled()
panel.backend_combo.setCurrentIndex(panel.backend_combo.findData("tooncrafter"))
panel.choice_combos["runtime"].setCurrentIndex(panel.choice_combos["runtime"].findData("onnx"))
out["settings"] = {k: v for k, v in panel.draw_settings().__dict__.items() if k in ("runtime", "restore_detail", "keep_palette")}
out["labels"] = [panel.choice_combos[k].parentWidget() is not None for k in panel.choice_combos]
if len(sys.argv) > 4:
    dock.grab().save(sys.argv[4])
print(json.dumps(out))
"""


@pytest.mark.skipif(not _system_pyqt5(), reason="the docker needs PyQt5 (Krita's binding): apt-get install -y python3-pyqt5")
def test_docker_fits_a_narrow_dock_scrolls_and_follows_documents_and_layers(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "INBETWEENER_STATE_DIR": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [SYSTEM_PYTHON, "-c", DOCKER_SCRIPT, str(REPO / "krita_plugin"), str(REPO), "250"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    # 9. Nothing cut off at a narrow dock width, no sideways scrolling.
    assert found["min_width"] <= found["viewport_width"], found
    assert found["clipped"] == [] and not found["hscroll"], found
    assert found["unreadable_labels"] == [], found
    # 10. The wheel scrolls the docker; the seed changes only when its box has the focus.
    assert found["seed_after_wheel"], found
    assert found["scrolled"] and found["scroll_range"] > 0, found
    assert found["focused_wheel_changes"], found
    # 11. The keys layer: most keyframes, never the take that just landed; a new document offers no
    # empty layer, then the layer the artist drew on; a pick is remembered per document.
    assert found["keys_choice"] == "Keys"
    assert found["keys_choice_new_document"] == ""
    assert found["keys_choice_after_drawing"] == "Paint Layer 1"
    assert found["remembered"] == "Background"
    # 12. The takes list follows the document's layers (Ctrl+Z of a take removes it from the list).
    assert found["takes"] == 1 and found["takes_after_undo"] == 0
    # 14. A status belongs to its document.
    assert found["status_same_document"].startswith("Cancelled") and found["status_new_document"] == ""
    # 13. Animator words, wrapped, never cut off.
    assert found["engine_text"].startswith("This Python has no Inbetweener engine installed: choose the .venv/bin/python")
    assert found["engine_fits"] and found["engine_wraps"]
    # Runtime, detail and palette: from the vocabulary, greyed where the engine ignores them.
    assert not found["runtime_enabled_rife"] and found["palette_enabled_rife"]
    assert found["settings"] == {"runtime": "onnx", "restore_detail": "auto", "keep_palette": "auto"}
