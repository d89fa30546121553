"""How one part moved between the keys: the pose that lays its shape in key A onto its shape in key B.

The pose is searched, not solved from moments alone, so that a limb swung by more than 90
degrees, a round hand (whose axes say nothing about its turn) and a part half hidden in one key
all find their motion: every candidate turn of a coarse sweep (plus the turns the principal axes
suggest) is scored by how well the two shapes overlap both ways, then the best is refined by
coordinate search over turn, position and scale. A jointed part turns about its joint, whose
place in key B its parent predicts, so only the turn and a small slip are searched. A free part
may also squash or stretch (an affine pose from the shapes' second moments), taken when it fits
clearly better than the similarity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import arcs

#: Points sampled from each shape to score a pose.
SAMPLE_POINTS = 400
#: Ink points sampled from each shape, and the fewest that make its lines worth scoring.
LINE_POINTS = 300
MIN_LINE_POINTS = 12
#: Weight of the lines' agreement in a pose's score (the rest is the silhouettes' overlap).
LINE_WEIGHT = 0.5
#: Coarse sweep of turns (degrees).
COARSE_STEP = 10.0
#: Small preference (score per radian) for turns close to the expected one, so symmetric shapes
#: (a ball, a round hand) keep the turn of their neighbours instead of an arbitrary one.
TURN_PRIOR = 0.02
#: The same preference for a jointed part, against bending its joint far from its parent's turn.
JOINT_TURN_PRIOR = 0.03
#: A free part turns by more than 45 degrees from the expected turn only when that fits at least
#: this much better than the best pose near the expected turn.
BIG_TURN_MARGIN = 0.06
#: A key showing a part a share s smaller than the other key may hide up to HIDING_GAIN * s of it.
HIDING_GAIN = 3.0
#: Of a part's candidate joints, this many (those whose coarse sweeps fit best) are refined.
HINGES_REFINED = 2
#: An affine (squash and stretch) pose replaces the similarity only when it scores this much better.
AFFINE_GAIN = 0.03


@dataclass
class Shape:
    """A part's pixels in one key, prepared for scoring: sampled points and a soft inside map."""

    mask: np.ndarray
    points: np.ndarray  # (N, 2) x, y
    centroid: np.ndarray
    area: int
    soft: np.ndarray  # the mask around the shape, blurred a little: a smooth score near the edges
    offset: np.ndarray  # (x, y) of soft's first pixel in the frame
    covariance: np.ndarray
    others: np.ndarray | None = None  # where other parts or scenery cover this key (on soft's grid)
    lines: np.ndarray | None = None  # (M, 2) sampled ink points of the part (its outline and inner lines)
    lines_soft: np.ndarray | None = None  # the part's ink, blurred a little, on soft's grid
    hiding: float | None = None  # how much of the part the others may hide, when known (else judged by area)

    @property
    def size(self) -> float:
        return math.sqrt(max(self.area, 1))


