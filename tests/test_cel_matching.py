"""Pairing moving regions between keys: by colour, size, shape and place; leftovers left over."""

from __future__ import annotations

import cv2
import numpy as np

from engine.cel.matching import match_figures, match_regions
from engine.cel.regions import segment
from tests import cel_drawings as art


def scene(shapes):
    key = art.canvas(160, 320)
    for kind, centre, colour in shapes:
        mask = np.zeros(key.shape[:2], np.uint8)
        if kind == "disc":
            cv2.circle(mask, centre, 14, 255, -1)
        else:
            cv2.rectangle(mask, (centre[0] - 25, centre[1] - 6), (centre[0] + 25, centre[1] + 6), 255, -1)
        art.paint(key, mask, colour)
    return key


def region_of(seg, x, y):
    return int(seg.labels[y, x])


def test_same_colour_regions_are_told_apart_by_shape():
    red = (220, 60, 60)
    a = scene([("disc", (60, 50), red), ("bar", (200, 50), red)])
    b = scene([("disc", (230, 90), red), ("bar", (90, 100), red)])  # swapped sides
    sa, sb = segment(a), segment(b)
    disc_a, bar_a = region_of(sa, 60, 50), region_of(sa, 200, 50)
    disc_b, bar_b = region_of(sb, 230, 90), region_of(sb, 90, 100)
    pairs = {i: j for i, j, _ in match_regions(sa, sb, [disc_a, bar_a], [disc_b, bar_b], 360.0)}
    assert pairs == {disc_a: disc_b, bar_a: bar_b}


def test_a_region_with_no_counterpart_stays_unmatched():
    a = scene([("disc", (60, 50), (220, 60, 60)), ("disc", (200, 50), (60, 60, 220))])
    b = scene([("disc", (90, 60), (220, 60, 60))])
    sa, sb = segment(a), segment(b)
    red_a, blue_a, red_b = region_of(sa, 60, 50), region_of(sa, 200, 50), region_of(sb, 90, 60)
    pairs = match_regions(sa, sb, [red_a, blue_a], [red_b], 360.0)
    assert [(i, j) for i, j, _ in pairs] == [(red_a, red_b)]


def test_whole_figures_pair_up():
    a = scene([("disc", (60, 50), (220, 60, 60)), ("bar", (250, 110), (60, 200, 60))])
    b = scene([("disc", (120, 70), (220, 60, 60)), ("bar", (200, 100), (60, 200, 60))])
    sa, sb = segment(a), segment(b)
    ra, ga = region_of(sa, 60, 50), region_of(sa, 250, 110)
    rb, gb = region_of(sb, 120, 70), region_of(sb, 200, 100)
    figures = match_figures(sa, sb, [ra, ga], [rb, gb], 360.0)
    assert sorted((tuple(x), tuple(y)) for x, y in figures) == sorted([((ra,), (rb,)), ((ga,), (gb,))])



def test_a_figure_the_other_key_does_not_show_comes_back_unpaired():
    a = scene([("disc", (60, 50), (220, 60, 60)), ("bar", (250, 110), (60, 200, 60))])
    b = scene([("disc", (120, 70), (220, 60, 60))])
    sa, sb = segment(a), segment(b)
    ra, ga, rb = region_of(sa, 60, 50), region_of(sa, 250, 110), region_of(sb, 120, 70)
    figures = match_figures(sa, sb, [ra, ga], [rb], 360.0)
    assert sorted((tuple(x), tuple(y)) for x, y in figures) == sorted([((ra,), (rb,)), ((ga,), ())])

def legs_and_shoes(legs):
    """Two legs of different paint, each with a shoe of one shared paint at its foot; `legs` gives
    each leg's (x of the hip, x of the foot)."""
    key = art.canvas(160, 320)
    shoe = (96, 56, 40)
    for (hip, foot), colour in zip(legs, ((58, 78, 150), (150, 60, 150))):
        leg = np.zeros(key.shape[:2], np.uint8)
        cv2.line(leg, (hip, 30), (foot, 100), 255, 16)
        art.paint(key, leg, colour)
        boot = np.zeros(key.shape[:2], np.uint8)
        cv2.ellipse(boot, (foot + 6, 110), (14, 8), 0, 0, 360, 255, -1)
        art.paint(key, boot, shoe)
    return key


def test_shoes_of_one_paint_go_with_their_legs_when_the_legs_cross():
    # A stride: the legs swap sides while the figure travels, so each shoe ends where the other one
    # started; only the legs (told apart by paint) say which shoe is which
    a = legs_and_shoes([(120, 100), (140, 160)])
    b = legs_and_shoes([(170, 210), (150, 150)])
    sa, sb = segment(a), segment(b)
    shoe_a = [region_of(sa, 106, 110), region_of(sa, 166, 110)]
    shoe_b = [region_of(sb, 216, 110), region_of(sb, 156, 110)]
    legs_a = [region_of(sa, 110, 65), region_of(sa, 150, 65)]
    legs_b = [region_of(sb, 190, 65), region_of(sb, 150, 65)]
    pairs = {i: j for i, j, _ in match_regions(sa, sb, shoe_a + legs_a, shoe_b + legs_b, 360.0)}
    assert pairs[legs_a[0]] == legs_b[0] and pairs[legs_a[1]] == legs_b[1]
    assert pairs[shoe_a[0]] == shoe_b[0] and pairs[shoe_a[1]] == shoe_b[1]
