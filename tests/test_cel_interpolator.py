"""The cel in-betweener end to end on drawings with known geometry: arcs, leaps, held backgrounds,
transparency, line widths, and the clear errors bad input gets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.api import EngineError
from engine.cel.interpolator import CelInterpolator, NotCelArt
from engine.demo import SAMPLES
from engine.imaging import read_image
from tests import cel_drawings as art


@pytest.fixture(scope="module")
def swing():
    """One limb hinged at the shoulder, swung by 100 degrees."""
    return art.arm_figure(10), art.arm_figure(110), CelInterpolator().prepare(art.arm_figure(10), art.arm_figure(110))


@pytest.mark.parametrize("tau", [0.25, 0.5, 0.75])
def test_limb_swings_through_its_arc(swing, tau):
    """The limb turns about its joint to the interpolated angle: no slide, no cross-fade."""
    _, _, segment = swing
    out = segment.inbetween(tau)
    assert art.limb_angle(out, art.SHOULDER) == pytest.approx(10 + 100 * tau, abs=3.0)
    # one solid limb: as much limb paint as in a key, not two half-strength ghosts
    key_area = art.colour_mask(art.arm_figure(10), art.LIMB).sum()
    assert art.colour_mask(out, art.LIMB).sum() == pytest.approx(key_area, rel=0.15)


def test_forearm_follows_its_elbow():
    """A two-segment arm: the forearm turns relative to the upper arm, about the moving elbow."""
    key_a, key_b = art.arm_figure(10, 0), art.arm_figure(100, 150)
    segment = CelInterpolator().prepare(key_a, key_b)
    for tau in (0.25, 0.5, 0.75):
        out = segment.inbetween(tau)
        upper = 10 + 90 * tau
        assert art.limb_angle(out, art.SHOULDER) == pytest.approx(upper, abs=3.0)
        elbow = art.limb_end(art.SHOULDER, upper, art.ARM_LENGTH)
        assert art.limb_angle(out, elbow, art.FOREARM) == pytest.approx(150 * tau, abs=4.0)


def test_sketch_poses_the_limb():
    """A sketch at tau 0.5 with the arm at 80 degrees (the plain in-between is at 60) wins."""
    key_a, key_b = art.arm_figure(10), art.arm_figure(110)
    segment = CelInterpolator().prepare(key_a, key_b, {0.5: art.sketch_of_arm(80)})
    assert art.limb_angle(segment.inbetween(0.5), art.SHOULDER) == pytest.approx(80, abs=3.0)
    # the motion is split at the sketch: A -> sketch over [0, 0.5], sketch -> B over [0.5, 1]
    assert art.limb_angle(segment.inbetween(0.25), art.SHOULDER) == pytest.approx(45, abs=4.0)
    assert art.limb_angle(segment.inbetween(0.75), art.SHOULDER) == pytest.approx(95, abs=4.0)


def test_leap_farther_than_the_figure_carries_it():
    """A ball that travels 220 px (five times its width) is whole at the midpoint, not faded."""
    key_a, key_b = art.ball_figure((60, 60)), art.ball_figure((280, 90))
    segment = CelInterpolator().prepare(key_a, key_b)
    out = segment.inbetween(0.5)
    ball = art.colour_mask(out, art.BALL)
    key_area = art.colour_mask(key_a, art.BALL).sum()
    assert ball.sum() == pytest.approx(key_area, rel=0.12)
    ys, xs = np.nonzero(ball)
    assert xs.mean() == pytest.approx(170, abs=5) and ys.mean() == pytest.approx(75, abs=5)


def test_held_background_is_bit_identical(swing):
    """Away from the limb (in either key and in the in-between) every pixel is the keys' own."""
    key_a, key_b, segment = swing
    out = segment.inbetween(0.5)
    figure = ~np.all(key_a == key_b, axis=2) | art.colour_mask(out, art.LIMB)
    figure = cv2.dilate(figure.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0  # the limb and its outline
    assert np.array_equal(out[~figure], key_a[~figure])
    assert (~figure).mean() > 0.8
    assert not np.array_equal(out[figure], key_a[figure])  # the limb did move


def test_ground_does_not_move(swing):
    _, _, segment = swing
    key_a = art.arm_figure(10)
    for tau in (0.1, 0.5, 0.9):
        assert np.array_equal(segment.inbetween(tau)[140:], key_a[140:])


def test_transparent_cel_keeps_its_alpha():
    key_a, key_b = art.arm_figure(10, transparent=True), art.arm_figure(110, transparent=True)
    out = CelInterpolator().prepare(key_a, key_b).inbetween(0.5)
    limb = art.colour_mask(out, art.LIMB)
    assert limb.sum() > 300 and (out[limb, 3] == 255).all()
    assert (out[:20, 150:, 3] == 0).all()  # empty paper stays transparent
    edge = (out[..., 3] > 0) & (out[..., 3] < 255)
    assert edge.sum() > 20  # anti-aliased outline edges survive


def ink_thickness(image: np.ndarray, region: np.ndarray) -> float:
    """Dark pixels per pixel of outline length around `region` (a fill mask)."""
    dark = (image[..., :3].astype(int).max(axis=2) < 110) & (image[..., 3] > 128)
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    length = sum(cv2.arcLength(c, True) for c in contours)
    near = cv2.dilate(region.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    return float((dark & near & ~region).sum() / max(length, 1))


def test_lines_keep_their_width(swing):
    key_a, _, segment = swing
    out = segment.inbetween(0.5)
    before = ink_thickness(key_a, art.colour_mask(key_a, art.LIMB))
    after = ink_thickness(out, art.colour_mask(out, art.LIMB))
    assert after == pytest.approx(before, rel=0.35)


def test_bad_input_is_named():
    key = art.arm_figure(10)
    with pytest.raises(EngineError, match="differ in size"):
        CelInterpolator().prepare(key, key[:100])
    with pytest.raises(EngineError, match="RGBA uint8"):
        CelInterpolator().prepare(key[..., :3], key[..., :3])
    with pytest.raises(EngineError, match="RGBA uint8"):
        CelInterpolator().prepare(key.astype(np.float32), key.astype(np.float32))
    segment = CelInterpolator().prepare(key, art.arm_figure(60))
    with pytest.raises(EngineError, match="tau"):
        segment.inbetween(1.0)
    with pytest.raises(EngineError, match="sketch at tau 0.500 is 120x80"):
        CelInterpolator().prepare(key, art.arm_figure(60), {0.5: np.full((80, 120, 4), 255, np.uint8)})
    with pytest.raises(EngineError, match="no lines"):
        CelInterpolator().prepare(key, art.arm_figure(60), {0.5: np.full(key.shape, 255, np.uint8)})


def test_photographic_art_is_refused_with_a_reason():
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (96, 128, 4), dtype=np.uint8)
    noise[..., 3] = 255
    with pytest.raises(NotCelArt, match="flat"):
        CelInterpolator().prepare(noise, np.roll(noise, 5, axis=1))


@pytest.fixture(scope="module")
def rigged_swing():
    """The synthetic kid's arm swing (tools/synthetic_cel.py): upper arm, forearm and glove swing up
    through about 145 degrees in front of a torso and a round head whose turn only the eyes tell."""
    from tools import synthetic_cel

    scene = synthetic_cel.build("arm_swing", 0)

    def rgba(image):
        return np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])

    keys = rgba(synthetic_cel.render(scene, 0.0).image), rgba(synthetic_cel.render(scene, 1.0).image)
    return scene, synthetic_cel, CelInterpolator().prepare(*keys)