def shape_of(mask: np.ndarray, seed: int = 0, others: np.ndarray | None = None, ink: np.ndarray | None = None) -> Shape:
    """`others`: pixels of this key covered by other moving parts or held scenery, which may hide
    this part; a pose is neither rewarded nor punished for what lands there (as far as the key
    shows less of the part than the other key). `ink`: the key's ink; the part's
    own lines (eyes on a round head, a thumb on a glove) then also score a pose, which the
    silhouette alone cannot for a shape that looks alike turned any way."""
    ys, xs = np.nonzero(mask)
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    centroid = points.mean(axis=0) if len(points) else np.zeros(2)
    cov = np.cov(points.T) if len(points) > 2 else np.eye(2)
    if len(points) > SAMPLE_POINTS:
        rng = np.random.default_rng(seed)
        points = points[rng.choice(len(points), SAMPLE_POINTS, replace=False)]
    h, w = mask.shape
    pad = 6
    x0, y0 = (max(int(xs.min()) - pad, 0), max(int(ys.min()) - pad, 0)) if len(xs) else (0, 0)
    x1, y1 = (min(int(xs.max()) + pad + 1, w), min(int(ys.max()) + pad + 1, h)) if len(xs) else (w, h)
    soft = cv2.GaussianBlur(mask[y0:y1, x0:x1].astype(np.float32), (0, 0), 1.5)
    hidden = None
    if others is not None:
        # other parts may hide this one anywhere within reach of a move: a generous box around it
        margin = max(x1 - x0, y1 - y0)
        hx0, hy0 = max(x0 - margin, 0), max(y0 - margin, 0)
        hx1, hy1 = min(x1 + margin, w), min(y1 + margin, h)
        canvas = np.zeros((hy1 - hy0, hx1 - hx0), np.float32)
        canvas[:] = others[hy0:hy1, hx0:hx1]
        soft_big = np.zeros_like(canvas)
        soft_big[y0 - hy0:y1 - hy0, x0 - hx0:x1 - hx0] = soft
        soft, hidden, (x0, y0) = soft_big, canvas, (hx0, hy0)
    line_points = lines_soft = None
    if ink is not None:
        ly, lx = np.nonzero(mask & ink)
        if len(lx) >= MIN_LINE_POINTS:
            line_points = np.stack([lx, ly], axis=1).astype(np.float64)
            if len(line_points) > LINE_POINTS:
                line_points = line_points[np.random.default_rng(seed + 1).choice(len(line_points), LINE_POINTS, replace=False)]
            grid = np.zeros(soft.shape, np.float32)
            gh, gw = soft.shape
            grid[:] = (mask & ink)[y0:y0 + gh, x0:x0 + gw]
            lines_soft = cv2.GaussianBlur(grid, (0, 0), 1.0)
            lines_soft /= max(float(lines_soft.max()), 1e-6)
    return Shape(mask, points, centroid, int(len(xs)), soft, np.array([x0, y0], float), cov + np.eye(2) * 1e-3, hidden,
                 line_points, lines_soft)


