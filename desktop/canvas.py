"""The canvas: the current frame with its onion skin, and the pen and eraser for sketches.

Sketches live on their own track and only on in-between frames: the keys are never drawn over.
A stroke paints into a working copy of the frame's sketch; on release only the touched rectangle
goes onto the undo stack (desktop.commands.Stroke).
Onion skin: earlier drawings in red, later ones in green, fading with distance (Pencil2D/Krita style),
painted over the frame so keys on opaque paper do not hide it.
Wheel zooms about the cursor, middle button or Space+drag pans, a tablet's pressure sets the width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qtpy import QtCore, QtGui, QtWidgets

from . import commands
from .document import Document
from .images import ImageCache, qimage_from_rgba, rgba_from_qimage


@dataclass
class OnionSkin:
    enabled: bool = True
    before: int = 2
    after: int = 2
    opacity: float = 0.5  # of the nearest drawing; farther ones fade
    before_colour: tuple[int, int, int] = (224, 67, 59)
    after_colour: tuple[int, int, int] = (46, 158, 91)
    show_sketches: bool = True


@dataclass
class Brush:
    tool: str = "pen"  # "pen" | "eraser"
    pen_size: float = 3.0
    eraser_size: float = 18.0
    colour: QtGui.QColor = field(default_factory=lambda: QtGui.QColor("#3a6fd8"))  # blue pencil

    @property
    def size(self) -> float:
        return self.eraser_size if self.tool == "eraser" else self.pen_size


class Canvas(QtWidgets.QWidget):
    message = QtCore.Signal(str)
    zoomChanged = QtCore.Signal(float)

    def __init__(self, doc: Document, parent=None) -> None:
        super().__init__(parent)
        self.onion = OnionSkin()
        self.brush = Brush()
        self.cache = ImageCache()
        self.zoom = 1.0
        self.pan = QtCore.QPointF(0, 0)
        self._fitted = False
        self._stroke: dict | None = None
        self._panning: QtCore.QPointF | None = None
        self._space = False
        self.flipbook = False  # during playback: final drawings only, no onion skin or sketches
        self.setMouseTracking(True)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(240, 180)
        self.doc = doc
        self.set_document(doc)

    def set_document(self, doc: Document) -> None:
        self.doc = doc
        doc.changed.connect(self.update)
        doc.currentFrameChanged.connect(self._frame_changed)
        self._fitted = False
        self.update()

    # ---- view transform ------------------------------------------------------------------------
    def canvas_size(self) -> tuple[int, int]:
        return self.doc.project.size or (640, 360)

    def transform(self) -> QtGui.QTransform:
        w, h = self.canvas_size()
        t = QtGui.QTransform()
        t.translate(self.width() / 2 + self.pan.x(), self.height() / 2 + self.pan.y())
        t.scale(self.zoom, self.zoom)
        t.translate(-w / 2, -h / 2)
        return t

    def to_image(self, pos: QtCore.QPointF) -> QtCore.QPointF:
        inverted, _ = self.transform().inverted()
        return inverted.map(QtCore.QPointF(pos))

    def fit(self) -> None:
        w, h = self.canvas_size()
        if self.width() < 10 or self.height() < 10:
            return
        self.zoom = min((self.width() - 24) / w, (self.height() - 24) / h)
        self.pan = QtCore.QPointF(0, 0)
        self._fitted = True
        self.zoomChanged.emit(self.zoom)
        self.update()

    def zoom_by(self, factor: float, anchor: QtCore.QPointF | None = None) -> None:
        anchor = anchor if anchor is not None else QtCore.QPointF(self.width() / 2, self.height() / 2)
        before = self.to_image(anchor)
        self.zoom = max(0.05, min(32.0, self.zoom * factor))
        after = self.transform().map(before)
        self.pan += anchor - after
        self.zoomChanged.emit(self.zoom)
        self.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not self._fitted:
            self.fit()

    def _frame_changed(self, frame: int) -> None:
        if self._stroke:
            self._finish_stroke()
        self.update()

    # ---- painting ------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor("#3b3b3b"))
        project = self.doc.project
        if project.size is None:
            p.setPen(QtGui.QColor("#dddddd"))
            p.drawText(
                self.rect(),
                QtCore.Qt.AlignmentFlag.AlignCenter,
                "No project yet\n\nFile ▸ New from keyframe images… (Ctrl+N)\n"
                "(or from a PNG sequence or a layered PSD)\n\nFile ▸ Open… (Ctrl+O)",
            )
            p.end()
            return
        p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 1)
        p.setTransform(self.transform())
        w, h = project.size
        p.fillRect(QtCore.QRectF(0, 0, w, h), QtGui.QColor("#fbfaf6"))
        frame = self.doc.current_frame
        shown = project.shown_drawing(frame)
        # A frame without its own drawing shows the held one, except under the onion skin, which
        # already shows it tinted as the previous drawing (an empty cell to draw on).
        if shown is not None and not (shown[0] == "hold" and self.onion.enabled and not self.flipbook):
            kind, drawing_frame = shown
            cell = project.keys.get(drawing_frame) or project.inbetweens.get(drawing_frame)
            p.drawImage(0, 0, self.cache.get(cell.drawing))
        if self.onion.enabled and not self.flipbook:
            # Over the drawing, not under it: keys drawn on opaque paper would hide it otherwise.
            self._paint_onion(p, frame)
        sketch = None
        if self._stroke is not None:
            sketch = self._stroke["image"]
        elif self.onion.show_sketches and not self.flipbook and frame in project.sketches:
            sketch = self.cache.get(project.sketches[frame].drawing)
        if sketch is not None:
            # Multiply: a sketch scanned on white paper darkens with its lines only.
            p.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_Multiply)
            p.drawImage(0, 0, sketch)
            p.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_SourceOver)
        p.resetTransform()
        p.setPen(QtGui.QPen(QtGui.QColor("#222222"), 1))
        p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        p.drawRect(self.transform().mapRect(QtCore.QRectF(0, 0, w, h)))
        self._paint_badge(p, frame, shown)
        p.end()

    def _paint_onion(self, p: QtGui.QPainter, frame: int) -> None:
        project = self.doc.project
        earlier, later = project.drawings_around(frame, self.onion.before, self.onion.after)
        for drawings, colour in ((earlier, self.onion.before_colour), (later, self.onion.after_colour)):
            for distance, drawing_frame in reversed(list(enumerate(drawings))):
                cell = project.keys.get(drawing_frame) or project.inbetweens.get(drawing_frame)
                p.setOpacity(self.onion.opacity * (0.6**distance))
                p.drawImage(0, 0, self.cache.get(cell.drawing, colour))
        p.setOpacity(1.0)

    def _paint_badge(self, p: QtGui.QPainter, frame: int, shown) -> None:
        project = self.doc.project
        if shown is None:
            text = f"frame {frame}: empty"
        elif shown[0] == "key":
            text = f"frame {frame}: {project.keys[frame].kind}"
        elif shown[0] == "inbetween":
            text = f"frame {frame}: in-between ({project.inbetween_state(frame)})"
        else:
            text = f"frame {frame}: holds frame {shown[1]}"
        if frame in project.sketches:
            text += " + sketch"
        p.setPen(QtGui.QColor("#f0f0f0"))
        p.drawText(QtCore.QRect(10, 6, self.width() - 20, 20), QtCore.Qt.AlignmentFlag.AlignLeft, text)
        p.drawText(
            QtCore.QRect(10, 6, self.width() - 20, 20), QtCore.Qt.AlignmentFlag.AlignRight, f"{self.zoom * 100:.0f}%"
        )

    # ---- sketching -----------------------------------------------------------------------------
    def can_sketch(self, frame: int) -> str | None:
        """None when the frame takes a sketch, else the reason it does not."""
        project = self.doc.project
        if project.size is None:
            return "open or create a project first"
        if frame in project.keys:
            return f"frame {frame} is a keyframe: sketches go on in-between frames (keys are never drawn over)"
        if project.segment_at(frame) is None:
            return f"frame {frame} is not between two keyframes: sketches steer in-betweens, so draw between keys"
        return None

    def _begin_stroke(self, pos: QtCore.QPointF, pressure: float) -> None:
        frame = self.doc.current_frame
        reason = self.can_sketch(frame)
        if reason:
            self.message.emit(reason)
            return
        project = self.doc.project
        cell = project.sketches.get(frame)
        base = cell.drawing.image if cell else np.zeros((*project.size[::-1], 4), np.uint8)
        image = qimage_from_rgba(base).convertToFormat(QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        self._stroke = {
            "frame": frame,
            "before": base,
            "created": cell is None,
            "image": image,
            "last": self.to_image(pos),
            "dirty": QtCore.QRectF(),
            "tool": self.brush.tool,
        }
        self._paint_to(self.to_image(pos), pressure)

    def _paint_to(self, point: QtCore.QPointF, pressure: float) -> None:
        stroke = self._stroke
        width = max(0.5, self.brush.size * (0.3 + 0.7 * pressure))
        painter = QtGui.QPainter(stroke["image"])
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        if stroke["tool"] == "eraser":
            painter.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_Clear)
        pen = QtGui.QPen(self.brush.colour, width, QtCore.Qt.PenStyle.SolidLine, QtCore.Qt.PenCapStyle.RoundCap,
                         QtCore.Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        last = stroke["last"]
        if last == point:
            painter.drawPoint(point)
        else:
            painter.drawLine(last, point)
        painter.end()
        pad = width / 2 + 2
        stroke["dirty"] = stroke["dirty"].united(QtCore.QRectF(last, point).normalized().adjusted(-pad, -pad, pad, pad))
        stroke["last"] = point
        self.update()

    def _finish_stroke(self) -> None:
        stroke, self._stroke = self._stroke, None
        if stroke is None:
            return
        w, h = self.doc.project.size
        rect = stroke["dirty"].toAlignedRect().intersected(QtCore.QRect(0, 0, w, h))
        if rect.isEmpty():
            self.update()
            return
        x, y, rw, rh = rect.x(), rect.y(), rect.width(), rect.height()
        after = rgba_from_qimage(stroke["image"].copy(rect))
        before = stroke["before"][y : y + rh, x : x + rw].copy()
        if np.array_equal(before, after):
            self.update()
            return
        text = "Erase on sketch" if stroke["tool"] == "eraser" else "Sketch stroke"
        self.doc.push(
            commands.Stroke(self.doc, stroke["frame"], (x, y, rw, rh), before, after, stroke["created"], text)
        )

    # ---- input ---------------------------------------------------------------------------------
    def _pos(self, event) -> QtCore.QPointF:
        return event.position() if hasattr(event, "position") else QtCore.QPointF(event.pos())

    def mousePressEvent(self, event) -> None:
        pos = self._pos(event)
        if event.button() == QtCore.Qt.MouseButton.MiddleButton or (
            event.button() == QtCore.Qt.MouseButton.LeftButton and self._space
        ):
            self._panning = pos
        elif event.button() == QtCore.Qt.MouseButton.LeftButton:
            self._begin_stroke(pos, 1.0)

    def mouseMoveEvent(self, event) -> None:
        pos = self._pos(event)
        if self._panning is not None:
            self.pan += pos - self._panning
            self._panning = pos
            self.update()
        elif self._stroke is not None:
            self._paint_to(self.to_image(pos), 1.0)

    def mouseReleaseEvent(self, event) -> None:
        if self._panning is not None:
            self._panning = None
        elif self._stroke is not None:
            self._finish_stroke()

    def tabletEvent(self, event) -> None:
        pos = self._pos(event)
        kind = event.type()
        if kind == QtCore.QEvent.Type.TabletPress and not self._space:
            self._begin_stroke(pos, event.pressure())
        elif kind == QtCore.QEvent.Type.TabletMove and self._stroke is not None:
            self._paint_to(self.to_image(pos), event.pressure())
        elif kind == QtCore.QEvent.Type.TabletRelease and self._stroke is not None:
            self._finish_stroke()
        event.accept()

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.15**steps, self._pos(event))
        event.accept()

    def keyPressEvent(self, event) -> None:
        if event.key() == QtCore.Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setCursor(QtCore.Qt.CursorShape.OpenHandCursor)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == QtCore.Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.unsetCursor()
            return
        super().keyReleaseEvent(event)
