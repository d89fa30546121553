"""Small cel drawings for the cel in-betweener's tests: flat colours, dark anti-aliased ink outlines.

Every shape is filled flat and outlined along its silhouette, the way a cel is inked and painted;
the geometry (joints, angles, centres) is known exactly, so tests can measure what comes out.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

INK = (30, 26, 34)
BACKDROP = (232, 226, 212, 255)
GROUND = (170, 200, 150, 255)
TORSO = (214, 92, 80)
LIMB = (90, 140, 220)
FOREARM = (240, 200, 170)
BALL = (230, 190, 60)
LINE = 2


def canvas(height: int = 160, width: int = 240, transparent: bool = False) -> np.ndarray:
    image = np.zeros((height, width, 4), np.uint8)
    if not transparent:
        image[:] = BACKDROP
        image[int(height * 0.8):] = GROUND
    return image


def paint(image: np.ndarray, mask: np.ndarray, colour) -> None:
    """Fill `mask` flat with `colour` and ink its silhouette (anti-aliased)."""
    image[mask > 0, :3] = colour
    image[mask > 0, 3] = 255
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    rgb = np.ascontiguousarray(image[..., :3])
    cv2.drawContours(rgb, contours, -1, INK, LINE, cv2.LINE_AA)
    line = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(line, contours, -1, 255, LINE, cv2.LINE_AA)
    image[..., :3] = rgb
    image[..., 3] = np.maximum(image[..., 3], line)


def capsule(shape: tuple[int, int], start, angle_deg: float, length: float, radius: float) -> np.ndarray:
    """A limb from `start` pointing at `angle_deg` (0 = straight down, positive = toward +x)."""
    end = limb_end(start, angle_deg, length)
    mask = np.zeros(shape, np.uint8)
    cv2.line(mask, tuple(int(round(v)) for v in start), tuple(int(round(v)) for v in end), 255, int(2 * radius))
    cv2.circle(mask, tuple(int(round(v)) for v in end), int(radius), 255, -1)
    cv2.circle(mask, tuple(int(round(v)) for v in start), int(radius), 255, -1)
    return mask


def limb_end(start, angle_deg: float, length: float) -> tuple[float, float]:
    a = math.radians(angle_deg)
    return start[0] + length * math.sin(a), start[1] + length * math.cos(a)


SHOULDER = (110.0, 60.0)
ARM_LENGTH = 50.0


def torso_mask(shape, shift: int = 0) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.rectangle(mask, (70 + shift, 45), (110 + shift, 125), 255, -1)
    return mask


def arm_figure(upper_deg: float, forearm_deg: float | None = None, transparent: bool = False,
               shift: int = 0) -> np.ndarray:
    """A torso (held unless `shift` moves it sideways) with an arm hinged at the shoulder; with
    `forearm_deg`, a second segment hinged at the elbow, drawn over the upper arm."""
    image = canvas(transparent=transparent)
    shape = image.shape[:2]
    shoulder = (SHOULDER[0] + shift, SHOULDER[1])
    paint(image, torso_mask(shape, shift), TORSO)
    paint(image, capsule(shape, shoulder, upper_deg, ARM_LENGTH, 7), LIMB)
    if forearm_deg is not None:
        elbow = limb_end(shoulder, upper_deg, ARM_LENGTH)
        paint(image, capsule(shape, elbow, forearm_deg, 40.0, 6), FOREARM)
    return image


def ball_figure(centre, radius: int = 22, height: int = 160, width: int = 400, transparent: bool = False,
                squash: float = 1.0) -> np.ndarray:
    """A ball with a highlight; `squash` < 1 flattens it (height times squash, width over squash)."""
    image = canvas(height, width, transparent)
    mask = np.zeros((height, width), np.uint8)
    cx, cy = int(centre[0]), int(centre[1])
    cv2.ellipse(mask, (cx, cy), (round(radius / squash), round(radius * squash)), 0, 0, 360, 255, -1)
    paint(image, mask, BALL)
    stripe = np.zeros_like(mask)
    cv2.ellipse(stripe, (cx - round(6 / squash), cy - round(6 * squash)),
                (round(radius / 3 / squash), round(radius / 3 * squash)), 0, 0, 360, 255, -1)
    paint(image, stripe & mask, (250, 240, 220))
    return image


def colour_mask(image: np.ndarray, colour, tolerance: int = 24) -> np.ndarray:
    return (np.abs(image[..., :3].astype(int) - np.array(colour)).max(axis=2) <= tolerance) & (image[..., 3] > 200)


def limb_angle(image: np.ndarray, pivot, colour=LIMB) -> float:
    """Angle (degrees, 0 = down, positive toward +x) from `pivot` to the centroid of the limb's fill."""
    ys, xs = np.nonzero(colour_mask(image, colour))
    dx, dy = xs.mean() - pivot[0], ys.mean() - pivot[1]
    return math.degrees(math.atan2(dx, dy))


