"""Detail restoration (engine/restoration/detail.py, correspondence.py, upscale.py): keys' pixels
where the generated frame shows what the keys show, the generated frame itself where it does not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.restoration.colour_match import ColourTransfer, fit_colour_transfer
from engine.restoration.correspondence import correspond
from engine.restoration.detail import DetailRestorer
from engine.restoration.pixels import grey_u8, resize, to_straight, to_working
from engine.restoration.upscale import upscale_lines
from tests.helpers import cel_scene

DRAWN = (128, 80)  # the "model canvas" the keys (512x320) are drawn at: 4x smaller
BORDER = 16


def _shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    h, w = image.shape[:2]
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)


def _restore(key_a, key_b, truth_low, tau, transfer_colour=None):
    generated = resize(to_working(truth_low), DRAWN) if truth_low.shape[:2] != DRAWN[::-1] else to_working(truth_low)
    if transfer_colour is not None:
        generated = transfer_colour.apply(generated)
    return DetailRestorer(key_a, key_b, DRAWN).restore(generated, tau)


def test_a_shifted_key_comes_back_as_the_shifted_full_resolution_key():
    key_a, key_b = cel_scene(0.0), cel_scene(1.0)
    truth = _shifted(key_a, 12, -8)  # whole full-resolution pixels: 3 and 2 model pixels
    restored = _restore(key_a, key_b, truth, 0.3)
    image = to_straight(restored.image)
    diff = np.abs(image.astype(int) - truth.astype(int)).max(-1)[BORDER:-BORDER, BORDER:-BORDER]
    assert (diff == 0).mean() > 0.99  # the key's own pixels, copied, not resampled
    assert diff.mean() < 1.0
    # what plain enlargement of the model-resolution frame gives, for scale
    bicubic = resize(resize(truth, DRAWN), (512, 320))
    plain = np.abs(bicubic.astype(int) - truth.astype(int)).max(-1)[BORDER:-BORDER, BORDER:-BORDER]
    assert (plain == 0).mean() < 0.9 and plain.max() > 100


def test_the_nearer_key_supplies_the_detail():
    """Both keys show the figure; at tau 0.2 the warped pixels come from the first key."""
    key_a = cel_scene(0.0)
    key_b = key_a.copy()
    key_b[..., :3] = np.clip(key_b[..., :3].astype(int) + 6, 0, 255).astype(np.uint8)  # a slightly lighter copy
    restored = to_straight(_restore(key_a, key_b, key_a, 0.2).image)
    inner = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    from_a = np.abs(restored.astype(int) - key_a.astype(int))[inner].max(-1)
    assert (from_a <= 1).mean() > 0.97


def test_new_content_comes_from_the_generated_frame():
    key_a, key_b = cel_scene(0.0), cel_scene(1.0)
    truth = cel_scene(0.5, new_disc=True)  # a yellow disc neither key has
    restored = _restore(key_a, key_b, truth, 0.5)
    image = to_straight(restored.image)
    centre = (int(320 * 0.2), int(512 * 0.15))
    inside = (slice(centre[0] - 8, centre[0] + 8), slice(centre[1] - 8, centre[1] + 8))
    assert restored.trust[inside].max() < 0.05  # no key explains the disc
    assert np.abs(image[inside][..., :3].astype(int) - (250, 210, 60)).max() <= 6
    # and its outline is a line again, not a grey blur: dark pixels ring the disc
    radius = int(320 * 0.06)
    ring = image[centre[0] - radius - 3 : centre[0] - radius + 3, centre[1] - 2 : centre[1] + 2, :3]
    assert ring.astype(int).sum(-1).min() < 3 * 110


def test_restoration_of_a_figure_in_motion_beats_plain_enlargement():
    key_a, key_b = cel_scene(0.0), cel_scene(1.0)
    truth = cel_scene(0.4)
    low = resize(truth, DRAWN)
    restored = to_straight(_restore(key_a, key_b, low, 0.4).image)
    bicubic = resize(low, (512, 320))

    def psnr(image):
        mse = np.mean((image[..., :3].astype(float) - truth[..., :3].astype(float)) ** 2)
        return 10 * np.log10(255.0**2 / mse)

    assert psnr(restored) > psnr(bicubic) + 3.0


def test_transparent_art_keeps_its_alpha():
    key_a, key_b = cel_scene(0.0, transparent=True), cel_scene(1.0, transparent=True)
    truth = _shifted(key_a, 8, 4)
    image = to_straight(_restore(key_a, key_b, truth, 0.3).image)
    inner = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    alpha_error = np.abs(image[..., 3].astype(int) - truth[..., 3].astype(int))[inner]
    assert (alpha_error == 0).mean() > 0.99
    clear = truth[..., 3][inner] == 0
    assert (image[..., 3][inner][clear] == 0).mean() > 0.995  # the paper stays clear
    opaque = truth[..., 3][inner] == 255
    colour_error = np.abs(image[..., :3].astype(int) - truth[..., :3].astype(int))[inner][opaque].max(-1)
    assert (colour_error <= 1).mean() > 0.99  # no fringe of the paper's colour


def test_colour_drift_is_removed():
    key_a, key_b = cel_scene(0.0), cel_scene(1.0)
    truth = _shifted(key_a, 4, 0)
    drift = ColourTransfer((1.06, 0.95, 1.0), (-6.0, 8.0, 4.0))
    restored = _restore(key_a, key_b, truth, 0.3, transfer_colour=drift)
    gain, offset = np.array(restored.colour.gain), np.array(restored.colour.offset)
    # the fitted transfer undoes the drift: applied after it, colours come back
    colours = np.array([[235.0, 228.0, 210.0], [230.0, 80.0, 60.0], [120.0, 170.0, 110.0]])
    drifted = colours * np.array(drift.gain) + np.array(drift.offset)
    assert np.abs(drifted * gain + offset - colours).max() < 3.0


def test_colour_fit_needs_enough_pairs():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 255, (50, 3))
    assert fit_colour_transfer(source, source * 1.1, np.ones(50)).is_identity


def test_correspondence_trusts_a_plain_shift_and_flags_what_moved_in():
    key = grey_u8(to_working(resize(cel_scene(0.0), DRAWN)))
    generated = _shifted(key, 3, 0)
    corr = correspond(generated, key)
    inner = (slice(4, -4), slice(6, -4))
    structured = (cv2.dilate(generated, np.ones((3, 3))) - cv2.erode(generated, np.ones((3, 3))) > 30)[inner]
    error = np.abs(corr.flow[inner] - (-3.0, 0.0)).max(-1)
    assert np.percentile(error[structured], 95) < 0.3  # where there is something to match, it is matched
    assert corr.consistent[inner].mean() > 0.9
    moved_in = np.zeros_like(key)
    moved_in[30:50, 50:70] = 255  # a white block that is not in the key
    corr = correspond(np.maximum(generated, moved_in), key)
    assert corr.consistent[30:50, 50:70].mean() < corr.consistent[inner].mean()


def test_line_preserving_upscale_keeps_lines_dark_and_narrow():
    full = np.full((80, 120, 4), 255, np.uint8)
    full[:, 58:62, :3] = 20  # a 4 px line
    low = to_working(resize(full, (30, 20)))
    plain = resize(low, (120, 80))
    sharp = upscale_lines(low, (120, 80), ink=np.array([20.0, 20.0, 20.0]))
    row_plain, row_sharp = plain[40, :, 0], sharp[40, :, 0]
    assert row_sharp.min() < 40  # the keys' ink again, where the model had a grey
    assert row_plain.min() > 100
    assert (row_sharp < 64).sum() == pytest.approx(4, abs=1)  # the drawn width
    assert (row_sharp < 200).sum() <= 6
    without_ink = upscale_lines(low, (120, 80))[40, :, 0]
    assert without_ink.min() >= low[..., 0].min() - 1e-3  # never darker than what the model drew
    assert (row_plain < 200).sum() > (row_sharp < 200).sum()  # bicubic smears it wider
    flat = sharp[5:15, 5:40]
    assert np.abs(flat - 255).max() < 1e-3  # flat paper untouched
