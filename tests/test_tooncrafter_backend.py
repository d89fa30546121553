"""The ToonCrafter backend end to end on the tiny golden model (its canvas is 128×64, 6 frames a
pass), plus the canvas fitting and transparency keying it relies on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.api import Cancelled, CancelToken, EngineError, GenerationSettings, InbetweenTask
from engine.backends.tooncrafter import ToonCrafterBackend, availability
from engine.tooncrafter.fitting import choose_key_colour, composite_on, fit_to_canvas, has_transparency, key_out
from engine.tooncrafter.networks.config import tiny_from_reference
from engine.tooncrafter.weights.store import ModelStore
from tests.helpers import disc_keyframe

# -- fitting and keying (no model) ---------------------------------------------------------------


@pytest.mark.parametrize("size", [(96, 64), (64, 96), (300, 40), (128, 64), (17, 23)])
def test_fit_never_crops_and_comes_back_in_place(size):
    width, height = size
    fit = fit_to_canvas(width, height, 128, 64)
    assert fit.fitted_width <= 128 and fit.fitted_height <= 64
    assert fit.fitted_width == 128 or fit.fitted_height == 64  # as large as the canvas allows
    assert abs(fit.fitted_width / fit.fitted_height - width / height) < 0.1 * width / height + 0.05
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (200, 30, 40)
    image[:, width // 2 :] = (20, 40, 220)
    canvas = fit.to_canvas(image)
    assert canvas.shape == (64, 128, 3)
    back = fit.from_canvas(canvas)
    assert back.shape == image.shape
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 12
    # the margins repeat the edge pixels: no foreign colour appears around the art
    assert set(map(tuple, canvas.reshape(-1, 3))) <= {(200, 30, 40), (20, 40, 220)} | set(
        map(tuple, fit.to_canvas(image).reshape(-1, 3))
    )


def test_key_colour_is_far_from_the_art():
    a = disc_keyframe(30, 30, transparent=True, fill=(0, 255, 0))
    b = disc_keyframe(60, 30, transparent=True, fill=(255, 0, 255))
    key, distance = choose_key_colour(a, b)
    visible = np.concatenate([a[a[..., 3] > 0][:, :3], b[b[..., 3] > 0][:, :3]]).astype(np.float32)
    assert np.sqrt(((visible - key) ** 2).sum(-1)).min() == pytest.approx(distance, abs=1e-3)
    assert distance > 120


def test_keying_round_trip_keeps_alpha_and_line_colours():
    art = disc_keyframe(40, 30, transparent=True, radius=14)
    assert has_transparency(art)
    key, distance = choose_key_colour(art)
    back = key_out(composite_on(art, key), key, distance)
    alpha_in, alpha_out = art[..., 3].astype(int), back[..., 3].astype(int)
    assert (alpha_out[alpha_in == 0] == 0).all()  # the paper stays transparent
    assert (alpha_out[alpha_in == 255] == 255).all()  # the drawing stays opaque
    edges = (alpha_in > 0) & (alpha_in < 255)
    assert edges.any() and np.abs(alpha_out[edges] - alpha_in[edges]).mean() < 40  # soft edges stay soft
    solid = alpha_in == 255
    assert np.abs(back[solid, :3].astype(int) - art[solid, :3].astype(int)).max() <= 1
    strong_edges = alpha_in > 128
    assert np.abs(back[strong_edges, :3].astype(int) - art[strong_edges, :3].astype(int)).mean() < 25  # no key fringe


# -- the backend on the tiny model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(reference_dir):
    folder = reference_dir / "tiny_a"
    return {"folder": folder, "config": tiny_from_reference(json.loads((folder / "config.json").read_text()))}


def _settings(tiny, **overrides) -> GenerationSettings:
    values = dict(
        backend="tooncrafter",
        steps=2,
        checkpoint=str(tiny["folder"] / "weights.safetensors"),
        sketch_checkpoint=str(tiny["folder"] / "sketch_weights.safetensors"),
    )
    values.update(overrides)
    return GenerationSettings(**values)


@pytest.fixture(scope="module")
def parity_backend(tiny, tmp_path_factory):
    store = ModelStore(tmp_path_factory.mktemp("store"))
    return ToonCrafterBackend(_settings(tiny), config=tiny["config"], store=store)


def test_availability_says_how_to_get_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("INBETWEENER_MODELS", str(tmp_path))
    ok, reason = availability(GenerationSettings())
    assert not ok and "inbetween models download" in reason and str(tmp_path) in reason
    ok, reason = availability(GenerationSettings(checkpoint=str(tmp_path / "nope.ckpt")))
    assert not ok and "nope.ckpt" in reason


@pytest.mark.slow
def test_interpolate_any_size_with_progress_and_determinism(parity_backend, tiny):
    settings = _settings(tiny, steps=1)
    key_a, key_b = disc_keyframe(25, 30), disc_keyframe(70, 34)  # 96×64: not the canvas aspect
    events = []
    task = InbetweenTask(key_a, key_b, [0.2, 0.5, 0.9], settings)
    first = parity_backend.interpolate(task, lambda *e: events.append(e), CancelToken())
    assert [im.shape for im in first] == [(64, 96, 4)] * 3
    assert all(im.dtype == np.uint8 and (im[..., 3] == 255).all() for im in first)  # opaque keys, opaque results
    stages = [e[0] for e in events]
    assert "denoise 1/1" in stages and "encode" in stages and "decode" in stages
    assert stages[-1] == "post" and events[-1][1] == pytest.approx(1.0)
    fractions = [e[1] for e in events]
    assert fractions == sorted(fractions)
    again = parity_backend.interpolate(InbetweenTask(key_a, key_b, [0.2, 0.5, 0.9], settings), lambda *e: None, CancelToken())
    assert all(np.array_equal(x, y) for x, y in zip(first, again))  # same seed, same drawings
    # tau 0.2 is model frame 1 of 6; 0.5 and 0.9 come from RIFE between model frames, not cross-fades
    assert not np.array_equal(first[1], first[0])


@pytest.mark.slow
def test_cancel_between_denoising_steps(parity_backend, tiny):
    settings = _settings(tiny)
    cancel = CancelToken()
    stages = []

    def progress(stage, fraction, message):
        stages.append(stage)
        if stage == "denoise 1/2":
            cancel.cancel()

    task = InbetweenTask(disc_keyframe(25, 30), disc_keyframe(70, 34), [0.4], settings)
    with pytest.raises(Cancelled):
        parity_backend.interpolate(task, progress, cancel)
    assert "denoise 2/2" not in stages and "decode" not in stages


@pytest.mark.slow
def test_sketches_transparency_and_size_errors(parity_backend, tiny):
    settings = _settings(tiny, steps=1)
    key_a = disc_keyframe(25, 30, transparent=True)
    key_b = disc_keyframe(70, 34, transparent=True)
    sketch = disc_keyframe(48, 32, transparent=True, fill=(20, 20, 20))
    task = InbetweenTask(key_a, key_b, [0.4, 0.6], settings, sketches={0.4: sketch})
    out = parity_backend.interpolate(task, lambda *e: None, CancelToken())
    assert parity_backend.runner.sketch_encoder is not None
    assert [im.shape for im in out] == [(64, 96, 4)] * 2
    assert task.warnings == []
    unguided = parity_backend.interpolate(InbetweenTask(key_a, key_b, [0.4, 0.6], settings), lambda *e: None, CancelToken())
    assert not np.array_equal(out[0], unguided[0])  # the sketch steers its frame
    crowded = InbetweenTask(key_a, key_b, [0.4, 0.6], settings, sketches={0.4: sketch, 0.45: sketch})
    parity_backend.interpolate(crowded, lambda *e: None, CancelToken())
    assert len(crowded.warnings) == 1 and "both land on model frame 2 of 6" in crowded.warnings[0]
    with pytest.raises(EngineError, match="sketch at tau 0.400 is 10x10"):
        parity_backend.interpolate(
            InbetweenTask(key_a, key_b, [0.4], settings, sketches={0.4: np.zeros((10, 10, 4), np.uint8)}),
            lambda *e: None, CancelToken(),
        )
    with pytest.raises(EngineError, match="differ in size"):
        parity_backend.interpolate(InbetweenTask(key_a, key_b[:, :50], [0.5], settings), lambda *e: None, CancelToken())


@pytest.mark.slow
def test_quality_preset_runs_extra_passes(parity_backend, tiny):
    settings = _settings(tiny, preset="quality", steps=1)  # per-task settings: the loaded model is reused
    messages = []
    task = InbetweenTask(disc_keyframe(25, 30), disc_keyframe(70, 34), [0.2, 0.3, 0.35], settings)
    out = parity_backend.interpolate(task, lambda s, f, m: messages.append(m), CancelToken())
    assert len(out) == 3
    # 0.2 sits on model frame 1; 0.3 and 0.35 both lie in [0.2, 0.4]: one extra pass between frames 1 and 2
    assert any(m.startswith("pass 2/2") for m in messages) and not any("pass 3/" in m for m in messages)


@pytest.mark.slow
def test_out_of_memory_retries_in_low_vram_mode(tiny, tmp_path, monkeypatch):
    import torch

    from engine.tooncrafter.runtimes import runner as runner_mod

    settings = _settings(tiny, steps=1)
    backend = ToonCrafterBackend(settings, config=tiny["config"], store=ModelStore(tmp_path))
    real_interpolate = runner_mod.interpolate
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(backend.runner.low_vram)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_interpolate(*args, **kwargs)

    monkeypatch.setattr(runner_mod, "interpolate", fails_once)
    messages = []
    out = backend.interpolate(
        InbetweenTask(disc_keyframe(25, 30), disc_keyframe(70, 34), [0.4], settings),
        lambda s, f, m: messages.append(m), CancelToken(),
    )
    assert len(out) == 1 and calls == [False, True] and backend.runner.low_vram
    assert backend.describe()["low_vram"] is True
    assert any("low-VRAM" in m for m in messages)


def test_model_frame_grid_lookup(parity_backend):
    strategy = parity_backend.strategy
    assert strategy.interval(0.2) is None and strategy.interval(0.6) is None
    assert strategy.interval(0.3) == 1 and strategy.interval(0.99) == 4
    assert strategy.extra_passes_needed([0.2, 0.3, 0.35, 0.5]) == 2


def test_the_interpolator_between_model_frames_is_chosen_by_name(parity_backend, tiny):
    from engine.backends.cel import CelBackend
    from engine.backends.rife import RifeBackend
    from engine.tooncrafter.segment import SegmentStrategy

    assert parity_backend.describe()["between_model_frames"] == "rife"
    assert isinstance(parity_backend.strategy.interpolator(_settings(tiny)), RifeBackend)
    assert isinstance(SegmentStrategy(parity_backend.runner, "cel").interpolator(_settings(tiny)), CelBackend)
    with pytest.raises(EngineError, match="unknown interpolator 'optical' between model frames: choose one of rife, cel"):
        SegmentStrategy(parity_backend.runner, "optical")