def sketch_of_arm(upper_deg: float, height: int = 160, width: int = 240) -> np.ndarray:
    """A rough line sketch (dark lines on white) of the torso and the arm at `upper_deg`."""
    sketch = np.full((height, width, 4), 255, np.uint8)
    shape = (height, width)
    for mask in (torso_mask(shape), capsule(shape, SHOULDER, upper_deg, ARM_LENGTH, 7)):
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        rgb = np.ascontiguousarray(sketch[..., :3])
        cv2.drawContours(rgb, contours, -1, (60, 60, 70), 2, cv2.LINE_AA)
        sketch[..., :3] = rgb
    return sketch


def figure_iou(image: np.ndarray, truth) -> float:
    """Figure IoU of a drawing against a synthetic frame (tools/synthetic_cel.py): the pixels that
    differ from the truth's plate against the truth's figure mask."""
    present = np.abs(image[..., :3].astype(int) - truth.plate[..., :3].astype(int)).max(axis=2) > 24
    return float((present & truth.mask).sum() / (present | truth.mask).sum())


HILL = (100, 160, 90)
HILL_CENTRE, HILL_AXES = (200, 240), (170, 90)
WALKER_SIZE = (24, 40)


def hill_top(x: int) -> int:
    """The top row of the hill's fill in column x (the hill is half an ellipse on the ground)."""
    mask = hill_mask((220, 400))
    return int(np.argmax(mask[:, x] > 0))


def hill_mask(shape) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, HILL_CENTRE, HILL_AXES, 0, 180, 360, 255, -1)
    return mask


def hill_scene(on_hill: bool = True) -> np.ndarray:
    """Level ground with a round hill on it (or without), and nobody there."""
    height, width = 220, 400
    image = canvas(height, width)
    image[:] = BACKDROP
    ground = np.zeros((height, width), np.uint8)
    ground[200:] = 255
    paint(image, ground, GROUND[:3])
    if on_hill:
        paint(image, hill_mask((height, width)), HILL)
    return image


def hill_walker(x: int, clearance: int = 3, on_hill: bool = True, lifted: int = 0) -> np.ndarray:
    """A box figure whose bottom stands `clearance` pixels above the hill's ink (or, without the
    hill, above the level ground line), `lifted` pixels higher still; centred on column x."""
    image = hill_scene(on_hill)
    height, width = image.shape[:2]
    w, h = WALKER_SIZE
    columns = range(x - w // 2, x + w // 2 + 1)
    surface = min(hill_top(c) for c in columns) if on_hill else 200
    bottom = surface - LINE - clearance - lifted
    body = np.zeros((height, width), np.uint8)
    cv2.rectangle(body, (x - w // 2, bottom - h), (x + w // 2, bottom), 255, -1)
    paint(image, body, TORSO)
    head = np.zeros((height, width), np.uint8)
    cv2.circle(head, (x, bottom - h - 8), 9, 255, -1)
    paint(image, head, FOREARM)
    return image
