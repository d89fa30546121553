"""A key that hides the figure (behind a tree, a door frame): draw its segments across it.

A pair of keys cannot say where a figure went when one of them shows only a sliver of it. In a
shot of several keys the neighbouring key usually shows the figure again, so the pair across the
hidden key (the key before it to the key after it) is taken apart instead and read at the hidden
key's time. The hidden key still adds what it does show: its held scenery is painted over the
figure. The bridge is used only if, drawn at the hidden key's time, it redraws that key; a key
that shows something else (a cut, a new pose) keeps its own segment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import regions
from .interpolator import CelSegment
from .occlusion import scenery_over

#: A key hides the figure when it shows less than this share of what the other key shows of it.
HIDDEN_SHARE = 0.5
#: The bridge must redraw the hidden key with at most this many wrong pixels per figure pixel.
MAX_MISMATCH = 0.35
#: A redrawn pixel is wrong when a channel differs from the key by more than this.
PIXEL_TOLERANCE = 40


def hidden_key(segment: CelSegment) -> str | None:
    """"a" or "b" when that key shows much less of the moving figures than the other, else None."""
    shown_a, shown_b = segment.shown_figure()
    if shown_b < HIDDEN_SHARE * shown_a:
        return "b"
    if shown_a < HIDDEN_SHARE * shown_b:
        return "a"
    return None


@dataclass
class BridgedSegment:
    """A segment drawn from the pair across one of its keys: tau 0 and 1 of this segment are
    `start` and `end` in the wider pair's tau."""

    across: CelSegment
    start: float
    end: float
    report: dict

    def inbetween(self, tau: float) -> np.ndarray:
        return self.across.inbetween(self.start + tau * (self.end - self.start))


def bridge(across: CelSegment, key_tau: float, key: np.ndarray, start: float, end: float) -> BridgedSegment | None:
    """The segment [start, end] of `across` (taus in its own units) with `key`, which lies at
    `key_tau` in them, adding the scenery it paints over the figure; None when the bridge does not
    redraw the key."""
    drawn, figure = across.draw(key_tau)
    if not figure.any():
        return None
    front = across.front | scenery_over(figure, key, regions.segment(key), across.plate)
    with_key = replace(across, front=front, report=dict(across.report))
    drawn = np.where((figure & front)[..., None], across.plate, drawn)  # the scenery over the figure
    wrong = np.abs(drawn.astype(np.int16) - key.astype(np.int16)).max(axis=2) > PIXEL_TOLERANCE
    mismatch = wrong.sum() / figure.sum()
    if mismatch > MAX_MISMATCH:
        return None
    with_key.report.update(bridged_hidden_key=True, hidden_key_mismatch=round(float(mismatch), 3),
                           held_in_front_pixels=int(front.sum()))
    return BridgedSegment(with_key, start, end, with_key.report)
