"""Held cels stay, moving ones are lifted off, and the plate behind them comes from the other key."""

from __future__ import annotations

import cv2
import numpy as np

from engine.cel.layers import background_plate, changed_pixels, held_regions
from engine.cel.regions import segment
from tests import cel_drawings as art


def test_torso_and_backdrop_are_held_the_limb_moves():
    key_a, key_b = art.arm_figure(10), art.arm_figure(110)
    seg = segment(key_a)
    held = held_regions(seg, changed_pixels(key_a, key_b))
    for colour, expect in ((art.TORSO, True), (art.BACKDROP[:3], True), (art.GROUND[:3], True), (art.LIMB, False)):
        regions = [r.index for r in seg.regions if r.area > 50 and np.abs(r.colour[:3] - colour).max() <= 4]
        assert regions and all(held[i] == expect for i in regions), colour


def test_plate_takes_hidden_background_from_the_other_key():
    key_a, key_b = art.arm_figure(10), art.arm_figure(110)
    limb_a = art.colour_mask(key_a, art.LIMB, 60)
    limb_b = art.colour_mask(key_b, art.LIMB, 60)
    plate, unseen = background_plate(key_a, key_b, limb_a, limb_b)
    only_a = limb_a & ~limb_b
    assert np.array_equal(plate[only_a], key_b[only_a])  # behind A's limb: what B shows there
    assert np.array_equal(plate[~limb_a], key_a[~limb_a])  # elsewhere: A untouched
    assert np.array_equal(unseen, limb_a & limb_b)  # only what neither key shows is inpainted


def test_unchanged_transparent_paper_is_not_change():
    a = art.canvas(transparent=True)
    b = a.copy()
    b[..., :3] = 77  # colour under zero alpha means nothing
    assert not changed_pixels(a, b).any()


def test_backdrop_seen_through_a_gap_in_the_figure_is_a_pocket_not_a_part():
    """Backdrop enclosed between two moving legs, which the other key shows as open backdrop there:
    plate, not a region to match. A limb is no pocket: the other key shows what was behind it."""
    from engine.cel.layers import backdrop_pockets

    def legs(x: int) -> np.ndarray:
        key = art.canvas()
        mask = np.zeros(key.shape[:2], np.uint8)
        mask[40:120, x:x + 10] = 255
        mask[40:120, x + 30:x + 40] = 255
        mask[40:50, x:x + 40] = 255  # the hips close the gap from above
        mask[110:120, x:x + 40] = 255  # and a bar below: the backdrop is enclosed
        art.paint(key, mask, art.LIMB)
        return key

    key_a, key_b = legs(100), legs(125)  # the figure steps right, across its own gap
    seg, other = segment(key_a), segment(key_b)
    changed = changed_pixels(key_a, key_b)
    held = held_regions(seg, changed)
    pockets = backdrop_pockets(seg, held, other, held_regions(other, changed))
    pocket = seg.labels[80, 120]
    limb = seg.labels[80, 104]
    assert not held[pocket] and pockets[pocket]
    assert not pockets[limb] and not pockets[seg.labels[5, 5]]


def ball_over_cloud(ball_x: int | None) -> np.ndarray:
    """An inked cloud held on the backdrop, and a ball in front of it at `ball_x` (None: no ball)."""
    key = art.canvas(120, 240)
    cloud = np.zeros(key.shape[:2], np.uint8)
    cv2.ellipse(cloud, (120, 40), (40, 16), 0, 0, 360, 255, -1)
    art.paint(key, cloud, (246, 248, 250))
    if ball_x is not None:
        ball = np.zeros(key.shape[:2], np.uint8)
        cv2.circle(ball, (ball_x, 46), 22, 255, -1)
        art.paint(key, ball, art.BALL)
    return key


def test_scenery_a_figure_covers_differently_in_each_key_belongs_to_the_plate():
    """The ball hides the cloud's left in one key and its right in the other, so neither key shows
    most of the cloud unchanged; its free outline (away from the ball in both keys) did not move."""
    from engine.cel.layers import backdrop_pockets, covered_scenery

    key_a, key_b = ball_over_cloud(96), ball_over_cloud(146)
    seg_a, seg_b = segment(key_a), segment(key_b)
    changed = changed_pixels(key_a, key_b)
    held_a, held_b = held_regions(seg_a, changed), held_regions(seg_b, changed)
    cloud_a, cloud_b = seg_a.labels[40, 150], seg_b.labels[40, 90]
    ball_a, ball_b = seg_a.labels[46, 96], seg_b.labels[46, 146]
    assert not held_a[cloud_a] and not held_b[cloud_b]  # the plain tests read the cloud as moving
    base_a = held_a | backdrop_pockets(seg_a, held_a, seg_b, held_b)
    base_b = held_b | backdrop_pockets(seg_b, held_b, seg_a, held_a)
    plate_a, plate_b = covered_scenery(seg_a, base_a, seg_b, base_b, changed)
    assert plate_a[cloud_a] and plate_b[cloud_b]
    assert not plate_a[ball_a] and not plate_b[ball_b]
    assert np.array_equal(plate_a & ~base_a, np.isin(np.arange(len(seg_a.regions)), [cloud_a]))
