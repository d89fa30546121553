"""Painting an in-between: the background plate, then every part back to front at its pose.

Each part is cut out of both keys (premultiplied, so anti-aliased edges and transparency survive
the warp), each cut-out is carried to the in-between's pose by one affine warp, and the two are
mixed only after that alignment, over a short window around the middle, so a line is never seen
twice. Where no part lands, the plate's pixels are returned untouched (bit-identical).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: The mix from key A's cut-out to key B's happens while tau crosses this window.
MIX_WINDOW = (0.3, 0.7)


@dataclass
class CutOut:
    """One part's pixels in one key, premultiplied, cropped to its box."""

    pixels: np.ndarray  # (h, w, 4) float32: premultiplied RGB and coverage, 0-1
    origin: tuple[int, int]  # x, y of the crop in the key
    hidden: np.ndarray | None = None  # (h, w) float32: 1 where another part covers this key


def premultiplied(image: np.ndarray) -> np.ndarray:
    rgba = image.astype(np.float32) / 255.0
    rgba[..., :3] *= rgba[..., 3:4]
    return rgba


def straight(premult: np.ndarray) -> np.ndarray:
    alpha = premult[..., 3:4]
    visible = alpha >= 0.5 / 255.0
    rgb = np.where(visible, premult[..., :3] / np.maximum(alpha, 0.5 / 255.0), 0.0)
    out = np.concatenate([np.clip(rgb, 0, 1), np.where(visible, alpha, 0.0)], axis=2)
    return np.rint(out * 255.0).astype(np.uint8)


