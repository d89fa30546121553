"""Moving regions grouped into parts, and parts hung on a skeleton of joints.

A part is a matched region together with the tones painted beside it without ink (a fill and its
shadow, a blush on a cheek). Leftover regions ride along: a region of the same paint nearby (a
torso cut in two by an arm lying across it) joins its sibling's part, anything else the part it
touches most. Each part gets a free pose, searched near the turn of the whole figure it belongs
to, and then a place on a skeleton grown like a minimum spanning tree: the bone taken next is
the one whose joint (a point on the contact between child and parent that the child turns
about) costs least against the child's free pose. So a forearm hangs from its upper arm and turns
about the elbow, whatever it touches at rest. Children are in-betweened relative to their parents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from . import arcs
from .matching import figures
from .motion import BIG_TURN_MARGIN, Motion, fit_free, fit_hinged, fit_near, overlap_score, shape_of
from .regions import Segmentation, adjacency

#: Two touching regions are one part (a fill and its shadow tone) when at most this share of the
#: boundary between them is ink ...
TONE_INK_SHARE = 0.2
#: ... along a boundary at least this share of the smaller region's size (sqrt of its area) long: a
#: tone lies along its fill, while two parts that only touch at a corner (a hand at a knee, through a
#: speck of backdrop too small to be a region) meet for a pixel or two.
TONE_CONTACT = 0.6
#: A leftover region rides with a part painted within this colour distance (RGBA, 0-255) of it.
SAME_PAINT = 20.0
#: Two parts of one paint become one when one pose fits them together by at least this much better
#: than their own poses fit them apart (area-weighted, both allowed to hide behind what covers them).
JOIN_GAIN = 0.02
#: A joint must lie within this share of the part's size (sqrt of area) of the contact zone.
JOINT_REACH = 0.35
#: A jointed pose is kept unless it fits this much worse than the part's free pose.
JOINT_TOLERANCE = 0.06
#: Fit lost per radian a pose turns a part away from its whole figure's turn, when bones are weighed
#: (for the largest part; smaller parts in proportion to their area: bodies carry the figure's turn).
FIGURE_TURN_PRIOR = 0.05
#: A jointed limb turning at least this far (radians) could have gone either way round.
HANG_AMBIGUITY = math.radians(170)
#: Ink within this many pixels of a part's fill is the part's outline.
OUTLINE_REACH = 3
#: A part is outlined when at least this share of the ring around its fill is ink.
INKED_OUTLINE = 0.25
#: A leftover region of key A smaller than this share of the part it touches most is an appendage
#: key B hides (a far sleeve behind the body): a part of its own, not a passenger of that part.
APPENDAGE_SHARE = 0.3
#: A part whose shown area changes between the keys by at least this much more (|log| of the ratio)
#: than a neighbour's is covered by that neighbour ...
COVERED_CHANGE = 0.15
#: ... and its ink within this many pixels of the neighbour is the neighbour's outline.
COVER_LINE_REACH = 2
#: Unclaimed changed pixels this close to a part belong to it.
ORPHAN_REACH = 16


@dataclass
class Part:
    index: int
    regions_a: list[int]
    regions_b: list[int]
    mask_a: np.ndarray
    mask_b: np.ndarray
    motion: Motion | None = None
    parent: int | None = None  # None: the world (held background)
    joint: np.ndarray | None = None  # in key A's coordinates
    turn: float = 0.0  # relative to the parent, with winding
    relative: np.ndarray = field(default_factory=lambda: np.eye(3))  # parent^-1 @ pose
    pivot: np.ndarray = field(default_factory=lambda: np.zeros(2))

    @property
    def area(self) -> int:
        return int(self.mask_a.sum())

    @property
    def shown_change(self) -> float:
        """How much more of the part one key shows than the other (|log| of the ratio of shown
        areas; infinite when a key shows none): near 0 for a part neither key hides any of."""
        shown_a, shown_b = int(self.mask_a.sum()), int(self.mask_b.sum())
        return abs(math.log(shown_a / shown_b)) if shown_a and shown_b else math.inf


class _Union:
    def __init__(self, items):
        self.parent = {i: i for i in items}

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i, j):
        self.parent[self.find(i)] = self.find(j)


def _fill_and_near(seg: Segmentation, regions: list[int]) -> tuple[np.ndarray, np.ndarray]:
    fill = np.isin(seg.labels, regions)
    size = 2 * OUTLINE_REACH + 1
    near = cv2.dilate(fill.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))) > 0
    return fill, near


def inked_share(seg: Segmentation, regions: list[int]) -> float:
    """Share of the ring around the regions' fill that is ink."""
    fill, near = _fill_and_near(seg, regions)
    ring = near & ~fill
    return float(seg.ink[ring].mean()) if ring.any() else 1.0


