"""The metric maths on inputs with known answers: Fréchet distance in closed form, the unbiased
polynomial MMD against a direct loop, CPBD on ramps of known width, the frame scores against the
shared scorer, and the feature networks' layouts on random weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.cpbd import cpbd, edge_width
from evaluation.distributions import frechet_distance, fvd_from_features, kvd_from_features, polynomial_mmd2
from evaluation.frame_metrics import frame_scores

SHARED = Path(__file__).resolve().parents[2] / "shared"


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    mu1, mu2 = np.array([0.0, 0.0, 0.0]), np.array([1.0, 2.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 9.0])
    # ||mu1 - mu2||^2 + sum (sqrt(a) - sqrt(b))^2 = 5 + 1 + 1 + 0
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(7.0, abs=1e-9)


def test_frechet_distance_matches_the_symmetric_square_root_form():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + np.eye(5), b @ b.T + 0.5 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)

    def sqrt_spd(m):
        w, v = np.linalg.eigh(m)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    root = sqrt_spd(s1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrt_spd(root @ s2 @ root))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fvd_is_zero_for_identical_sets_and_the_shift_for_a_shifted_gaussian():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(20000, 4))
    assert fvd_from_features(real, real) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    fake = rng.normal(size=(20000, 4)) + shift
    assert fvd_from_features(real, fake) == pytest.approx(float(shift @ shift), abs=0.05)  # 5.25 in closed form


def test_kvd_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(7, 5)), rng.normal(loc=0.3, size=(9, 5))

    def k(a, b):
        return (a @ b / 5 + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(9)) / (7 * 9)
    assert polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    same = rng.normal(size=(400, 5))
    other = rng.normal(size=(400, 5))
    assert abs(kvd_from_features(same, other)) < 0.05 < kvd_from_features(same, other + 1.0)


def _ramp(width: int, low: int = 0, high: int = 255, size: int = 128) -> np.ndarray:
    x = np.arange(size, dtype=np.float64)
    row = low + (high - low) * np.clip((x - size // 2) / width, 0, 1)
    return np.round(np.tile(row, (size, 1))).astype(np.uint8)


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8])
def test_edge_width_of_a_ramp_is_its_width(width):
    image = _ramp(width).astype(np.float64)
    assert edge_width(image[0], 64 + width // 2, rising=True) == width


def test_cpbd_follows_the_just_noticeable_blur_widths():
    # High contrast (> 50 grey levels): w_JNB = 3, so widths 1-2 are sharp and 3 and up are blurred
    # (P_blur = 1 - exp(-(w/3)^3.6) = 0.207 at w = 2, 0.632 > P_JNB at w = 3).
    assert [cpbd(_ramp(w)) for w in (1, 2, 3, 4)] == [1.0, 1.0, 0.0, 0.0]
    # Low contrast (<= 50): w_JNB = 5, so a 4 px ramp is still sharp and a 5 px one is not.
    assert [cpbd(_ramp(w, 100, 145)) for w in (2, 4, 5)] == [1.0, 1.0, 0.0]
    flat = np.full((128, 128), 90, np.uint8)
    assert np.isnan(cpbd(flat))


def test_cpbd_falls_as_a_drawing_is_blurred():
    import cv2

    rng = np.random.default_rng(3)
    image = np.full((192, 256, 3), 235, np.uint8)
    for _ in range(40):
        x0, y0 = (int(v) for v in rng.integers(0, 230, 2))
        cv2.line(image, (x0, y0), (x0 + int(rng.integers(-60, 60)), y0 + int(rng.integers(20, 80))), (20, 20, 20), 2)
    values = [cpbd(cv2.GaussianBlur(image, (0, 0), s) if s else image) for s in (0, 1.0, 2.0)]
    assert values[0] > 0.6 and values[0] > values[1] > values[2]


def test_frame_scores_of_identical_frames_are_perfect():
    image = np.zeros((64, 96, 3), np.uint8)
    image[20:40, 30:32] = 255
    image[:, 50:] = 128
    scores = frame_scores(image, image)
    assert scores == {"psnr": 100.0, "ssim": pytest.approx(1.0), "line_f": 1.0, "edge_f": 1.0}


@pytest.mark.skipif(not (SHARED / "tools" / "score_inbetweens.py").exists(), reason="shared/tools/score_inbetweens.py is absent")
def test_frame_scores_agree_with_the_shared_scorer_on_real_frames():
    sys.path.insert(0, str(SHARED / "tools"))
    try:
        import score_inbetweens as reference
    finally:
        sys.path.remove(str(SHARED / "tools"))
    root = SHARED / "cartoon"
    cases = [c for c in json.loads((root / "triplets.json").read_text())["cases"] if c["quick"]][::20]
    for case in cases:
        a, b = reference.load(str(root / case["start"])), reference.load(str(root / case["end"]))
        for gt_path, t in zip(case["gt"], case["gt_t"]):
            gt = reference.load(str(root / gt_path))
            prediction = reference.crossfade(a, b, t)
            expected = reference.metrics(gt, prediction)
            ours = frame_scores(gt, prediction)
            for key, value in ours.items():
                assert value == pytest.approx(expected[key], abs=1e-9), (case["id"], key)


def test_i3d_has_the_reference_layout_and_gives_400_logits():
    from evaluation.i3d import InceptionI3d, resample

    torch.manual_seed(0)
    net = InceptionI3d().eval()
    keys = net.state_dict()
    assert {"Conv3d_1a_7x7.conv3d.weight", "Conv3d_1a_7x7.bn.running_mean", "Mixed_3b.b1b.conv3d.weight",
            "Mixed_5c.b3b.bn.weight", "logits.conv3d.bias"} <= set(keys)
    assert sum(v.numel() for k, v in keys.items() if "running" not in k and "num_batches" not in k) == 12_697_264
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 8, 64, 64)).shape == (1, 400)
    assert list(resample(np.arange(3)[:, None, None, None], 16)[:, 0, 0, 0]) == [0] * 6 + [1] * 5 + [2] * 5


def test_lpips_is_zero_for_the_same_image_symmetric_and_grows_with_noise():
    from engine.torch_compat import import_torchvision
    from evaluation.lpips import CHANNELS, Lpips

    torch.manual_seed(0)
    backbone = import_torchvision().models.alexnet(weights=None).state_dict()
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(CHANNELS)}
    lpips = Lpips(backbone, heads)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    noisy = [np.clip(image + rng.normal(0, s, image.shape), 0, 255).astype(np.uint8) for s in (5, 40)]
    assert lpips.distance(image, image) == pytest.approx(0.0, abs=1e-7)
    assert lpips.distance(image, noisy[0]) == pytest.approx(lpips.distance(noisy[0], image), rel=1e-5)
    assert 0 < lpips.distance(image, noisy[0]) < lpips.distance(image, noisy[1])


def test_whole_image_edge_widths_match_the_per_pixel_definition():
    import cv2

    from evaluation.cpbd import edge_widths

    rng = np.random.default_rng(4)
    grey = cv2.GaussianBlur(rng.integers(0, 255, (40, 60)).astype(np.uint8), (0, 0), 1.5).astype(np.float64)
    rising = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3) > 0
    widths = edge_widths(grey, rising)
    assert all(widths[y, x] == edge_width(grey[y], x, bool(rising[y, x])) for y in range(40) for x in range(60))
