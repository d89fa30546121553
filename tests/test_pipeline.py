"""The pipeline: request checks, timeline layout of keys / in-betweens / holds, sketches, cancel."""

import numpy as np
import pytest

from engine.api import Cancelled, CancelToken, EngineError, GenerationSettings, Keyframe
from engine.pipeline import build_request, generate
from tests.helpers import disc_keyframe

RIFE = GenerationSettings(backend="rife")


def keys(*frames, transparent=False):
    xs = np.linspace(20, 76, len(frames))
    return [Keyframe(f, disc_keyframe(x, 32, transparent=transparent), f"key{f}.png") for f, x in zip(frames, xs)]


def test_size_mismatch_names_both_sizes_and_fit_resolves_it():
    ks = keys(0, 8)
    ks[1] = Keyframe(8, disc_keyframe(50, 40, width=80, height=80), "big.png")
    with pytest.raises(EngineError, match=r"big.png is 80x80 but key0.png is 96x64"):
        build_request(ks, settings=RIFE)
    request = build_request(ks, settings=RIFE, fit=True)
    assert request.keyframes[1].image.shape == (64, 96, 4)
    # fitted, never cropped: the padding at the sides is transparent
    assert request.keyframes[1].image[:, :4, 3].max() == 0


def test_sketch_checks():
    sketch = np.zeros((64, 96, 4), np.uint8)
    sketch[..., 3] = 255
    sketch[30:34, 10:80, :3] = 255  # a white bar on black: something drawn
    with pytest.raises(EngineError, match="sits on a keyframe"):
        build_request(keys(0, 8), sketches={8: sketch}, settings=RIFE)
    with pytest.raises(EngineError, match="outside the keyframes' range"):
        build_request(keys(0, 8), sketches={9: sketch}, settings=RIFE)
    blank = np.zeros((64, 96, 4), np.uint8)
    assert build_request(keys(0, 8), sketches={4: blank}, settings=RIFE).sketches == {}
    request = build_request(keys(0, 8), sketches={4: sketch}, settings=RIFE)
    with pytest.raises(EngineError, match="sketch guidance needs the cel or tooncrafter backend, but rife would run"):
        generate(request)


def test_timeline_layout_on_twos_with_three_keys():
    request = build_request(keys(0, 6, 12), exposure=2, settings=RIFE)
    result = generate(request)
    assert sorted(result.frames) == list(range(13))
    kinds = "".join(result.frames[f].kind[0] for f in range(13))
    assert kinds == "khihihkhihihk"
    assert result.frames[3].drawing == 2
    assert result.frames[3].image is result.frames[2].image
    assert result.frames[0].image is request.keyframes[0].image  # keys are passed through untouched
    assert result.provenance["backend"] == "rife"
    for f in (2, 4, 8, 10):
        assert result.frames[f].image.shape == (64, 96, 4)


def test_only_some_segments():
    request = build_request(keys(0, 4, 8), settings=RIFE, only_segments=[1])
    result = generate(request)
    assert sorted(result.frames) == [4, 5, 6, 7, 8]
    with pytest.raises(EngineError, match="segment 5 does not exist"):
        build_request(keys(0, 4, 8), settings=RIFE, only_segments=[5])


def test_progress_reaches_the_end_and_cancel_stops():
    seen = []
    generate(build_request(keys(0, 4, 8), settings=RIFE), progress=lambda s, f, m: seen.append(f))
    assert seen[-1] == 1.0
    assert seen == sorted(seen)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        generate(build_request(keys(0, 8), settings=RIFE), cancel=token)


def test_tooncrafter_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("INBETWEENER_MODELS", str(tmp_path))
    request = build_request(keys(0, 8), settings=GenerationSettings(backend="tooncrafter"))
    with pytest.raises(EngineError, match="inbetween models"):
        generate(request)


def test_each_segment_is_given_its_neighbouring_keys(monkeypatch):
    """In a shot of three keys each segment sees the key on its far side, at its timeline place in
    the segment's own taus, so a backend can draw one arc through all the keys."""
    from engine.api import Backend

    tasks = []

    class Recorder(Backend):
        name = "rife"

        def interpolate(self, task, progress, cancel):
            tasks.append(task)
            return [task.key_start.copy() for _ in task.taus]

    monkeypatch.setattr("engine.pipeline.get_backend", lambda name, settings: Recorder())
    request = build_request(keys(0, 4, 10), settings=RIFE)
    generate(request)
    first, second = tasks
    assert first.key_before is None and first.tau_before is None
    assert first.key_after is request.keyframes[2].image and first.tau_after == pytest.approx(10 / 4)
    assert second.key_before is request.keyframes[0].image and second.tau_before == pytest.approx(-4 / 6)
    assert second.key_after is None and second.tau_after is None