def outline_mask(key: np.ndarray, seg: Segmentation, regions: list[int], outlined: bool,
                 moving: np.ndarray) -> np.ndarray:
    """The regions' fill plus the ink drawn around and inside them, except ink nearer to another
    moving part's fill (a hand raised beside a head does not carry off the head's outline). A part
    painted without an outline (a cast shadow, a tone) takes no ink, not even the anti-aliased edge
    of a line next to it: the lines near it belong to what it touches."""
    fill, near = _fill_and_near(seg, regions)
    if not outlined:
        colours = np.stack([r.colour for r in seg.regions])
        return fill & (np.abs(key.astype(np.float32) - colours[seg.owner]).max(axis=2) <= 40)
    elsewhere = moving[seg.owner] & ~np.isin(seg.owner, regions)
    return fill | (near & seg.ink & ~elsewhere)


def adopt_orphans(parts: list[Part], key: np.ndarray, seg: Segmentation, other_figure: np.ndarray,
                  changed: np.ndarray, which: str) -> None:
    """Give each part the changed pixels next to it that no part owns and that are not the colour of
    the region around them: slivers too small to be regions (an ear tip), bare strokes (a hair tuft)."""
    attr = f"mask_{which}"
    owned = np.zeros(changed.shape, bool)
    for part in parts:
        owned |= getattr(part, attr)
    colours = np.stack([r.colour for r in seg.regions]) if seg.regions else np.zeros((1, 4))
    unlike = np.abs(key.astype(np.float32) - colours[seg.owner]).max(axis=2) > 24
    orphans = changed & ~owned & ~other_figure & unlike
    if not orphans.any() or not owned.any():
        return
    index = np.full(changed.shape, -1, np.int32)
    for k, part in enumerate(parts):
        mask = getattr(part, attr)
        if (mask & seg.ink).any():  # an unoutlined part (a cast shadow) adopts no strokes
            index[mask] = k
    distance, nearest = cv2.distanceTransformWithLabels((~owned).astype(np.uint8), cv2.DIST_L2, 3,
                                                        labelType=cv2.DIST_LABEL_PIXEL)
    seeds = np.flatnonzero(owned.ravel())
    owner = index.ravel()[seeds][nearest.ravel() - 1].reshape(changed.shape)
    adopt = orphans & (distance <= ORPHAN_REACH) & (owner >= 0)
    for k, part in enumerate(parts):
        getattr(part, attr)[adopt & (owner == k)] = True


def _same_paint(colour_a: np.ndarray, colour_b: np.ndarray) -> bool:
    return float(np.linalg.norm(colour_a - colour_b)) <= SAME_PAINT


def _adopt_leftover(seg: Segmentation, leftover: list[int], owners: dict[int, int],
                    adjacent: dict[tuple[int, int], tuple[int, float]], reach: float,
                    same_paint_only: bool = False) -> int | None:
    """The part a leftover region (or group) of one key rides with: a part holding a region of the
    same paint nearby (one region cut in two by a limb lying across it), else (unless
    `same_paint_only`) the part it touches most."""
    colour = np.mean([seg.regions[i].colour for i in leftover], axis=0)
    centre = np.mean([seg.regions[i].centroid for i in leftover], axis=0)
    best, best_distance = None, reach
    for region, part in owners.items():
        if _same_paint(seg.regions[region].colour, colour):
            distance = float(np.linalg.norm(seg.regions[region].centroid - centre))
            if distance < best_distance:
                best, best_distance = part, distance
    if best is not None or same_paint_only:
        return best
    best_len = 0
    for (i, j), (length, _) in adjacent.items():
        for here, there in ((i, j), (j, i)):
            if here in leftover and there in owners and length > best_len:
                best, best_len = owners[there], length
    return best


