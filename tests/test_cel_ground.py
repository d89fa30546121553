"""Feet on the ground: a figure standing on a drawn surface in both keys walks along it between;
one on it in one key only falls onto it or leaps off it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.cel.ground import find_fall, find_ground, soles, top_edges
from engine.cel.interpolator import CelInterpolator
from engine.cel.regions import segment
from engine.imaging import read_image
from tests import cel_drawings as art


def bottom_and_centre(image: np.ndarray) -> tuple[int, float]:
    ys, xs = np.nonzero(art.colour_mask(image, art.TORSO))
    return int(ys.max()), float(xs.mean())


def test_a_figure_walking_over_a_hill_keeps_its_clearance_to_the_hilltop():
    """Keys on either slope: the straight chord between them would sink the figure 16 px into the
    hilltop; instead at every in-between it stands where it would if drawn there."""
    segment_ = CelInterpolator().prepare(art.hill_walker(90), art.hill_walker(310))
    assert segment_.report["figures_on_ground"] == 1
    chord_bottom = bottom_and_centre(art.hill_walker(90))[0]
    for tau in (0.25, 0.5, 0.75):
        bottom, centre = bottom_and_centre(segment_.inbetween(tau))
        drawn_there = bottom_and_centre(art.hill_walker(int(round(centre))))[0]
        assert abs(bottom - drawn_there) <= 2, (tau, bottom, drawn_there)
    assert chord_bottom - bottom_and_centre(segment_.inbetween(0.5))[0] >= 14


def test_on_level_ground_the_figure_travels_the_chord():
    segment_ = CelInterpolator().prepare(art.hill_walker(90, on_hill=False), art.hill_walker(310, on_hill=False))
    assert segment_.report["figures_on_ground"] == 1
    key_bottom = bottom_and_centre(art.hill_walker(90, on_hill=False))[0]
    for tau in (0.25, 0.5, 0.75):
        bottom, centre = bottom_and_centre(segment_.inbetween(tau))
        assert bottom == key_bottom and centre == pytest.approx(90 + tau * 220, abs=1.0)


def test_a_figure_in_the_air_in_one_key_leaps_off_the_hill_instead_of_walking_on_it():
    """A jump from the hill's slope: nothing pulls it down to the hill; it rises fast off the slope
    and slows towards key B, as a thrown body does (3/4 of the rise by half-way)."""
    segment_ = CelInterpolator().prepare(art.hill_walker(90), art.hill_walker(310, lifted=40))
    assert segment_.report["figures_on_ground"] == 0 and segment_.report["figures_falling"] == 1
    start, end = bottom_and_centre(art.hill_walker(90))[0], bottom_and_centre(art.hill_walker(310, lifted=40))[0]
    assert end < start - 30
    assert bottom_and_centre(segment_.inbetween(0.5))[0] == pytest.approx(start + 0.75 * (end - start), abs=1.5)
    assert bottom_and_centre(segment_.inbetween(0.5))[1] == pytest.approx(200, abs=1.5)  # even pace across


def ball(image: np.ndarray) -> tuple[float, float, int, int]:
    """Centre x, y and width, height of the ball's fill."""
    ys, xs = np.nonzero(art.colour_mask(image, art.BALL))
    return float(xs.mean()), float(ys.mean()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1


def test_a_ball_falling_onto_the_floor_falls_with_gravity_and_squashes_only_on_contact():
    """Key A: the ball in the air; key B: squashed on the floor. Across at an even pace, down as a
    falling body (a quarter of the drop by half-way), and round until the contact key."""
    key_a, key_b = art.ball_figure((80, 30)), art.ball_figure((300, 128), squash=0.7)
    segment_ = CelInterpolator().prepare(key_a, key_b)
    assert segment_.report["figures_falling"] == 1
    (xa, ya, wa, ha), (xb, yb, wb, hb) = ball(key_a), ball(key_b)
    assert wb > 1.3 * wa and hb < 0.75 * ha  # key B is squashed
    for tau in (0.25, 0.5, 0.75):
        x, y, w, h = ball(segment_.inbetween(tau))
        assert x == pytest.approx(xa + tau * (xb - xa), abs=1.5), tau
        assert y == pytest.approx(ya + tau * tau * (yb - ya), abs=1.5), tau
        assert abs(w - wa) <= 2 and abs(h - ha) <= 2, (tau, w, h)  # key A's round shape, not half squashed


def test_a_ball_bouncing_up_off_the_floor_springs_back_at_once_and_slows_as_it_rises():
    key_a, key_b = art.ball_figure((80, 128), squash=0.7), art.ball_figure((300, 30))
    segment_ = CelInterpolator().prepare(key_a, key_b)
    assert segment_.report["figures_falling"] == 1
    (_, ya, _, _), (_, yb, wb, hb) = ball(key_a), ball(key_b)
    for tau in (0.25, 0.5, 0.75):
        _, y, w, h = ball(segment_.inbetween(tau))
        assert y == pytest.approx(ya + (1 - (1 - tau) ** 2) * (yb - ya), abs=1.5), tau
        assert abs(w - wb) <= 2 and abs(h - hb) <= 2, (tau, w, h)


def test_a_ball_moving_down_through_the_air_only_keeps_to_the_chord():
    """No surface reached: no gravity guessed, the even straight path of two keys."""
    key_a, key_b = art.ball_figure((80, 20)), art.ball_figure((300, 80))
    segment_ = CelInterpolator().prepare(key_a, key_b)
    assert segment_.report["figures_falling"] == 0
    (xa, ya, _, _), (xb, yb, _, _) = ball(key_a), ball(key_b)
    x, y, _, _ = ball(segment_.inbetween(0.5))
    assert x == pytest.approx((xa + xb) / 2, abs=1.5) and y == pytest.approx((ya + yb) / 2, abs=1.5)


def test_the_surface_is_the_top_edge_of_the_region_beneath_the_soles():
    image, scene = art.hill_walker(90), art.hill_scene()
    plate = segment(scene)
    figure = np.abs(image.astype(int) - scene).max(axis=2) > 8
    ground = find_ground(plate, figure, figure, np.eye(3))
    assert ground is not None
    hill = plate.labels[art.hill_top(200) + 10, 200]
    assert np.array_equal(ground.surface, top_edges(plate, hill))
    for x in (60, 120, 200, 300):  # the fill's top, just under the hill's ink
        assert 0 <= ground.surface[x] - art.hill_top(x) <= 2 * art.LINE
    assert (ground.surface[:20] == -1).all()  # no hill out there
    # the soles are the figure's lowest pixels, one per column
    points = soles(figure)
    assert len(points) == figure.any(axis=0).sum() and points[:, 1].max() >= bottom_and_centre(image)[0] + art.LINE - 1
    assert ground.lift(np.eye(3), 0.0) == 0.0



ROAD = (150, 150, 160)


def ball_over_floors(centre) -> np.ndarray:
    """A floor seen from above in two bands (a road, then grass nearer the viewer) under a sky,
    and a ball at `centre`."""
    image = art.canvas(160, 400)
    image[:] = art.BACKDROP
    road, grass = np.zeros((160, 400), np.uint8), np.zeros((160, 400), np.uint8)
    road[40:100], grass[100:] = 255, 255
    art.paint(image, road, ROAD)
    art.paint(image, grass, art.GROUND[:3])
    ball_mask = np.zeros((160, 400), np.uint8)
    cv2.circle(ball_mask, centre, 15, 255, -1)
    art.paint(image, ball_mask, art.BALL)
    return image


def test_a_ball_rolling_from_the_road_onto_the_grass_is_not_falling():
    """Down the screen from one floor to a nearer one is not a fall: in key A it is on the road."""
    segment_ = CelInterpolator().prepare(ball_over_floors((80, 55)), ball_over_floors((300, 135)))
    assert segment_.report["figures_falling"] == 0
    (_, ya, _, _), (_, yb, _, _) = ball(ball_over_floors((80, 55))), ball(ball_over_floors((300, 135)))
    assert ball(segment_.inbetween(0.5))[1] == pytest.approx((ya + yb) / 2, abs=1.5)


def test_a_ball_from_the_sky_onto_the_grass_falls():
    segment_ = CelInterpolator().prepare(ball_over_floors((80, 12)), ball_over_floors((300, 135)))
    assert segment_.report["figures_falling"] == 1
    (_, ya, _, _), (_, yb, _, _) = ball(ball_over_floors((80, 12))), ball(ball_over_floors((300, 135)))
    assert ball(segment_.inbetween(0.5))[1] == pytest.approx(ya + 0.25 * (yb - ya), abs=1.5)


def test_only_a_figure_of_one_piece_keeps_its_shape_until_the_contact():
    """A squashed landing of a ball is a contact drawing; a figure with limbs (its body's pose
    change is a crouch or a lean) and a rigid figure are in-betweened as usual."""
    key_a, key_b = art.ball_figure((80, 30)), art.ball_figure((300, 128), squash=0.7)
    plate = segment(art.canvas(160, 400))
    figure_a, figure_b = (np.abs(k.astype(int) - art.canvas(160, 400)).max(axis=2) > 8 for k in (key_a, key_b))
    squash = np.array([[1 / 0.7, 0.0, 300 - 80 / 0.7], [0.0, 0.7, 128 - 30 * 0.7], [0.0, 0.0, 1.0]])
    fall = find_fall(plate, figure_a, figure_b, np.array([80.0, 30.0]), squash, one_piece=True)
    assert fall is not None and fall.lands and fall.squashes
    assert fall.shape_at(0.99) == 0.0 and fall.shape_at(1.0) == 1.0
    assert np.allclose(fall.path.offset(0.5), [0.0, -0.25 * 98.0])  # a quarter of the drop, not half
    assert not find_fall(plate, figure_a, figure_b, np.array([80.0, 30.0]), squash, one_piece=False).squashes
    carried = np.array([[1.0, 0.0, 220.0], [0.0, 1.0, 98.0], [0.0, 0.0, 1.0]])
    assert not find_fall(plate, figure_a, figure_b, np.array([80.0, 30.0]), carried, one_piece=True).squashes


def test_a_bunny_landing_with_limbs_is_not_held_in_its_airborne_shape(samples_dir):
    """The bundled hop's landing (airborne key to a flattened crouch): a fall, but the body's
    change is a pose of a figure with ears and feet, not a ball's squash, so it is in-betweened."""
    keys = [read_image(samples_dir / "three_keys" / f"key_{i}.png") for i in (1, 2)]
    segment_ = CelInterpolator().prepare(*keys)
    assert segment_.report["figures_falling"] == 1
    (fall,) = segment_.falls.values()
    assert fall.lands and not fall.squashes
    ball = CelInterpolator().prepare(art.ball_figure((80, 30)), art.ball_figure((300, 128), squash=0.7))
    (fall,) = ball.falls.values()
    assert fall.squashes  # its highlight lies inside it: one piece