@pytest.mark.parametrize("tau", [0.25, 0.5, 0.75])
def test_rigged_arm_swings_on_its_skeleton(rigged_swing, tau):
    """Forearm hung from the upper arm (not from the leg it touches at rest), head from the body:
    the in-between lands on the rig's own pose at tau, one solid arm, no hole in the torso."""
    scene, synthetic_cel, segment = rigged_swing
    truth = synthetic_cel.render(scene, tau)
    out = segment.inbetween(tau)[..., :3]
    assert art.figure_iou(out, truth) > 0.88
    error = np.mean((out.astype(float) - truth.image.astype(float)) ** 2)
    assert 10 * np.log10(255.0**2 / error) > 29.0


def test_a_body_is_not_flipped_end_for_end_by_its_joint():
    """The synthetic walk over a hill, keys 2 and 4 (tools/synthetic_cel.py): the torso's outline
    changes from three-quarter to profile, and hung upside down from a limb about some point of
    their contact it fits about as well as its upright free pose. The free fit's evidence for the
    upright turn keeps it upright, so the middle in-between is the walking figure, not a body
    spinning through 90 degrees."""
    import math

    from tools import synthetic_cel

    scene = synthetic_cel.build("walk_arc", 0)
    taus = synthetic_cel.taus(9)

    def rgba(image):
        return np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])

    segment = CelInterpolator().prepare(rgba(synthetic_cel.render(scene, taus[2]).image),
                                        rgba(synthetic_cel.render(scene, taus[4]).image))
    largest = max(p.area for p in segment.parts)
    for part in segment.parts:
        if part.area >= 0.4 * largest:
            assert abs(math.degrees(part.motion.turn)) < 45, (part.index, part.area, math.degrees(part.motion.turn))
    truth = synthetic_cel.render(scene, taus[3])
    assert art.figure_iou(segment.inbetween(0.5), truth) > 0.62