def group_regions(
    seg_a: Segmentation, seg_b: Segmentation, moving_a: list[int], moving_b: list[int],
    matches: list[tuple[int, int, float]],
) -> list[tuple[list[int], list[int]]]:
    """Parts as (regions of A, regions of B): matched regions, joined with the tones painted beside
    them without ink; regions inked apart stay apart (the skeleton decides how they hang together)."""
    pair_of = {i: j for i, j, _ in matches}
    moving_set = set(moving_a)
    union = _Union(moving_a)
    adj_a = adjacency(seg_a)
    for (i, j), (length, ink) in adj_a.items():
        if (i in moving_set and j in moving_set and ink <= TONE_INK_SHARE
                and length >= max(3.0, TONE_CONTACT * math.sqrt(min(seg_a.regions[i].area, seg_a.regions[j].area)))):
            union.join(i, j)
    groups: dict[int, list[int]] = {}
    for i in moving_a:
        groups.setdefault(union.find(i), []).append(i)
    reach = 0.25 * math.hypot(*seg_a.labels.shape)
    owners = {m: g for g, members in groups.items() for m in members if any(x in pair_of for x in members)}
    # a leftover of key A rides with a part of its paint, else with the part it touches most; but
    # a small one of another paint (a far sleeve key B hides behind the body) is a part of its own,
    # which key B does not show, while a large one (a body key B hides but for a hand) rides along
    def area(regions: list[int]) -> int:
        return sum(seg_a.regions[i].area for i in regions)

    for g in [g for g, members in groups.items() if not any(m in pair_of for m in members)]:
        host = _adopt_leftover(seg_a, groups[g], owners, adj_a, reach, same_paint_only=True)
        if host is None:
            host = _adopt_leftover(seg_a, groups[g], owners, adj_a, reach)
            if host is not None and area(groups[g]) < APPENDAGE_SHARE * area(groups[host]):
                continue
        if host is not None:
            groups[host].extend(groups.pop(g))
    parts = [(members, [pair_of[m] for m in members if m in pair_of]) for members in groups.values()]
    # B's leftover moving regions ride with a part of B: of their paint, else the one they touch most
    part_of_b = {j: k for k, (_, rb) in enumerate(parts) for j in rb}
    adj_b = adjacency(seg_b)
    leftovers = [j for j in moving_b if j not in part_of_b]
    # and a small one of another paint (a far sleeve key B shows from behind the body) appears
    for _ in range(3):
        for j in list(leftovers):
            host = _adopt_leftover(seg_b, [j], part_of_b, adj_b, reach, same_paint_only=True)
            if host is None:
                host = _adopt_leftover(seg_b, [j], part_of_b, adj_b, reach)
                if host is not None and seg_b.regions[j].area < APPENDAGE_SHARE * sum(seg_b.regions[i].area for i in parts[host][1]):
                    parts.append(([], []))
                    host = len(parts) - 1
            if host is not None:
                parts[host][1].append(j)
                part_of_b[j] = host
                leftovers.remove(j)
    return parts


def _contact(mask: np.ndarray, other: np.ndarray, reach: int = 5) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    return (cv2.dilate(mask.astype(np.uint8), kernel) > 0) & (cv2.dilate(other.astype(np.uint8), kernel) > 0)


def _contact_points(contact: np.ndarray) -> list[np.ndarray]:
    """Where a joint may sit on a contact zone: its middle, its two ends along its long axis and
    the points halfway to them (a sleeve lying along a body meets it along a strip)."""
    if not contact.any():
        return []
    ys, xs = np.nonzero(contact)
    points = np.stack([xs, ys], axis=1).astype(float)
    centre = points.mean(axis=0)
    if len(points) < 3:
        return [centre]
    axis = np.linalg.eigh(np.cov(points.T))[1][:, -1]
    along = (points - centre) @ axis
    ends = [points[np.argmin(along)], points[np.argmax(along)]]
    return [centre, *ends, *[(centre + e) / 2 for e in ends]]