def _lookup(soft: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear lookup of `soft` at (K, N, 2) points; outside the frame reads 0."""
    k, n = points.shape[:2]
    maps = points.reshape(k, n, 2).astype(np.float32)
    return cv2.remap(soft, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _hidden_share(shown: Shape, full: Shape) -> float:
    """How much of the part one key may hide, judged by how much less of it that key shows than the
    other: a part shown whole in both keys cannot be hiding behind its neighbours."""
    if shown.hiding is not None:
        return shown.hiding
    return min(max(HIDING_GAIN * (1.0 - shown.area / max(full.area, 1)), 0.0), 1.0)


def _seen_share(shape: Shape, points: np.ndarray, hidden: float = 1.0, target: np.ndarray | None = None) -> np.ndarray:
    """Share of (K, N, 2) points inside `shape` (or on its `target` map, its lines), leaving out (by
    `hidden`, 0-1) those landing where other parts may hide it."""
    inside = _lookup(shape.soft if target is None else target, points - shape.offset)
    if shape.others is None or hidden <= 0.0:
        return inside.mean(axis=1)
    weight = 1.0 - hidden * _lookup(shape.others, points - shape.offset) * (1.0 - inside)
    return (inside * weight).sum(axis=1) / np.maximum(weight.sum(axis=1), 1.0)


def overlap_score(m: np.ndarray, a: Shape, b: Shape) -> np.ndarray:
    """How well pose(s) m (3x3 or (K, 3, 3)) lay A's shape on B's, both ways: 1 is a perfect fit."""
    m = np.asarray(m)
    single = m.ndim == 2
    if single:
        m = m[None]
    forward = a.points @ m[:, :2, :2].transpose(0, 2, 1) + m[:, None, :2, 2]
    inverse = np.linalg.inv(m)
    backward = b.points @ inverse[:, :2, :2].transpose(0, 2, 1) + inverse[:, None, :2, 2]
    score = 0.5 * (_seen_share(b, forward, _hidden_share(b, a)) + _seen_share(a, backward, _hidden_share(a, b)))
    if a.lines is not None and b.lines is not None:
        forward = a.lines @ m[:, :2, :2].transpose(0, 2, 1) + m[:, None, :2, 2]
        backward = b.lines @ inverse[:, :2, :2].transpose(0, 2, 1) + inverse[:, None, :2, 2]
        on_lines = 0.5 * (_seen_share(b, forward, _hidden_share(b, a), b.lines_soft)
                          + _seen_share(a, backward, _hidden_share(a, b), a.lines_soft))
        score = (1.0 - LINE_WEIGHT) * score + LINE_WEIGHT * on_lines
    return score[0] if single else score


@dataclass
class Motion:
    """A part's pose from key A to key B, its turn (with winding) and how well it fits (0-1)."""

    pose: np.ndarray
    turn: float
    score: float


def _similarity(theta: float, scale: float, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    return arcs.pose(arcs.rotation(theta, scale), source, target)


def _axis_turns(a: Shape, b: Shape) -> list[float]:
    def axis(cov):
        values, vectors = np.linalg.eigh(cov)
        v = vectors[:, -1]
        return math.atan2(v[1], v[0])

    d = axis(b.covariance) - axis(a.covariance)
    return [d, d + math.pi]


def _wrap(theta: float) -> float:
    return (theta + math.pi) % (2 * math.pi) - math.pi


def _refine(score_many, params: list[float], steps: list[float], rounds: int = 3) -> tuple[list[float], float]:
    """Pattern search: score every +-step move of every parameter in one batch (`score_many` maps
    (K, P) trial parameters to K scores), take the best move while it improves, then halve the
    steps. One batched overlap call per move instead of one per trial. A score that is not a
    number counts as the worst, so the search always ends."""

    def scored(trials: np.ndarray) -> np.ndarray:
        return np.nan_to_num(np.asarray(score_many(trials), float), nan=-np.inf)

    params = np.asarray(params, float)
    steps = np.asarray(steps, float)
    best = float(scored(params[None])[0])
    moves = np.concatenate([np.eye(len(params)), -np.eye(len(params))])
    for _ in range(rounds):
        while True:
            trials = params + moves * steps
            scores = scored(trials)
            k = int(np.argmax(scores))
            if scores[k] <= best + 1e-6:
                break
            params, best = trials[k], float(scores[k])
        steps = steps / 2
    return [float(v) for v in params], best


def _turn_penalty(turns: np.ndarray, prior_turn: float, weight: float) -> np.ndarray:
    return weight * np.abs([_wrap(t - prior_turn) for t in turns])


def _initial_scale(a: Shape, b: Shape) -> float:
    return float(np.clip(math.sqrt(b.area / max(a.area, 1)), 0.33, 3.0))


def _refine_similarity(a: Shape, b: Shape, turn: float, prior_turn: float = 0.0,
                       prior: float = 0.0) -> tuple[list[float], float]:
    """Coordinate search of (turn, log scale, x, y) from `turn`, scored by the overlap less `prior`
    per radian away from `prior_turn`."""
    def score(trials: np.ndarray) -> np.ndarray:
        poses = np.stack([_similarity(t, math.exp(ls), a.centroid, b.centroid + np.array([tx, ty])) for t, ls, tx, ty in trials])
        return overlap_score(poses, a, b) - _turn_penalty(trials[:, 0], prior_turn, prior)

    step_px = max(1.0, 0.08 * b.size)
    start = [turn, math.log(_initial_scale(a, b)), 0.0, 0.0]
    return _refine(score, start, [math.radians(5), 0.06, step_px, step_px])


def _motion(a: Shape, b: Shape, params: list[float]) -> Motion:
    theta, log_s, tx, ty = params
    m = _similarity(_wrap(theta), math.exp(log_s), a.centroid, b.centroid + np.array([tx, ty]))
    return Motion(m, _wrap(theta), float(overlap_score(m, a, b)))


def fit_free(a: Shape, b: Shape, prior_turn: float = 0.0) -> Motion:
    """The pose of a part with no joint: any turn, any translation, a uniform scale (or a squash)."""
    scale0 = _initial_scale(a, b)
    turns = [math.radians(d) for d in np.arange(-180.0, 180.0, COARSE_STEP)] + _axis_turns(a, b) + [prior_turn]
    turns = [_wrap(t) for t in turns]
    candidates = np.stack([_similarity(t, scale0, a.centroid, b.centroid) for t in turns])
    scores = overlap_score(candidates, a, b) - _turn_penalty(turns, prior_turn, TURN_PRIOR)
    start = turns[int(np.argmax(scores))]
    params, best = _refine_similarity(a, b, start, prior_turn, TURN_PRIOR)
    # a big turn must earn its place: a pose near the expected turn that fits almost as well wins
    # (a body whose outline changes because an arm crosses it has not somersaulted)
    if abs(_wrap(params[0] - prior_turn)) > math.radians(45):
        near, near_best = _refine_similarity(a, b, prior_turn, prior_turn, TURN_PRIOR)
        if near_best >= best - BIG_TURN_MARGIN:
            params, best = near, near_best
    motion = _motion(a, b, params)

    def penalised(found: Motion) -> float:
        return found.score - TURN_PRIOR * abs(_wrap(found.turn - prior_turn))

    for near in (motion.turn, prior_turn):
        squash = _fit_affine(a, b, near)
        if squash is not None and penalised(squash) > penalised(motion) + AFFINE_GAIN:
            motion = squash
    return motion


def fit_near(a: Shape, b: Shape, turn: float) -> Motion:
    """The best similarity pose found by refining from `turn` alone (how well another reading of the
    part's turn, such as its flip end for end, can fit)."""
    return _motion(a, b, _refine_similarity(a, b, turn)[0])


def _fit_affine(a: Shape, b: Shape, theta: float) -> Motion | None:
    """Second-moment (whitening) affine with the rotation nearest `theta`, refined in translation."""
    def sqrtm(c):
        values, vectors = np.linalg.eigh(c)
        return (vectors * np.sqrt(np.maximum(values, 1e-6))) @ vectors.T

    wa = np.linalg.inv(sqrtm(a.covariance))
    cb = sqrtm(b.covariance)
    best = None
    for delta in np.radians(np.arange(-30, 31, 5)):
        linear = cb @ arcs.rotation(theta + delta) @ wa
        m = arcs.pose(linear, a.centroid, b.centroid)
        s = float(overlap_score(m, a, b))
        if best is None or s > best[1]:
            best = (m, s)
    if best is None:
        return None
    m = best[0]
    sv = np.linalg.svd(m[:2, :2], compute_uv=False)
    if sv.min() < 0.3 or sv.max() > 3.5:
        return None
    return Motion(m, _wrap(arcs.angle_of(m)), best[1])


def fit_hinged(a: Shape, b: Shape, joints_a: list[np.ndarray], joints_b: list[np.ndarray], prior_turn: float = 0.0,
               refined: int = HINGES_REFINED) -> tuple[int, Motion]:
    """The pose of a part hinged at the best of several candidate joints (its index, the pose): it
    turns about the joint (`joints_a[k]` in key A, `joints_b[k]` where the parent carries it in key
    B), which may slip a little. Every joint's coarse sweep of turns is scored in one batch, and only
    the `refined` joints whose sweeps fit best are refined (a joint placed badly fits badly at every
    turn, and refining it is most of the cost). `prior_turn` is the parent's turn: between turns
    that fit alike (a limb that looks the same end for end) the one that bends the joint least wins."""
    turns = [_wrap(math.radians(d)) for d in np.arange(-180.0, 180.0, COARSE_STEP / 2)]
    candidates = np.stack([_similarity(t, 1.0, ja, jb) for ja, jb in zip(joints_a, joints_b) for t in turns])
    penalty = _turn_penalty(turns, prior_turn, JOINT_TURN_PRIOR)
    scores = overlap_score(candidates, a, b).reshape(len(joints_a), len(turns)) - penalty[None]
    ranked = np.argsort(-scores.max(axis=1), kind="stable")[:refined]
    best: tuple[int, Motion] | None = None
    for k in ranked:
        motion = _refine_jointed(a, b, joints_a[k], joints_b[k], turns[int(np.argmax(scores[k]))], prior_turn)
        if best is None or motion.score > best[1].score:
            best = (int(k), motion)
    return best


def _refine_jointed(a: Shape, b: Shape, joint_a: np.ndarray, joint_b: np.ndarray, start: float, prior_turn: float) -> Motion:
    slip = max(2.0, 0.1 * a.size)

    def score(trials: np.ndarray) -> np.ndarray:
        poses = np.stack([_similarity(t, 1.0, joint_a, joint_b + np.array([tx, ty])) for t, tx, ty in trials])
        scores = overlap_score(poses, a, b) - _turn_penalty(trials[:, 0], prior_turn, JOINT_TURN_PRIOR)
        return np.where(np.abs(trials[:, 1:]).max(axis=1) > slip, -1.0, scores)

    (theta, tx, ty), _ = _refine(score, [start, 0.0, 0.0], [math.radians(2.5), 1.0, 1.0])
    theta = _wrap(theta)
    m = _similarity(theta, 1.0, joint_a, joint_b + np.array([tx, ty]))
    return Motion(m, theta, float(overlap_score(m, a, b)))
