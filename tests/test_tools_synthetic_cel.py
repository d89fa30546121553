"""The synthetic cel generator draws what its rig says, at any size, with masks the scorer can trust."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tools import synthetic_cel as sc

REPO = Path(__file__).resolve().parents[1]
SCORER = REPO.parent / "shared" / "tools" / "score_inbetweens.py"


def present(image: np.ndarray, plate: np.ndarray, thr: float = 20.0) -> np.ndarray:
    """The scorer's presence test: premultiplied RGB distance or alpha difference above thr."""
    def premul(x):
        x = x.astype(np.float64)
        if x.shape[2] == 3:
            return x, np.full(x.shape[:2], 255.0)
        a = x[..., 3]
        return x[..., :3] * a[..., None] / 255.0, a

    (ci, ai), (cp, ap) = premul(image), premul(plate)
    return np.maximum(np.sqrt(((ci - cp) ** 2).sum(-1)), np.abs(ai - ap)) > thr


def fringe(mask: np.ndarray, px: int = 2) -> np.ndarray:
    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, kernel) - cv2.erode(m, kernel)).astype(bool)


@pytest.mark.parametrize("motion", sc.MOTIONS)
def test_mask_is_what_differs_from_the_plate_up_to_the_antialiased_fringe(motion):
    scene = sc.build(motion)
    for tau in (0.0, 0.5, 1.0):
        frame = sc.render(scene, tau)
        differs = present(frame.image, frame.plate)
        disagree = differs ^ frame.mask
        assert frame.mask.sum() > 1500, f"{motion} at tau {tau}: the figure is missing"
        # every disagreement sits on the figure's anti-aliased edge or where its ink crosses the
        # background's ink (the figure drawn in the plate's own colour), and there are few of them
        ink_on_ink = (frame.image[..., :3].max(-1) < 60) & (frame.plate[..., :3].max(-1) < 60)
        assert not (disagree & ~fringe(frame.mask) & ~ink_on_ink).any(), f"{motion} at tau {tau}: mask and image disagree inside the figure"
        assert disagree.sum() < 0.12 * frame.mask.sum()


