"""A timing chart, as animators draw one beside a key: where each in-between sits between two keys.

The lower line is time (drawings evenly spaced in frames), the upper line is spacing (tau: how far
the drawing has moved from the first key to the second). A line joins each drawing's time to its
spacing, so an ease shows as ticks bunching toward a key. In custom mode the upper ticks can be
dragged; they stay strictly between their neighbours (planning's rule for a custom spacing).
"""

from __future__ import annotations

from qtpy import QtCore, QtGui, QtWidgets

from engine.core.planning import spacing_taus


class TimingChart(QtWidgets.QWidget):
    tausChanged = QtCore.Signal(list)

    MARGIN = 18
    MIN_GAP = 0.005

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.taus: list[float] = []
        self.times: list[float] = []
        self.editable = False
        self.labels: list[str] = []
        self._dragging: int | None = None
        self.setMinimumHeight(84)
        self.setMouseTracking(True)
        self.setToolTip("Timing chart: lower line is time, upper line is spacing between the two keys")

    def set_chart(self, times: list[float], taus: list[float], labels: list[str] | None = None, editable=False):
        self.times, self.taus = list(times), list(taus)
        self.labels = list(labels or [])
        self.editable = editable
        self.update()

    def show_curve(self, count: int, spacing: str) -> None:
        """Chart of `count` evenly timed drawings under a named spacing (no segment selected)."""
        times = [i / (count + 1) for i in range(1, count + 1)]
        self.set_chart(times, spacing_taus(count, spacing))

    def _x(self, value: float) -> float:
        return self.MARGIN + value * (self.width() - 2 * self.MARGIN)

    def _value(self, x: float) -> float:
        return (x - self.MARGIN) / max(1.0, self.width() - 2 * self.MARGIN)

    def paintEvent(self, event) -> None:
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QtGui.QPalette.ColorRole.Base))
        text = pal.color(QtGui.QPalette.ColorRole.Text)
        y_space, y_time = 24.0, self.height() - 26.0
        p.setPen(QtGui.QPen(text, 1.5))
        for y in (y_space, y_time):
            p.drawLine(QtCore.QPointF(self._x(0), y), QtCore.QPointF(self._x(1), y))
        for end in (0.0, 1.0):  # the keys: tall ticks on both lines
            x = self._x(end)
            p.drawLine(QtCore.QPointF(x, y_space - 9), QtCore.QPointF(x, y_space + 9))
            p.drawLine(QtCore.QPointF(x, y_time - 9), QtCore.QPointF(x, y_time + 9))
        p.drawText(QtCore.QRectF(0, 0, 60, 14), QtCore.Qt.AlignmentFlag.AlignLeft, "spacing")
        p.drawText(QtCore.QRectF(0, self.height() - 14, 60, 14), QtCore.Qt.AlignmentFlag.AlignLeft, "time")
        accent = QtGui.QColor("#4a90d9")
        for i, (t, tau) in enumerate(zip(self.times, self.taus)):
            xs, xt = self._x(tau), self._x(t)
            p.setPen(QtGui.QPen(QtGui.QColor(128, 128, 128, 140), 1, QtCore.Qt.PenStyle.DotLine))
            p.drawLine(QtCore.QPointF(xt, y_time), QtCore.QPointF(xs, y_space))
            p.setPen(QtGui.QPen(text, 1))
            p.drawLine(QtCore.QPointF(xt, y_time - 5), QtCore.QPointF(xt, y_time + 5))
            p.setPen(QtGui.QPen(accent, 2.5 if self.editable else 1.5))
            p.drawLine(QtCore.QPointF(xs, y_space - 6), QtCore.QPointF(xs, y_space + 6))
            if self.editable:
                p.setBrush(accent)
                p.drawEllipse(QtCore.QPointF(xs, y_space), 3.5, 3.5)
            if i < len(self.labels):
                p.setPen(text)
                p.drawText(QtCore.QRectF(xt - 15, y_time + 6, 30, 14), QtCore.Qt.AlignmentFlag.AlignCenter, self.labels[i])
        p.end()

    def _tick_at(self, x: float) -> int | None:
        if not self.taus:
            return None
        index = min(range(len(self.taus)), key=lambda i: abs(self._x(self.taus[i]) - x))
        return index if abs(self._x(self.taus[index]) - x) < 8 else None

    def mousePressEvent(self, event) -> None:
        if self.editable:
            pos = event.position() if hasattr(event, "position") else event.pos()
            self._dragging = self._tick_at(pos.x())

    def mouseMoveEvent(self, event) -> None:
        pos = event.position() if hasattr(event, "position") else event.pos()
        if self._dragging is None:
            hover = self.editable and self._tick_at(pos.x()) is not None
            self.setCursor(QtCore.Qt.CursorShape.SizeHorCursor if hover else QtCore.Qt.CursorShape.ArrowCursor)
            return
        i = self._dragging
        lo = self.taus[i - 1] if i > 0 else 0.0
        hi = self.taus[i + 1] if i + 1 < len(self.taus) else 1.0
        self.taus[i] = round(min(hi - self.MIN_GAP, max(lo + self.MIN_GAP, self._value(pos.x()))), 4)
        self.update()

    def mouseReleaseEvent(self, event) -> None:
        if self._dragging is not None:
            self._dragging = None
            self.tausChanged.emit(list(self.taus))
