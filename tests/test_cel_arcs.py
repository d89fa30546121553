"""Pose algebra: in-betweens turn about their pivot, stretches interpolate, windings are kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.cel import arcs


def test_turn_about_a_joint_stays_on_the_circle():
    joint = np.array([50.0, 40.0])
    full = arcs.pose(arcs.rotation(math.radians(120)), joint, joint)
    tip = np.array([[50.0, 90.0]])
    for t in (0.25, 0.5, 0.75):
        half = arcs.along_arc(full, t, joint)
        moved = arcs.apply(half, tip)[0]
        assert np.hypot(*(moved - joint)) == pytest.approx(50.0, abs=1e-6)  # on the arc, not the chord
        assert arcs.angle_of(half) == pytest.approx(math.radians(120 * t))


def test_centre_pivot_carries_a_leap_on_a_straight_path():
    centre = np.array([10.0, 10.0])
    leap = arcs.pose(arcs.rotation(math.radians(30)), centre, centre + [200.0, 0.0])
    mid = arcs.apply(arcs.along_arc(leap, 0.5, centre), centre[None])[0]
    assert mid == pytest.approx([110.0, 10.0])


def test_winding_beyond_half_a_turn():
    joint = np.zeros(2)
    m = arcs.pose(arcs.rotation(math.radians(200)), joint, joint)
    # polar alone reads 200 degrees as -160; a known winding swings the long way
    assert arcs.angle_of(arcs.along_arc(m, 0.5, joint)) == pytest.approx(math.radians(-80))
    assert arcs.angle_of(arcs.along_arc(m, 0.5, joint, turn=math.radians(200))) == pytest.approx(math.radians(100))


def test_squash_interpolates_in_log_space():
    stretch = np.diag([2.0, 0.5])
    m = arcs.pose(stretch, np.zeros(2), np.zeros(2))
    half = arcs.along_arc(m, 0.5, np.zeros(2))
    assert np.diag(half[:2, :2]) == pytest.approx([math.sqrt(2), math.sqrt(0.5)])


def test_polar_and_fixed_point():
    linear = arcs.rotation(0.7) @ np.array([[1.5, 0.2], [0.2, 0.8]])
    theta, s = arcs.polar(linear)
    assert theta == pytest.approx(0.7) and arcs.rotation(theta) @ s == pytest.approx(linear)
    m = arcs.pose(arcs.rotation(0.5), np.array([3.0, 4.0]), np.array([3.0, 4.0]))
    assert arcs.fixed_point(m) == pytest.approx([3.0, 4.0])
    assert arcs.fixed_point(arcs.pose(np.eye(2), np.zeros(2), np.array([5.0, 0.0]))) is None
