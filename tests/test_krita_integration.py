"""The plugin in real Krita: the built zip installed into a clean profile by Krita's own importer,
loaded by Krita's plugin manager, generating against a real engine (rife backend) that the plugin
starts itself, under Xvfb.

Needs Debian's `krita` (5.1, PyQt5) and `xvfb` (apt-get install -y krita python3-pyqt5 xvfb); skipped
with that reason where Krita is not installed. The Krita side is tests/test_krita_driver.py, started
by a small driver plugin this test puts into the same temporary profile.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_krita_driver import HEIGHT, WIDTH

REPO = Path(__file__).resolve().parents[1]


def _load_builder():
    spec = importlib.util.spec_from_file_location("inbetweener_installer_build", REPO / "installer" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_builder()

KRITA = shutil.which("krita")
XVFB_RUN = shutil.which("xvfb-run")
INSTALL_HINT = "apt-get install -y krita python3-pyqt5 xvfb"

pytestmark = [
    pytest.mark.krita,
    pytest.mark.slow,
    pytest.mark.skipif(
        KRITA is None or XVFB_RUN is None, reason=f"real Krita under Xvfb is not installed ({INSTALL_HINT})"
    ),
]


def krita_pykrita_dir() -> Path:
    """Krita's bundled Python plugins (its own plugin importer lives there)."""
    prefix = Path(KRITA).resolve().parents[1]
    for candidate in (prefix / "share" / "krita" / "pykrita", Path("/usr/share/krita/pykrita")):
        if (candidate / "plugin_importer" / "plugin_importer.py").exists():
            return candidate
    pytest.skip("Krita's plugin_importer.py was not found next to the krita executable")


def install_with_krita_importer(zip_path: Path, resources: Path) -> list[dict]:
    """Install the zip exactly as Tools › Scripts › Import Python Plugin from File does."""
    source = krita_pykrita_dir() / "plugin_importer" / "plugin_importer.py"
    spec = importlib.util.spec_from_file_location("krita_plugin_importer", source)
    module = importlib.util.module_from_spec(spec)
    module.i18n = str  # Krita's Python provides i18n() as a builtin; its messages stay English here
    spec.loader.exec_module(module)
    resources.mkdir(parents=True, exist_ok=True)
    return module.PluginImporter(str(zip_path), str(resources), lambda plugin: True).import_all()


DRIVER_DESKTOP = """[Desktop Entry]
Type=Service
ServiceTypes=Krita/PythonPlugin
X-KDE-Library=inbetweener_test_driver
X-Python-2-Compatible=false
Name=Inbetweener test driver
Comment=Runs tests/test_krita_driver.py once Krita's window is up
"""

DRIVER_INIT = """import os, sys
sys.path.insert(0, os.environ["INBETWEENER_KRITA_TEST_DIR"])
import test_krita_driver
test_krita_driver.schedule(os.environ["INBETWEENER_KRITA_TEST_ENTRY"])
"""


def install_driver(pykrita: Path) -> None:
    (pykrita / "inbetweener_test_driver").mkdir()
    (pykrita / "inbetweener_test_driver" / "__init__.py").write_text(DRIVER_INIT, encoding="utf-8")
    (pykrita / "inbetweener_test_driver.desktop").write_text(DRIVER_DESKTOP, encoding="utf-8")


def run_in_krita(tmp_path: Path, function: str, extra: dict | None = None, timeout: int = 500,
                 screen: str = "1600x1000x24") -> dict:
    """Clean profile + installed zip + driver plugin + one Krita run; the driver's result."""
    config_home, data_home = tmp_path / "config", tmp_path / "data"
    config_home.mkdir()
    zip_path = build.build_krita_zip(tmp_path / "dist")
    imported = install_with_krita_importer(zip_path, data_home / "krita")
    assert [p["name"] for p in imported] == ["inbetweener"]
    install_driver(data_home / "krita" / "pykrita")
    # Krita loads a Python plugin only when it is enabled in kritarc.
    (config_home / "kritarc").write_text(
        "[python]\nenable_inbetweener=true\nenable_inbetweener_test_driver=true\n", encoding="utf-8"
    )
    work = tmp_path / "work"
    work.mkdir()
    config = {
        "workdir": str(work),
        "result": str(tmp_path / "result.json"),
        "engine_python": sys.executable,
        "engine_root": str(REPO),
        "timeout": timeout - 120,
        **(extra or {}),
    }
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(config_home),
        "XDG_DATA_HOME": str(data_home),
        "INBETWEENER_KRITA_TEST_DIR": str(REPO / "tests"),
        "INBETWEENER_KRITA_TEST_ENTRY": function,
        "INBETWEENER_KRITA_TEST": str(tmp_path / "config.json"),
        "INBETWEENER_STATE_DIR": str(tmp_path / "state"),
    }
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    log = tmp_path / "krita.log"
    with open(log, "wb") as fh:
        krita = subprocess.Popen(
            [XVFB_RUN, "-a", "-s", f"-screen 0 {screen}", KRITA, "--nosplash"],
            env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        )
        try:
            krita.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(krita.pid, signal.SIGKILL)  # Krita, Xvfb and xvfb-run: their own session
            krita.wait()
    result_path = Path(config["result"])
    if not result_path.exists():
        pytest.fail(f"Krita wrote no result; its log ends with:\n{log.read_text(errors='replace')[-3000:]}")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    assert result.get("finished"), f"Krita stopped after {result.get('steps')}:\n" + log.read_text(errors="replace")[-2000:]
    assert "error" not in result, result["error"] + "\n" + log.read_text(errors="replace")[-2000:]
    result["_work"] = work
    return result


