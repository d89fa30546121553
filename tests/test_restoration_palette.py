"""The keys' palette (engine/restoration/palette.py): found in flat-colour art, not in painted art;
snapping moves flat, near-palette colours onto it and leaves ramps and foreign colours alone."""

from __future__ import annotations

import numpy as np

from engine.restoration.palette import SNAP_TOLERANCE, extract_palette, snap_to_palette
from engine.restoration.pixels import to_straight, to_working
from tests.helpers import cel_scene

FILLS = [(235, 228, 210), (120, 170, 110), (230, 80, 60), (180, 55, 45), (250, 250, 250), (80, 120, 200)]


def test_the_palette_of_cel_art_holds_its_fills():
    palette = extract_palette(cel_scene(0.0), cel_scene(1.0))
    assert palette.is_flat_art
    found = {tuple(int(v) for v in c) for c in palette.colours}
    assert set(FILLS) <= found
    assert len(found) <= 16


def test_painted_art_is_not_flat_colour():
    rng = np.random.default_rng(3)
    ys, xs = np.mgrid[0:160, 0:256]
    painted = np.zeros((160, 256, 4), np.uint8)
    painted[..., 0] = (xs % 256)
    painted[..., 1] = (ys * 1.5).astype(np.uint8)
    painted[..., 2] = rng.integers(0, 255, (160, 256))
    painted[..., 3] = 255
    assert not extract_palette(painted, painted).is_flat_art


def _edge_frame(drift: float) -> np.ndarray:
    """Two fills with an anti-aliased ramp between them, and a soft shading gradient; the fills
    drift by `drift` grey levels as a model's output would."""
    image = np.zeros((64, 96, 4), np.uint8)
    image[..., 3] = 255
    image[:, :40, :3] = (230, 80, 60)
    image[:, 44:, :3] = (80, 120, 200)
    for i, x in enumerate(range(40, 44)):  # the ramp: 20 %, 40 %, 60 %, 80 % of the way
        w = (i + 1) / 5
        image[:, x, :3] = np.round((1 - w) * np.array([230, 80, 60]) + w * np.array([80, 120, 200]))
    ramp = image[:, 39:45, :3].copy()
    image[:, :40, :3] = np.clip(image[:, :40, :3].astype(int) + int(drift), 0, 255)
    image[:, 48:, :3] = np.clip(image[:, 48:, :3].astype(int) - int(drift), 0, 255)
    image[:, 39:45, :3] = ramp
    image[40:, 60:, 0] = np.linspace(60, 140, 36).astype(np.uint8)  # shading: a smooth gradient
    return image


def test_snapping_fixes_drifted_fills_and_keeps_the_anti_aliased_ramp():
    key = _edge_frame(0)
    key[40:, 60:, :3] = (80, 120, 200)
    palette = extract_palette(key, key)
    generated = _edge_frame(drift=6)
    snapped = to_straight(snap_to_palette(to_working(generated), palette))
    assert (snapped[10:30, 5:35, :3] == (230, 80, 60)).all()  # the fill is the keys' colour again
    assert (snapped[5:35, 50:90, :3] == (80, 120, 200)).all()
    assert (snapped[:, 40:44] == generated[:, 40:44]).all()  # every step of the ramp kept
    gradient = snapped[44:60, 66:92, 0]
    assert (gradient == generated[44:60, 66:92, 0]).all()  # soft shading untouched
    assert len(np.unique(gradient)) > 10


def test_colours_the_keys_never_had_are_left_alone():
    key = _edge_frame(0)
    palette = extract_palette(key, key)
    generated = key.copy()
    generated[10:30, 5:35, :3] = (230, 80 + int(SNAP_TOLERANCE) + 10, 60)  # a new colour
    snapped = to_straight(snap_to_palette(to_working(generated), palette))
    assert (snapped[12:28, 8:32] == generated[12:28, 8:32]).all()


def test_semi_transparent_pixels_are_not_snapped():
    key = _edge_frame(0)
    palette = extract_palette(key, key)
    generated = _edge_frame(drift=6)
    generated[..., 3] = 128
    snapped = to_straight(snap_to_palette(to_working(generated), palette))
    assert np.abs(snapped.astype(int) - generated.astype(int)).max() <= 1
