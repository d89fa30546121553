"""Held cels stay, moving ones are lifted off, and the plate behind them comes from the other key."""

from __future__ import annotations

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
