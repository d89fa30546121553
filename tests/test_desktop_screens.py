"""The studio in a real X window (Xvfb): the scripted tour runs start to end and its screenshots
show the main states. Skips when Xvfb is not installed (`apt-get install -y xvfb`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tour_under_xvfb_saves_the_main_states(tmp_path):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (apt-get install -y xvfb)")
    if not (REPO / "samples" / "arm_swing" / "key_a.png").exists():
        pytest.skip("the sample keyframes are not drawn yet (tools/draw_sample_keyframes.py)")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["QT_QPA_PLATFORM"] = "xcb"
    env["INBETWEENER_STATE_DIR"] = str(tmp_path / "state")
    result = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", "desktop.tour",
         "--out", str(tmp_path / "shots")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    from desktop.tour import SHOTS

    images = {name: np.asarray(Image.open(tmp_path / "shots" / name).convert("RGB")) for name in SHOTS}
    for name, image in images.items():
        assert image.shape[0] > 600 and image.shape[1] > 1000, name
    # The states differ where they should: empty vs loaded canvas, the generated in-betweens, the
    # onion skin, and the hand-corrected in-between.
    empty, sketch, results = images["desktop_empty.png"], images["desktop_sketch.png"], images["desktop_results.png"]
    onion, cleaned = images["desktop_onion.png"], images["desktop_cleanup.png"]
    assert np.abs(empty.astype(int) - sketch.astype(int)).mean() > 5
    assert np.abs(sketch.astype(int) - results.astype(int)).mean() > 2
    assert np.abs(onion.astype(int) - results.astype(int)).mean() > 1
    assert np.abs(cleaned.astype(int) - onion.astype(int)).mean() > 1