def _joint_on_contact(relative: np.ndarray, contact: np.ndarray, size: float) -> np.ndarray | None:
    """The relative pose's fixed point, if it lies on (near) the contact zone."""
    if not contact.any():
        return None
    point = arcs.fixed_point(relative)
    if point is None:
        return None
    ys, xs = np.nonzero(contact)
    distance = np.min(np.hypot(xs - point[0], ys - point[1]))
    return point if distance <= JOINT_REACH * size else None


def build_parts(
    key_a: np.ndarray, key_b: np.ndarray, seg_a: Segmentation, seg_b: Segmentation,
    groups: list[tuple[list[int], list[int]]], held_a: np.ndarray, held_b: np.ndarray, changed: np.ndarray,
) -> list[Part]:
    """Parts with poses, parents, joints and relative poses, parents before children."""
    moving_a = np.zeros(len(seg_a.regions), bool)
    moving_a[[i for ra, _ in groups for i in ra]] = True
    moving_b = np.zeros(len(seg_b.regions), bool)
    moving_b[[j for _, rb in groups for j in rb]] = True
    parts = []
    for k, (ra, rb) in enumerate(groups):
        # a part is outlined unless one of the keys shows it without ink around it (a cast shadow
        # is bare on the ground in one key even when the figure's line runs along it in the other)
        outlined = min(inked_share(seg_a, ra), inked_share(seg_b, rb) if rb else 1.0) >= INKED_OUTLINE
        parts.append(Part(k, ra, rb, outline_mask(key_a, seg_a, ra, outlined, moving_a),
                          outline_mask(key_b, seg_b, rb, outlined, moving_b)))
    figure_a, figure_b = np.zeros(changed.shape, bool), np.zeros(changed.shape, bool)
    for part in parts:
        figure_a |= part.mask_a
        figure_b |= part.mask_b
    adopt_orphans(parts, key_a, seg_a, figure_b, changed, "a")
    adopt_orphans(parts, key_b, seg_b, figure_a, changed, "b")
    figure_a, figure_b = np.zeros(changed.shape, bool), np.zeros(changed.shape, bool)
    for part in parts:
        figure_a |= part.mask_a
        figure_b |= part.mask_b
    turn_of = _figure_turns(parts, seg_a, seg_b)
    # a part may hide behind other parts and behind held scenery (a post), not behind the backdrop
    scenery_a = np.isin(seg_a.labels, [r.index for r in seg_a.regions if held_a[r.index] and not r.touches_border])
    scenery_b = np.isin(seg_b.labels, [r.index for r in seg_b.regions if held_b[r.index] and not r.touches_border])
    covered_a, covered_b = _covered_lines(parts, "a"), _covered_lines(parts, "b")

    def shapes_of(part: Part, own_lines: bool = False) -> tuple:
        ink_a, ink_b = (seg_a.ink & ~covered_a, seg_b.ink & ~covered_b) if own_lines else (seg_a.ink, seg_b.ink)
        return (shape_of(part.mask_a, part.index, (figure_a | scenery_a) & ~part.mask_a, ink_a),
                shape_of(part.mask_b, part.index, (figure_b | scenery_b) & ~part.mask_b, ink_b))

    shapes = {}
    for part in parts:
        if part.regions_a and part.regions_b:
            shapes[part.index] = shapes_of(part)
            part.motion = fit_free(*shapes[part.index], prior_turn=turn_of[part.index])
        else:
            part.motion = Motion(np.eye(3), 0.0, 0.0)
    parts = _join_cut_pieces(parts, seg_a, shapes, shapes_of, turn_of)
    # a part hinges on held cels (a body, a neck), not on the backdrop that surrounds everything
    return _skeleton(parts, shapes, scenery_a, turn_of)


def _covered_lines(parts: list[Part], key: str) -> np.ndarray:
    """Ink of key `key` that a part shares with a neighbour covering it: the neighbour's outline,
    which moves with the neighbour and says nothing of the covered part's pose. The part shown
    alike in both keys is the one in front (a sleeve lies whole across a torso whose visible
    piece changes); where both are shown alike (a hand on its forearm) the line stays with both."""
    covered = np.zeros(parts[0].mask_a.shape, bool) if parts else np.zeros((0, 0), bool)
    matched = [p for p in parts if p.regions_b and p.mask_a.any() and p.mask_b.any()]
    change = {p.index: p.shown_change for p in matched}
    near = np.ones((2 * COVER_LINE_REACH + 1,) * 2, np.uint8)
    grown: dict[int, np.ndarray] = {}
    for behind in matched:
        mask = behind.mask_a if key == "a" else behind.mask_b
        for front in matched:
            if change[behind.index] - change[front.index] >= COVERED_CHANGE:
                if front.index not in grown:
                    grown[front.index] = cv2.dilate((front.mask_a if key == "a" else front.mask_b).astype(np.uint8), near) > 0
                covered |= mask & grown[front.index]
    return covered


