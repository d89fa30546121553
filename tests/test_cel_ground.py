"""Feet on the ground: a figure standing on a drawn surface in both keys walks along it between."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cel.ground import find_ground, soles, top_edges
from engine.cel.interpolator import CelInterpolator
from engine.cel.regions import segment
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


def test_a_figure_in_the_air_in_one_key_is_not_grounded():
    """A jump from the hill's slope: the chord carries it, nothing pulls it down to the hill."""
    segment_ = CelInterpolator().prepare(art.hill_walker(90), art.hill_walker(310, lifted=40))
    assert segment_.report["figures_on_ground"] == 0
    start, end = bottom_and_centre(art.hill_walker(90))[0], bottom_and_centre(art.hill_walker(310, lifted=40))[0]
    assert bottom_and_centre(segment_.inbetween(0.5))[0] == pytest.approx((start + end) / 2, abs=1.5)


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

