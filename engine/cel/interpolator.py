"""The cel-aware in-betweener: analyse a segment once, then draw any tau cheaply.

    segment = CelInterpolator().prepare(key_a, key_b, sketches={0.5: sketch})
    drawing = segment.inbetween(0.25)

`prepare` cuts both keys into regions (regions.py), separates held cels from moving ones and
builds the background plate (layers.py), matches the moving regions (matching.py), groups them
into parts on a skeleton of joints with their poses (parts.py, motion.py), reads the paint order
from the keys (occlusion.py) and fits the parts to the artist's sketches (sketch_pose.py). Each
in-between then only poses every part along its arc (arcs.py) and paints (render.py).

When the art is not flat cel (a photo, painterly gradients, a storm of tiny regions) or the parts
cannot be matched with confidence, `prepare` raises NotCelArt naming why, so the caller can hand
the segment to a flow-based in-betweener.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..api import CancelToken, EngineError
from . import arcs
from .ground import Fall, Ground, find_fall, find_ground
from .layers import backdrop_pockets, background_plate, changed_pixels, covered_scenery, held_regions
from .matching import match_figures, match_regions
from .occlusion import held_in_front, occluder_lines, paint_order
from .parts import Part, build_parts, group_regions
from .paths import KeyPath, figure_paths, free_figures
from .regions import INK_MAX_WIDTH, Segmentation, segment
from .render import MIX_WINDOW, CutOut, Residual, cut_out, measure_residual, mix_weight, paint_part, premultiplied, straight, unmix_edge
from .sketch_pose import SketchLines, fit_to_sketch

#: A part only one key shows counts as lying within its parent there when this share of it does.
TUCK_INSIDE = 0.5
#: A part hanging on a figure is a limb, not a marking, when more than this share of it lies
#: outside the figure's outline.
LIMB_OUTSIDE = 0.1
#: The residual flow that aligns a part's two cut-outs may move pixels at most this share of the
#: part's size (sqrt of its area); more is not a correction but a different drawing.
RESIDUAL_LIMIT = 0.25


class NotCelArt(Exception):
    """The keys are not flat cel art this method can take apart; the message says why."""


class PartsUnmatched(NotCelArt):
    """Flat cel art whose moving parts could not be paired between the keys with confidence (one
    key hides the figure, or it changed too much)."""


@dataclass(frozen=True)
class CelConfig:
    min_flat_fraction: float = 0.7  # share of pixels in flat colour regions
    max_regions: int = 600  # more regions than this reads as texture, not cel
    max_moving_regions: int = 150
    min_matched_share: float = 0.6  # share of the moving area that found its match in the other key
    min_fit: float = 0.55  # area-weighted mean of how well the parts' poses fit


@dataclass
class Knot:
    """A part's pose relative to its parent at one tau (the keys, and every sketch)."""

    tau: float
    relative: np.ndarray
    turn: float  # cumulative turn from key A, with winding


