"""Detail restoration: a generated frame at model resolution -> the keys' full resolution.

The keys hold the detail the model could not draw at its small canvas: crisp lines of the right
width and darkness, exact flat colours. For each key, a dense correspondence from the generated
frame (at model resolution) says where each of its points sits in the key; where that is trusted,
the full-resolution key pixels are warped into place, preferring the key nearer in time (τ). Where
neither key explains the pixel (new content, disocclusion, a change the model made on purpose),
the generated frame itself is enlarged with a line-preserving upscale. The trust masks are soft
(feathered), so warped and upscaled areas meet without seams. Before anything is compared or
enlarged, the frame's global colour drift against the keys is removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .colour_match import ColourTransfer, fit_colour_transfer
from .correspondence import Correspondence, correspond
from .palette import Palette, snap_to_palette
from .pixels import LUMA, disc, grey, grey_u8, resize, to_working
from .upscale import upscale_lines

#: Photometric check after warping: how far (RGBA, grey levels) the generated colour lies outside
#: the range of the warped key's colours within one model pixel. Full trust below the first value,
#: none above the second. Measuring against the neighbourhood's range lets the model's softer,
#: thinner lines pass (their greys lie between the line and the fill) while a colour the key does
#: not have there (new content) still fails.
PHOTO_TRUSTED = 10.0
PHOTO_REJECTED = 36.0
#: Luma range (3×3, grey levels) above which the warped key has structure there, so the flow must
#: also have passed the forward–backward check; in flat areas any flow landing on the same colour
#: is as good as the true one.
STRUCTURE = 12.0
#: Share of the warped key's local contrast the generated frame must show there (the model draws
#: lines lighter, so well under 1).
MISSING_SHARE = 0.35
#: Feathering of the trust masks at model resolution (pixels); the enlargement softens them further.
FEATHER = 1.0
#: Resampling of the warped key: cubic keeps lines crisp at sub-pixel positions.
WARP_INTERPOLATION = cv2.INTER_CUBIC
#: A full-resolution displacement this close to a whole pixel is taken as that whole pixel: a
#: slid or held cel is then copied pixel for pixel, with no resampling at all.
SNAP_TO_PIXEL = 0.25
#: A flow step between neighbouring model pixels beyond this (pixels) is a seam between motions.
FLOW_JUMP = 1.0
#: Along such seams, a warped key colour this far (RGBA, grey levels) outside the upscaled frame's
#: local colours is a sliver of a line that does not belong there.
SLIVER_ERROR = 60.0


@dataclass
class _Key:
    """One keyframe as the restorer uses it, prepared once per segment."""

    full: np.ndarray  # premultiplied RGBA float32 at the keys' size
    low: np.ndarray  # the same at the drawn size
    low_grey: np.ndarray  # uint8 luma at the drawn size, for the flow
    low_flat: np.ndarray  # float32 1 where the key is flat at the drawn size (colour-match samples)


@dataclass
class RestoredFrame:
    """A restored frame and what went into it (for benchmarks and diagnostics)."""

    image: np.ndarray  # premultiplied RGBA float32 at the keys' size
    trust: np.ndarray  # (H, W) float32: share of each pixel taken from the warped keys
    colour: ColourTransfer


def ink_colour(*keys: np.ndarray, radius: int = 3) -> np.ndarray | None:
    """The keys' line colour (RGB float32): the typical colour of the darkest line pixels (dark
    features narrower than a disc of `radius`), or None when the keys have (almost) no dark lines."""
    samples = []
    for key in keys:
        work = to_working(key)
        luma = grey(work)
        lines = (cv2.morphologyEx(luma, cv2.MORPH_CLOSE, disc(radius)) - luma > 40.0) & (key[..., 3] == 255)
        samples.append(key[..., :3][lines])
    colours = np.concatenate(samples)
    if len(colours) < 50:
        return None
    lum = colours.astype(np.float32) @ LUMA
    darkest = colours[lum <= np.percentile(lum, 25)]
    return np.median(darkest, axis=0).astype(np.float32)


def _flat(work: np.ndarray) -> np.ndarray:
    luma = grey(work)
    kernel = np.ones((5, 5), np.uint8)
    return ((cv2.dilate(luma, kernel) - cv2.erode(luma, kernel)) <= 6.0).astype(np.float32)


class DetailRestorer:
    """Restores the in-betweens of one segment (two keys, one drawn size)."""

    def __init__(self, key_start: np.ndarray, key_end: np.ndarray, drawn_size: tuple[int, int],
                 palette: Palette | None = None) -> None:
        if key_start.shape != key_end.shape:
            raise ValueError(f"keys differ in size: {key_start.shape} and {key_end.shape}")
        self.size = (key_start.shape[1], key_start.shape[0])
        self.drawn_size = drawn_size
        self.palette = palette
        self.keys = [self._prepare(key) for key in (key_start, key_end)]
        scale = self.size[0] / drawn_size[0]
        self.ink = ink_colour(key_start, key_end, radius=max(3, int(np.ceil(2 * scale))))

    def _prepare(self, key: np.ndarray) -> _Key:
        full = to_working(key)
        low = resize(full, self.drawn_size)
        return _Key(full, low, grey_u8(low), _flat(low))

    def _warp_low(self, image: np.ndarray, corr: Correspondence) -> np.ndarray:
        map_x, map_y = corr.target()
        return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def colour_transfer(self, generated: np.ndarray, corrs: list[Correspondence]) -> ColourTransfer:
        """The drift of `generated` against the keys, from trusted pairs in flat areas."""
        flat_generated = _flat(generated)
        sources, targets, weights = [], [], []
        for key, corr in zip(self.keys, corrs):
            warped = self._warp_low(key.low, corr)
            flat_key = self._warp_low(key.low_flat, corr)
            weight = corr.consistent * flat_key * flat_generated * (generated[..., 3] >= 254.5)
            sources.append(generated[..., :3].reshape(-1, 3))
            targets.append(warped[..., :3].reshape(-1, 3))
            weights.append((weight >= 0.99).reshape(-1).astype(np.float32))
        return fit_colour_transfer(np.concatenate(sources), np.concatenate(targets), np.concatenate(weights))

    def trust(self, generated: np.ndarray, key: _Key, corr: Correspondence) -> np.ndarray:
        """(h, w) float32: how far the warped key can stand in for the generated pixel."""
        warped = self._warp_low(key.low, corr)
        kernel = np.ones((3, 3), np.uint8)
        low, high = cv2.erode(warped, kernel), cv2.dilate(warped, kernel)
        outside = np.maximum(low - generated, 0.0) + np.maximum(generated - high, 0.0)
        error = np.sqrt((outside**2).sum(-1))
        photometric = np.clip((PHOTO_REJECTED - error) / (PHOTO_REJECTED - PHOTO_TRUSTED), 0.0, 1.0)
        key_range = grey(high) - grey(low)
        structure = np.clip(key_range / STRUCTURE, 0.0, 1.0)
        # a line the warped key puts where the generated frame is plain is a ghost, however well the
        # colours nearby agree: the generated frame must show a good part of the key's contrast
        generated_luma = grey(generated)
        generated_range = cv2.dilate(generated_luma, kernel) - cv2.erode(generated_luma, kernel)
        present = np.clip(1.0 - (MISSING_SHARE * key_range - generated_range) / STRUCTURE, 0.0, 1.0)
        trust = photometric * present * (1.0 - structure * (1.0 - corr.consistent))
        trust = cv2.erode(trust, kernel, borderType=cv2.BORDER_REPLICATE)
        return cv2.GaussianBlur(trust, (0, 0), FEATHER)

    def restore(self, generated: np.ndarray, tau: float) -> RestoredFrame:
        """Generated premultiplied RGBA float32 at the drawn size, its τ -> the restored frame."""
        if (generated.shape[1], generated.shape[0]) != self.drawn_size:
            raise ValueError(
                f"generated frame is {generated.shape[1]}x{generated.shape[0]}, expected the drawn size "
                f"{self.drawn_size[0]}x{self.drawn_size[1]}"
            )
        generated_grey = grey_u8(generated)
        corrs = [correspond(generated_grey, key.low_grey) for key in self.keys]
        colour = self.colour_transfer(generated, corrs)
        generated = colour.apply(generated)
        trusts = [self.trust(generated, key, corr) for key, corr in zip(self.keys, corrs)]

        # which key stands in where both could: the nearer one in time (a blend of two slightly
        # misaligned warps would double the lines), with a feathered hand-over between the two
        score_a, score_b = trusts[0] * (1.0 - tau), trusts[1] * tau
        share_a = cv2.GaussianBlur((score_a >= score_b).astype(np.float32), (0, 0), FEATHER)
        trust_low = np.maximum(trusts[0], trusts[1])

        width, height = self.size
        trust = np.clip(resize(trust_low, self.size, smooth=True), 0.0, 1.0)
        share = np.clip(resize(share_a, self.size, smooth=True), 0.0, 1.0)
        warped = self._warp_full(self.keys[0], corrs[0], share > 0.0, share)
        warped += self._warp_full(self.keys[1], corrs[1], share < 1.0, 1.0 - share)

        if self.palette is not None:
            generated = snap_to_palette(generated, self.palette)
        seams = self._flow_seams(corrs, share_a)
        upscaled = upscale_lines(generated, self.size, where=(trust < 0.999) | seams, ink=self.ink)
        trust = self._reject_slivers(warped, upscaled, trust, seams)
        image = warped * trust[..., None] + upscaled * (1.0 - trust[..., None])
        return RestoredFrame(image, trust, colour)

    def _flow_seams(self, corrs: list[Correspondence], share_a: np.ndarray) -> np.ndarray:
        """Full-resolution pixels next to a jump in the flow (bool). Enlarging a flow field blends the
        two motions across a jump, and the warp can pull a sliver of some far-away key line there,
        thinner than a model pixel and so invisible to the checks at model resolution."""
        kernel = np.ones((3, 3), np.uint8)
        jump = np.zeros(share_a.shape, bool)
        for corr in corrs:
            for c in range(2):
                component = corr.flow[..., c]
                jump |= (cv2.dilate(component, kernel) - cv2.erode(component, kernel)) > FLOW_JUMP
        jump = cv2.dilate(jump.astype(np.uint8), kernel)
        width, height = self.size
        return cv2.resize(jump, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)

    def _reject_slivers(self, warped: np.ndarray, upscaled: np.ndarray, trust: np.ndarray, seams: np.ndarray):
        """Along flow seams, where the line-preserving upscale is plain, warped key pixels must lie
        within its colours; a dark sliver there is dropped."""
        if not seams.any():
            return trust
        kernel = disc(2)
        low, high = cv2.erode(upscaled, kernel), cv2.dilate(upscaled, kernel)
        outside = np.maximum(low - warped, 0.0) + np.maximum(warped - high, 0.0)
        error = np.sqrt((outside**2).sum(-1))
        plain = grey(high) - grey(low) < SLIVER_ERROR / 2  # the upscale shows no edge of its own here
        sliver = (seams & plain & (error > SLIVER_ERROR)).astype(np.float32)
        keep = 1.0 - np.clip(cv2.GaussianBlur(cv2.dilate(sliver, kernel), (0, 0), 1.0) * 2.0, 0.0, 1.0)
        return trust * keep

    def _warp_full(self, key: _Key, corr: Correspondence, needed: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """The full-resolution key warped by the (enlarged) correspondence, times `weight`."""
        width, height = self.size
        sx, sy = width / self.drawn_size[0], height / self.drawn_size[1]
        flow = resize(corr.flow, self.size, smooth=True)
        xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        flow[..., 0] *= sx
        flow[..., 1] *= sy
        whole = np.round(flow)
        flow = np.where(np.abs(flow - whole) < SNAP_TO_PIXEL, whole, flow)
        map_x = xs + flow[..., 0]
        map_y = ys + flow[..., 1]
        out = np.zeros((height, width, 4), np.float32)
        if not needed.any():
            return out
        warped = cv2.remap(key.full, map_x, map_y, WARP_INTERPOLATION, borderMode=cv2.BORDER_REPLICATE)
        # no cubic overshoot: stay within the key's own values around each source point
        kernel = np.ones((3, 3), np.uint8)
        for bound, clip in ((cv2.erode, np.maximum), (cv2.dilate, np.minimum)):
            limit = cv2.remap(bound(key.full, kernel), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            clip(warped, limit, out=warped)
        np.clip(warped[..., 3], 0.0, 255.0, out=warped[..., 3])
        np.clip(warped[..., :3], 0.0, warped[..., 3:4], out=warped[..., :3])
        return warped * weight[..., None]
