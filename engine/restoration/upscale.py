"""A line-preserving upscale for what no key explains (new content, disocclusions).

Bicubic enlargement of a model-resolution frame stretches every edge over several pixels: lines
come out wide and grey. Here each edge pixel of the bicubic result is pushed towards the darker or
the lighter colour found around it (a shock filter, Osher & Rudin 1990, in one step), so an edge
becomes as steep as a drawn one again — about a pixel of anti-aliasing — while flat areas and soft
shading (too little contrast to count as an edge) keep the bicubic values. The colours used are
real colours of the neighbourhood, never per-channel extremes, so no new hues appear at edges, and
the bicubic overshoot (ringing) is clipped to the range of the model pixels around each point.

Thin lines need more: at model resolution a line one or two pixels wide has been averaged with the
paper (and thinned by the decoder), so its darkest pixel is a grey, not the ink. Given the keys' ink
colour, an edge that belongs to a thin dark line (black-hat at model resolution, colour on the way
from the paper to the ink) is redrawn in that ink, as wide as the ink the grey profile holds: the
profile's coverage c = (paper − value)/(paper − ink) integrates to the line's width, and for a
blurred line with peak coverage p the level that cuts out that width is p·2^(−(1.064·p)²)
(Gaussian profile), so faint lines come back narrow and dark instead of wide and grey.
"""

from __future__ import annotations

import cv2
import numpy as np

from .pixels import disc, grey, resize

#: Luma contrast (grey levels) within the neighbourhood below which a pixel is not on an edge.
EDGE_CONTRAST = 24.0
#: How much steeper than bicubic the edge becomes (1 = unchanged); the ramp keeps ~1/GAIN of its width.
EDGE_GAIN = 3.0
#: Where the edge is placed between the dark and light side (0.5 = halfway). Above 0.5 dark lines
#: come out a little wider, undoing the thinning the model's decoder adds.
DARK_BIAS = 0.55
#: Black-hat (grey levels, 5×5 disc at model resolution) from which a dark edge counts as a thin line.
THIN_LINE = 12.0
#: How far (premultiplied RGBA distance) a dark colour may lie off the paper-to-ink mix and still be ink.
INK_COMPATIBLE = 80.0


def upscale_lines(work: np.ndarray, size: tuple[int, int], where: np.ndarray | None = None,
                  ink: np.ndarray | None = None) -> np.ndarray:
    """Premultiplied RGBA float32 at model resolution -> `size` (width, height), edges steepened.

    `where` (optional, bool at the output size) limits the steepening to the pixels that will be
    used; elsewhere the result is plain bicubic. `ink` (RGB) is the keys' line colour, if they have one.
    """
    width, height = size
    scale = max(width / work.shape[1], height / work.shape[0])
    up = resize(work, size)
    if scale <= 1.0:
        return up
    # no ringing: bicubic may not leave the range of the model pixels around each point
    kernel3 = np.ones((3, 3), np.uint8)
    floor = resize(cv2.erode(work, kernel3, borderType=cv2.BORDER_REPLICATE), size, smooth=True)
    ceiling = resize(cv2.dilate(work, kernel3, borderType=cv2.BORDER_REPLICATE), size, smooth=True)
    np.clip(up, floor, ceiling, out=up)
    np.clip(up[..., :3], 0.0, up[..., 3:4], out=up[..., :3])
    radius = max(1, int(np.ceil(1.5 * scale)))
    luma = grey(up)
    kernel = disc(radius)
    low = cv2.erode(luma, kernel, borderType=cv2.BORDER_REPLICATE)
    high = cv2.dilate(luma, kernel, borderType=cv2.BORDER_REPLICATE)
    edge = (high - low) > EDGE_CONTRAST
    if where is not None:
        edge &= where
    ys, xs = np.nonzero(edge)
    if len(ys) == 0:
        return up
    # the darkest and lightest real colour in each edge pixel's disc
    flat_luma = luma[ys, xs]
    dark_luma = np.full(len(ys), np.inf, np.float32)
    light_luma = np.full(len(ys), -np.inf, np.float32)
    dark = np.zeros((len(ys), 4), np.float32)
    light = np.zeros((len(ys), 4), np.float32)
    for dy, dx in zip(*np.nonzero(kernel)):
        yy = np.clip(ys + dy - radius, 0, height - 1)
        xx = np.clip(xs + dx - radius, 0, width - 1)
        value = luma[yy, xx]
        darker = value < dark_luma
        lighter = value > light_luma
        dark_luma[darker] = value[darker]
        dark[darker] = up[yy[darker], xx[darker]]
        light_luma[lighter] = value[lighter]
        light[lighter] = up[yy[lighter], xx[lighter]]
    position = (flat_luma - dark_luma) / np.maximum(light_luma - dark_luma, 1e-3)
    threshold = np.full(len(ys), DARK_BIAS, np.float32)
    if ink is not None:
        low_luma = grey(work)
        thin = cv2.morphologyEx(low_luma, cv2.MORPH_CLOSE, disc(2), borderType=cv2.BORDER_REPLICATE) - low_luma
        thin = cv2.dilate(resize(thin, size, smooth=True), kernel)[ys, xs]
        ink4 = np.append(np.asarray(ink, np.float32), 255.0)
        ink_luma = float(ink4[:3] @ np.array([0.299, 0.587, 0.114], np.float32))
        # how far the dark colour is from a mix of the light colour and the ink of the same luma
        peak = np.clip((light_luma - dark_luma) / np.maximum(light_luma - ink_luma, 1e-3), 0.0, 1.0)
        mix = light + peak[:, None] * (ink4 - light)
        off_mix = np.sqrt(((mix - dark) ** 2).sum(1))
        line = np.clip((thin - THIN_LINE) / THIN_LINE, 0.0, 1.0) * np.clip(1.0 - off_mix / INK_COMPATIBLE, 0.0, 1.0)
        line *= light_luma > ink_luma + 2 * EDGE_CONTRAST
        threshold = line * (1.0 - np.exp2(-((1.064 * peak) ** 2))) + (1.0 - line) * DARK_BIAS
        dark = dark + line[:, None] * (ink4 - dark)
    # the ramp is 1/EDGE_GAIN wide, narrower where the cut is close to the darkest value, so the
    # core of a line is always pure ink
    half_ramp = np.minimum(0.5 / EDGE_GAIN, np.maximum(threshold, 1e-3))
    t = np.clip((position - threshold) / (2.0 * half_ramp) + 0.5, 0.0, 1.0)[:, None]
    up[ys, xs] = dark * (1.0 - t) + light * t
    return up
