"""Arcs through the keys: the path of a figure through the keys either side of its segment."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cel.paths import key_path


def parabola(t: float) -> np.ndarray:
    """A hop: steady sideways, up and down again (y grows downwards)."""
    return np.array([40.0 + 90.0 * t, 200.0 - 160.0 * t + 70.0 * t * t])


@pytest.mark.parametrize("known", ["both", "before", "after"])
@pytest.mark.parametrize("spacing", [(-1.0, 2.0), (-0.5, 3.0)])
def test_a_parabolic_path_through_the_keys_is_followed_exactly(known, spacing):
    """With either neighbouring key (at any spacing) the segment's path is the parabola itself."""
    tau_before, tau_after = spacing
    path = key_path(parabola(0.0), parabola(1.0),
                    parabola(tau_before) if known in ("both", "before") else None, tau_before,
                    parabola(tau_after) if known in ("both", "after") else None, tau_after)
    for tau in (0.25, 0.5, 0.8):
        chord = parabola(0.0) + tau * (parabola(1.0) - parabola(0.0))
        assert chord + path.offset(tau) == pytest.approx(parabola(tau), abs=1e-9)


def test_without_neighbours_the_path_is_the_chord():
    path = key_path(np.array([0.0, 0.0]), np.array([10.0, 5.0]), None, None, None, None)
    for tau in (0.0, 0.3, 1.0):
        assert path.offset(tau) == pytest.approx([0.0, 0.0], abs=1e-12)


def test_the_path_meets_the_keys():
    path = key_path(parabola(0.0), parabola(1.0), parabola(-1.0), -1.0, parabola(2.0), 2.0)
    assert path.offset(0.0) == pytest.approx([0.0, 0.0]) and path.offset(1.0) == pytest.approx([0.0, 0.0])
