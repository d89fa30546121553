"""The pipeline stage "full-resolution restore" (engine/restoration/stage.py) through generate():
it restores what a backend drew below the keys' size, leaves full-size backends bit-identical, never
touches the keys, reports progress as "post" and stops when cancelled."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.api import Backend, Cancelled, CancelToken, GenerationSettings, Keyframe
from engine.pipeline import build_request, generate
from engine.restoration import plan_restoration, restore_inbetweens
from engine.restoration.pixels import resize
from engine.restoration.stage import drawn_size
from tests.helpers import cel_scene

SIZE = (512, 320)
CANVAS = (128, 80)


class _ModelLikeBackend(Backend):
    """Stands in for a generative backend that draws on a small canvas: each in-between is the true
    drawing at its tau, brought down to the canvas and enlarged back (bicubic), as the ToonCrafter
    backend returns its frames."""

    name = "model-like"

    def __init__(self, draws_at=CANVAS):
        self.draws_at = draws_at

    def interpolate(self, task, progress, cancel):
        frames = []
        for tau in task.taus:
            truth = cel_scene(float(tau))
            frames.append(truth if self.draws_at is None else resize(resize(truth, CANVAS), SIZE))
        progress("post", 1.0, "drawn")
        return frames


def _request(settings=None, count=3):
    keyframes = [Keyframe(0, cel_scene(0.0), "a.png"), Keyframe(count + 1, cel_scene(1.0), "b.png")]
    return build_request(keyframes, count=count, settings=settings or GenerationSettings()), keyframes


def _run(monkeypatch, backend, settings=None, **kwargs):
    monkeypatch.setattr("engine.pipeline.resolve_backend_name", lambda settings: backend.name)
    monkeypatch.setattr("engine.pipeline.get_backend", lambda name, settings: backend)
    request, keyframes = _request(settings)
    return generate(request, **kwargs), keyframes


def _psnr(image, truth):
    mse = np.mean((image[..., :3].astype(float) - truth[..., :3].astype(float)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_in_betweens_drawn_small_come_back_with_the_keys_detail(monkeypatch):
    result, keyframes = _run(monkeypatch, _ModelLikeBackend())
    inbetweens = [f for f in result.drawings() if f.kind == "inbetween"]
    assert len(inbetweens) == 3
    gains = []
    for frame in inbetweens:
        truth = cel_scene(frame.tau)
        enlarged = resize(resize(truth, CANVAS), SIZE)
        assert frame.image.shape == truth.shape and frame.image.dtype == np.uint8
        gains.append(_psnr(frame.image, truth) - _psnr(enlarged, truth))
    assert min(gains) > 1.5 and np.mean(gains) > 3.0, gains
    for key in keyframes:  # the keys themselves are never touched
        assert result.frames[key.frame].image is key.image or np.array_equal(result.frames[key.frame].image, key.image)


def test_auto_leaves_full_size_backends_bit_identical(monkeypatch):
    backend = _ModelLikeBackend(draws_at=None)
    result, _ = _run(monkeypatch, backend)
    for frame in result.drawings():
        if frame.kind == "inbetween":
            assert np.array_equal(frame.image, cel_scene(frame.tau))
    frames = [cel_scene(0.5)]
    out = restore_inbetweens(cel_scene(0.0), cel_scene(1.0), frames, [0.5], GenerationSettings())
    assert out[0] is frames[0]  # not even copied


def test_off_leaves_small_drawings_as_the_backend_made_them(monkeypatch):
    result, _ = _run(monkeypatch, _ModelLikeBackend(), GenerationSettings(restore_detail="off", keep_palette="off"))
    for frame in result.drawings():
        if frame.kind == "inbetween":
            assert np.array_equal(frame.image, resize(resize(cel_scene(frame.tau), CANVAS), SIZE))


def test_progress_is_post_and_cancel_stops_the_stage(monkeypatch):
    stages = []
    cancel = CancelToken()

    def progress(stage, fraction, message):
        stages.append((stage, message))
        if "restoring in-between 2/" in message:
            cancel.cancel()

    with pytest.raises(Cancelled):
        _run(monkeypatch, _ModelLikeBackend(), progress=progress, cancel=cancel)
    restoring = [m for s, m in stages if "restoring" in m]
    assert restoring and all(s == "post" for s, m in stages if "restoring" in m)
    assert not any("3/3" in m for m in restoring)


def test_auto_rules():
    key_a, key_b = cel_scene(0.0), cel_scene(1.0)
    auto = GenerationSettings()
    plan = plan_restoration(auto, key_a, key_b, CANVAS)
    assert plan.restore and plan.drawn_size == (128, 80) and plan.palette is not None  # flat cel art
    assert not plan_restoration(auto, key_a, key_b, None).active
    assert not plan_restoration(auto, key_a, key_b, (1024, 640)).active  # canvas larger than the keys
    on = plan_restoration(GenerationSettings(restore_detail="on", keep_palette="off"), key_a, key_b, None)
    assert on.restore and on.drawn_size == SIZE and on.palette is None
    palette_only = plan_restoration(GenerationSettings(keep_palette="on"), key_a, key_b, None)
    assert not palette_only.restore and palette_only.palette is not None
    # the fitted rectangle, as the backends fit keys onto their canvas
    assert drawn_size((1920, 1080), (512, 320)) == (512, 288)
    assert drawn_size((1080, 1920), (512, 320)) == (180, 320)


def test_keep_palette_on_fixes_a_full_size_backends_drift():
    key_a, key_b = cel_scene(0.0), cel_scene(1.0)
    drifted = cel_scene(0.5)
    drifted[..., :3] = np.clip(drifted[..., :3].astype(int) + 5, 0, 255).astype(np.uint8)
    out = restore_inbetweens(key_a, key_b, [drifted], [0.5], GenerationSettings(keep_palette="on"))[0]
    truth = cel_scene(0.5)
    fill = (slice(10, 60), slice(10, 200))  # the sky: flat paper colour
    assert (out[fill] == truth[fill]).all()
    assert _psnr(out, truth) > _psnr(drifted, truth)


@pytest.mark.slow
def test_tooncrafter_on_the_tiny_model_is_restored_to_the_keys_size(reference_dir, tmp_path, monkeypatch):
    """The real backend on the tiny golden model (canvas 128×64) declares the canvas it draws on, so the
    pipeline restores its frames to the keys' size."""
    from engine.backends.tooncrafter import ToonCrafterBackend
    from engine.tooncrafter.networks.config import tiny_from_reference
    from engine.tooncrafter.weights.store import ModelStore

    folder = reference_dir / "tiny_a"
    config = tiny_from_reference(json.loads((folder / "config.json").read_text()))
    settings = GenerationSettings(backend="tooncrafter", steps=1, checkpoint=str(folder / "weights.safetensors"))

    backend = ToonCrafterBackend(settings, config=config, store=ModelStore(tmp_path))
    assert backend.draws_at == (config.width, config.height)
    key_a = cel_scene(0.0, width=256, height=128)
    key_b = cel_scene(1.0, width=256, height=128)
    request = build_request([Keyframe(0, key_a), Keyframe(2, key_b)], count=1, settings=settings)
    monkeypatch.setattr("engine.pipeline.get_backend", lambda name, s: backend)
    monkeypatch.setattr("engine.pipeline.resolve_backend_name", lambda s: "tooncrafter")
    stages = []
    result = generate(request, progress=lambda s, f, m: stages.append((s, m)))
    images = [f.image for f in result.drawings() if f.kind == "inbetween"]
    assert [im.shape for im in images] == [(128, 256, 4)]
    assert any(s == "post" and "restoring" in m for s, m in stages)  # the stage ran on the model's frames