def test_a_squashing_ball_whose_stripes_turn_through_it_moves_as_one_figure():
    """The bundled bouncing ball: its stripes change shape as it spins and squashes, so no stripe
    moves as a rigid piece, but the whole ball does. It is drawn solid on its chord (never handed
    to RIFE), and the cast shadow the landed ball covers stays on the ground and fades out."""
    key_a, key_b = (read_image(SAMPLES / "bouncing_ball_alpha" / name) for name in ("key_a.png", "key_b.png"))
    segment = CelInterpolator().prepare(key_a, key_b)
    assert segment.report["matched_by"] == "figures"

    def ball(image):  # (area, centre) of the opaque ball
        ys, xs = np.nonzero(image[..., 3] > 200)
        return len(xs), np.array([xs.mean(), ys.mean()])

    def shadow(image):  # pixels of the half-transparent shadow below the ball's landing height
        return int(((image[..., 3] > 20) & (image[..., 3] < 120))[340:].sum())

    (area_a, centre_a), (_, centre_b) = ball(key_a), ball(key_b)
    for tau in (0.25, 0.5, 0.75):
        area, centre = ball(segment.inbetween(tau))
        assert abs(area - area_a) < 0.05 * area_a  # solid, not a cross-fade of two half balls
        assert np.linalg.norm(centre - (centre_a + tau * (centre_b - centre_a))) < 6
    assert shadow(segment.inbetween(0.25)) > 0.9 * shadow(key_a)  # still on the ground, where it was
    assert shadow(segment.inbetween(0.75)) < 0.1 * shadow(key_a)  # gone as the ball lands


def _far_sleeve_figure(shift: int, sleeve: bool) -> np.ndarray:
    """The arm figure, and in key A a far sleeve sticking out behind the torso's back."""
    image = art.canvas()
    if sleeve:
        art.paint(image, art.capsule(image.shape[:2], (85.0 + shift, 70.0), -90.0, 30.0, 6), art.FOREARM)
    art.paint(image, art.torso_mask(image.shape[:2], shift), art.TORSO)
    art.paint(image, art.capsule(image.shape[:2], (art.SHOULDER[0] + shift, art.SHOULDER[1]), 30.0, art.ARM_LENGTH, 7), art.LIMB)
    return image


def test_a_part_key_b_hides_slides_behind_its_parent_as_it_fades():
    """Key B hides the far sleeve behind the torso: in between it slides in behind the torso while
    it fades, instead of hanging beside it, and it is never painted over the torso."""
    segment = CelInterpolator().prepare(_far_sleeve_figure(0, True), _far_sleeve_figure(20, False))
    assert segment.report["tucked_parts"] == 1

    def sleeve_beside_and_over(tau):
        image = segment.inbetween(tau)
        torso = art.torso_mask(image.shape[:2], round(20 * tau)) > 0
        sleeve = art.colour_mask(image, art.FOREARM, tolerance=12)
        return int((sleeve & ~torso).sum()), int((sleeve & cv2.erode(torso.astype(np.uint8), np.ones((5, 5))).astype(bool)).sum())

    start, quarter, half = (sleeve_beside_and_over(t) for t in (0.02, 0.25, 0.5))
    assert start[0] > 60, "the sleeve shows beside the torso at first"
    assert quarter[0] < 0.8 * start[0], "a quarter of the way, it has begun to slide in"
    assert half[0] < 0.25 * start[0]
    assert start[1] == quarter[1] == half[1] == 0, "the sleeve is behind the torso"



def test_a_part_key_a_hides_slides_out_from_behind_its_parent_as_it_appears():
    """The same the other way round: key A hides the sleeve, key B shows it; it comes out from
    behind the torso as it appears instead of fading in where key B has it."""
    segment = CelInterpolator().prepare(_far_sleeve_figure(0, False), _far_sleeve_figure(20, True))
    assert segment.report["tucked_parts"] == 1

    def sleeve_beside(tau):
        image = segment.inbetween(tau)
        torso = art.torso_mask(image.shape[:2], round(20 * tau)) > 0
        return int((art.colour_mask(image, art.FOREARM, tolerance=12) & ~torso).sum())

    assert sleeve_beside(0.4) == 0
    assert 0 < sleeve_beside(0.75) < sleeve_beside(0.98)
    assert sleeve_beside(0.98) > 60