@dataclass
class CelSegment:
    """A keyframe pair taken apart: plate, parts in paint order, and their poses over the segment."""

    height: int
    width: int
    plate: np.ndarray  # RGBA uint8: the held picture without moving figures
    plate_premult: np.ndarray
    parts: list[Part]  # parents before children
    order: list[int]  # indices into parts, back to front
    cuts: list[tuple[CutOut | None, CutOut | None]]
    knots: list[list[Knot]]
    residuals: list[Residual | None]
    front: np.ndarray  # bool: held scenery painted over the parts (a trunk the figure walks behind)
    report: dict = field(default_factory=dict)
    paths: dict[int, KeyPath] = field(default_factory=dict)  # free figures' arcs through the keys
    grounds: dict[int, Ground] = field(default_factory=dict)  # free figures' surfaces they stand on
    falls: dict[int, Fall] = field(default_factory=dict)  # free figures landing on or leaving one
    tucks: dict[int, Tuck] = field(default_factory=dict)  # parts one key hides behind their parent

    def poses(self, tau: float) -> list[np.ndarray]:
        """Each part's pose at tau: key A's coordinates -> the in-between's."""
        index = {p.index: k for k, p in enumerate(self.parts)}
        out: list[np.ndarray] = []
        for k, part in enumerate(self.parts):
            parent = np.eye(3) if part.parent is None else out[index[part.parent]]
            fall = self.falls.get(k)
            path = self.paths.get(k) or (fall.path if fall else None)  # the keys either side know the arc best
            if path is not None:
                parent = arcs.pose(np.eye(2), np.zeros(2), path.offset(tau))
            shape_t = fall.shape_at(tau) if fall is not None and fall.squashes else None
            posed = parent @ _relative_at(self.knots[k], part.pivot, tau, shape_t)
            if k in self.tucks:
                posed = self.tucks[k].at(tau, posed, part.motion.pose)
            if k in self.grounds and k not in self.paths:
                posed = arcs.pose(np.eye(2), np.zeros(2), np.array([0.0, self.grounds[k].lift(posed, tau)])) @ posed
            out.append(posed)
        return out

    def follow_keys(self, before: CelSegment | None, tau_before: float | None, after: CelSegment | None,
                    tau_after: float | None) -> None:
        """Carry the free figures on arcs through the neighbouring keys of a multi-key shot
        (`before`: the segment ending at this key A; `after`: the one starting at this key B)."""
        self.paths = figure_paths(self, before, tau_before, after, tau_after)
        self.report["paths_through_keys"] = len(self.paths)

    def inbetween(self, tau: float) -> np.ndarray:
        """The drawing at tau in (0, 1): straight-alpha RGBA uint8 at the keys' size."""
        if not 0.0 < tau < 1.0:
            raise EngineError(f"tau must be strictly between 0 and 1 (the keys themselves), got {tau}")
        return self.draw(tau)[0]

    def draw(self, tau: float) -> tuple[np.ndarray, np.ndarray]:
        """The drawing at any tau (also at or beyond the keys) and where the parts were painted
        before the held scenery in front covered them."""
        poses = self.poses(tau)
        canvas = self.plate_premult.copy()
        touched = np.zeros((self.height, self.width), bool)
        beta = mix_weight(tau)
        for k in self.order:
            part = self.parts[k]
            cut_a, cut_b = self.cuts[k]
            pose_b = poses[k] @ np.linalg.inv(part.motion.pose)
            paint_part(canvas, touched, cut_a, poses[k], cut_b, pose_b, beta, tau, part.motion.pose, self.residuals[k])
        painted = touched & ~self.front
        out = self.plate.copy()
        out[painted] = straight(canvas[painted][None])[0]
        return out, touched

    def shown_figure(self) -> tuple[int, int]:
        """Pixels of the moving figures each key shows."""
        return (int(sum(p.mask_a.sum() for p in self.parts)),
                int(sum(p.mask_b.sum() for p in self.parts if p.regions_b)))