def test_plate_is_the_frame_without_the_figure():
    scene = sc.build("occlusion")
    frame = sc.render(scene, 0.3)
    away = ~cv2.dilate(frame.mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert np.array_equal(frame.image[away], frame.plate[away])
    assert np.array_equal(sc.render(scene, 0.0).plate, sc.render(scene, 1.0).plate)  # a held background


def _principal_angle(mask: np.ndarray) -> float:
    ys, xs = np.nonzero(mask)
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    vals, vecs = np.linalg.eigh(cov)
    vx, vy = vecs[:, np.argmax(vals)]
    return math.degrees(math.atan2(vy, vx))


def _colour_mask(image: np.ndarray, colour, tol: float = 6.0) -> np.ndarray:
    return np.sqrt(((image[..., :3].astype(np.float64) - colour) ** 2).sum(-1)) < tol


def test_limbs_are_drawn_at_the_rigs_angles_through_a_swing_of_more_than_90_degrees():
    scene = sc.build("arm_swing")
    parts = {p.name: p for p in scene.parts}
    angles = []
    for tau in np.linspace(0, 1, 9):
        frame = sc.render(scene, tau)
        joints = frame.joints
        # upper arm: its sleeve-coloured pixels lie along the rig's world angle (mod 180)
        sleeve = _colour_mask(frame.image, parts["upper_arm"].fill)
        diff = (_principal_angle(sleeve) - joints["upper_arm"]["angle"]) % 180
        assert min(diff, 180 - diff) < 4.0, f"tau {tau}: upper arm drawn {diff:.1f} degrees off the rig"
        # hand: the glove's centroid is the rig's wrist carried 5 units along the forearm's direction
        glove = _colour_mask(frame.image, parts["hand"].fill) & frame.mask
        ys, xs = np.nonzero(glove)
        s, _, _ = sc.canvas_transform(sc.DEFAULT_SIZE)
        a = math.radians(joints["hand"]["angle"])
        expect = (joints["hand"]["x"] + 5 * s * math.cos(a), joints["hand"]["y"] + 5 * s * math.sin(a))
        assert math.dist((xs.mean() + 0.5, ys.mean() + 0.5), expect) < 1.0
        angles.append(joints["upper_arm"]["angle"])
    assert abs(angles[-1] - angles[0]) > 90
    # linear in tau: the in-between at tau 0.5 is halfway in angle
    assert angles[4] == pytest.approx((angles[0] + angles[-1]) / 2, abs=0.5)


@pytest.mark.slow
def test_full_hd_render_downsampled_matches_the_design_size_render():
    scene = sc.build("arm_swing")
    small = sc.render(scene, 0.5).image.astype(np.float64)
    same_aspect = sc.render(scene, 0.5, (1920, 1200)).image
    down = cv2.resize(same_aspect, sc.DEFAULT_SIZE, interpolation=cv2.INTER_AREA).astype(np.float64)
    assert np.abs(down - small).mean() < 1.0
    hd = sc.render(scene, 0.5, (1920, 1080))
    s, ox, oy = sc.canvas_transform((1920, 1080))
    assert (s, ox, oy) == (3.375, 96.0, 0.0)
    centre = hd.image[:, 96:1824]
    down = cv2.resize(centre, sc.DEFAULT_SIZE, interpolation=cv2.INTER_AREA).astype(np.float64)
    mse = ((down - small) ** 2).mean()
    assert 10 * math.log10(255**2 / mse) > 30
    assert hd.mask.sum() == pytest.approx(sc.render(scene, 0.5).mask.sum() * s * s, rel=0.03)


def test_rendering_is_deterministic_and_the_seed_varies_it():
    a = sc.render(sc.build("leap", seed=5), 0.4)
    b = sc.render(sc.build("leap", seed=5), 0.4)
    c = sc.render(sc.build("leap", seed=6), 0.4)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image, c.image)


def _bbox(mask):
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_each_motion_does_what_its_name_says():
    leap = sc.build("leap")
    start, end = sc.render(leap, 0.0).mask, sc.render(leap, 1.0).mask
    x0, _, x1, _ = _bbox(start)
    travel = np.nonzero(end)[1].mean() - np.nonzero(start)[1].mean()
    assert travel > 2 * (x1 - x0)

    occ = sc.build("occlusion")
    key, middle = sc.render(occ, 0.0), sc.render(occ, 0.5)
    assert middle.mask.sum() < 0.6 * key.mask.sum()  # mostly behind the trunk
    trunk = _colour_mask(key.plate, (128, 86, 52), 1.0)
    assert np.array_equal(middle.image[trunk], key.plate[trunk])  # the tree stays in front

    ball = sc.build("bounce")
    x0, y0, x1, y1 = _bbox(sc.render(ball, 1.0).mask)
    assert (x1 - x0) / (y1 - y0) == pytest.approx((28 / 0.7 + 1.1) / (28 * 0.7 + 1.1), rel=0.06)  # squashed
    ys, xs = np.nonzero(sc.render(ball, 0.6).mask)
    low, high = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(np.float64)))
    along = 1 + 0.35 * 0.6 / 0.8
    assert math.sqrt(high / low) == pytest.approx(along * along, rel=0.08)  # stretched along the path, area kept

    arc = sc.build("walk_arc")
    hips = [arc.joints(t)["torso"] for t in (0.0, 0.5, 1.0)]
    centre = np.array(sc.HILL_CENTRE)
    radii = [np.linalg.norm(np.array([h["x"], h["y"]]) - centre) for h in hips]
    assert radii == pytest.approx([radii[0]] * 3)
    assert hips[1]["y"] < hips[0]["y"] - 20 and hips[0]["angle"] < -20 < 20 < hips[2]["angle"]


