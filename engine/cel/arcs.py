"""2D affine poses and their in-betweens along arcs.

A pose is a 3x3 matrix acting on pixel coordinates (x, y, 1). The in-between of a pose M at a
fraction s turns about a pivot: M maps x to L (x - p) + p + d with d = M p - p, and the pose at s
is L(s) (x - p) + p + s d, where L(s) turns by s times L's angle and stretches by L's stretch to
the power s (polar decomposition L = R S). With the pivot on a joint (d close to zero) a limb
swings through its arc; with the pivot on a figure's centre a leap carries the figure along a
straight path while it turns.
"""

from __future__ import annotations

import math

import numpy as np


def rotation(theta: float, scale: float = 1.0) -> np.ndarray:
    c, s = math.cos(theta) * scale, math.sin(theta) * scale
    return np.array([[c, -s], [s, c]])


def pose(linear: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The pose x -> linear (x - source) + target."""
    m = np.eye(3)
    m[:2, :2] = linear
    m[:2, 2] = np.asarray(target, float) - linear @ np.asarray(source, float)
    return m


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points through pose m."""
    return points @ m[:2, :2].T + m[:2, 2]


def polar(linear: np.ndarray) -> tuple[float, np.ndarray]:
    """linear = R(theta) @ S with S symmetric positive definite (a reflection is folded into S)."""
    u, sigma, vt = np.linalg.svd(linear)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    s = r.T @ linear
    return math.atan2(r[1, 0], r[0, 0]), (s + s.T) / 2


def angle_of(m: np.ndarray) -> float:
    return polar(m[:2, :2])[0]


def stretch_power(s: np.ndarray, t: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(s)
    values = np.maximum(values, 1e-6) ** t
    return (vectors * values) @ vectors.T


def linear_at(linear: np.ndarray, t: float, turn: float | None = None) -> np.ndarray:
    """L(t): the turn (theta, or `turn` when the caller knows the winding) times t, stretch to the t."""
    theta, s = polar(linear)
    if turn is not None:
        theta = turn
    return rotation(theta * t) @ stretch_power(s, t)


def wound_angle(linear: np.ndarray, near: float) -> float:
    """L's angle plus the multiple of 2 pi that brings it closest to `near`."""
    theta = polar(linear)[0]
    return theta + 2 * math.pi * round((near - theta) / (2 * math.pi))


def along_arc(m: np.ndarray, t: float, pivot: np.ndarray, turn: float | None = None,
              shape_t: float | None = None) -> np.ndarray:
    """The pose a fraction t of the way from identity to m, turning about `pivot` (the turn and
    stretch a fraction `shape_t` of the way instead, when they keep their own timing)."""
    pivot = np.asarray(pivot, float)
    drift = apply(m, pivot[None])[0] - pivot
    return pose(linear_at(m[:2, :2], t if shape_t is None else shape_t, turn), pivot, pivot + t * drift)


def fixed_point(m: np.ndarray) -> np.ndarray | None:
    """The point m leaves in place, or None when m is (close to) a pure translation."""
    a = np.eye(2) - m[:2, :2]
    if abs(np.linalg.det(a)) < 1e-3:
        return None
    return np.linalg.solve(a, m[:2, 2])
