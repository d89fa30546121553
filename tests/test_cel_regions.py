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


def test_a_thin_gap_reads_as_its_paint_not_its_edges():
    """A narrow gap of backdrop between two inked shapes is mostly anti-aliased edge; its paint is
    still the backdrop's (a darker mean would stop it from being recognised as backdrop)."""
    key = art.canvas()
    # two inked bars with a gap a few pixels wide between them, closed by a bar across each end
    for x0, y0, x1, y1 in ((60, 30, 66, 110), (74, 30, 80, 110), (55, 24, 85, 34), (55, 106, 85, 116)):
        mask = np.zeros(key.shape[:2], np.uint8)
        mask[y0:y1, x0:x1] = 255
        art.paint(key, mask, art.LIMB)
    seg = segment(key)
    gap = seg.labels[70, 70]
    assert gap >= 0 and gap != seg.labels[5, 5], "the gap should be a region of its own"
    edge_mean = key[seg.labels == gap, :3].astype(float).mean(axis=0)
    assert np.abs(edge_mean - art.BACKDROP[:3]).max() > 12, "the gap's pixels should be darkened by the ink beside them"
    assert np.abs(seg.regions[gap].colour[:3] - art.BACKDROP[:3]).max() <= 2
