"""Which backend runs: the registry, `auto`'s order, and which backends follow sketches."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine import backends
from engine.api import EngineError, GenerationSettings, Keyframe
from engine.cli import main
from engine.core import frontends, vocabulary
from engine.pipeline import build_request, generate
from tools import synthetic_cel


def test_every_backend_in_the_vocabulary_is_registered_and_vice_versa():
    assert set(backends.BACKEND_MODULES) == set(vocabulary.BACKENDS) - {"auto"}
    assert set(backends.AUTO_ORDER) == set(backends.BACKEND_MODULES)
    assert set(vocabulary.SKETCH_BACKENDS) <= set(backends.BACKEND_MODULES)
    assert set(vocabulary.CLASSICAL_BACKENDS) <= set(backends.BACKEND_MODULES)


def _only(monkeypatch, available: set[str]) -> None:
    real = backends.availability

    def fake(name, settings=None):
        return real(name, settings) if name in available else (False, f"{name} switched off for this test")

    monkeypatch.setattr(backends, "availability", fake)


def test_auto_prefers_tooncrafter_then_the_cel_in_betweener_then_rife(monkeypatch):
    assert backends.AUTO_ORDER == ("tooncrafter", "cel", "rife")
    auto = GenerationSettings(backend="auto")
    _only(monkeypatch, {"cel", "rife"})
    assert backends.resolve_backend_name(auto) == "cel"
    _only(monkeypatch, {"rife"})
    assert backends.resolve_backend_name(auto) == "rife"
    _only(monkeypatch, set())
    with pytest.raises(EngineError, match="cel: cel switched off"):
        backends.resolve_backend_name(auto)


def test_rife_stays_selectable(monkeypatch):
    assert backends.resolve_backend_name(GenerationSettings(backend="rife")) == "rife"
    assert backends.availability("cel") == (True, "")


def test_settings_that_apply_to_each_backend():
    for field in ("motion", "seed", "steps", "cfg_scale", "runtime"):
        assert not frontends.setting_applies(field, "cel") and frontends.setting_applies(field, "tooncrafter")
    assert frontends.setting_applies("keep_palette", "cel")
    assert "sketches pose" in frontends.backend_note("cel")
    assert "sketches do not apply" in frontends.backend_note("rife")
    assert frontends.backend_note("tooncrafter") == ""
    health = {"default_backend": "cel"}
    assert frontends.reads_sketches("auto", health) and frontends.reads_sketches("cel", {})
    assert not frontends.reads_sketches("auto", {"default_backend": "rife"}) and not frontends.reads_sketches("rife", health)


def _leap_keys(tmp_path):
    """Keys 0 and 8 of the synthetic leap (the figure travels more than twice its width)."""
    scene = synthetic_cel.build("leap")
    paths = []
    for name, tau in (("key_a.png", 0.0), ("key_b.png", 1.0)):
        path = tmp_path / name
        Image.fromarray(synthetic_cel.render(scene, tau).image).save(path)
        paths.append(path)
    return scene, paths


def test_sketches_are_accepted_by_the_cel_backend_and_refused_by_rife(tmp_path):
    scene, (a, b) = _leap_keys(tmp_path)
    keys = [Keyframe(0, np.array(Image.open(a).convert("RGBA")), "a"), Keyframe(8, np.array(Image.open(b).convert("RGBA")), "b")]
    sketch = np.zeros((320, 512, 4), np.uint8)
    sketch[150:160, 200:300] = (40, 40, 40, 255)
    with pytest.raises(EngineError, match="sketch guidance needs the cel or tooncrafter backend, but rife would run"):
        generate(build_request(keys, sketches={4: sketch}, count=7, settings=GenerationSettings(backend="rife")))
    result = generate(build_request(keys, sketches={4: sketch}, count=7, settings=GenerationSettings(backend="cel")))
    assert result.provenance["backend"] == "cel" and len(result.frames) == 9


def test_cli_cel_backend_draws_the_leap_where_the_rig_puts_it(tmp_path, capsys):
    scene, (a, b) = _leap_keys(tmp_path)
    out = tmp_path / "leap"
    code = main([str(a), str(b), "--count", "7", "--backend", "cel", "--out", str(out), "--name", "leap"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "drawn by the cel backend" in err
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"leap_{i:04d}.png" for i in range(1, 10)]
    assert np.array_equal(np.array(Image.open(out / "leap_0001.png").convert("RGB")), np.array(Image.open(a).convert("RGB")))
    truth = synthetic_cel.render(scene, 0.5)
    middle = np.array(Image.open(out / "leap_0005.png").convert("RGB")).astype(np.float64)
    drawn = np.sqrt(((middle - truth.plate.astype(np.float64)) ** 2).sum(-1)) > 20
    # carried, not faded at both ends: one figure's worth of pixels, halfway along the jump (its
    # height is not in the keys, so only the horizontal position is checked)
    assert 0.6 * truth.mask.sum() < drawn.sum() < 1.4 * truth.mask.sum(), "the figure vanished or doubled mid-leap"
    assert abs(np.nonzero(drawn)[1].mean() - np.nonzero(truth.mask)[1].mean()) < 30


def test_cli_cel_backend_takes_a_sketch(tmp_path, capsys):
    scene, (a, b) = _leap_keys(tmp_path)
    sketch = np.full((320, 512, 4), 255, np.uint8)
    sketch[..., 3] = 0
    sketch[120:124, 220:300] = (30, 30, 30, 255)
    path = tmp_path / "rough.png"
    Image.fromarray(sketch).save(path)
    code = main([str(a), str(b), "--count", "7", "--backend", "cel", "--sketch", f"4={path}", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "drawn by the cel backend" in err
