"""Paint order read from the keys: what covers what where parts overlap."""

from __future__ import annotations

import cv2
import numpy as np

from engine.cel import arcs
from engine.cel.interpolator import CelInterpolator
from engine.cel.motion import Motion
from engine.cel.occlusion import paint_order, scenery_over
from engine.cel.parts import Part
from engine.cel.regions import segment
from tests import cel_drawings as art


def test_part_that_hides_another_is_painted_after_it():
    shape = (120, 200)
    board_a = np.zeros(shape, np.uint8)
    cv2.rectangle(board_a, (20, 30), (90, 100), 255, -1)
    disc_a = np.zeros(shape, np.uint8)
    cv2.circle(disc_a, (160, 60), 15, 255, -1)
    # in key B the disc has moved onto the board and hides part of it
    disc_b = np.zeros(shape, np.uint8)
    cv2.circle(disc_b, (55, 65), 15, 255, -1)
    board_b = (board_a > 0) & ~(disc_b > 0)
    move = arcs.pose(np.eye(2), np.zeros(2), np.array([-105.0, 5.0]))
    board = Part(0, [0], [0], board_a > 0, board_b, Motion(np.eye(3), 0.0, 1.0))
    disc = Part(1, [1], [1], disc_a > 0, disc_b > 0, Motion(move, 0.0, 1.0))
    assert paint_order([disc, board]) == [1, 0]  # board first (back), disc last (front)
    assert paint_order([board, disc]) == [0, 1]




def test_a_pose_a_pixel_or_two_off_is_no_evidence_of_cover():
    """A glove shown whole in both keys, beside a leg: its fitted pose is two pixels off, so its
    edge lands on the leg in the other key. That is the fit's slack, not the leg covering the glove
    (it put a walking kid's far leg in front of the hand that crosses it)."""
    shape = (120, 200)
    leg = np.zeros(shape, np.uint8)
    cv2.rectangle(leg, (60, 20), (100, 110), 255, -1)
    glove_a, glove_b = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    cv2.circle(glove_a, (47, 50), 12, 255, -1)
    cv2.circle(glove_b, (47, 75), 12, 255, -1)
    slack = arcs.pose(np.eye(2), np.zeros(2), np.array([2.0, 25.0]))  # the truth is (0, 25)
    legs = Part(0, [0], [0], leg > 0, leg > 0, Motion(np.eye(3), 0.0, 1.0))
    glove = Part(1, [1], [1], glove_a > 0, glove_b > 0, Motion(slack, 0.0, 0.9))
    assert paint_order([legs, glove]) == [0, 1]  # nothing says otherwise: the larger part goes behind

def test_a_hand_stays_behind_the_head_its_arm_passes_behind():
    """Key B shows the sleeve passing behind the head; the hand on the sleeve meets the head in
    neither key, yet it sweeps past it: it keeps its arm's depth instead of jumping in front."""
    shape = (120, 200)

    def disc(x, r):
        mask = np.zeros(shape, np.uint8)
        cv2.circle(mask, (x, 45), r, 255, -1)
        return mask > 0

    def sleeve(x):
        mask = np.zeros(shape, np.uint8)
        cv2.rectangle(mask, (x, 40), (x + 40, 50), 255, -1)
        return mask > 0

    head = disc(100, 20)
    still = Motion(np.eye(3), 0.0, 1.0)
    head_part = Part(0, [0], [0], head, head, still)
    sleeve_part = Part(1, [1], [1], sleeve(20), sleeve(90) & ~head,
                       Motion(arcs.pose(np.eye(2), np.zeros(2), np.array([70.0, 0.0])), 0.0, 1.0))
    hand_part = Part(2, [2], [2], disc(10, 6), disc(140, 6),
                     Motion(arcs.pose(np.eye(2), np.zeros(2), np.array([130.0, 0.0])), 0.0, 1.0), parent=1)
    order = paint_order([head_part, sleeve_part, hand_part])
    assert order.index(1) < order.index(0) and order.index(2) < order.index(0), order