def unmix_edge(key_premult: np.ndarray, plate_premult: np.ndarray, figure: np.ndarray) -> np.ndarray:
    """The key with the backdrop's share taken out of the figure's outer edge pixels.

    An anti-aliased outline's outermost pixels mix the ink with whatever lay behind it. Carried
    elsewhere, that backdrop colour would come along as a faint halo. Each edge pixel is read as
    coverage x (the colour just inside it) + (1 - coverage) x (the plate there), and the plate's share
    is removed, so the edge keeps only its coverage and settles on any new backdrop as it was drawn."""
    inside = cv2.erode(figure.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    edge = figure & ~inside
    if not edge.any() or not inside.any():
        return key_premult
    _, nearest = cv2.distanceTransformWithLabels((~inside).astype(np.uint8), cv2.DIST_L2, 3,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    seeds = np.flatnonzero(inside.ravel())
    pixel, backdrop = key_premult[edge], plate_premult[edge]
    core = key_premult.reshape(-1, 4)[seeds[nearest[edge] - 1]]
    towards = core - backdrop
    reach = (towards * towards).sum(axis=1)
    coverage = np.where(reach > 1e-4, ((pixel - backdrop) * towards).sum(axis=1) / np.maximum(reach, 1e-4), 1.0)
    coverage = np.clip(coverage, 0.0, 1.0)
    out = key_premult.copy()
    out[edge] = np.clip(pixel - (1.0 - coverage)[:, None] * backdrop, 0.0, 1.0)
    return out


def cut_out(key_premult: np.ndarray, mask: np.ndarray, others: np.ndarray | None = None, pad: int = 2) -> CutOut | None:
    """The part's pixels; `others` (the other parts' pixels in this key) marks where this key may
    hide the part, so the other key's drawing of it can show there."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    x0, y0 = max(int(xs.min()) - pad, 0), max(int(ys.min()) - pad, 0)
    x1, y1 = min(int(xs.max()) + pad + 1, w), min(int(ys.max()) + pad + 1, h)
    pixels = key_premult[y0:y1, x0:x1] * mask[y0:y1, x0:x1, None].astype(np.float32)
    hidden = None if others is None else (others[y0:y1, x0:x1] & ~mask[y0:y1, x0:x1]).astype(np.float32)
    return CutOut(pixels, (x0, y0), hidden)


def mix_weight(tau: float) -> float:
    """How much of key B's cut-out an in-between at tau shows."""
    lo, hi = MIX_WINDOW
    return float(np.clip((tau - lo) / (hi - lo), 0.0, 1.0))


def _box(cut: CutOut, pose: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    h, w = cut.pixels.shape[:2]
    ox, oy = cut.origin
    corners = np.array([[ox, oy], [ox + w, oy], [ox, oy + h], [ox + w, oy + h]], float)
    moved = corners @ pose[:2, :2].T + pose[:2, 2]
    x0, y0 = np.floor(moved.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(moved.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _union(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


@dataclass
class Residual:
    """What the part's pose leaves unexplained: a smooth flow on key B's frame from B's cut-out to
    A's cut-out carried onto B (so B(q) ~ A_on_B(q + flow(q))), measured once per segment."""

    flow: np.ndarray  # (h, w, 2) float32
    origin: tuple[int, int]  # x, y of the flow grid in key B's frame


def _grey(premult: np.ndarray) -> np.ndarray:
    """Premultiplied cut-out over mid grey, as uint8 luminance for the flow."""
    rgb = premult[..., :3] + 0.5 * (1.0 - premult[..., 3:4])
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(grey * 255.0, 0, 255).astype(np.uint8)


def measure_residual(cut_a: CutOut, cut_b: CutOut, pose: np.ndarray, limit: float) -> Residual | None:
    """DIS optical flow between B's cut-out and A's carried onto B by the part's pose (A -> B).

    None when the two already agree or the flow is not a small correction (over `limit` pixels)."""
    h, w = cut_b.pixels.shape[:2]
    pad = 8
    ox, oy = cut_b.origin[0] - pad, cut_b.origin[1] - pad
    box = (ox, oy, ox + w + 2 * pad, oy + h + 2 * pad)
    b_on_grid = _sample(cut_b, np.eye(3), box, None, 0.0)
    a_on_grid = _sample(cut_a, pose, box, None, 0.0)
    if b_on_grid.shape[0] < 16 or b_on_grid.shape[1] < 16:
        return None
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(_grey(b_on_grid), _grey(a_on_grid), None)
    inside = (b_on_grid[..., 3] > 0.5) | (a_on_grid[..., 3] > 0.5)
    if not inside.any():
        return None
    size = np.linalg.norm(flow[inside], axis=1)
    if np.percentile(size, 90) < 0.3 or np.percentile(size, 90) > limit:
        return None
    flow = cv2.GaussianBlur(flow, (0, 0), 1.5)
    return Residual(flow, (ox, oy))


def _sample(cut: CutOut, pose: np.ndarray, box, residual: Residual | None, shift: float,
            after: np.ndarray | None = None, source: np.ndarray | None = None) -> np.ndarray:
    """The cut-out (or `source`, a map on its crop) as seen through `pose` (cut's key -> frame) on the frame box.

    With a residual, frame points are first taken back to key B's frame by `after`^-1, moved by
    `shift` times the residual flow there, then carried by `pose` from B's frame to the cut's key."""
    x0, y0, x1, y1 = box
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    if residual is None or after is None:
        inverse = np.linalg.inv(pose)
        u = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
        v = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    else:
        back = np.linalg.inv(after)
        qx = back[0, 0] * xs + back[0, 1] * ys + back[0, 2]
        qy = back[1, 0] * xs + back[1, 1] * ys + back[1, 2]
        fx, fy = residual.origin
        flow = cv2.remap(residual.flow, (qx - fx).astype(np.float32), (qy - fy).astype(np.float32), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        qx, qy = qx + shift * flow[..., 0], qy + shift * flow[..., 1]
        u = pose[0, 0] * qx + pose[0, 1] * qy + pose[0, 2]
        v = pose[1, 0] * qx + pose[1, 1] * qy + pose[1, 2]
    ox, oy = cut.origin
    return cv2.remap(cut.pixels if source is None else source, (u - ox).astype(np.float32), (v - oy).astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))


def paint_part(
    canvas: np.ndarray, touched: np.ndarray, cut_a: CutOut | None, pose_a: np.ndarray,
    cut_b: CutOut | None, pose_b: np.ndarray, beta: float, tau: float, motion: np.ndarray,
    residual: Residual | None = None,
) -> None:
    """Mix the part's two aligned cut-outs and paint the result over the canvas (premultiplied).

    `pose_a` / `pose_b` carry key A / key B to the frame; `motion` is the part's pose A -> B. With
    a residual, both cut-outs also travel the remaining flow: B's by (1 - tau) of it toward A, A's
    by tau of it toward B, so their lines meet before they are mixed."""
    height, width = canvas.shape[:2]
    use_a = cut_a is not None
    use_b = cut_b is not None
    box = _union(_box(cut_a, pose_a, width, height) if use_a else None,
                 _box(cut_b, pose_b, width, height) if use_b else None)
    if box is None:
        return
    x0, y0, x1, y1 = box
    zero = np.zeros((y1 - y0, x1 - x0, 4), np.float32)
    # A is sampled through B's frame: frame -> B frame (pose_b^-1), flow step, then B -> A (motion^-1)
    a_args = (cut_a, np.linalg.inv(motion), box, residual, tau, pose_b) if residual is not None else (cut_a, pose_a, box, None, 0.0)
    b_args = (cut_b, np.eye(3), box, residual, tau - 1.0, pose_b) if residual is not None else (cut_b, pose_b, box, None, 0.0)
    a = _sample(*a_args) if use_a else zero
    b = _sample(*b_args) if use_b else zero
    if cut_b is None:  # a part only key A has fades out over the mix
        mixed = a * (1.0 - beta)
    elif cut_a is None:
        mixed = b * beta
    else:
        # where one key hides the part behind another, the other key's drawing of it shows alone
        hidden_a = _sample(*a_args, source=cut_a.hidden)[..., None] if cut_a.hidden is not None else 0.0
        hidden_b = _sample(*b_args, source=cut_b.hidden)[..., None] if cut_b.hidden is not None else 0.0
        beta_a = (1.0 - beta) * (1.0 - hidden_a) + beta * hidden_b * (1.0 - hidden_a)
        beta_b = beta * (1.0 - hidden_b) + (1.0 - beta) * hidden_a * (1.0 - hidden_b)
        weight = beta_a * a[..., 3:4] + beta_b * b[..., 3:4]
        colour = (beta_a * a[..., :3] + beta_b * b[..., :3]) / np.maximum(weight, 1e-6)
        # each key's own silhouette shows fully until the mix passes its middle, then fades
        coverage = np.maximum(np.minimum(1.0, 2 * beta_a) * a[..., 3:4], np.minimum(1.0, 2 * beta_b) * b[..., 3:4])
        mixed = np.concatenate([colour * coverage, coverage], axis=2)
    region = canvas[y0:y1, x0:x1]
    region *= 1.0 - mixed[..., 3:4]
    region += mixed
    touched[y0:y1, x0:x1] |= mixed[..., 3] > 0.5 / 255.0