def layer_rgba(path: Path) -> np.ndarray:
    """BGRA bytes dumped by the driver as an RGBA array."""
    bgra = np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(HEIGHT, WIDTH, 4)
    return bgra[..., [2, 1, 0, 3]]


def test_plugin_zip_generates_a_take_in_real_krita(tmp_path):
    result = run_in_krita(tmp_path, "integration")
    work = result["_work"]

    # the zip installed into the clean profile is what Krita loaded, with its bundled engine core
    assert str(tmp_path / "data" / "krita" / "pykrita" / "inbetweener") in result["plugin_file"]
    assert result["bundled_core"] == "inbetweener.engine_core.client"
    assert result["extension_registered"] and result["action_text"] == "Generate in-betweens"
    assert result["docker_found"]
    # at Krita's default dock width nothing in the docker is cut off and it never scrolls sideways
    layout = result["docker_layout"]
    assert layout["cut_off"] == [] and not layout["sideways_scroll"] and layout["unreadable_labels"] == [], layout
    assert layout["panel_min_width"] <= layout["visible_width"], layout
    assert result["key_layer_keyframes"] == [0, 12]
    assert result["segments_listed"] == ["f0 → f12: 11 in-betweens"]

    # generated on twos through the docker, the engine started by the plugin itself
    assert result["generate_started"] and result["finished_in_time"], result["status_text"]
    assert result["failed"] == [], result["failed"]
    name = "[In-betweens] f0–f12 seed 7"
    assert result["landed"] == [name]
    assert result["engine_started_by_plugin"]
    assert result["saved_engine_python"] == sys.executable  # the docker's setting persists in Krita's config
    assert result["layers_after"] == result["layers_before"] + [name]
    assert result["new_layer_on_top"]
    # keys copied at 0 and 12, drawings every second frame (holds are real holds), empty after the last key
    assert result["new_layer_keyframes"] == [0, 2, 4, 6, 8, 10, 12, 14]

    # the landed take (the active layer now) never becomes the keys layer choice
    assert result["keys_choice_after_take"] == "Keys"

    # one undo removes the take (and the docker's list follows), redo brings it back
    assert result["layers_after_one_undo"] == result["layers_before"]
    assert result["takes_listed_after_undo"] == []
    assert result["layers_after_redo"] == result["layers_after"]

    # the take can be regenerated from what the document remembers, whatever the form shows meanwhile
    assert result["takes_listed"] == [name]
    assert result["regenerated"] == [f"{name} take 2"]  # a second take never repeats the first one's name
    assert result["regenerate_form"] == {"seed": 7, "drawings": "on twos", "backend": "rife", "ticked": [[0, 12]]}
    assert result["regenerated_keyframes"] == [0, 2, 4, 6, 8, 10, 12, 14]

    # pixels: the take shows exactly the engine's PNGs and the artist's keys, per layer
    take = result["takes"][-1]
    assert take["layer_name"] == name and take["segments"] == [[0, 12]]
    assert take["timing"] == {"exposure": 2, "count": None, "spacing": "linear"}
    assert take["settings"]["backend"] == "rife" and take["settings"]["seed"] == 7
    assert take["keyframes"] == [0, 2, 4, 6, 8, 10, 12, 14]
    frames_folder = Path(take["frames_folder"])
    assert frames_folder.parent == work / "scene_inbetweens"
    dumps = work / "layer_pixels"
    for t in (0, 12):
        np.testing.assert_array_equal(layer_rgba(dumps / f"take_{t:03d}.bgra"), layer_rgba(dumps / f"keys_{t:03d}.bgra"))
    previous_x = None
    for t in (2, 4, 6, 8, 10):
        png = np.asarray(Image.open(frames_folder / f"frame_{t:05d}.png").convert("RGBA"))
        got = layer_rgba(dumps / f"take_{t:03d}.bgra")
        np.testing.assert_array_equal(got, png)
        # the disk travels left to right between the keys
        ys, xs = np.nonzero(got[..., 3] > 128)
        assert len(xs) > 100
        x = xs.mean()
        assert 20 < x < 76 and (previous_x is None or x > previous_x)
        previous_x = x
    assert not layer_rgba(dumps / "take_014.bgra")[..., 3].any()
    np.testing.assert_array_equal(layer_rgba(dumps / "regenerated_006.bgra"), layer_rgba(dumps / "take_006.bgra"))

    # both takes are remembered inside the saved .kra
    assert [t["layer_name"] for t in result["reopened_takes"]] == [name, f"{name} take 2"]
    assert result["reopened_layer_keyframes"] == [0, 2, 4, 6, 8, 10, 12, 14]
    assert result["reopened_layer_uid"] in {t["layer_uid"] for t in result["reopened_takes"]}

    # refusals with clear messages
    assert "GRAYA" in result["refusals"]["gray_document"] and "8-bit RGBA" in result["refusals"]["gray_document"]
    assert "single keyframe (f12)" in result["refusals"]["single_key"]
    # a status belongs to its document; a new document offers no empty keys layer
    assert result["status_on_new_document"] == ""
    assert result["keys_choice_on_new_document"] == ""

    # the engine the plugin started stopped with Krita
    pid = result["engine_pid"]
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True
    return state != "Z"


def retake_screenshot(image: Path) -> None:
    """Retake docs/screenshots/krita_docker.png in real Krita (the docker at Krita's default width):
    python -m tests.test_krita_integration docs/screenshots/krita_docker.png"""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = run_in_krita(Path(tmp), "screenshot", {"image": str(image.resolve())}, screen="1600x1200x24")
    print(result["steps"], result.get("docker_layout"), result.get("error", ""))


if __name__ == "__main__":
    retake_screenshot(Path(sys.argv[1]))
