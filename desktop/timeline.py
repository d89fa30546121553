"""The timeline: frames across, three tracks down (keys, sketches, in-betweens), like Krita's
animation timeline or an exposure sheet turned on its side.

- Ruler: click or drag to scrub; the shaded part is outside the playback range.
- Keys track: diamonds (keys) and small diamonds (breakdowns); drag one to move it.
- Sketches track: a pencil mark where the frame has a sketch.
- In-betweens track: a bar per segment (click to select it, Ctrl+click to add, Shift+click for a
  range), dots where the timing plans a drawing, filled cells for generated drawings (blue),
  accepted ones (green), stale ones (orange: made for other keys or timing) and off-plan ones (grey).
  Hold lines run on from each drawing for as long as it is exposed.
- A small dark corner on a key or in-between: the frame carries a hand clean-up layer.
"""

from __future__ import annotations

from qtpy import QtCore, QtGui, QtWidgets

from . import commands
from .document import Document
from .project import ProjectError

TRACKS = ("keys", "sketches", "inbetweens")
TRACK_TITLES = {"keys": "Keys", "sketches": "Sketches", "inbetweens": "In-betweens"}

COLOURS = {
    "key": QtGui.QColor("#e8a33d"),
    "breakdown": QtGui.QColor("#c77dd8"),
    "sketch": QtGui.QColor("#3a6fd8"),
    "cleanup": QtGui.QColor("#1e1e1e"),
    "generated": QtGui.QColor("#4a90d9"),
    "accepted": QtGui.QColor("#4caf6a"),
    "stale": QtGui.QColor("#e07b39"),
    "off-plan": QtGui.QColor("#8a8a8a"),
    "segment": QtGui.QColor(255, 255, 255, 18),
    "segment_selected": QtGui.QColor(74, 144, 217, 70),
    "segment_error": QtGui.QColor(224, 67, 59, 60),
    "playhead": QtGui.QColor("#e0433b"),
    "hold": QtGui.QColor("#bbbbbb"),
}