def _with_fringe(mask: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """A figure's mask plus the changed pixels just around it (the faint outer edge of its outline)."""
    near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return mask | (near & changed)


def _surfaces(plate: np.ndarray, parts: list[Part], knots: list[list[Knot]]) -> tuple[dict[int, Ground], dict[int, Fall]]:
    """The surface each free figure stands on in both keys, where it does, and the fall of each
    one that stands on a surface in one key only."""
    free = free_figures(parts, knots)
    if not free:
        return {}, {}
    plate_regions = segment(plate)
    children: dict[int, list[Part]] = {}
    for part in parts:
        children.setdefault(part.parent, []).append(part)
    grounds: dict[int, Ground] = {}
    falls: dict[int, Fall] = {}
    for k in free:
        part = parts[k]
        mask_a, mask_b = part.mask_a.copy(), part.mask_b.copy()
        stack = list(children.get(part.index, []))
        descendants = []
        while stack:
            child = stack.pop()
            descendants.append(child)
            mask_a |= child.mask_a
            mask_b |= child.mask_b
            stack.extend(children.get(child.index, []))
        ground = find_ground(plate_regions, mask_a, mask_b, part.motion.pose)
        if ground is not None:
            grounds[k] = ground
            continue
        fall = find_fall(plate_regions, mask_a, mask_b, part.pivot, part.motion.pose, _one_piece(part, descendants))
        if fall is not None:
            falls[k] = fall
    return grounds, falls


def _one_piece(root: Part, descendants: list[Part]) -> bool:
    """Whether a figure is one piece with markings (a ball's highlight, its stripes) rather than a
    body with limbs: everything hanging on it lies within its convex outline in key A (with the
    outline's ink)."""
    points = cv2.findNonZero(root.mask_a.astype(np.uint8))
    inside = np.zeros(root.mask_a.shape, np.uint8)
    if points is not None:
        cv2.fillConvexPoly(inside, cv2.convexHull(points), 1)
    inside = cv2.dilate(inside, np.ones((2 * INK_MAX_WIDTH + 1,) * 2, np.uint8)) > 0
    return all((d.mask_a & ~inside).sum() <= LIMB_OUTSIDE * max(int(d.mask_a.sum()), 1) for d in descendants)


@dataclass(frozen=True)
class Tuck:
    """A part one key hides behind its parent, sticking out of it in the other key (a far sleeve):
    `move` puts it behind the parent, in the coordinates of the key that shows it. One only key A
    shows slides in as it fades; one only key B shows slides out as it appears; instead of hanging
    beside the parent while the mix fades it."""

    move: np.ndarray
    shown_in: str  # "a" or "b"

    def at(self, tau: float, posed: np.ndarray, motion: np.ndarray) -> np.ndarray:
        if self.shown_in == "a":  # all the way in by the time the mix has faded it out
            gone = float(np.clip(tau / MIX_WINDOW[1], 0.0, 1.0))
            return posed @ arcs.pose(np.eye(2), np.zeros(2), gone * self.move)
        # out from behind the parent from the moment the mix begins to show it
        hidden = 1.0 - float(np.clip((tau - MIX_WINDOW[0]) / (1.0 - MIX_WINDOW[0]), 0.0, 1.0))
        return posed @ np.linalg.inv(motion) @ arcs.pose(np.eye(2), np.zeros(2), hidden * self.move) @ motion


def tucks(parts: list[Part]) -> dict[int, Tuck]:
    """The parts only one key shows that stick out of their parent there; a part that lies within
    its parent (an eye that shuts) stays where it is."""
    at = {p.index: k for k, p in enumerate(parts)}
    out = {}
    for k, part in enumerate(parts):
        shown_in = "b" if not part.regions_a else "a" if not part.regions_b else None
        if shown_in is None or part.parent is None:
            continue
        mask = part.mask_a if shown_in == "a" else part.mask_b
        parent = parts[at[part.parent]].mask_a if shown_in == "a" else parts[at[part.parent]].mask_b
        if not mask.any() or not parent.any():
            continue
        filled = cv2.morphologyEx(parent.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)) > 0
        if (mask & filled).sum() >= TUCK_INSIDE * mask.sum():
            continue
        ys, xs = np.nonzero(mask)
        py, px = np.nonzero(parent)
        out[k] = Tuck(np.array([px.mean() - xs.mean(), py.mean() - ys.mean()]), shown_in)
    return out


def _relative_at(knots: list[Knot], pivot: np.ndarray, tau: float, shape_t: float | None = None) -> np.ndarray:
    """A part's pose relative to its parent at tau, through its knots (`shape_t`: the turn and
    stretch keep their own timing, for a figure of two knots that squashes on a contact)."""
    for left, right in zip(knots, knots[1:]):
        if tau <= right.tau:
            u = (tau - left.tau) / max(right.tau - left.tau, 1e-9)
            step = np.linalg.inv(left.relative) @ right.relative
            return left.relative @ arcs.along_arc(step, u, pivot, turn=right.turn - left.turn, shape_t=shape_t)
    return knots[-1].relative


def _matched_share(seg_a, seg_b, moving_a, moving_b, matches) -> float:
    """Share of the moving area (both keys) that found its counterpart: region pairs (i, j, cost)
    or figure pairs (regions of A, regions of B)."""
    total = sum(seg_a.regions[i].area for i in moving_a) + sum(seg_b.regions[j].area for j in moving_b)
    if matches and isinstance(matches[0][0], list):
        matched = sum(seg_a.regions[i].area for ra, rb in matches if rb for i in ra)
        matched += sum(seg_b.regions[j].area for _, rb in matches for j in rb)
    else:
        matched = sum(seg_a.regions[i].area + seg_b.regions[j].area for i, j, _ in matches)
    return matched / max(total, 1) if total else 1.0