def test_a_figure_walking_behind_a_held_post_stays_behind_it():
    """Key B shows the figure half hidden by a post that never moves: the post is held scenery in
    front of the figure, so every in-between paints it over the figure, exactly as the keys draw it."""
    post = np.zeros((160, 240), np.uint8)
    post[20:115, 140:156] = 255

    def key(x: int) -> np.ndarray:
        image = art.canvas()
        figure = np.zeros((160, 240), np.uint8)
        figure[50:110, x:x + 36] = 255
        figure[30:50, x + 8:x + 28] = 255  # a head, so the shape has a top
        art.paint(image, figure, art.LIMB)
        art.paint(image, post, art.TORSO)
        return image

    key_a, key_b = key(70), key(128)
    segment = CelInterpolator().prepare(key_a, key_b)
    inside = post > 0
    assert segment.front[inside].mean() > 0.95
    for tau in (0.5, 0.8):
        out = segment.inbetween(tau)
        assert np.array_equal(out[inside], key_b[inside])  # the post is drawn over the figure
        limb = art.colour_mask(out, art.LIMB)
        assert limb[:, 100:140].sum() > 0.5 * art.colour_mask(key_a, art.LIMB).sum() * (1 - tau)  # the figure is there


def test_scenery_over_the_place_a_figure_should_be_is_found_in_a_key():
    """A key that shows a held post (and a bit of the figure beside it) where the other keys put the
    figure: the post is in front; the ground (the backdrop, at the frame edge) and the figure's own
    visible paint are not."""
    plate = art.canvas()
    ground = np.zeros((160, 240), np.uint8)
    ground[120:] = 255
    art.paint(plate, ground, art.GROUND[:3])
    post = np.zeros((160, 240), np.uint8)
    post[20:115, 140:160] = 255
    art.paint(plate, post, art.TORSO)
    key = plate.copy()
    sliver = np.zeros((160, 240), np.uint8)
    sliver[50:110, 160:168] = 255
    art.paint(key, sliver, art.LIMB)
    figure = np.zeros((160, 240), bool)
    figure[40:130, 130:168] = True  # where the keys around this one put the figure
    front = scenery_over(figure, key, segment(key), plate)
    assert front[25:110, 145:155].all()  # the post
    assert not front[125:].any()  # the ground
    assert not front[art.colour_mask(key, art.LIMB)].any()  # the figure's own paint


def stray_lines_inside_torso(drawing: np.ndarray) -> int:
    """Pixels well inside the torso and away from the arm that are not the torso's paint."""
    torso = art.colour_mask(drawing, art.TORSO, tolerance=60).astype(np.uint8)
    inner = cv2.erode(cv2.morphologyEx(torso, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8)), np.ones((13, 13), np.uint8)) > 0
    away = cv2.dilate(art.colour_mask(drawing, art.LIMB).astype(np.uint8), np.ones((13, 13), np.uint8)) == 0
    off = np.abs(drawing[..., :3].astype(int) - np.array(art.TORSO)).max(axis=2) > 40
    return int((inner & away & off).sum())


def test_the_line_an_arm_draws_across_a_torso_goes_with_the_arm():
    """Key A: the arm lies across the torso; key B: the torso has moved on and the arm is raised
    clear of it. The ink along the arm's edge is the arm's outline, although half of it is nearest
    the torso: it must not stay behind on the torso as a faint line while the arm swings away."""
    key_a, key_b = art.arm_figure(-50), art.arm_figure(120, shift=40)
    segment = CelInterpolator().prepare(key_a, key_b)
    for tau in (0.3, 0.5, 0.7):
        assert stray_lines_inside_torso(segment.inbetween(tau)) == 0, tau
    # the torso's own outline is kept: its left edge is inked at every in-between
    drawing = segment.inbetween(0.5)
    rows = slice(70, 110)
    left = np.argmax(art.colour_mask(drawing, art.TORSO)[rows].any(axis=0))
    assert (drawing[rows, left - 3:left, :3].min(axis=1).max(axis=1) < 90).all()
