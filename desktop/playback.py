"""Playback: steps the playhead through the playback range at the project's fps, looping or not."""

from __future__ import annotations

from qtpy import QtCore

from .document import Document


class Player(QtCore.QObject):
    playingChanged = QtCore.Signal(bool)

    def __init__(self, doc: Document, parent=None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.tick)

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def set_document(self, doc: Document) -> None:
        self.stop()
        self.doc = doc

    def play(self) -> None:
        project = self.doc.project
        if not project.keys:
            return
        start, end = project.playback_range()
        if not start <= self.doc.current_frame < end:
            self.doc.set_current_frame(start)
        self.timer.start(max(1, round(1000 / max(1, project.fps))))
        self.playingChanged.emit(True)

    def stop(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
            self.playingChanged.emit(False)

    def toggle(self) -> None:
        self.stop() if self.playing else self.play()

    def tick(self) -> None:
        project = self.doc.project
        start, end = project.playback_range()
        frame = self.doc.current_frame + 1
        if frame > end:
            if not project.loop:
                self.stop()
                return
            frame = start
        self.doc.set_current_frame(frame)
        interval = max(1, round(1000 / max(1, project.fps)))
        if self.timer.interval() != interval:
            self.timer.setInterval(interval)
