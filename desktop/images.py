"""Moving pictures between numpy (the document's RGBA arrays) and Qt (what widgets paint).

Also the onion-skin tint: a drawing becomes a single colour whose opacity follows how dark each
pixel is, so line art on white paper and line art on transparency both read as tinted lines.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from qtpy import QtGui

from .project import Drawing


def qimage_from_rgba(image: np.ndarray) -> QtGui.QImage:
    """A QImage that owns a copy of an RGBA uint8 (H, W, 4) array (straight alpha)."""
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    return QtGui.QImage(image.data, w, h, 4 * w, QtGui.QImage.Format.Format_RGBA8888).copy()


def rgba_from_qimage(image: QtGui.QImage) -> np.ndarray:
    """An RGBA uint8 (H, W, 4) array copied out of any QImage."""
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : 4 * w].reshape(h, w, 4).copy()


def onion_tint(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """The drawing in one colour: opacity = alpha × darkness against its paper.

    The paper is the lightest opaque tone of the drawing (white, or a tinted backdrop), so it turns
    transparent; squaring the darkness keeps dark lines and lets flat colour fills fade.
    """
    rgb = image[..., :3].astype(np.float32)
    luminance = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    opaque = luminance[image[..., 3] > 200]
    paper = float(opaque.max()) if opaque.size else 255.0
    darkness = np.clip(1.0 - luminance / max(paper, 1.0), 0.0, 1.0) ** 2  # lines stay, fills fade
    out = np.empty_like(image)
    out[..., :3] = np.array(colour, np.uint8)
    out[..., 3] = np.clip(image[..., 3].astype(np.float32) * darkness + 0.5, 0, 255).astype(np.uint8)
    return out


class ImageCache:
    """QImages of drawings (plain or tinted), keyed by content so edits never show stale pixels."""

    def __init__(self, capacity: int = 96) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple, QtGui.QImage] = OrderedDict()

    def get(self, drawing: Drawing, tint: tuple[int, int, int] | None = None) -> QtGui.QImage:
        key = (drawing.digest, tint)
        image = self._items.get(key)
        if image is None:
            pixels = drawing.image if tint is None else onion_tint(drawing.image, tint)
            image = qimage_from_rgba(pixels)
            self._items[key] = image
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return image
