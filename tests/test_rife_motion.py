"""Long travels: the flow scale follows the keys' motion so a shape crossing the frame never fades."""

import numpy as np
import pytest

from engine.api import CancelToken, GenerationSettings, InbetweenTask
from engine.backends.rife import RifeBackend
from engine.rife.motion import dominant_shift, flow_scale_for
from tests.helpers import disc_keyframe

W, H = 640, 400


def ball(cx, cy, transparent=True):
    return disc_keyframe(cx, cy, width=W, height=H, radius=62, transparent=transparent)


@pytest.mark.parametrize("dx, dy, scale", [(20, 10, 1.0), (120, 60, 1.0), (220, 100, 0.5), (220, 0, 0.5)])
def test_flow_scale_follows_the_travel(dx, dy, scale):
    a, b = ball(150, 150), ball(150 + dx, 150 + dy)
    assert dominant_shift(a, b) == pytest.approx(np.hypot(dx, dy), abs=3)
    assert flow_scale_for(a, b) == scale


def test_a_still_body_with_a_moving_part_keeps_full_resolution_flow():
    a = disc_keyframe(60, 32, radius=20)
    b = a.copy()
    b[5:15, 80:95, :3] = (30, 25, 35)  # only a small part changes
    assert dominant_shift(a, b) < 5
    assert flow_scale_for(a, b) == 1.0


@pytest.mark.parametrize("transparent", [True, False])
def test_a_ball_thrown_across_the_frame_stays_solid_in_the_middle(transparent):
    a, b = ball(150, 150, transparent), ball(370, 250, transparent)
    settings = GenerationSettings(backend="rife")
    backend = RifeBackend(settings)
    middle = backend.interpolate(InbetweenTask(a, b, [0.5], settings), lambda *e: None, CancelToken())[0]
    if transparent:
        solid = middle[..., 3] > 128
    else:
        solid = np.abs(middle[..., :3].astype(int) - (230, 80, 60)).sum(-1) < 60
    ys, xs = np.nonzero(solid)
    assert solid.sum() > 0.7 * np.pi * 62**2  # one whole ball, not two faded ghosts
    assert xs.mean() == pytest.approx(260, abs=8) and ys.mean() == pytest.approx(200, abs=8)
    assert backend.describe()["rife_scale"] == 0.5
