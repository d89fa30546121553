"""Long travels: keys are aligned on their dominant translation so a shape crossing the frame
is carried along its path instead of fading out and back in."""

import numpy as np
import pytest

from engine.api import CancelToken, GenerationSettings, InbetweenTask
from engine.backends.rife import RifeBackend
from engine.imaging import read_image
from engine.rife.motion import dominant_translation, shifted, travel_to_align
from tests.helpers import disc_keyframe

W, H = 640, 400


def ball(cx, cy, transparent=True):
    return disc_keyframe(cx, cy, width=W, height=H, radius=62, transparent=transparent)


@pytest.mark.parametrize("dx, dy", [(20, 10), (120, 60), (220, 100), (-200, 30)])
def test_dominant_translation_is_measured(dx, dy):
    got = dominant_translation(ball(250, 150), ball(250 + dx, 150 + dy))
    assert got == pytest.approx((dx, dy), abs=3)


def test_short_moves_and_a_still_body_are_left_to_the_flow():
    assert travel_to_align(ball(150, 150), ball(190, 170)) is None
    a = disc_keyframe(60, 32, radius=20)
    b = a.copy()
    b[5:15, 80:95, :3] = (30, 25, 35)  # only a small part changes
    assert travel_to_align(a, b) is None


def test_shifting_keeps_transparency_and_opaque_backdrops():
    moved = shifted(ball(150, 150), 40, 0)
    assert moved[..., 3].max() == 255 and (moved[:, :40, 3] == 0).all()
    opaque = shifted(ball(150, 150, transparent=False), 40, 0)
    assert (opaque[..., 3] == 255).all()


def _solid(image, transparent):
    if transparent:
        return image[..., 3] > 128
    return np.abs(image[..., :3].astype(int) - (230, 80, 60)).sum(-1) < 60


@pytest.mark.parametrize("transparent", [True, False])
def test_a_ball_thrown_across_the_frame_stays_solid_along_its_path(transparent):
    a, b = ball(150, 150, transparent), ball(370, 250, transparent)
    settings = GenerationSettings(backend="rife")
    backend = RifeBackend(settings)
    frames = backend.interpolate(InbetweenTask(a, b, [0.25, 0.5, 0.75], settings), lambda *e: None, CancelToken())
    for tau, frame in zip((0.25, 0.5, 0.75), frames):
        ys, xs = np.nonzero(_solid(frame, transparent))
        assert len(xs) > 0.7 * np.pi * 62**2  # one whole ball, not two faded ghosts
        assert xs.mean() == pytest.approx(150 + 220 * tau, abs=8)
        assert ys.mean() == pytest.approx(150 + 100 * tau, abs=8)
    assert backend.describe()["rife_aligned_travel"] == pytest.approx([220, 100], abs=3)
    unaligned = RifeBackend(settings, align_long_travels=False)
    middle = unaligned.interpolate(InbetweenTask(a, b, [0.5], settings), lambda *e: None, CancelToken())[0]
    assert _solid(middle, transparent).sum() < 0.2 * np.pi * 62**2  # what RIFE alone does: it fades


def test_the_bouncing_ball_sample_keeps_its_ball(samples_dir):
    a = read_image(samples_dir / "bouncing_ball_alpha" / "key_a.png")
    b = read_image(samples_dir / "bouncing_ball_alpha" / "key_b.png")
    settings = GenerationSettings(backend="rife")
    frames = RifeBackend(settings).interpolate(InbetweenTask(a, b, [0.25, 0.5, 0.75], settings),
                                               lambda *e: None, CancelToken())
    key_area = (a[..., 3] > 200).sum()
    for frame in frames:
        assert (frame[..., 3] > 200).sum() > 0.8 * key_area
