"""The canvas: the current frame with its onion skin, and the drawing tools.

Two layers take drawing: a frame that has a drawing of its own (a key or an in-between) gets its
clean-up layer, where pen, eraser, fill (with the keys' palette) and colour picker correct it without
touching the drawing beneath; an in-between frame without one gets a sketch, which steers the next
generation. "Draw on: Sketch" sends strokes on a generated frame to its sketch instead.
A stroke paints into working copies; on release only the touched rectangle goes onto the undo stack
(desktop.commands.Stroke / CleanupStroke).
Onion skin (Krita / Pencil2D style): neighbours under the current frame, tinted (or in their own
colours) and fading with distance; the current frame keeps its true colours on top, multiplied over
them when it is drawn on opaque paper so they still show through the paper.
Wheel zooms about the cursor, middle button or Space+drag pans, a tablet's pressure sets the width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qtpy import QtCore, QtGui, QtWidgets

from . import cleanup, commands
from .document import Document
from .images import ImageCache, qimage_from_rgba, rgba_from_qimage

TOOLS = ("pen", "eraser", "fill", "picker")
LAYERS = ("cleanup", "sketch")


@dataclass
class OnionSkin:
    enabled: bool = True
    before: int = 2
    after: int = 2
    opacity: float = 0.35  # of the nearest drawing; farther ones fade
    tint: bool = True  # False: neighbours in their own colours
    before_colour: tuple[int, int, int] = (224, 67, 59)
    after_colour: tuple[int, int, int] = (46, 158, 91)
    show_sketches: bool = True


@dataclass
class Brush:
    tool: str = "pen"  # one of TOOLS
    layer: str = "cleanup"  # where strokes on a drawn frame go: its clean-up layer or its sketch
    pen_size: float = 3.0
    eraser_size: float = 18.0
    sketch_colour: QtGui.QColor = field(default_factory=lambda: QtGui.QColor("#3a6fd8"))  # blue pencil
    cleanup_colour: QtGui.QColor = field(default_factory=lambda: QtGui.QColor("#202020"))
    fill_tolerance: int = 32

    @property
    def size(self) -> float:
        return self.eraser_size if self.tool == "eraser" else self.pen_size


class Canvas(QtWidgets.QWidget):
    message = QtCore.Signal(str)
    zoomChanged = QtCore.Signal(float)
    colourPicked = QtCore.Signal(QtGui.QColor)

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
        self.checkerboard = True  # transparent art over a checkerboard (off: over paper colour)
        self._opaque_cache: dict[str, bool] = {}
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
        frame = self.doc.current_frame
        shown = project.shown_drawing(frame)
        onion = self.onion.enabled and not self.flipbook
        opaque = shown is not None and self._opaque(shown[1])
        if opaque:  # the drawing's own paper covers the canvas (white under the multiplied frame)
            p.fillRect(QtCore.QRectF(0, 0, w, h), QtGui.QColor("#ffffff"))
        elif self.checkerboard:
            p.fillRect(QtCore.QRectF(0, 0, w, h), self._checker_brush())
        else:
            p.fillRect(QtCore.QRectF(0, 0, w, h), QtGui.QColor(PAPER))
        if onion:  # under the frame, as Krita and Pencil2D draw it
            self._paint_onion(p, frame)
        # Under the onion skin an empty in-between cell shows its held drawing only as the previous
        # drawing of the onion skin (an empty cell to draw on).
        if shown is not None and not (shown[0] == "hold" and onion):
            image = self.frame_image(shown[1])
            if onion and opaque:
                # Opaque paper would hide the neighbours: multiply keeps the frame's colours and
                # lets them show through the paper only.
                p.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_Multiply)
            p.drawImage(0, 0, image)
            p.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_SourceOver)
        sketch = None
        if self._stroke is not None and self._stroke["layer"] == "sketch":
            sketch = self._stroke["paint"]
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

    def _checker_brush(self) -> QtGui.QBrush:
        tile = QtGui.QPixmap(16, 16)
        tile.fill(QtGui.QColor("#ffffff"))
        painter = QtGui.QPainter(tile)
        painter.fillRect(0, 0, 8, 8, QtGui.QColor("#d6d6d6"))
        painter.fillRect(8, 8, 8, 8, QtGui.QColor("#d6d6d6"))
        painter.end()
        return QtGui.QBrush(tile)

    def _opaque(self, drawing_frame: int) -> bool:
        cell = self.doc.project.keys.get(drawing_frame) or self.doc.project.inbetweens.get(drawing_frame)
        if cell is None:
            return False
        key = cell.drawing.digest
        if key not in self._opaque_cache:
            self._opaque_cache[key] = bool((cell.drawing.image[..., 3] >= 250).mean() > 0.98)
        return self._opaque_cache[key]

    def frame_image(self, drawing_frame: int) -> QtGui.QImage:
        """A drawing as shown: its cell, with its clean-up layer (or the stroke in progress) on top."""
        project = self.doc.project
        cell = project.keys.get(drawing_frame) or project.inbetweens.get(drawing_frame)
        base = self.cache.get(cell.drawing)
        stroke = self._stroke if self._stroke is not None and self._stroke["layer"] == "cleanup" else None
        if stroke is not None and stroke["frame"] == drawing_frame:
            paint, cut = stroke["paint"], stroke["cut"]
        else:
            layer = project.cleanups.get(drawing_frame)
            if layer is None:
                return base
            paint = self.cache.get(layer.paint)
            cut = self.cache.get(layer.cut) if layer.cut is not None else None
        image = base.convertToFormat(QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        painter = QtGui.QPainter(image)
        if cut is not None:
            painter.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_DestinationOut)
            painter.drawImage(0, 0, cut)
            painter.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_SourceOver)
        painter.drawImage(0, 0, paint)
        painter.end()
        return image

    def _paint_onion(self, p: QtGui.QPainter, frame: int) -> None:
        project = self.doc.project
        earlier, later = project.drawings_around(frame, self.onion.before, self.onion.after)
        for drawings, colour in ((earlier, self.onion.before_colour), (later, self.onion.after_colour)):
            for distance, drawing_frame in reversed(list(enumerate(drawings))):
                cell = project.keys.get(drawing_frame) or project.inbetweens.get(drawing_frame)
                p.setOpacity(self.onion.opacity * (0.6**distance))
                # Tinted, a drawing keeps only its lines (its paper turns clear); in its own colours
                # it is drawn as it is, faded.
                p.drawImage(0, 0, self.cache.get(cell.drawing, colour if self.onion.tint else None))
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
        if frame in project.cleanups and shown is not None and shown[0] != "hold":
            text += " + clean-up"
        if frame in project.sketches:
            text += " + sketch"
        p.setPen(QtGui.QColor("#f0f0f0"))
        p.drawText(QtCore.QRect(10, 6, self.width() - 20, 20), QtCore.Qt.AlignmentFlag.AlignLeft, text)
        p.drawText(
            QtCore.QRect(10, 6, self.width() - 20, 20), QtCore.Qt.AlignmentFlag.AlignRight, f"{self.zoom * 100:.0f}%"
        )

    # ---- where strokes go ----------------------------------------------------------------------
    def has_drawing(self, frame: int) -> bool:
        project = self.doc.project
        return frame in project.keys or frame in project.inbetweens

    def target_layer(self, frame: int) -> tuple[str | None, str]:
        """("cleanup" | "sketch", "") for the layer a stroke on `frame` goes to, or (None, why not)."""
        project = self.doc.project
        if project.size is None:
            return None, "open or create a project first"
        if self.has_drawing(frame) and self.brush.layer == "cleanup":
            return "cleanup", ""
        reason = self.can_sketch(frame)
        if reason:
            return None, reason
        return "sketch", ""

    def can_sketch(self, frame: int) -> str | None:
        """None when the frame takes a sketch, else the reason it does not."""
        project = self.doc.project
        if project.size is None:
            return "open or create a project first"
        if frame in project.keys:
            return (f"frame {frame} is a keyframe: sketches go on in-between frames; "
                    "choose Draw on: Clean-up to correct the key on its own layer")
        if project.segment_at(frame) is None:
            return f"frame {frame} is not between two keyframes: sketches steer in-betweens, so draw between keys"
        return None

    def shown_image(self, frame: int) -> np.ndarray | None:
        """The frame's drawing with its clean-up layer, as numpy (for fill and the colour picker)."""
        return self.doc.project.image_of(frame)

    # ---- drawing -------------------------------------------------------------------------------
    def _begin_stroke(self, pos: QtCore.QPointF, pressure: float) -> None:
        frame = self.doc.current_frame
        layer, reason = self.target_layer(frame)
        if layer is None:
            self.message.emit(reason)
            return
        point = self.to_image(pos)
        if self.brush.tool == "picker":
            self._pick(frame, point)
            return
        project = self.doc.project
        blank = np.zeros((*project.size[::-1], 4), np.uint8)
        if layer == "sketch":
            cell = project.sketches.get(frame)
            paint, cut, created = (cell.drawing.image if cell else blank), None, cell is None
        else:
            cell = project.cleanups.get(frame)
            paint = cell.paint.image if cell else blank
            cut = cell.cut.image if cell and cell.cut else blank
            created = cell is None
        paper = None
        if layer == "cleanup" and self.brush.tool == "eraser":
            shown = self.shown_image(frame)
            paper = cleanup.paper_colour(shown) if shown is not None else None
        self._stroke = {
            "frame": frame,
            "layer": layer,
            "paper": paper,  # opaque art: the eraser paints its paper; on transparency it cuts
            "before": (paint, cut),
            "created": created,
            "paint": _working(paint),
            "cut": None if cut is None else _working(cut),
            "last": point,
            "dirty": QtCore.QRectF(),
            "tool": self.brush.tool,
        }
        if self.brush.tool == "fill":
            self._fill(point)
            self._finish_stroke()
            return
        self._paint_to(point, pressure)

    def _stroke_pen(self, width: float) -> QtGui.QPen:
        colour = self.brush.sketch_colour if self._stroke["layer"] == "sketch" else self.brush.cleanup_colour
        return QtGui.QPen(colour, width, QtCore.Qt.PenStyle.SolidLine, QtCore.Qt.PenCapStyle.RoundCap,
                          QtCore.Qt.PenJoinStyle.RoundJoin)

    def _paint_to(self, point: QtCore.QPointF, pressure: float) -> None:
        stroke = self._stroke
        width = max(0.5, self.brush.size * (0.3 + 0.7 * pressure))
        last = stroke["last"]
        erasing, paper = stroke["tool"] == "eraser", stroke.get("paper")
        targets = [(stroke["paint"], erasing and paper is None)]
        if erasing and paper is None and stroke["cut"] is not None:
            targets.append((stroke["cut"], False))  # the eraser also takes the drawing beneath away
        for image, clear in targets:
            painter = QtGui.QPainter(image)
            painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
            if clear:
                painter.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_Clear)
            pen = self._stroke_pen(width)
            if image is stroke["cut"]:
                pen.setColor(QtGui.QColor(0, 0, 0))
            elif erasing and paper is not None:
                pen.setColor(QtGui.QColor(*paper))
            painter.setPen(pen)
            if last == point:
                painter.drawPoint(point)
            else:
                painter.drawLine(last, point)
            painter.end()
        pad = width / 2 + 2
        stroke["dirty"] = stroke["dirty"].united(QtCore.QRectF(last, point).normalized().adjusted(-pad, -pad, pad, pad))
        stroke["last"] = point
        self.update()

    def _fill(self, point: QtCore.QPointF) -> None:
        stroke = self._stroke
        image = self.shown_image(stroke["frame"])
        if image is None:
            return
        x, y = int(point.x()), int(point.y())
        area = cleanup.fill_mask(image, x, y, self.brush.fill_tolerance)
        if not area.any():
            return
        colour = self.brush.cleanup_colour
        paint = rgba_from_qimage(stroke["paint"])
        paint[area] = (colour.red(), colour.green(), colour.blue(), 255)
        stroke["paint"] = _working(paint)
        ys, xs = np.nonzero(area)
        stroke["dirty"] = QtCore.QRectF(xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)

    def _pick(self, frame: int, point: QtCore.QPointF) -> None:
        image = self.shown_image(frame)
        colour = None if image is None else cleanup.pick_colour(image, int(point.x()), int(point.y()))
        if colour is None:
            self.message.emit("nothing drawn there to pick a colour from")
            return
        self.set_cleanup_colour(QtGui.QColor(*colour))
        self.message.emit(f"clean-up colour {QtGui.QColor(*colour).name()}")

    def set_cleanup_colour(self, colour: QtGui.QColor) -> None:
        self.brush.cleanup_colour = QtGui.QColor(colour)
        self.colourPicked.emit(QtGui.QColor(colour))

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
        paint_before, cut_before = (None if a is None else a[y : y + rh, x : x + rw].copy() for a in stroke["before"])
        paint_after = rgba_from_qimage(stroke["paint"].copy(rect))
        if stroke["layer"] == "sketch":
            if np.array_equal(paint_before, paint_after):
                self.update()
                return
            text = "Erase on sketch" if stroke["tool"] == "eraser" else "Sketch stroke"
            self.doc.push(commands.Stroke(self.doc, stroke["frame"], (x, y, rw, rh), paint_before, paint_after,
                                          stroke["created"], text))
            return
        cut_after = rgba_from_qimage(stroke["cut"].copy(rect))[..., 3]
        cut_before = cut_before[..., 3]
        if np.array_equal(paint_before, paint_after) and np.array_equal(cut_before, cut_after):
            self.update()
            return
        text = {"eraser": "Erase on clean-up", "fill": "Fill on clean-up"}.get(stroke["tool"], "Clean-up stroke")
        self.doc.push(commands.CleanupStroke(
            self.doc, stroke["frame"], (x, y, rw, rh), (paint_before, cut_before), (paint_after, cut_after),
            stroke["created"], f"{text} (frame {stroke['frame']})"))

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


PAPER = "#fbfaf6"


def _working(image: np.ndarray) -> QtGui.QImage:
    """A premultiplied QImage copy of a layer to paint on during a stroke."""
    return qimage_from_rgba(image).convertToFormat(QtGui.QImage.Format.Format_ARGB32_Premultiplied)
