"""The cel backend as the pipeline calls it: the Backend contract, progress, cancel, fallback."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import Cancelled, CancelToken, EngineError, GenerationSettings, InbetweenTask, no_progress
from engine.backends import cel
from tests import cel_drawings as art


def run(backend, key_a, key_b, taus, sketches=None, progress=no_progress, cancel=None):
    task = InbetweenTask(key_a, key_b, taus, GenerationSettings(), sketches or {})
    return backend.interpolate(task, progress, cancel or CancelToken()), task


def test_always_available():
    assert cel.availability(GenerationSettings()) == (True, "")


def test_one_image_per_tau_at_the_keys_size():
    backend = cel.CelBackend(GenerationSettings())
    events = []
    images, task = run(backend, art.arm_figure(10), art.arm_figure(110), [0.1, 0.5, 0.9],
                       progress=lambda *e: events.append(e))
    assert len(images) == 3
    assert all(im.shape == (160, 240, 4) and im.dtype == np.uint8 for im in images)
    assert [round(art.limb_angle(im, art.SHOULDER)) for im in images] == pytest.approx([20, 60, 100], abs=3)
    assert events[-1][:2] == ("post", 1.0)
    assert backend.describe()["method"] == "cel" and task.warnings == []


def test_cancel_stops_between_inbetweens():
    backend = cel.CelBackend(GenerationSettings())
    cancel = CancelToken()

    def cancel_after_first(stage, fraction, message):
        if stage == "post":
            cancel.cancel()

    with pytest.raises(Cancelled):
        run(backend, art.arm_figure(10), art.arm_figure(110), [0.25, 0.5, 0.75], progress=cancel_after_first, cancel=cancel)


def test_bad_input_is_named():
    backend = cel.CelBackend(GenerationSettings())
    with pytest.raises(EngineError, match="tau"):
        run(backend, art.arm_figure(10), art.arm_figure(110), [1.0])
    with pytest.raises(EngineError, match="differ in size"):
        run(backend, art.arm_figure(10), art.arm_figure(110)[:80], [0.5])


def test_art_that_is_not_cel_goes_to_rife_and_says_so():
    from engine.backends import rife

    if not rife.availability(GenerationSettings())[0]:
        pytest.skip("RIFE weights not installed")
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (64, 96, 4), dtype=np.uint8)
    noise[..., 3] = 255
    backend = cel.CelBackend(GenerationSettings())
    images, task = run(backend, noise, np.roll(noise, 4, axis=1), [0.5])
    assert len(images) == 1 and images[0].shape == noise.shape
    assert backend.describe()["method"] == "rife"
    assert any("RIFE" in w and "flat" in w for w in task.warnings)


def test_multi_key_shot_with_a_sketch_through_the_pipeline():
    """Three keys (the arm up, across, down) and a sketch: every segment goes through the cel method."""
    from engine.api import Keyframe
    from engine.backends import BACKEND_MODULES
    from engine.pipeline import build_request, generate

    if "cel" not in BACKEND_MODULES:
        pytest.skip("the cel backend is not registered yet")
    keyframes = [Keyframe(0, art.arm_figure(10), "a.png"), Keyframe(4, art.arm_figure(100), "b.png"),
                 Keyframe(8, art.arm_figure(30), "c.png")]
    request = build_request(keyframes, sketches={2: art.sketch_of_arm(80)}, settings=GenerationSettings(backend="cel"))
    result = generate(request)
    assert result.provenance["backend"] == "cel"
    assert result.warnings == []
    angles = {f: art.limb_angle(result.frames[f].image, art.SHOULDER) for f in (1, 2, 3, 5, 6, 7)}
    assert angles[2] == pytest.approx(80, abs=3)  # the sketch
    assert angles[1] == pytest.approx(45, abs=4) and angles[3] == pytest.approx(90, abs=4)
    assert angles[5] == pytest.approx(82.5, abs=3) and angles[7] == pytest.approx(47.5, abs=3)
    for f in range(9):
        assert np.array_equal(result.frames[f].image[140:], keyframes[0].image[140:])  # the ground holds


def test_a_hop_cut_at_three_keys_follows_one_arc_through_them():
    """The synthetic hop (tools/synthetic_cel.py, a parabola no two keys show) cut at keys 0, 4 and
    8: with the neighbouring key in the task, the middle in-between of a segment lands on the arc;
    without it, on the straight chord below it."""
    from tools import synthetic_cel

    scene = synthetic_cel.build("transparent", 0)
    taus = synthetic_cel.taus(9)
    frames = [synthetic_cel.render(scene, t) for t in taus]
    settings = GenerationSettings(backend="cel")

    def figure_iou(image, truth):
        present = image[..., 3] >= 128
        return (present & truth.mask).sum() / (present | truth.mask).sum()

    backend = cel.CelBackend(settings)
    alone = InbetweenTask(frames[0].image, frames[4].image, [0.5], settings)
    shot = InbetweenTask(frames[0].image, frames[4].image, [0.5], settings, key_after=frames[8].image, tau_after=2.0)
    straight = backend.interpolate(alone, no_progress, CancelToken())[0]
    arced = backend.interpolate(shot, no_progress, CancelToken())[0]
    assert backend.describe()["paths_through_keys"] >= 1
    assert figure_iou(arced, frames[2]) > 0.8
    assert figure_iou(arced, frames[2]) > figure_iou(straight, frames[2]) + 0.05