def check_keys(key_a: np.ndarray, key_b: np.ndarray) -> None:
    for name, key in (("start keyframe", key_a), ("end keyframe", key_b)):
        if not isinstance(key, np.ndarray) or key.dtype != np.uint8 or key.ndim != 3 or key.shape[2] != 4:
            raise EngineError(
                f"{name}: expected an RGBA uint8 image of shape (height, width, 4), got "
                f"{getattr(key, 'dtype', type(key).__name__)} {getattr(key, 'shape', '')}"
            )
    if key_a.shape != key_b.shape:
        raise EngineError(
            f"keyframes differ in size: {key_a.shape[1]}x{key_a.shape[0]} and {key_b.shape[1]}x{key_b.shape[0]}"
        )


class CelInterpolator:
    def __init__(self, config: CelConfig | None = None) -> None:
        self.config = config or CelConfig()

    def _check_cel(self, seg: Segmentation, which: str) -> None:
        cfg = self.config
        if seg.flat_fraction < cfg.min_flat_fraction:
            raise NotCelArt(f"{which} is not flat cel: only {seg.flat_fraction:.0%} of it is flat colour")
        if len(seg.regions) > cfg.max_regions:
            raise NotCelArt(f"{which} has {len(seg.regions)} colour regions (texture rather than cel)")

    def prepare(
        self, key_a: np.ndarray, key_b: np.ndarray, sketches: Mapping[float, np.ndarray] | None = None,
        cancel: CancelToken | None = None,
    ) -> CelSegment:
        check_keys(key_a, key_b)
        cancel = cancel or CancelToken()
        height, width = key_a.shape[:2]
        seg_a = segment(key_a)
        self._check_cel(seg_a, "the start keyframe")
        seg_b = segment(key_b)
        self._check_cel(seg_b, "the end keyframe")
        cancel.check()
        changed = changed_pixels(key_a, key_b)
        held_a, held_b = held_regions(seg_a, changed), held_regions(seg_b, changed)
        pockets_a, pockets_b = backdrop_pockets(seg_a, held_a, seg_b, held_b), backdrop_pockets(seg_b, held_b, seg_a, held_a)
        # backdrop that figures cover in part, differently in each key, belongs to the plate too
        pockets_a, pockets_b = covered_scenery(seg_a, held_a | pockets_a, seg_b, held_b | pockets_b, changed)
        moving_a = [i for i in range(len(seg_a.regions)) if not held_a[i] and not pockets_a[i]]
        moving_b = [j for j in range(len(seg_b.regions)) if not held_b[j] and not pockets_b[j]]
        if len(moving_a) > self.config.max_moving_regions or len(moving_b) > self.config.max_moving_regions:
            raise NotCelArt(f"{max(len(moving_a), len(moving_b))} moving regions: too many small pieces to match")
        diagonal = math.hypot(width, height)
        matches = match_regions(seg_a, seg_b, moving_a, moving_b, diagonal)
        cancel.check()

        def by_figures() -> tuple[list, dict]:
            groups = match_figures(seg_a, seg_b, moving_a, moving_b, diagonal)
            parts = build_parts(key_a, key_b, seg_a, seg_b, groups, held_a, held_b, changed)
            cancel.check()
            return parts, self._confidence(seg_a, seg_b, moving_a, moving_b, groups, parts) | {"matched_by": "figures"}

        if _matched_share(seg_a, seg_b, moving_a, moving_b, matches) < self.config.min_matched_share:
            # regions that change too much to pair one by one: pair whole figures instead
            parts, report = by_figures()
        else:
            groups = group_regions(seg_a, seg_b, moving_a, moving_b, matches)
            parts = build_parts(key_a, key_b, seg_a, seg_b, groups, held_a, held_b, changed)
            cancel.check()
            try:
                report = self._confidence(seg_a, seg_b, moving_a, moving_b, matches, parts) | {"matched_by": "regions"}
            except PartsUnmatched:
                # the regions paired, but no rigid piece explains how they moved (stripes turning
                # through a squashing ball): the whole figure may still move as one
                parts, report = by_figures()
        mask_a = np.zeros((height, width), bool)
        mask_b = np.zeros((height, width), bool)
        for part in parts:
            mask_a |= part.mask_a
            mask_b |= part.mask_b
        plate, unseen = background_plate(key_a, key_b, _with_fringe(mask_a, changed), _with_fringe(mask_b, changed))
        report["inpainted_pixels"] = int(unseen.sum())
        order = paint_order(parts)
        tucked = tucks(parts)
        for k in tucked:  # behind the parent it slides behind
            order.remove(k)
            order.insert(order.index(parts[k].parent), k)
        front = held_in_front(parts, seg_a, seg_b, held_a, held_b)
        report["held_in_front_pixels"] = int(front.sum())
        plate_premult = premultiplied(plate)
        pa, pb = unmix_edge(premultiplied(key_a), plate_premult, mask_a), unmix_edge(premultiplied(key_b), plate_premult, mask_b)
        own_lines = occluder_lines(parts, order, key_a, key_b, seg_a, seg_b)
        cuts = [(cut_out(pa, own_a, mask_a), cut_out(pb, own_b, mask_b) if p.regions_b else None)
                for p, (own_a, own_b) in zip(parts, own_lines)]
        knots = [[Knot(0.0, np.eye(3), 0.0), Knot(1.0, p.relative, p.turn)] for p in parts]
        residuals = [
            measure_residual(ca, cb, p.motion.pose, max(3.0, RESIDUAL_LIMIT * math.sqrt(p.area)))
            if ca is not None and cb is not None else None
            for p, (ca, cb) in zip(parts, cuts)
        ]
        report["aligned_parts"] = sum(r is not None for r in residuals)
        if sketches:
            report["sketches"] = self._fit_sketches(parts, knots, sketches, (height, width), cancel)
        grounds, falls = _surfaces(plate, parts, knots)
        report["figures_on_ground"] = len(grounds)
        report["figures_falling"] = len(falls)
        report["tucked_parts"] = len(tucked)
        return CelSegment(height, width, plate, plate_premult, parts, order, cuts, knots, residuals, front, report,
                          grounds=grounds, falls=falls, tucks=tucked)

    def _confidence(self, seg_a, seg_b, moving_a, moving_b, matches, parts) -> dict:
        area_a = sum(seg_a.regions[i].area for i in moving_a)
        area_b = sum(seg_b.regions[j].area for j in moving_b)
        share = _matched_share(seg_a, seg_b, moving_a, moving_b, matches)
        weights = np.array([p.area for p in parts if p.regions_b], float)
        fits = np.array([p.motion.score for p in parts if p.regions_b], float)
        fit = float((weights * fits).sum() / weights.sum()) if len(weights) else 1.0
        report = {
            "regions": [len(seg_a.regions), len(seg_b.regions)],
            "moving_regions": [len(moving_a), len(moving_b)],
            "parts": len(parts),
            "jointed_parts": sum(p.joint is not None for p in parts),
            "matched_share": round(share, 3),
            "fit": round(fit, 3),
        }
        if area_a + area_b > 0 and share < self.config.min_matched_share:
            raise PartsUnmatched(f"only {share:.0%} of the moving area could be matched between the keys")
        if fit < self.config.min_fit:
            raise PartsUnmatched(f"the parts' motions fit poorly (mean fit {fit:.2f})")
        return report

    def _fit_sketches(self, parts, knots, sketches, size, cancel) -> list[float]:
        taus = sorted(float(t) for t in sketches)
        for tau in taus:
            if not 0.0 < tau < 1.0:
                raise EngineError(f"a sketch at tau {tau} is not between the keys (0 < tau < 1)")
            if sketches[tau].shape[:2] != size:
                h, w = sketches[tau].shape[:2]
                raise EngineError(f"the sketch at tau {tau:.3f} is {w}x{h}, the keyframes are {size[1]}x{size[0]}")
        for tau in taus:
            cancel.check()
            lines = SketchLines.read(sketches[tau], source=f"sketch at tau {tau:.3f}")
            index = {p.index: k for k, p in enumerate(parts)}
            posed: list[np.ndarray] = []
            for k, part in enumerate(parts):
                parent = np.eye(3) if part.parent is None else posed[index[part.parent]]
                guess = _relative_at(knots[k], part.pivot, tau)
                turn_guess = _turn_at(knots[k], tau)
                relative, turn = fit_to_sketch(lines, part, parent, guess, turn_guess)
                knots[k].append(Knot(tau, relative, turn))
                knots[k].sort(key=lambda kn: kn.tau)
                posed.append(parent @ relative)
        return taus


def _turn_at(knots: list[Knot], tau: float) -> float:
    for left, right in zip(knots, knots[1:]):
        if tau <= right.tau:
            u = (tau - left.tau) / max(right.tau - left.tau, 1e-9)
            return left.turn + u * (right.turn - left.turn)
    return knots[-1].turn
