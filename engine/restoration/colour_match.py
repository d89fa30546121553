"""Global colour match: remove the whole frame's brightness and tone drift against the keys.

The model's latent round trip shifts a frame's colours a little (a few percent of gain and
offset, differently per channel). Where a generated pixel and a key pixel are known to show the same
point (trusted correspondence, in flat areas so that the model's softer edges do not count), the
two colours must agree: a per-channel gain and offset fitted to those pairs by robust least squares
is that drift, and its inverse is applied to the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Fewer trusted pairs than this and the frame is left as it is (the fit would be guesswork).
MIN_PAIRS = 200
#: The drift the model plausibly adds; a fit beyond these is clamped (it would be a content change).
GAIN_RANGE = (0.8, 1.25)
OFFSET_RANGE = 40.0


@dataclass(frozen=True)
class ColourTransfer:
    """colour' = gain·colour + offset per RGB channel, on premultiplied colour."""

    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def is_identity(self) -> bool:
        return self.gain == (1.0, 1.0, 1.0) and self.offset == (0.0, 0.0, 0.0)

    def apply(self, work: np.ndarray) -> np.ndarray:
        """Premultiplied RGBA float32 -> the same with the colour corrected (alpha untouched)."""
        if self.is_identity:
            return work
        out = work.copy()
        gain = np.asarray(self.gain, np.float32)
        offset = np.asarray(self.offset, np.float32)
        # premultiplied: the offset scales with coverage so clear paper stays clear
        out[..., :3] = work[..., :3] * gain + offset * (work[..., 3:4] / 255.0)
        out[..., :3] = np.clip(out[..., :3], 0.0, work[..., 3:4])
        return out


def fit_colour_transfer(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> ColourTransfer:
    """The per-channel gain/offset taking `source` colours (N, 3) to `target` (N, 3).

    Weighted least squares, then two rounds of Huber reweighting so that the few pairs that are not
    really the same point (a wrong match that passed the checks) do not pull the fit.
    """
    keep = weights > 0
    if int(keep.sum()) < MIN_PAIRS:
        return ColourTransfer()
    src = source[keep].astype(np.float64)
    dst = target[keep].astype(np.float64)
    base = weights[keep].astype(np.float64)
    gains, offsets = [], []
    for c in range(3):
        x, y, w = src[:, c], dst[:, c], base.copy()
        gain, offset = 1.0, 0.0
        for _ in range(3):
            sw = w.sum()
            mx, my = (w * x).sum() / sw, (w * y).sum() / sw
            var = (w * (x - mx) ** 2).sum() / sw
            gain = ((w * (x - mx) * (y - my)).sum() / sw / var) if var > 25.0 else 1.0
            gain = float(np.clip(gain, *GAIN_RANGE))
            offset = float(np.clip(my - gain * mx, -OFFSET_RANGE, OFFSET_RANGE))
            residual = np.abs(y - (gain * x + offset))
            w = base * np.minimum(1.0, 6.0 / np.maximum(residual, 1e-6))
        gains.append(round(gain, 4))
        offsets.append(round(offset, 3))
    return ColourTransfer(tuple(gains), tuple(offsets))