class TimelineCanvas(QtWidgets.QWidget):
    """Paints the grid and turns clicks into scrubbing, selection and key moves."""

    message = QtCore.Signal(str)
    cellMenuRequested = QtCore.Signal(int, str, QtCore.QPoint)  # frame, track, global position
    rulerMenuRequested = QtCore.Signal(int, QtCore.QPoint)
    contentWidthChanged = QtCore.Signal()

    HEADER_W = 104
    RULER_H = 22
    ROW_H = 26

    def __init__(self, doc: Document, parent=None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.cell_w = 18
        self.x_offset = 0
        self._drag: dict | None = None
        self._anchor_segment: int | None = None
        self.setMouseTracking(True)
        self.setMinimumHeight(self.RULER_H + self.ROW_H * len(TRACKS) + 2)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.set_document(doc)

    def set_document(self, doc: Document) -> None:
        self.doc = doc
        doc.changed.connect(self._on_changed)
        doc.currentFrameChanged.connect(self._on_frame)
        doc.selectionChanged.connect(self.update)
        self._on_changed()

    # ---- geometry ------------------------------------------------------------------------------
    def frame_count(self) -> int:
        p = self.doc.project
        return max(p.last_frame() + 24, p.playback_range()[1] + 24, 48)

    def content_width(self) -> int:
        return self.frame_count() * self.cell_w

    def frame_x(self, frame: int) -> int:
        return self.HEADER_W + frame * self.cell_w - self.x_offset

    def frame_at(self, x: float) -> int:
        return max(0, int((x - self.HEADER_W + self.x_offset) // self.cell_w))

    def track_at(self, y: float) -> str | None:
        row = int((y - self.RULER_H) // self.ROW_H)
        return TRACKS[row] if y >= self.RULER_H and 0 <= row < len(TRACKS) else None

    def row_rect(self, track: str) -> QtCore.QRect:
        return QtCore.QRect(0, self.RULER_H + TRACKS.index(track) * self.ROW_H, self.width(), self.ROW_H)

    def cell_rect(self, frame: int, track: str) -> QtCore.QRect:
        row = self.row_rect(track)
        return QtCore.QRect(self.frame_x(frame), row.top(), self.cell_w, self.ROW_H)

    def ensure_visible(self, frame: int) -> None:
        x = self.frame_x(frame)
        visible_w = self.width() - self.HEADER_W
        if x < self.HEADER_W:
            self.set_offset(frame * self.cell_w)
        elif x + self.cell_w > self.width():
            self.set_offset(frame * self.cell_w - visible_w + 2 * self.cell_w)

    def set_offset(self, offset: int) -> None:
        offset = max(0, min(int(offset), max(0, self.content_width() - (self.width() - self.HEADER_W))))
        if offset != self.x_offset:
            self.x_offset = offset
            self.contentWidthChanged.emit()
            self.update()

    def set_cell_width(self, width: int) -> None:
        self.cell_w = max(8, min(48, int(width)))
        self.contentWidthChanged.emit()
        self.update()

    def _on_changed(self) -> None:
        self.contentWidthChanged.emit()
        self.update()

    def _on_frame(self, frame: int) -> None:
        self.ensure_visible(frame)
        self.update()

    # ---- painting ------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QtGui.QPalette.ColorRole.Base))
        first = self.frame_at(self.HEADER_W)
        last = self.frame_at(self.width()) + 1
        self._paint_grid(p, first, last)
        self._paint_segments(p)
        self._paint_cells(p, first, last)
        self._paint_ruler(p, first, last)
        self._paint_playhead(p)
        self._paint_headers(p)
        p.end()

    def _paint_grid(self, p: QtGui.QPainter, first: int, last: int) -> None:
        pal = self.palette()
        grid = pal.color(QtGui.QPalette.ColorRole.Mid)
        alt = pal.color(QtGui.QPalette.ColorRole.AlternateBase)
        for frame in range(first, last + 1):
            x = self.frame_x(frame)
            if frame % 2 == 0:
                p.fillRect(QtCore.QRect(x, self.RULER_H, self.cell_w, self.ROW_H * len(TRACKS)), alt)
            p.setPen(QtGui.QPen(grid, 1))
            p.drawLine(x, self.RULER_H, x, self.RULER_H + self.ROW_H * len(TRACKS))
        for i in range(len(TRACKS) + 1):
            y = self.RULER_H + i * self.ROW_H
            p.drawLine(self.HEADER_W, y, self.width(), y)
        cur = self.doc.current_frame
        highlight = QtGui.QColor(pal.color(QtGui.QPalette.ColorRole.Highlight))
        highlight.setAlpha(45)
        p.fillRect(QtCore.QRect(self.frame_x(cur), self.RULER_H, self.cell_w, self.ROW_H * len(TRACKS)), highlight)

    def _paint_segments(self, p: QtGui.QPainter) -> None:
        project = self.doc.project
        selected = set(self.doc.selected_segments)
        row = self.row_rect("inbetweens")
        for seg in project.segments():
            x0 = self.frame_x(seg.start) + self.cell_w
            x1 = self.frame_x(seg.end)
            rect = QtCore.QRect(x0, row.top() + 3, max(0, x1 - x0), row.height() - 6)
            colour = COLOURS["segment_error"] if seg.error else COLOURS["segment"]
            if seg.start in selected:
                colour = COLOURS["segment_selected"]
            p.fillRect(rect, colour)
            if seg.start in selected:
                p.setPen(QtGui.QPen(COLOURS["generated"], 1.5))
                p.drawRect(rect.adjusted(0, 0, -1, -1))
            for frame in seg.planned_frames:
                if frame not in project.inbetweens:
                    c = self.cell_rect(frame, "inbetweens").center()
                    p.setPen(QtGui.QPen(self.palette().color(QtGui.QPalette.ColorRole.Text), 1))
                    p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
                    p.drawEllipse(QtCore.QPointF(c), 3, 3)

    def _paint_cells(self, p: QtGui.QPainter, first: int, last: int) -> None:
        project = self.doc.project
        for frame, cell in project.keys.items():
            if first - 1 <= frame <= last:
                self._paint_key(p, frame, cell.kind)
        for frame in project.sketches:
            if first - 1 <= frame <= last:
                rect = self.cell_rect(frame, "sketches").adjusted(3, 6, -3, -6)
                p.setPen(QtCore.Qt.PenStyle.NoPen)
                p.setBrush(COLOURS["sketch"])
                p.drawRoundedRect(rect, 3, 3)
        for frame in project.inbetweens:
            if first - 1 <= frame <= last:
                state = project.inbetween_state(frame)
                rect = self.cell_rect(frame, "inbetweens").adjusted(2, 5, -2, -5)
                if state == "off-plan":
                    p.setPen(QtGui.QPen(COLOURS[state], 1, QtCore.Qt.PenStyle.DashLine))
                    p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
                else:
                    p.setPen(QtCore.Qt.PenStyle.NoPen)
                    brush = QtGui.QBrush(COLOURS[state])
                    p.setBrush(brush)
                p.drawRect(rect)
                if state == "stale":
                    p.setBrush(QtGui.QBrush(QtGui.QColor(0, 0, 0, 90), QtCore.Qt.BrushStyle.BDiagPattern))
                    p.drawRect(rect)
        for frame in project.cleanups:  # hand-corrected drawings: a corner mark on their cell
            if first - 1 <= frame <= last and (frame in project.keys or frame in project.inbetweens):
                rect = self.cell_rect(frame, "keys" if frame in project.keys else "inbetweens")
                corner = QtGui.QPolygonF([QtCore.QPointF(rect.right() - 7, rect.top() + 1),
                                          QtCore.QPointF(rect.right(), rect.top() + 1),
                                          QtCore.QPointF(rect.right(), rect.top() + 8)])
                p.setPen(QtCore.Qt.PenStyle.NoPen)
                p.setBrush(COLOURS["cleanup"])
                p.drawPolygon(corner)
        # Hold lines: a drawing exposed on the following frames, as on an exposure sheet.
        p.setPen(QtGui.QPen(COLOURS["hold"], 2))
        start, end = self.doc.project.playback_range()
        for frame in range(max(first, 0), last + 1):
            shown = project.shown_drawing(frame)
            if shown and shown[0] == "hold":
                track = "keys" if shown[1] in project.keys else "inbetweens"
                r = self.cell_rect(frame, track)
                p.drawLine(r.left(), r.center().y(), r.right() + 1, r.center().y())

    def _paint_key(self, p: QtGui.QPainter, frame: int, kind: str) -> None:
        rect = self.cell_rect(frame, "keys")
        c = QtCore.QPointF(rect.center()) + QtCore.QPointF(0.5, 0.5)
        r = min(self.cell_w, self.ROW_H) * (0.38 if kind == "key" else 0.28)
        if self._drag and self._drag.get("key") == frame and self._drag.get("target") not in (None, frame):
            ghost = self.cell_rect(self._drag["target"], "keys")
            gc = QtCore.QPointF(ghost.center()) + QtCore.QPointF(0.5, 0.5)
            p.setPen(QtGui.QPen(COLOURS[kind], 1.5, QtCore.Qt.PenStyle.DashLine))
            p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            p.drawPolygon(_diamond(gc, r))
        p.setPen(QtGui.QPen(QtGui.QColor("#222"), 1))
        p.setBrush(COLOURS[kind])
        p.drawPolygon(_diamond(c, r))

    def _paint_ruler(self, p: QtGui.QPainter, first: int, last: int) -> None:
        pal = self.palette()
        p.fillRect(QtCore.QRect(0, 0, self.width(), self.RULER_H), pal.color(QtGui.QPalette.ColorRole.Window))
        start, end = self.doc.project.playback_range()
        range_rect = QtCore.QRect(self.frame_x(start), self.RULER_H - 5, (end - start + 1) * self.cell_w, 5)
        p.fillRect(range_rect, QtGui.QColor(74, 144, 217, 160))
        p.setPen(pal.color(QtGui.QPalette.ColorRole.WindowText))
        font = p.font()
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.8))
        p.setFont(font)
        step = 1 if self.cell_w >= 26 else 5 if self.cell_w >= 10 else 10
        for frame in range(first - first % step, last + 1, step):
            x = self.frame_x(frame)
            p.drawLine(x, self.RULER_H - 6, x, self.RULER_H)
            p.drawText(QtCore.QRect(x + 2, 1, 40, self.RULER_H - 6), QtCore.Qt.AlignmentFlag.AlignLeft, str(frame))

    def _paint_playhead(self, p: QtGui.QPainter) -> None:
        x = self.frame_x(self.doc.current_frame)
        if x + self.cell_w < self.HEADER_W:
            return
        p.setPen(QtGui.QPen(COLOURS["playhead"], 2))
        cx = x + self.cell_w / 2
        p.drawLine(QtCore.QPointF(cx, 0), QtCore.QPointF(cx, self.RULER_H + self.ROW_H * len(TRACKS)))

    def _paint_headers(self, p: QtGui.QPainter) -> None:
        pal = self.palette()
        p.fillRect(QtCore.QRect(0, 0, self.HEADER_W, self.height()), pal.color(QtGui.QPalette.ColorRole.Button))
        p.setPen(pal.color(QtGui.QPalette.ColorRole.ButtonText))
        p.drawText(
            QtCore.QRect(6, 0, self.HEADER_W - 8, self.RULER_H),
            QtCore.Qt.AlignmentFlag.AlignVCenter,
            f"frame {self.doc.current_frame}",
        )
        for track in TRACKS:
            rect = self.row_rect(track)
            rect.setWidth(self.HEADER_W)
            p.drawText(rect.adjusted(8, 0, 0, 0), QtCore.Qt.AlignmentFlag.AlignVCenter, TRACK_TITLES[track])

    # ---- mouse ---------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        pos = event.position() if hasattr(event, "position") else event.pos()
        if pos.x() < self.HEADER_W:
            return
        frame = self.frame_at(pos.x())
        track = self.track_at(pos.y())
        if event.button() == QtCore.Qt.MouseButton.RightButton:
            gpos = self.mapToGlobal(pos.toPoint())
            if track is None:
                self.rulerMenuRequested.emit(frame, gpos)
            else:
                self.doc.set_current_frame(frame)
                self.cellMenuRequested.emit(frame, track, gpos)
            return
        if event.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        self.doc.set_current_frame(frame)
        if track is None:
            self._drag = {"scrub": True}
        elif track == "keys" and frame in self.doc.project.keys:
            self._drag = {"key": frame, "target": frame}
        elif track == "inbetweens":
            self._select_at(frame, event.modifiers())
            self._drag = {"scrub": True}
        else:
            self._drag = {"scrub": True}

    def mouseMoveEvent(self, event) -> None:
        if not self._drag:
            return
        pos = event.position() if hasattr(event, "position") else event.pos()
        frame = self.frame_at(pos.x())
        if "key" in self._drag:
            self._drag["target"] = frame
            self.update()
        else:
            self.doc.set_current_frame(frame)

    def mouseReleaseEvent(self, event) -> None:
        drag, self._drag = self._drag, None
        if drag and "key" in drag and drag["target"] != drag["key"]:
            try:
                self.doc.push(commands.move_key(self.doc, drag["key"], drag["target"]))
                self.doc.set_current_frame(drag["target"])
            except ProjectError as exc:
                self.message.emit(str(exc))
        self.update()

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta()
        if event.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier:
            self.set_cell_width(self.cell_w + (2 if delta.y() > 0 else -2))
        else:
            step = delta.y() or delta.x()
            self.set_offset(self.x_offset - step // 2)
        event.accept()

    def _select_at(self, frame: int, modifiers) -> None:
        seg = self.doc.project.segment_at(frame)
        if seg is None:
            if not modifiers & QtCore.Qt.KeyboardModifier.ControlModifier:
                self.doc.select_segments([])
            return
        if modifiers & QtCore.Qt.KeyboardModifier.ShiftModifier and self._anchor_segment is not None:
            lo, hi = sorted((self._anchor_segment, seg.start))
            starts = [s.start for s in self.doc.project.segments() if lo <= s.start <= hi]
            self.doc.select_segments(starts)
        elif modifiers & QtCore.Qt.KeyboardModifier.ControlModifier:
            self.doc.select_segments([seg.start], add=True)
            self._anchor_segment = seg.start
        else:
            self.doc.select_segments([seg.start])
            self._anchor_segment = seg.start

    def event(self, event) -> bool:
        if event.type() == QtCore.QEvent.Type.ToolTip:
            self._tooltip(event)
            return True
        return super().event(event)

    def _tooltip(self, event) -> None:
        pos = event.pos()
        frame, track = self.frame_at(pos.x()), self.track_at(pos.y())
        project = self.doc.project
        text = ""
        if track == "keys" and frame in project.keys:
            cell = project.keys[frame]
            text = f"{cell.kind.capitalize()} at frame {frame}" + (f" ({cell.source})" if cell.source else "")
        elif track == "sketches" and frame in project.sketches:
            text = f"Sketch at frame {frame}: steers the in-between drawn here"
        elif track == "inbetweens":
            seg = project.segment_at(frame)
            if frame in project.inbetweens:
                cell = project.inbetweens[frame]
                text = f"In-between at frame {frame}: {project.inbetween_state(frame)}, tau {cell.tau:.3f}"
            elif seg is not None and seg.error:
                text = f"Segment {seg.start}-{seg.end} cannot be timed: {seg.error}"
            elif seg is not None:
                t = seg.timing
                how = f"{t.count} in-betweens" if t.count else f"on {_exposure_word(t.exposure)}"
                text = f"Segment {seg.start}-{seg.end}: {how}, {_spacing_word(t.spacing)} spacing"
        if text:
            QtWidgets.QToolTip.showText(event.globalPos(), text, self)
        else:
            QtWidgets.QToolTip.hideText()


def _diamond(c: QtCore.QPointF, r: float) -> QtGui.QPolygonF:
    return QtGui.QPolygonF(
        [c + QtCore.QPointF(0, -r), c + QtCore.QPointF(r, 0), c + QtCore.QPointF(0, r), c + QtCore.QPointF(-r, 0)]
    )


def _exposure_word(exposure: int) -> str:
    return {1: "ones", 2: "twos", 3: "threes"}.get(exposure, f"{exposure}s")


def _spacing_word(spacing) -> str:
    return spacing if isinstance(spacing, str) else "custom"


class Timeline(QtWidgets.QWidget):
    """The timeline canvas with its horizontal scroll bar and a zoom slider."""

    def __init__(self, doc: Document, parent=None) -> None:
        super().__init__(parent)
        self.canvas = TimelineCanvas(doc, self)
        self.scroll = QtWidgets.QScrollBar(QtCore.Qt.Orientation.Horizontal, self)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.scroll)
        self.canvas.contentWidthChanged.connect(self._sync_scroll)
        self.scroll.valueChanged.connect(self.canvas.set_offset)

    def set_document(self, doc: Document) -> None:
        self.canvas.set_document(doc)

    def _sync_scroll(self) -> None:
        visible = max(1, self.canvas.width() - self.canvas.HEADER_W)
        self.scroll.blockSignals(True)
        self.scroll.setRange(0, max(0, self.canvas.content_width() - visible))
        self.scroll.setPageStep(visible)
        self.scroll.setSingleStep(self.canvas.cell_w)
        self.scroll.setValue(self.canvas.x_offset)
        self.scroll.blockSignals(False)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._sync_scroll()
