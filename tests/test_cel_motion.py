"""A part's pose between the keys is found by search, whatever the turn."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from engine.cel import arcs
from engine.cel.motion import _refine, fit_free, fit_hinged, shape_of


def l_shape(angle_deg: float, centre=(100.0, 80.0), shape=(200, 240)) -> np.ndarray:
    """An asymmetric L (so its turn is unambiguous) turned by `angle_deg` about `centre`."""
    pts = np.array([[-30, -20], [30, -20], [30, -5], [-15, -5], [-15, 35], [-30, 35]], float)
    m = arcs.rotation(math.radians(angle_deg))
    poly = pts @ m.T + centre
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.rint(poly).astype(np.int32)], 255)
    return mask > 0


@pytest.mark.parametrize("angle", [-150.0, -40.0, 95.0, 170.0])
def test_free_fit_finds_large_turns(angle):
    a = shape_of(l_shape(0.0))
    b = shape_of(l_shape(angle, centre=(140.0, 110.0)))
    motion = fit_free(a, b)
    assert math.degrees(motion.turn) == pytest.approx(angle, abs=3.0)
    assert arcs.apply(motion.pose, np.array([[100.0, 80.0]]))[0] == pytest.approx([140.0, 110.0], abs=2.0)
    assert motion.score > 0.9


def test_jointed_fit_turns_about_the_joint():
    joint = np.array([70.0, 60.0])
    a = shape_of(l_shape(0.0))
    m = arcs.pose(arcs.rotation(math.radians(120)), joint, joint)
    rotated = cv2.warpAffine(a.mask.astype(np.uint8), m[:2], (240, 200), flags=cv2.INTER_NEAREST) > 0
    _, motion = fit_hinged(a, shape_of(rotated), [joint], [joint])
    assert math.degrees(motion.turn) == pytest.approx(120.0, abs=2.0)
    assert arcs.apply(motion.pose, joint[None])[0] == pytest.approx(joint, abs=1.5)



def test_of_several_candidate_joints_the_one_it_turned_about_wins():
    """Candidate joints are swept together and only the most promising refined: the joint the part
    really turned about must survive that cut, with its turn."""
    joint = np.array([70.0, 60.0])
    a = shape_of(l_shape(0.0))
    m = arcs.pose(arcs.rotation(math.radians(-75)), joint, joint)
    b = shape_of(cv2.warpAffine(a.mask.astype(np.uint8), m[:2], (240, 200), flags=cv2.INTER_NEAREST) > 0)
    decoys = [np.array([130.0, 80.0]), np.array([100.0, 115.0]), np.array([85.0, 40.0])]
    candidates = [*decoys[:2], joint, decoys[2]]
    k, motion = fit_hinged(a, b, candidates, candidates)
    assert k == 2
    assert math.degrees(motion.turn) == pytest.approx(-75.0, abs=2.0)
    assert motion.score == pytest.approx(fit_hinged(a, b, [joint], [joint])[1].score, abs=1e-6)

def test_squash_is_fitted_as_an_affine_pose():
    a = np.zeros((200, 240), np.uint8)
    cv2.circle(a, (100, 80), 30, 255, -1)
    b = np.zeros_like(a)
    cv2.ellipse(b, (140, 120), (45, 20), 0, 0, 360, 255, -1)
    motion = fit_free(shape_of(a > 0), shape_of(b > 0))
    sx, sy = np.linalg.svd(motion.pose[:2, :2], compute_uv=False)
    assert sx == pytest.approx(1.5, abs=0.15) and sy == pytest.approx(0.67, abs=0.1)
    assert motion.score > 0.9


def face(angle_deg: float, centre=(120.0, 100.0)) -> tuple[np.ndarray, np.ndarray]:
    """A round head (a disc) whose turn only its two eyes tell: (fill mask, ink mask)."""
    fill = np.zeros((200, 240), np.uint8)
    cv2.circle(fill, (int(centre[0]), int(centre[1])), 30, 255, -1)
    ink = np.zeros_like(fill)
    cv2.circle(ink, (int(centre[0]), int(centre[1])), 30, 255, 2)
    m = arcs.rotation(math.radians(angle_deg))
    for eye in ([8.0, -10.0], [20.0, -10.0]):
        x, y = m @ np.array(eye) + centre
        cv2.circle(ink, (int(round(x)), int(round(y))), 3, 255, -1)
    return fill > 0, ink > 0


def test_a_round_heads_turn_is_read_from_its_lines():
    """The silhouette of a disc fits every turn; the eyes (ink inside the part) decide it."""
    fill_a, ink_a = face(0.0)
    fill_b, ink_b = face(35.0, centre=(130.0, 96.0))
    motion = fit_free(shape_of(fill_a | ink_a, 0, None, ink_a), shape_of(fill_b | ink_b, 0, None, ink_b))
    assert math.degrees(motion.turn) == pytest.approx(35.0, abs=5.0)
    blind = fit_free(shape_of(fill_a | ink_a), shape_of(fill_b | ink_b))
    assert abs(math.degrees(blind.turn) - 35.0) > 15.0  # without the lines the turn is a guess


def test_a_part_shown_whole_in_both_keys_is_not_excused_as_hidden():
    """Other parts may hide a part only as much as one key shows less of it than the other: a limb
    drawn whole in both keys gets no credit for landing on its neighbours."""
    a_mask = l_shape(0.0)
    b_mask = l_shape(90.0, centre=(140.0, 110.0))
    others = np.ones_like(a_mask) & ~a_mask  # everything around the part is another part
    a = shape_of(a_mask, 0, others)
    b = shape_of(b_mask, 0, np.ones_like(b_mask) & ~b_mask)
    motion = fit_free(a, b)
    assert math.degrees(motion.turn) == pytest.approx(90.0, abs=3.0)
    assert motion.score > 0.9


def test_the_pose_search_climbs_in_batches_and_always_ends():
    calls = []

    def bowl(trials: np.ndarray) -> np.ndarray:
        calls.append(len(trials))
        return -((trials[:, 0] - 1.3) ** 2) - (trials[:, 1] + 0.7) ** 2

    (x, y), best = _refine(bowl, [0.0, 0.0], [1.0, 1.0])
    # three rounds halve a 1.0 step to 0.25: the search lands on that grid's nearest point
    assert (x, y) == (1.25, -0.75) and best == pytest.approx(-(0.05**2) * 2)
    assert calls[0] == 1 and set(calls[1:]) == {4}  # every move of every parameter in one call
    # scores that are not numbers count as the worst: the search stays put instead of looping
    assert _refine(lambda trials: np.full(len(trials), np.nan), [0.5], [1.0]) == ([0.5], -math.inf)
