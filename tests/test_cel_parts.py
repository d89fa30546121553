"""Parts of a figure: the pieces of one paint that a limb lying across it cuts apart stay one part."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cel import parts
from engine.cel.interpolator import CelInterpolator
from engine.cel.regions import segment
from tests import cel_drawings as art
from tools import synthetic_cel

SHIRT_KEYS = (6, 8)  # the leap's landing: the near arm crosses the shirt, cutting it differently in each key


def landing(join_gain: float, monkeypatch) -> tuple:
    """The leap's last two keys (every second frame of its 9) taken apart, and the frame between."""
    monkeypatch.setattr(parts, "JOIN_GAIN", join_gain)
    scene = synthetic_cel.build("leap", 0)
    taus = synthetic_cel.taus(9)
    a, mid, b = (synthetic_cel.render(scene, taus[k]) for k in (SHIRT_KEYS[0], sum(SHIRT_KEYS) // 2, SHIRT_KEYS[1]))
    opaque = [np.dstack([f.image, np.full(f.image.shape[:2], 255, np.uint8)]) for f in (a, b)]
    return opaque, CelInterpolator().prepare(*opaque), mid


def shirt_parts(key: np.ndarray, segment_result) -> list:
    seg = segment(key)
    shirt = [r.index for r in seg.regions if r.area > 100 and abs(r.colour[0] - 215) < 12 and r.colour[1] < 80]
    assert len(shirt) == 2, "the arm should cut the shirt in two"
    return [p for p in segment_result.parts if set(shirt) & set(p.regions_a)], shirt


def test_the_shirt_an_arm_cuts_in_two_is_one_part(monkeypatch):
    (key_a, _), result, mid = landing(parts.JOIN_GAIN, monkeypatch)
    holding, shirt = shirt_parts(key_a, result)
    assert len(holding) == 1 and sorted(holding[0].regions_a) == sorted(shirt)
    assert len(holding[0].regions_b) == 2
    assert art.figure_iou(result.inbetween(0.5), mid) > 0.78


def test_apart_the_pieces_pair_crosswise_and_the_figure_breaks(monkeypatch):
    (key_a, _), result, mid = landing(10.0, monkeypatch)  # never join
    holding, _ = shirt_parts(key_a, result)
    assert len(holding) == 2
    assert art.figure_iou(result.inbetween(0.5), mid) < 0.65


@pytest.mark.parametrize("gain", [0.0, 0.05])
def test_a_head_and_a_hand_of_one_skin_stay_apart(gain, monkeypatch):
    (key_a, _), result, _ = landing(gain, monkeypatch)
    seg = segment(key_a)
    skin = {r.index for r in seg.regions if r.area > 80 and r.colour[0] > 240 and 180 < r.colour[1] < 215 and 150 < r.colour[2] < 195}
    assert len(skin) >= 2
    assert all(len(skin & set(p.regions_a)) <= 1 for p in result.parts)


@pytest.mark.parametrize("start, end", [(95, -85), (-85, 95)])
def test_a_limb_turning_half_a_circle_swings_through_the_bottom(start, end):
    """Pointing one way in key A and the opposite way in key B, the arm could have gone either way
    round: it swings down past the torso like a pendulum, not over the top."""
    segment_ = CelInterpolator().prepare(art.arm_figure(start), art.arm_figure(end))
    assert abs(art.limb_angle(segment_.inbetween(0.5), art.SHOULDER)) < 20
    # a quarter of the way it is half way down from where it started (not up past the horizontal)
    assert 25 < art.limb_angle(segment_.inbetween(0.25), art.SHOULDER) * np.sign(start) < 70


def test_a_torso_a_sleeve_lies_across_turns_with_its_figure():
    """Over the hill the kid tilts about 56 degrees, and the near sleeve lies across a different
    piece of the shirt in each key. The sleeve's outline runs across the shirt's visible piece; fitted
    as the shirt's own line, it would pull the shirt's pose to where the sleeve went (it once turned
    the shirt by half the figure's tilt, and the shirt shrank and tore in the in-betweens)."""
    scene = synthetic_cel.build("walk_arc", 0)
    frames = [synthetic_cel.render(scene, t) for t in (0.0, 1.0)]
    keys = [np.dstack([f.image, np.full(f.image.shape[:2], 255, np.uint8)]) for f in frames]
    result = CelInterpolator().prepare(*keys)
    tilt = scene.motion(1.0)["torso"].angle - scene.motion(0.0)["torso"].angle
    seg = segment(keys[0])
    shirt = {r.index for r in seg.regions if r.area > 100 and r.colour[0] > 180 and r.colour[1] < 90 and r.colour[2] < 90}
    holding = [p for p in result.parts if shirt & set(p.regions_a)]
    assert len(holding) == 1, "the shirt's pieces should be one part"
    assert abs(np.degrees(holding[0].motion.turn) - tilt) < 8


def test_parts_touching_at_a_corner_are_not_one_tone():
    """Walking past the tree, the far hand meets the near knee at a corner, through a speck of sky
    too small to be a region: two paints that touch for a pixel or two without ink between are not
    a fill and its shadow, and joined they fit no pose (the legs tore apart in the in-betweens)."""
    scene = synthetic_cel.build("occlusion", 0)
    frames = [synthetic_cel.render(scene, t) for t in (0.0, 1.0)]
    keys = [np.dstack([f.image, np.full(f.image.shape[:2], 255, np.uint8)]) for f in frames]
    result = CelInterpolator().prepare(*keys)
    seg = segment(keys[0])
    for part in result.parts:
        colours = np.array([seg.regions[i].colour[:3] for i in part.regions_a])
        spread = np.abs(colours[:, None] - colours[None]).max() if len(colours) else 0.0
        assert spread <= 40, f"part {part.index} holds regions of different paints: {colours.round().tolist()}"