def _paint(seg: Segmentation, regions: list[int]) -> np.ndarray:
    areas = np.array([seg.regions[i].area for i in regions], float)
    return (np.stack([seg.regions[i].colour for i in regions]) * areas[:, None]).sum(0) / areas.sum()


def _within_reach(seg: Segmentation, p: Part, q: Part) -> bool:
    """Whether two parts lie close enough in key A to be pieces of one cut by a limb across it: their
    boxes come within the smaller part's size of each other."""
    def box(part):
        boxes = np.array([seg.regions[i].bbox for i in part.regions_a])
        return boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)

    (p0, p1), (q0, q1) = box(p), box(q)
    gap = np.maximum(np.maximum(q0 - p1, p0 - q1), 0)
    return float(np.hypot(*gap)) <= math.sqrt(min(p.area, q.area))


def _join_cut_pieces(parts: list[Part], seg_a: Segmentation, shapes: dict, shapes_of, turn_of: dict[int, float]) -> list[Part]:
    """Join two parts of one paint that one pose carries together better than each goes alone.

    A torso with an arm lying across it shows in two pieces, and which piece is the bigger can
    change between the keys, so the region matching may pair them crosswise. Allowed to hide behind
    whatever covers them, the pieces of one torso fit one pose as a whole better than their own
    poses fit them apart, while a head and a hand of one skin colour do not (they move apart)."""
    def hiding(pair: tuple) -> tuple:
        return tuple(replace(shape, hiding=1.0) for shape in pair)

    tried: set[tuple] = set()
    own: dict[tuple, tuple] = {}

    def own_shapes(part: Part) -> tuple:
        key = tuple(part.regions_a)
        if key not in own:
            own[key] = hiding(shapes_of(part, own_lines=True))
        return own[key]

    joined = True
    while joined:
        joined = False
        for p, q in [(p, q) for p in parts for q in parts if p.index < q.index and p.index in shapes and q.index in shapes
                     and _same_paint(_paint(seg_a, p.regions_a), _paint(seg_a, q.regions_a))
                     and _within_reach(seg_a, p, q)]:
            key = (tuple(p.regions_a), tuple(q.regions_a))
            if key in tried:
                continue
            tried.add(key)
            apart = (p.area * overlap_score(p.motion.pose, *own_shapes(p))
                     + q.area * overlap_score(q.motion.pose, *own_shapes(q))) / (p.area + q.area)
            union = Part(p.index, p.regions_a + q.regions_a, p.regions_b + q.regions_b, p.mask_a | q.mask_a, p.mask_b | q.mask_b)
            pair = shapes_of(union, own_lines=True)
            together = fit_free(*hiding(pair), prior_turn=turn_of[p.index])
            if together.score >= apart + JOIN_GAIN:
                union.motion = Motion(together.pose, together.turn, float(overlap_score(together.pose, *pair)))
                shapes[p.index] = pair
                parts = [union if r is p else r for r in parts if r is not q]
                joined = True
                break
    return parts


def _figure_turns(parts: list[Part], seg_a: Segmentation, seg_b: Segmentation) -> dict[int, float]:
    """Each part's expected turn: the turn of the whole figure it belongs to (its regions and all
    the moving regions connected to them in key A), which a figure's silhouette and lines tell far
    better than a part's own shape does (a torso looks the same upside down; a figure does not)."""
    figure_of = {i: k for k, regions in enumerate(figures(seg_a, [i for p in parts for i in p.regions_a]))
                 for i in regions}
    members_of: dict[int, list[Part]] = {}
    for part in parts:
        members_of.setdefault(figure_of[part.regions_a[0]] if part.regions_a else -1 - part.index, []).append(part)
    turns = {}
    for members in members_of.values():
        matched = [p for p in members if p.regions_b]
        turn = 0.0
        if len(matched) > 1:
            mask_a = np.logical_or.reduce([p.mask_a for p in matched])
            mask_b = np.logical_or.reduce([p.mask_b for p in matched])
            turn = fit_free(shape_of(mask_a, 0, None, seg_a.ink), shape_of(mask_b, 0, None, seg_b.ink)).turn
        turns.update({p.index: turn for p in members})
    return turns


