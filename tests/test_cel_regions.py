"""Cutting a cel into ink and flat colour regions."""

from __future__ import annotations

import numpy as np

from engine.cel.parts import TONE_INK_SHARE
from engine.cel.regions import adjacency, segment
from tests import cel_drawings as art


def test_regions_and_ink_of_a_drawing():
    key = art.arm_figure(10)
    seg = segment(key)
    colours = [tuple(np.rint(r.colour[:3]).astype(int)) for r in seg.regions if r.area > 100]
    for expected in (art.BACKDROP[:3], art.GROUND[:3], art.TORSO, art.LIMB):
        assert any(np.abs(np.subtract(c, expected)).max() <= 3 for c in colours), expected
    # the outlines are ink, the fills are not
    limb = art.colour_mask(key, art.LIMB, tolerance=2)
    assert not seg.ink[limb].any()
    assert seg.ink.sum() > 200
    assert seg.flat_fraction > 0.9
    # every pixel has a nearest region; ink pixels have label -1
    assert (seg.owner >= 0).all() and (seg.labels[seg.ink] == -1).all()


def test_adjacency_knows_ink_from_tone():
    key = art.canvas()
    key[40:80, 40:80, :3] = (200, 60, 60)  # a flat tone patch, no outline
    mask = np.zeros(key.shape[:2], np.uint8)
    mask[40:80, 120:160] = 255
    art.paint(key, mask, (60, 60, 200))  # an inked patch
    seg = segment(key)

    def region_at(x, y):
        return seg.labels[y, x]

    backdrop, tone, inked = region_at(5, 5), region_at(60, 60), region_at(140, 60)
    adj = adjacency(seg)
    assert adj[tuple(sorted((backdrop, tone)))][1] <= TONE_INK_SHARE  # joined as one part's tones
    assert adj[tuple(sorted((backdrop, inked)))][1] > 0.9


def test_noise_is_not_flat():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (60, 80, 4), dtype=np.uint8)
    noise[..., 3] = 255
    assert segment(noise).flat_fraction < 0.2
