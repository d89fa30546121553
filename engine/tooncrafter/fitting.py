"""Getting artwork of any size and transparency onto the model's canvas and back.

The model draws on a fixed canvas (512×320 for the released model). Keyframes are scaled to fit
inside it keeping their aspect ratio, centred, and the margin is filled by repeating the edge pixels
(a flat margin the model can leave alone); the art is never cropped. Results are cut back out of the
same rectangle and scaled to the keyframes' exact size, so they sit exactly where the keys do.

The model knows nothing of transparency. Transparent keyframes are composited onto a "key colour"
chosen far from every colour in the keys; the generated frames are keyed out afterwards: a pixel's
alpha grows with its distance from the key colour (reaching 1 at the distance of the closest colour
the keys use), and the key colour's share is removed from semi-transparent pixels, so anti-aliased
lines keep their soft edges without a coloured fringe.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Model noise tolerated around the key colour before a pixel counts as (partly) drawn, as a
#: fraction of the key colour's distance to the nearest colour in the keys.
KEY_TOLERANCE = 0.12


@dataclass(frozen=True)
class CanvasFit:
    """Where an image of `size` sits on a canvas: scaled by `scale` into the rectangle at (left, top)."""

    width: int
    height: int
    canvas_width: int
    canvas_height: int
    scale: float
    left: int
    top: int
    fitted_width: int
    fitted_height: int

    def to_canvas(self, image: np.ndarray, *, pad: str = "edge") -> np.ndarray:
        """An (H, W, C) uint8 image at the source size -> the canvas; margins repeat the edge pixels
        (pad="edge") or are zero (pad="zero", e.g. transparent sketch paper)."""
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, this fit is for {self.width}x{self.height}")
        resized = _resize(image, self.fitted_width, self.fitted_height)
        right = self.canvas_width - self.fitted_width - self.left
        bottom = self.canvas_height - self.fitted_height - self.top
        border = cv2.BORDER_REPLICATE if pad == "edge" else cv2.BORDER_CONSTANT
        out = cv2.copyMakeBorder(resized, self.top, bottom, self.left, right, border, value=0)
        return out.reshape(self.canvas_height, self.canvas_width, *image.shape[2:])

    def from_canvas(self, canvas: np.ndarray) -> np.ndarray:
        """A canvas image -> the fitted rectangle scaled back to the source size."""
        crop = canvas[self.top : self.top + self.fitted_height, self.left : self.left + self.fitted_width]
        out = _resize(np.ascontiguousarray(crop), self.width, self.height)
        return out.reshape(self.height, self.width, *canvas.shape[2:])


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image.copy()
    shrinking = width < w or height < h
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def fit_to_canvas(width: int, height: int, canvas_width: int, canvas_height: int) -> CanvasFit:
    """The largest centred rectangle of the image's aspect ratio that fits the canvas."""
    if width < 1 or height < 1:
        raise ValueError(f"cannot fit an image of {width}x{height} pixels")
    scale = min(canvas_width / width, canvas_height / height)
    fitted_w = min(canvas_width, max(1, round(width * scale)))
    fitted_h = min(canvas_height, max(1, round(height * scale)))
    return CanvasFit(
        width,
        height,
        canvas_width,
        canvas_height,
        scale,
        (canvas_width - fitted_w) // 2,
        (canvas_height - fitted_h) // 2,
        fitted_w,
        fitted_h,
    )


# ----------------------------------------------------------------------------------------------
# Transparency


def has_transparency(*images: np.ndarray) -> bool:
    return any(int(image[..., 3].min()) < 255 for image in images)


def _candidate_colours() -> np.ndarray:
    levels = np.linspace(0, 255, 6)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    return grid.astype(np.float32)


def choose_key_colour(*images: np.ndarray) -> tuple[np.ndarray, float]:
    """(key colour RGB float32, its distance to the nearest colour used in the images).

    Candidates are a 6×6×6 grid of colours; the one farthest from every visible colour wins.
    """
    visible = [image[image[..., 3] > 0][:, :3] for image in images]
    colours = np.concatenate(visible) if visible else np.zeros((0, 3), np.uint8)
    candidates = _candidate_colours()
    if len(colours) == 0:
        return np.array([0.0, 255.0, 0.0], np.float32), float(np.linalg.norm([255, 255, 255]))
    quantised = np.unique((colours // 8).astype(np.int32), axis=0).astype(np.float32) * 8 + 3.5
    best, best_distance = candidates[0], -1.0
    for start in range(0, len(candidates), 27):
        block = candidates[start : start + 27]
        d = np.sqrt(((block[:, None, :] - quantised[None, :, :]) ** 2).sum(-1)).min(axis=1)
        i = int(d.argmax())
        if d[i] > best_distance:
            best, best_distance = block[i], float(d[i])
    exact = np.sqrt(((colours.astype(np.float32) - best) ** 2).sum(-1)).min()
    return best.astype(np.float32), float(exact)


def composite_on(image: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Straight-alpha RGBA uint8 -> RGB uint8 over the key colour."""
    alpha = image[..., 3:4].astype(np.float32) / 255.0
    rgb = image[..., :3].astype(np.float32) * alpha + key.astype(np.float32) * (1.0 - alpha)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def key_out(rgb: np.ndarray, key: np.ndarray, key_distance: float, tolerance: float = KEY_TOLERANCE) -> np.ndarray:
    """RGB uint8 drawn over the key colour -> straight-alpha RGBA uint8 (see the module docstring)."""
    colour = rgb.astype(np.float32)
    distance = np.sqrt(((colour - key) ** 2).sum(-1))
    full = max(key_distance, 1.0)
    floor = tolerance * full
    alpha = np.clip((distance - floor) / max(full - floor, 1e-6), 0.0, 1.0)
    safe = np.maximum(alpha, 1e-6)[..., None]
    foreground = (colour - (1.0 - alpha[..., None]) * key) / safe
    foreground = np.where(alpha[..., None] > 0, foreground, 0.0)
    out = np.empty(rgb.shape[:2] + (4,), np.uint8)
    out[..., :3] = np.clip(np.round(foreground), 0, 255).astype(np.uint8)
    out[..., 3] = np.clip(np.round(alpha * 255.0), 0, 255).astype(np.uint8)
    return out