def test_transparent_cel_has_alpha_only_on_the_figure():
    frame = sc.render(sc.build("transparent"), 0.5)
    assert frame.image.shape[2] == 4 and frame.plate.shape[2] == 4
    assert not frame.plate[..., 3].any()
    alpha = frame.image[..., 3]
    assert (alpha[frame.mask] >= 128).all() and not alpha[~fringe(frame.mask) & ~frame.mask].any()
    partial = (alpha > 0) & (alpha < 255)
    assert partial.any() and (partial & ~fringe(frame.mask)).sum() == 0  # anti-aliased edge only


def test_written_sequence_is_complete_and_never_replaces_files_unasked(tmp_path):
    folder = sc.write_sequence(tmp_path / "leap", "leap", frames=5)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["key_frames"] == [0, 4] and meta["taus"] == [0, 0.25, 0.5, 0.75, 1.0]
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["background.png", "meta.json"] + [f"{k}_{i:02d}.png" for k in ("frame", "mask") for i in range(5)])
    frame = np.array(Image.open(folder / "frame_02.png"))
    assert np.array_equal(frame, sc.render(sc.build("leap"), 0.5).image)
    mask = np.array(Image.open(folder / "mask_02.png"))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert meta["joints"][2]["torso"]["x"] == pytest.approx(sc.render(sc.build("leap"), 0.5).joints["torso"]["x"], abs=1e-3)
    with pytest.raises(FileExistsError):
        sc.write_sequence(folder, "leap", frames=5)
    assert np.array_equal(np.array(Image.open(folder / "frame_02.png")), frame)
    sc.write_sequence(folder, "leap", seed=1, frames=5, overwrite=True)
    assert not np.array_equal(np.array(Image.open(folder / "frame_02.png")), frame)


def test_cli_names_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit):
        sc.main([str(tmp_path), "--size", "512by320"])
    assert "512by320" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="at least 3 frames"):
        sc.main([str(tmp_path), "--frames", "2", "--motions", "bounce"])


@pytest.mark.skipif(not SCORER.exists(), reason="shared/tools/score_inbetweens.py is not beside the repository")
def test_the_scorer_reads_the_folders_and_sees_the_crossfade_ghost(tmp_path):
    folder = sc.write_sequence(tmp_path / "leap", "leap", frames=5)
    truth = subprocess.run([sys.executable, str(SCORER), str(folder), str(folder)], capture_output=True, text=True, check=True)
    result = json.loads(truth.stdout.strip().splitlines()[-1])
    assert result["n"] == 3 and result["keys"] == [0, 4]
    assert result["pred"]["figure_iou"] == 1.0 and result["pred"]["ghost_ratio"] == 0.0
    # the cross-fade of a leap leaves two half-copies: a low IoU and a large ghost
    assert result["baseline"]["figure_iou"] < 0.5 and result["baseline"]["ghost_ratio"] > 0.5


def test_straight_reference_meets_the_keys_and_cuts_the_arcs():
    """`straight_between` moves every pose parameter straight between two keys: it draws the keys
    themselves at its ends, the truth where the rig is linear (the arm swing), and the chord of a
    parabola (the leap) below its arc."""
    from tools.synthetic_cel import build, render, straight_between

    swing = build("arm_swing", 0)
    straight = straight_between(swing, 0.0, 1.0)
    assert np.array_equal(render(straight, 0.0).image, render(swing, 0.0).image)
    assert np.array_equal(render(straight, 0.5).image, render(swing, 0.5).image)
    leap = build("leap", 0)
    chord = straight_between(leap, 0.0, 1.0)
    assert np.array_equal(render(chord, 1.0).image, render(leap, 1.0).image)
    assert render(chord, 0.5).joints["torso"]["y"] > render(leap, 0.5).joints["torso"]["y"] + 30  # lower: y grows down