def _apart(turn: float, other: float) -> float:
    """How far apart two turns are, the short way round (radians, 0 to pi)."""
    return abs((turn - other + math.pi) % (2 * math.pi) - math.pi)


@dataclass
class _Hinge:
    """A candidate bone: `child` hung from `parent` (None: the held world) at `joint`."""

    quality: float  # the hinged pose's fit minus the child's free fit (0: hinging costs nothing)
    contact: int
    joint: np.ndarray | None
    motion: Motion


def _hinge(part: Part, parent: Part | None, contact: np.ndarray, shapes: dict, figure_turn: float,
           weight: float) -> _Hinge:
    """The best joint on the contact for `part` turning relative to `parent`'s pose. Its quality
    weighs both poses by how far they turn the part from its figure, by `weight` (a body hung
    upside down from its own arm fits its outline as well as the right way up, but the figure says
    otherwise; a hand is free to turn)."""
    parent_pose = np.eye(3) if parent is None else parent.motion.pose
    parent_turn = 0.0 if parent is None else parent.motion.turn
    size = math.sqrt(max(part.area, 1))
    relative = np.linalg.inv(parent_pose) @ part.motion.pose
    # a limb's shape often looks the same turned end for end: try the pose's flip as well
    a, b = shapes[part.index]
    flipped = relative @ arcs.pose(arcs.rotation(math.pi), a.centroid, a.centroid)
    candidates = [_joint_on_contact(relative, contact, size), _joint_on_contact(flipped, contact, size)]
    candidates += _contact_points(contact)
    joints = [c for c in candidates if c is not None]
    if not joints:
        return _Hinge(-1.0, int(contact.sum()), None, part.motion)
    k, hinged = fit_hinged(a, b, joints, [arcs.apply(parent_pose, j[None])[0] for j in joints], prior_turn=parent_turn)
    best = (joints[k], hinged)

    def believed(motion: Motion) -> float:
        return motion.score - FIGURE_TURN_PRIOR * weight * _apart(motion.turn, figure_turn)

    quality = believed(best[1]) - believed(part.motion)
    if _apart(best[1].turn, part.motion.turn) > math.pi / 2:
        # the hinge turns the part end for end from its free pose: it must beat the free pose by
        # as much as the free fit preferred its turn to that flip (nothing, for a limb that looks
        # alike both ways) and, for a body the free fit kept turning with its figure, by the margin
        # any big turn must earn (hung upside down from its own leg, a torso fits about as well)
        quality -= max(0.0, part.motion.score - fit_near(a, b, part.motion.turn + math.pi).score)
        if _apart(part.motion.turn, figure_turn) <= math.pi / 4:
            quality -= BIG_TURN_MARGIN * weight
    return _Hinge(quality, int(contact.sum()), best[0], best[1])


def _place(part: Part, parent: Part | None, joint: np.ndarray | None, motion: Motion) -> None:
    parent_pose = np.eye(3) if parent is None else parent.motion.pose
    parent_turn = 0.0 if parent is None else parent.motion.turn
    part.motion = motion
    part.parent = None if parent is None else parent.index
    part.joint = joint
    part.relative = np.linalg.inv(parent_pose) @ motion.pose
    turn = motion.turn - parent_turn
    part.turn = (turn + math.pi) % (2 * math.pi) - math.pi if parent is not None or joint is not None else motion.turn
    part.pivot = joint if joint is not None else shape_of(part.mask_a).centroid
    if joint is not None and abs(part.turn) >= HANG_AMBIGUITY:
        part.turn = _through_the_bottom(part, joint, parent_turn)


