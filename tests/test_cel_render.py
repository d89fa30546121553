"""Painting parts: straight alpha in and out, the mix window, cut-outs placed by their pose, edges
that leave their old backdrop behind."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.cel import arcs
from engine.cel.render import cut_out, mix_weight, paint_part, premultiplied, straight, unmix_edge
from tests import cel_drawings as art


def test_premultiplied_round_trip_keeps_straight_alpha():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    image[..., 3] = 255
    assert np.array_equal(straight(premultiplied(image)), image)
    clear = np.zeros((2, 2, 4), np.uint8)
    assert np.array_equal(straight(premultiplied(clear)), clear)


def test_mix_happens_inside_the_window_only():
    assert mix_weight(0.1) == 0.0 and mix_weight(0.9) == 1.0
    assert mix_weight(0.5) == pytest.approx(0.5)


def test_part_is_painted_where_its_pose_puts_it():
    key = np.zeros((40, 60, 4), np.uint8)
    key[10:20, 10:20] = (200, 50, 50, 255)
    mask = key[..., 3] > 0
    cut = cut_out(premultiplied(key), mask)
    canvas = np.zeros((40, 60, 4), np.float32)
    touched = np.zeros((40, 60), bool)
    shift = arcs.pose(np.eye(2), np.zeros(2), np.array([30.0, 5.0]))
    paint_part(canvas, touched, cut, shift, None, np.eye(3), 0.0, 0.3, np.eye(3))
    out = straight(canvas)
    assert (out[15:25, 40:50] == (200, 50, 50, 255)).all()
    assert (out[10:20, 10:20, 3] == 0).all()
    assert touched[15:25, 40:50].all() and not touched[:, :35].any()


def test_what_one_key_hides_behind_another_part_comes_from_the_other_key():
    """A torso crossed by an arm in key A has a hole there; before the mix, key B's torso (not the
    plate) shows through it."""

    key = np.zeros((40, 40, 4), np.uint8)
    key[10:30, 10:30] = (200, 50, 50, 255)
    torso_b = np.zeros((40, 40), bool)
    torso_b[10:30, 10:30] = True
    torso_a = torso_b.copy()
    torso_a[18:22, 10:30] = False  # the arm lies across it in key A
    arm_a = np.zeros_like(torso_a)
    arm_a[18:22, 5:35] = True
    cut_a = cut_out(premultiplied(key), torso_a, arm_a)
    cut_b = cut_out(premultiplied(key), torso_b, np.zeros_like(torso_b))
    canvas = np.zeros((40, 40, 4), np.float32)
    touched = np.zeros((40, 40), bool)
    paint_part(canvas, touched, cut_a, np.eye(3), cut_b, np.eye(3), 0.0, 0.1, np.eye(3))
    assert canvas[20, 20, 3] == pytest.approx(1.0, abs=1e-3)  # the hole is filled, fully opaque
    assert canvas[20, 20, 0] == pytest.approx(200 / 255, abs=1e-3)


def disc_on(backdrop) -> tuple[np.ndarray, np.ndarray]:
    """A disc inked with an anti-aliased outline on a flat backdrop, and the plain backdrop."""
    plate = np.zeros((60, 60, 4), np.uint8)
    plate[:] = backdrop
    key = plate.copy()
    mask = np.zeros((60, 60), np.uint8)
    cv2.circle(mask, (30, 30), 15, 255, -1)
    art.paint(key, mask, art.BALL)
    return key, plate


def test_an_edge_unmixed_from_its_backdrop_settles_on_a_new_one_as_drawn():
    sky, brick = (150, 200, 240, 255), (180, 40, 30, 255)
    key, plate = disc_on(sky)
    drawn_on_brick, brick_plate = disc_on(brick)
    figure = np.abs(key.astype(int) - plate.astype(int)).max(axis=2) > 0
    edge = figure & ~(cv2.erode(figure.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)

    def pasted(cut_source: np.ndarray) -> np.ndarray:
        cut = cut_out(cut_source, figure)
        canvas = premultiplied(brick_plate)
        paint_part(canvas, np.zeros((60, 60), bool), cut, np.eye(3), None, np.eye(3), 0.0, 0.0, np.eye(3))
        return straight(canvas).astype(int)

    unmixed = unmix_edge(premultiplied(key), premultiplied(plate), figure)
    assert np.array_equal(unmixed[~edge], premultiplied(key)[~edge])  # only the outer edge changes
    error = np.abs(pasted(unmixed) - drawn_on_brick.astype(int))[edge].max(axis=1)
    halo = np.abs(pasted(premultiplied(key)) - drawn_on_brick.astype(int))[edge].max(axis=1)
    assert halo.max() > 60  # cut as it is, the edge brings a rim of sky onto the brick
    assert error.max() <= 6 and error.mean() < 2
