"""The committed sample keyframes: present, RGBA, cel-like, and exactly what the drawing script makes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "draw_sample_keyframes.py"

EXPECTED = {  # path under samples/ -> (width, height)
    "arm_swing/key_a.png": (512, 320),
    "arm_swing/key_b.png": (512, 320),
    "bouncing_ball_alpha/key_a.png": (384, 384),
    "bouncing_ball_alpha/key_b.png": (384, 384),
    "three_keys/key_0.png": (640, 360),
    "three_keys/key_1.png": (640, 360),
    "three_keys/key_2.png": (640, 360),
    "sketches/arm_swing_middle.png": (512, 320),
}
OPAQUE = ["arm_swing/key_a.png", "arm_swing/key_b.png", "three_keys/key_0.png", "three_keys/key_1.png",
          "three_keys/key_2.png", "sketches/arm_swing_middle.png"]
ALPHA_PAIR = ["bouncing_ball_alpha/key_a.png", "bouncing_ball_alpha/key_b.png"]


def load(samples_dir: Path, name: str) -> np.ndarray:
    with Image.open(samples_dir / name) as im:
        assert im.mode == "RGBA", f"{name} is {im.mode}, expected RGBA"
        return np.asarray(im)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_exists_with_its_size_as_rgba(samples_dir, name):
    image = load(samples_dir, name)
    assert image.dtype == np.uint8
    assert (image.shape[1], image.shape[0]) == EXPECTED[name]


def test_samples_stay_small_and_documented(samples_dir):
    pngs = sorted(p.relative_to(samples_dir).as_posix() for p in samples_dir.rglob("*.png"))
    assert pngs == sorted(EXPECTED)
    assert sum((samples_dir / p).stat().st_size for p in pngs) < 1_500_000
    readme = (samples_dir / "README.md").read_text(encoding="utf-8")
    assert "tools/draw_sample_keyframes.py" in readme and "licence" in readme


@pytest.mark.parametrize("name", OPAQUE)
def test_opaque_samples_have_no_transparency(samples_dir, name):
    assert (load(samples_dir, name)[..., 3] == 255).all()


@pytest.mark.parametrize("name", ALPHA_PAIR)
def test_alpha_pair_is_transparent_around_an_antialiased_outline(samples_dir, name):
    image = load(samples_dir, name)
    alpha = image[..., 3]
    assert (alpha[[0, 0, -1, -1], [0, -1, 0, -1]] == 0).all(), "corners must be transparent"
    assert (alpha == 0).mean() > 0.6 and (alpha == 255).sum() > 4000
    opaque = alpha == 255
    near_opaque = np.zeros_like(opaque)
    near_opaque[1:, :] |= opaque[:-1, :]
    near_opaque[:-1, :] |= opaque[1:, :]
    near_opaque[:, 1:] |= opaque[:, :-1]
    near_opaque[:, :-1] |= opaque[:, 1:]
    edge = near_opaque & (alpha > 0) & (alpha < 255)
    assert edge.sum() > 150, "the outline must fade out over partially transparent pixels"
    assert np.median(luminance(image[edge])) < 90, "edge pixels must carry the dark outline colour"
    assert not (image[alpha == 0][:, :3]).any(), "fully transparent pixels are stored as zeros"


def test_cel_style_flat_fills_and_dark_outlines(samples_dir):
    for name in ["arm_swing/key_a.png", "three_keys/key_1.png"]:
        image = load(samples_dir, name)
        _, counts = np.unique(np.ascontiguousarray(image).view(np.uint32), return_counts=True)
        top = np.sort(counts)[::-1][:16].sum() / counts.sum()
        assert top > 0.9, f"{name}: flat fills should cover most of the picture ({top:.2f})"
        assert (luminance(image) < 70).sum() > 1000, f"{name}: dark outlines expected"


def test_keys_of_a_pair_show_a_real_motion(samples_dir):
    for a, b in [("arm_swing/key_a.png", "arm_swing/key_b.png"), ALPHA_PAIR,
                 ("three_keys/key_0.png", "three_keys/key_1.png"), ("three_keys/key_1.png", "three_keys/key_2.png")]:
        changed = (load(samples_dir, a) != load(samples_dir, b)).any(axis=-1).mean()
        assert 0.01 < changed < 0.5, f"{a} -> {b} changes {changed:.1%} of the pixels"


def test_sketch_is_dark_lines_on_white(samples_dir):
    sketch = load(samples_dir, "sketches/arm_swing_middle.png")
    lum = luminance(sketch)
    assert (lum > 245).mean() > 0.85
    assert (lum < 120).sum() > 1500


def test_drawing_script_reproduces_the_committed_samples(samples_dir, tmp_path, monkeypatch, capsys):
    """Re-drawing into a temporary folder gives the committed files pixel for pixel.

    Pixels, not bytes, are compared: PNG compression may differ between zlib builds.
    """
    spec = importlib.util.spec_from_file_location("draw_sample_keyframes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path)]) == 0
    drawn = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert [p for p in drawn if p.endswith(".png")] == sorted(EXPECTED)
    assert not [p for p in drawn if Path(p).name.startswith(".")], "no temporary files left behind"
    for name in EXPECTED:
        assert np.array_equal(load(tmp_path, name), load(samples_dir, name)), f"{name} differs from the drawing"
