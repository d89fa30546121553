"""The desktop bundle: built by PyInstaller from a clean copy of the checkout, then run from elsewhere
(another HOME and working folder, the source copy deleted) as an artist would run it: the app
generates two sample keys through its bundled engine and exports PNG + PSD, and the bundled
engine serves the Krita plugin. Slow (one PyInstaller build, several minutes) but run in CI."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.core.client import start_local_server
from engine.imaging import read_image

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "arm_swing"



def test_spec_names_both_launchers_and_the_engine_launcher_accepts_python_style_arguments():
    spec = (REPO / "installer" / "inbetweener.spec").read_text()
    compile(spec, "inbetweener.spec", "exec")
    assert 'STUDIO, ENGINE = "inbetween_studio", "inbetween"' in spec
    for launcher in ("inbetween.py", "inbetween_studio.py"):
        assert (REPO / "installer" / "launchers" / launcher).exists()
    # front ends start the engine as `<python> -m engine serve`; the bundled executable accepts that form
    out = subprocess.run(
        [sys.executable, str(REPO / "installer" / "launchers" / "inbetween.py"), "-m", "engine", "serve", "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "usage: inbetween serve" in out.stdout


def _build_module():
    spec = importlib.util.spec_from_file_location("inbetweener_installer_build", REPO / "installer" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    pytest.importorskip("PyInstaller")
    root = tmp_path_factory.mktemp("bundle")
    source = root / "checkout"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, tracked):
        src = REPO / name.decode()
        if src.is_file():
            dst = source / name.decode()
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    build = subprocess.run(
        [sys.executable, str(source / "installer" / "build.py"), "bundle", "--out", str(root / "dist")],
        cwd=source, capture_output=True, text=True, timeout=3600,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    assert "MiB; biggest parts:" in build.stdout
    shutil.rmtree(source)  # the bundle must not need the checkout it was built from
    return root / "dist" / "inbetweener"


def _elsewhere(tmp_path: Path) -> tuple[dict, Path]:
    home, cwd = tmp_path / "artist_home", tmp_path / "somewhere_else"
    home.mkdir()
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "INBETWEENER_"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local/share"), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_RUNTIME_DIR=str(home / "run"), QT_QPA_PLATFORM="offscreen", PATH="/usr/bin:/bin")
    return env, cwd


@pytest.mark.slow
def test_bundle_leaves_out_what_the_app_never_uses(bundle):
    internal = bundle / "_internal"
    assert (bundle / "inbetween").is_file() and (bundle / "inbetween-studio").is_file()
    for unused in ("torch/test", "torch/include", "ray", "pyarrow", "pandas", "pytest", "PyQt5", "av"):
        assert not (internal / unused).exists(), unused
    assert [p.name for p in (internal / "torch" / "bin").iterdir()] == ["torch_shm_manager"]  # needed by import torch
    total, parts = _build_module().bundle_sizes(bundle)
    assert parts[0][1] == "torch" and total > parts[0][0]


@pytest.mark.slow
def test_bundled_app_generates_and_exports_from_another_home(bundle, tmp_path):
    env, cwd = _elsewhere(tmp_path)
    keys = [tmp_path / "key_a.png", tmp_path / "key_b.png"]
    shutil.copy(SAMPLES / "key_a.png", keys[0])
    shutil.copy(SAMPLES / "key_b.png", keys[1])
    out = tmp_path / "export"
    run = subprocess.run([str(bundle / "inbetween-studio"), *map(str, keys), "--self-check", str(out)],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "self-check: exported" in run.stderr
    frames = sorted(out.glob("self_check_*.png"))
    assert len(frames) == 9  # two keys and seven in-betweens
    first, last = read_image(frames[0]), read_image(frames[-1])
    assert np.array_equal(first, read_image(keys[0])) and np.array_equal(last, read_image(keys[1]))
    middle = read_image(frames[4])
    assert not np.array_equal(middle, first) and not np.array_equal(middle, last)
    from psd_tools import PSDImage

    psd = PSDImage.open(out / "self_check.psd")
    names = [layer.name for layer in psd]
    assert len(names) == 9 and names[0].endswith("key") and names[-1].endswith("key")
    assert not (cwd / "inbetweens").exists() and not list(cwd.iterdir())  # nothing written where it was started


@pytest.mark.slow
def test_bundled_engine_serves_the_krita_plugin(bundle, tmp_path):
    env, cwd = _elsewhere(tmp_path)
    server = start_local_server(str(bundle / "inbetween"), state_dir=tmp_path / "engine_state", env=env)
    try:
        health = server.client().health()
    finally:
        server.stop()
    assert health["backends"]["rife"]["available"]
    assert any(info["available"] for name, info in health["backends"].items() if name != "tooncrafter")
    version = subprocess.run([str(bundle / "inbetween"), "--version"], cwd=cwd, env=env, capture_output=True, text=True)
    assert version.stdout.startswith("inbetween ")
