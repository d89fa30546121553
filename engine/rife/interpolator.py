"""RIFE in-betweens at any tau, for any frame size, with transparency: the engine's classical painter.

`RifeInterpolator` holds one network (loaded once) and draws in-betweens segment by segment:
`prepare(key_a, key_b)` turns a keyframe pair into tensors once, `inbetween(pair, tau)` draws one
drawing. How tau is honoured depends on the release:
- RIFE 4.25 takes tau as an input: one network pass per in-between; the keys' feature maps (and
  their copies at every pyramid level's size) are computed once per segment and shared by every tau.
- RIFE HDv3 draws midpoints only. Other taus come from bisection: midpoints of midpoints (each
  drawn once and reused by every tau of the segment) until the two drawings around tau are at most
  `bisection_interval` apart, then one flow-based step between those two: their midpoint flows scaled
  to tau (linear motion over the short interval) and the fusion mask's odds weighted (1 - t) : t.
Neither path ever cross-fades: every in-between is the keys moved along estimated flows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..api import EngineError
from .frames import KeyPair, key_pair, to_rgba
from .variants import DEFAULT_VARIANT, VARIANTS, RifeVariant
from .warp import backward_warp, blend_warped
from .weights import load_into

#: RIFE's `scale`: flow is estimated on a pyramid 1/scale times coarser. Powers of two keep every
#: pyramid level on whole pixels.
SCALES = (0.25, 0.5, 1.0, 2.0)
#: Flow levels RIFE 4.25 runs in fast mode: all but the full-size one.
FAST_LEVELS = 4


@dataclass(frozen=True)
class RifeConfig:
    variant: str = DEFAULT_VARIANT
    scale: float = 1.0  # 0.5 estimates flow at half resolution: faster, coarser motion detail
    device: str = "cpu"
    bisection_interval: float = 1.0 / 8.0  # HDv3 only: see the module docstring
    # 4.25 only: True repeats the released code's arithmetic to the last bit (every pyramid level
    # warps full-size keys); False runs each level at its own size: ~30 % faster, same scores.
    reference_arithmetic: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise EngineError(f"unknown RIFE variant {self.variant!r}: choose one of {', '.join(VARIANTS)}")
        if self.scale not in SCALES:
            raise EngineError(f"RIFE scale must be one of {', '.join(map(str, SCALES))}, got {self.scale}")
        if not 0.0 < self.bisection_interval <= 0.5:
            raise EngineError(f"bisection interval must be in (0, 0.5], got {self.bisection_interval}")


@dataclass
class Segment:
    """A prepared keyframe pair plus what later taus of the same segment can reuse."""

    keys: KeyPair
    # RIFE 4.25: each key plus its features, full size (reference arithmetic) or at every level's size
    described: tuple[torch.Tensor, torch.Tensor] | None = None
    pyramids: tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]] | None = None
    # HDv3: drawings at dyadic taus as (guide, carried), and the midpoint flow and mask of each interval
    drawings: dict[float, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    midpoint_flows: dict[tuple[float, float], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


class RifeInterpolator:
    def __init__(self, config: RifeConfig | None = None) -> None:
        self.config = config or RifeConfig()
        self.variant: RifeVariant = VARIANTS[self.config.variant]
        self.device = torch.device(self.config.device)
        self.network = self.variant.build().eval()
        self.weights_path = load_into(self.network, self.variant.weights)
        self.network.to(self.device)
        self.size_multiple = int(self.network.size_multiple / self.config.scale)

    @torch.inference_mode()
    def prepare(self, key_a: np.ndarray, key_b: np.ndarray) -> Segment:
        """Tensors for a pair of same-size RGBA uint8 keyframes."""
        if key_a.shape != key_b.shape:
            raise EngineError(
                f"keyframes differ in size: {key_a.shape[1]}x{key_a.shape[0]} and {key_b.shape[1]}x{key_b.shape[0]}"
            )
        keys = key_pair(key_a, key_b, self.size_multiple, self.device)
        segment = Segment(keys)
        if self.variant.takes_tau:
            described = (self.network.describe(keys.guide_a), self.network.describe(keys.guide_b))
            if self.config.reference_arithmetic:
                segment.described = described
            else:
                segment.pyramids = tuple(self.network.pyramid(d, self.config.scale) for d in described)
        else:
            segment.drawings[0.0] = (keys.guide_a, keys.carried_a)
            segment.drawings[1.0] = (keys.guide_b, keys.carried_b)
        return segment

    @torch.inference_mode()
    def inbetween(self, segment: Segment, tau: float, fast: bool = False) -> np.ndarray:
        """The in-between at `tau` in (0, 1) as straight-alpha RGBA uint8 at the keyframes' size.

        `fast` (RIFE 4.25 only) skips the full-size flow level: about twice as fast, softer lines.
        """
        if not 0.0 < tau < 1.0:
            raise EngineError(f"tau must be strictly between 0 and 1 (the keys themselves), got {tau}")
        carried = self._native(segment, tau, fast) if self.variant.takes_tau else self._bisected(segment, tau)
        return to_rgba(carried, segment.keys.height, segment.keys.width)

    def _native(self, segment: Segment, tau: float, fast: bool) -> torch.Tensor:
        keys = segment.keys
        taus = torch.tensor([tau], dtype=torch.float32, device=self.device)
        if segment.pyramids is not None:
            levels = FAST_LEVELS if fast else len(segment.pyramids[0])
            flow, mask = self.network.estimate(*segment.pyramids, taus, self.config.scale, levels)
        else:
            flow, mask = self.network.estimate_reference(*segment.described, taus, self.config.scale)
        return blend_warped(keys.carried_a, keys.carried_b, flow, mask)

    def _midpoint_flow(self, segment: Segment, lo: float, hi: float) -> tuple[torch.Tensor, torch.Tensor]:
        if (lo, hi) not in segment.midpoint_flows:
            guide_lo, guide_hi = segment.drawings[lo][0], segment.drawings[hi][0]
            segment.midpoint_flows[lo, hi] = self.network.estimate(guide_lo, guide_hi, self.config.scale)
        return segment.midpoint_flows[lo, hi]

    def _drawing(self, segment: Segment, lo: float, hi: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The midpoint drawing of [lo, hi] (both ends already drawn), drawn once per segment."""
        mid = (lo + hi) / 2
        if mid not in segment.drawings:
            flow, mask = self._midpoint_flow(segment, lo, hi)
            (guide_lo, carried_lo), (guide_hi, carried_hi) = segment.drawings[lo], segment.drawings[hi]
            guide = blend_warped(guide_lo, guide_hi, flow, mask)
            carried = guide if carried_lo is guide_lo else blend_warped(carried_lo, carried_hi, flow, mask)
            segment.drawings[mid] = (guide, carried)
        return segment.drawings[mid]

    def _bisected(self, segment: Segment, tau: float) -> torch.Tensor:
        lo, hi = 0.0, 1.0
        while hi - lo > self.config.bisection_interval:
            mid = (lo + hi) / 2
            self._drawing(segment, lo, hi)
            if math.isclose(tau, mid, rel_tol=0.0, abs_tol=1e-9):
                return segment.drawings[mid][1]
            lo, hi = (lo, mid) if tau < mid else (mid, hi)
        t = (tau - lo) / (hi - lo)
        if math.isclose(t, 0.5, rel_tol=0.0, abs_tol=1e-9):
            return self._drawing(segment, lo, hi)[1]
        flow, mask = self._midpoint_flow(segment, lo, hi)
        # Midpoint flows cover half the interval; at t the motion to lo is t/0.5 of it, to hi (1-t)/0.5.
        flow_lo, flow_hi = flow[:, :2] * (2 * t), flow[:, 2:4] * (2 * (1 - t))
        weight = torch.sigmoid(mask + math.log((1 - t) / t))
        carried_lo, carried_hi = segment.drawings[lo][1], segment.drawings[hi][1]
        return backward_warp(carried_lo, flow_lo) * weight + backward_warp(carried_hi, flow_hi) * (1 - weight)

    def describe(self) -> dict:
        weights = self.variant.weights
        return {
            "rife_variant": self.variant.name,
            "rife_weights": f"{weights.distribution}=={weights.version}:{weights.path}",
            "rife_weights_sha256": weights.sha256,
            "rife_scale": self.config.scale,
            "rife_reference_arithmetic": self.config.reference_arithmetic,
        }