def _through_the_bottom(part: Part, joint: np.ndarray, parent_turn: float) -> float:
    """Of the two ways round for a limb turning about half a circle, the one whose mid-swing hangs
    lower: the keys cannot tell them apart, and a limb swings like a pendulum far more often than
    it windmills over the top."""
    ys, xs = np.nonzero(part.mask_a)
    if not len(xs):
        return part.turn
    rest = math.atan2(ys.mean() - joint[1], xs.mean() - joint[0])  # image y points down
    other = part.turn - math.copysign(2 * math.pi, part.turn)
    return max((part.turn, other), key=lambda turn: math.sin(rest + (parent_turn + turn) / 2))


def _skeleton(parts: list[Part], shapes: dict, world: np.ndarray, figure_turns: dict[int, float]) -> list[Part]:
    """Hang the parts on a tree of joints, parents before children.

    Grown like a minimum spanning tree: of all the bones that could join a part not yet placed to
    the held world or to a placed part, the one whose hinged pose costs least against the part's
    free pose is taken first, so a forearm hangs from its upper arm (which turns with it about the
    elbow) rather than from the leg it happens to touch at rest. When nothing placed touches the
    parts left, the best-fitting of them starts a tree of its own (a second figure); a part whose
    best bone fits poorly moves with that parent but turns about its own centre; a part key B does
    not show rides with the part it touches most, and one only key B shows with the part it touches
    there."""
    matched = {p.index: p for p in parts if p.regions_a and p.regions_b}
    unmatched = {p.index: p for p in parts if not p.regions_b}
    appearing = {p.index: p for p in parts if not p.regions_a}
    placed: list[Part] = []
    cache: dict[tuple[int, int], _Hinge | None] = {}
    largest = max((p.area for p in parts), default=1)

    def bone(part: Part, parent: Part | None) -> _Hinge | None:
        key = (part.index, -1 if parent is None else parent.index)
        if key not in cache:
            contact = _contact(part.mask_a, world if parent is None else parent.mask_a)
            weight = 0.0 if parent is None else part.area / largest  # a held parent anchors the turn itself
            cache[key] = _hinge(part, parent, contact, shapes, figure_turns[part.index], weight) if contact.any() else None
        return cache[key]

    while matched:
        best = None
        for part in matched.values():
            for parent in [None, *placed]:
                hinge = bone(part, parent)
                if hinge is None or (parent is None and hinge.quality < -JOINT_TOLERANCE):
                    continue
                rank = (hinge.quality, hinge.contact)
                if best is None or rank > best[0]:
                    best = (rank, part, parent, hinge)
        if best is None:  # nothing hinges on what is placed: the surest part left starts a tree
            root = max(matched.values(), key=lambda p: p.motion.score * p.area)
            _place(root, None, None, root.motion)
            placed.append(matched.pop(root.index))
            continue
        _, part, parent, hinge = best
        if hinge.quality >= -JOINT_TOLERANCE:
            _place(part, parent, hinge.joint, hinge.motion)
        else:  # the part moves with its parent but no joint explains how: it turns about its centre
            _place(part, parent, None, part.motion)
        placed.append(matched.pop(part.index))
    while unmatched:
        ranked = [(int(_contact(p.mask_a, q.mask_a).sum()), p, q) for p in unmatched.values() for q in placed]
        ranked = [r for r in ranked if r[0] > 0]
        if ranked:
            _, part, parent = max(ranked, key=lambda r: r[0])
            _place(part, parent, None, Motion(parent.motion.pose, parent.motion.turn, 0.0))
        else:
            part = max(unmatched.values(), key=lambda p: p.area)
            _place(part, None, None, Motion(np.eye(3), 0.0, 0.0))
        placed.append(unmatched.pop(part.index))
    for part in appearing.values():  # rides with the part it touches in key B
        ranked = [(int(_contact(part.mask_b, q.mask_b).sum()), q) for q in placed]
        touching = [r for r in ranked if r[0] > 0]
        if touching:
            parent = max(touching, key=lambda r: r[0])[1]
            _place(part, parent, None, Motion(parent.motion.pose, parent.motion.turn, 0.0))
        else:
            _place(part, None, None, Motion(np.eye(3), 0.0, 0.0))
        part.pivot = shape_of(part.mask_b).centroid
        placed.append(part)
    position = {part.index: k for k, part in enumerate(placed)}
    for part in placed:
        part.index = position[part.index]
        part.parent = None if part.parent is None else position[part.parent]
    return placed
