"""Moving regions grouped into parts, and parts hung on a skeleton of joints.

Regions that move together are one part: regions touching without ink between them (a fill and
its shadow tone, a blush on a cheek) always, and regions touching across ink when the pose of one
also lays the other onto its match (a forearm and its hand). Leftover regions (a mouth that opens,
a region split in two) ride with the part they touch most. Each part then gets its pose, and a
parent: a held neighbour (the world) or a moving neighbour. The joint between the two is the
fixed point of the child's pose relative to its parent when that point lies on the contact
between them: a shoulder, an elbow, a neck. Children are in-betweened relative to their parents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import arcs
from .motion import Motion, Shape, fit_free, fit_jointed, shape_of
from .regions import Segmentation, adjacency

#: Two regions joined by ink are one part when one pose fits both together about as well as
#: each region's own pose fits it.
SAME_MOTION_SLACK = 0.005
#: A joint must lie within this share of the part's size (sqrt of area) of the contact zone.
JOINT_REACH = 0.35
#: A jointed pose is kept unless it fits this much worse than the part's free pose.
JOINT_TOLERANCE = 0.06
#: Ink within this many pixels of a part's fill is the part's outline.
OUTLINE_REACH = 3
#: A part is outlined when at least this share of the ring around its fill is ink.
INKED_OUTLINE = 0.25
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


def group_regions(
    seg_a: Segmentation, seg_b: Segmentation, moving_a: list[int], moving_b: list[int],
    matches: list[tuple[int, int, float]],
) -> list[tuple[list[int], list[int]]]:
    """Parts as (regions of A, regions of B)."""
    pair_of = {i: j for i, j, _ in matches}
    shapes: dict[int, tuple[Shape, Shape, Motion]] = {}
    for i, j, _ in matches:
        sa, sb = shape_of(seg_a.mask(i)), shape_of(seg_b.mask(j))
        shapes[i] = (sa, sb, fit_free(sa, sb))
    moving_set = set(moving_a)
    union = _Union(moving_a)
    adj_a = adjacency(seg_a)
    for (i, j), (length, inked) in adj_a.items():
        if i not in moving_set or j not in moving_set or length < 3:
            continue
        if not inked:
            union.join(i, j)
        elif i in shapes and j in shapes:
            together = fit_free(shape_of(seg_a.mask(i) | seg_a.mask(j)), shape_of(seg_b.mask(pair_of[i]) | seg_b.mask(pair_of[j])))
            wi, wj = shapes[i][0].area, shapes[j][0].area
            apart = (wi * shapes[i][2].score + wj * shapes[j][2].score) / max(wi + wj, 1)
            if together.score >= apart - SAME_MOTION_SLACK:
                union.join(i, j)
    groups: dict[int, list[int]] = {}
    for i in moving_a:
        groups.setdefault(union.find(i), []).append(i)
    # groups with no match ride with the matched group they touch most
    matched_groups = {g for g, members in groups.items() if any(m in pair_of for m in members)}
    for g in [g for g in groups if g not in matched_groups]:
        best, best_len = None, 0
        for (i, j), (length, _) in adj_a.items():
            for here, there in ((i, j), (j, i)):
                if here in groups[g] and there in moving_set and union.find(there) in matched_groups and length > best_len:
                    best, best_len = union.find(there), length
        if best is not None:
            groups[best].extend(groups.pop(g))
    parts = [(members, [pair_of[m] for m in members if m in pair_of]) for members in groups.values()]
    # B's leftover moving regions join the part owning the B region they touch most
    part_of_b = {j: k for k, (_, rb) in enumerate(parts) for j in rb}
    adj_b = adjacency(seg_b)
    leftovers = [j for j in moving_b if j not in part_of_b]
    for _ in range(3):
        for j in list(leftovers):
            best, best_len = None, 0
            for (p, q), (length, _) in adj_b.items():
                other = q if p == j else p if q == j else None
                if other is not None and other in part_of_b and length > best_len:
                    best, best_len = part_of_b[other], length
            if best is not None:
                parts[best][1].append(j)
                part_of_b[j] = best
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
    groups: list[tuple[list[int], list[int]]], held_a: np.ndarray, changed: np.ndarray,
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
    shapes = {}
    for part in parts:
        if part.regions_b:
            shapes[part.index] = (shape_of(part.mask_a, part.index, figure_a & ~part.mask_a),
                                  shape_of(part.mask_b, part.index, figure_b & ~part.mask_b))
            part.motion = fit_free(*shapes[part.index])
        else:
            part.motion = Motion(np.eye(3), 0.0, 0.0)
    # a part hinges on held cels (a body, a neck), not on the backdrop that surrounds everything
    world = np.isin(seg_a.labels, [r.index for r in seg_a.regions if held_a[r.index] and not r.touches_border])
    placed: list[Part] = []
    pending = {p.index: p for p in parts}

    def attach(part: Part, parent: Part | None, contact: np.ndarray) -> bool:
        parent_pose = np.eye(3) if parent is None else parent.motion.pose
        parent_turn = 0.0 if parent is None else parent.motion.turn
        size = math.sqrt(max(part.area, 1))
        joint = None
        if part.index in shapes and part.motion.score > 0:
            relative = np.linalg.inv(parent_pose) @ part.motion.pose
            # a limb's shape often looks the same turned end for end: try the pose's flip as well
            centre = shapes[part.index][0].centroid
            flipped = relative @ arcs.pose(arcs.rotation(math.pi), centre, centre)
            candidates = [_joint_on_contact(relative, contact, size), _joint_on_contact(flipped, contact, size)]
            candidates += _contact_points(contact)
            best = None
            a, b = shapes[part.index]
            for joint in (c for c in candidates if c is not None):
                hinged = fit_jointed(a, b, joint, arcs.apply(parent_pose, joint[None])[0], prior_turn=parent_turn)
                if best is None or hinged.score > best[1].score:
                    best = (joint, hinged)
            if best is not None and best[1].score >= part.motion.score - JOINT_TOLERANCE:
                joint, part.motion = best
            elif parent is None:
                return False
        elif parent is None:
            return False
        else:  # nothing to match in key B: the part rides with its parent
            part.motion = Motion(parent_pose, parent_turn, 0.0)
        part.parent = None if parent is None else parent.index
        part.joint = joint
        part.relative = np.linalg.inv(parent_pose) @ part.motion.pose
        turn = part.motion.turn - parent_turn
        part.turn = (turn + math.pi) % (2 * math.pi) - math.pi
        part.pivot = joint if joint is not None else shape_of(part.mask_a).centroid
        placed.append(part)
        pending.pop(part.index)
        return True

    for part in sorted(parts, key=lambda p: -p.area):
        attach(part, None, _contact(part.mask_a, world))
    while pending:
        progress = False
        for part in sorted(pending.values(), key=lambda p: -p.area):
            candidates = []
            for parent in placed:
                contact = _contact(part.mask_a, parent.mask_a)
                if contact.any():
                    candidates.append((int(contact.sum()), parent, contact))
            if candidates:
                _, parent, contact = max(candidates, key=lambda c: c[0])
                attach(part, parent, contact)
                progress = True
                break
        if not progress:
            root = max(pending.values(), key=lambda p: p.area)
            root.parent, root.joint = None, None
            root.relative = root.motion.pose
            root.turn = root.motion.turn
            root.pivot = shape_of(root.mask_a).centroid
            placed.append(root)
            pending.pop(root.index)
    position = {part.index: k for k, part in enumerate(placed)}
    for part in placed:
        part.index = position[part.index]
        part.parent = None if part.parent is None else position[part.parent]
    return placed
