"""Undoable edits. Each command records old and new cells (shared immutable Drawings, not copies).

`Edit` covers everything that swaps cells, timings or project properties; `Stroke` and
`CleanupStroke` keep only the rectangle a pen, eraser or fill touched, so long drawing sessions stay
light on memory. `GenerationEdit` gathers every segment one run lands into one undo step.
Builders below (mark_key, move_key, land_results, ...) check the request first and raise
ProjectError with the reason, so nothing half-applied ever reaches the undo stack.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from qtpy import QtGui

from .document import Document
from .project import CleanupCell, Drawing, InbetweenCell, KeyCell, ProjectError, SketchCell, Timing

TRACKS = ("keys", "sketches", "inbetweens", "cleanups")
GENERATION_COMMAND_ID = 1001


@dataclass(frozen=True)
class CellChange:
    track: str
    frame: int
    old: Any  # cell or None
    new: Any


@dataclass(frozen=True)
class TimingChange:
    start: int | None  # None: the project's default timing
    old: Timing | None
    new: Timing | None


class Edit(QtGui.QUndoCommand):
    def __init__(self, doc: Document, text: str, cells=(), timings=(), props: dict | None = None) -> None:
        super().__init__(text)
        self.doc = doc
        self.cells = list(cells)
        self.timings = list(timings)
        self.props = {name: (getattr(doc.project, name), value) for name, value in (props or {}).items()}

    def _apply(self, forward: bool) -> None:
        project = self.doc.project
        changes = self.cells if forward else reversed(self.cells)
        for change in changes:
            track = getattr(project, change.track)
            value = change.new if forward else change.old
            if value is None:
                track.pop(change.frame, None)
            else:
                track[change.frame] = value
        for change in self.timings if forward else reversed(self.timings):
            value = change.new if forward else change.old
            if change.start is None:
                project.timing = value
            elif value is None:
                project.segment_timing.pop(change.start, None)
            else:
                project.segment_timing[change.start] = value
        for name, (old, new) in self.props.items():
            setattr(project, name, new if forward else old)
        if project.size is None:
            for cell in project.keys.values():
                project.size = cell.drawing.size
                break
        self.doc.notify()

    def redo(self) -> None:
        self._apply(True)

    def undo(self) -> None:
        self._apply(False)


class GenerationEdit(Edit):
    """The segments one generation run lands: each segment is pushed as it arrives (so the artist
    sees it), and merges into the run's first step, so one Ctrl+Z removes the whole run."""

    def __init__(self, doc: Document, run: str, segments: list[tuple[int, int]], cells=()) -> None:
        self.run, self.segments = run, list(segments)
        super().__init__(doc, self.describe(), cells)

    def describe(self) -> str:
        if len(self.segments) == 1:
            start, end = self.segments[0]
            return f"Generate in-betweens {start}–{end}"
        return f"Generate {len(self.segments)} segments"

    def id(self) -> int:
        return GENERATION_COMMAND_ID

    def mergeWith(self, other) -> bool:
        if not isinstance(other, GenerationEdit) or other.run != self.run:
            return False
        self.cells.extend(other.cells)
        self.segments.extend(other.segments)
        self.setText(self.describe())
        return True


class CleanupStroke(QtGui.QUndoCommand):
    """A pen, eraser or fill on a frame's clean-up layer: the touched rectangle of its paint and cut."""

    def __init__(self, doc: Document, frame: int, rect, before: tuple, after: tuple, created: bool, text: str):
        super().__init__(text)
        self.doc, self.frame, self.rect = doc, frame, rect
        self.before, self.after, self.created = before, after, created  # (paint patch, cut alpha patch)

    def _put(self, patches: tuple) -> None:
        project = self.doc.project
        x, y, w, h = self.rect
        cell = project.cleanups.get(self.frame)
        blank = np.zeros((*project.size[::-1], 4), np.uint8)
        paint = (cell.paint.image if cell else blank).copy()
        cut = (cell.cut.image if cell and cell.cut else blank).copy()
        paint[y : y + h, x : x + w] = patches[0]
        cut[y : y + h, x : x + w, 3] = patches[1]
        project.cleanups[self.frame] = CleanupCell(Drawing(paint), Drawing(cut) if cut[..., 3].any() else None)
        self.doc.notify()

    def redo(self) -> None:
        self._put(self.after)

    def undo(self) -> None:
        if self.created:
            self.doc.project.cleanups.pop(self.frame, None)
            self.doc.notify()
        else:
            self._put(self.before)


class Stroke(QtGui.QUndoCommand):
    """A pen or eraser stroke on a frame's sketch: the touched rectangle before and after."""

    def __init__(self, doc: Document, frame: int, rect, before, after, created: bool, text: str = "Sketch stroke"):
        super().__init__(text)
        self.doc, self.frame, self.rect = doc, frame, rect
        self.before, self.after, self.created = before, after, created

    def _put(self, patch: np.ndarray) -> None:
        project = self.doc.project
        x, y, w, h = self.rect
        cell = project.sketches.get(self.frame)
        base = cell.drawing.image.copy() if cell else np.zeros((*project.size[::-1], 4), np.uint8)
        base[y : y + h, x : x + w] = patch
        project.sketches[self.frame] = SketchCell(Drawing(base))
        self.doc.notify()

    def redo(self) -> None:
        self._put(self.after)

    def undo(self) -> None:
        if self.created:
            self.doc.project.sketches.pop(self.frame, None)
            self.doc.notify()
        else:
            self._put(self.before)


# ---- builders: check, then describe the change ------------------------------------------------


def add_keys(doc: Document, keys: dict[int, KeyCell], text: str = "Add keyframes") -> Edit:
    project = doc.project
    for frame, cell in keys.items():
        if frame in project.keys:
            raise ProjectError(f"frame {frame} already holds a keyframe")
        project.check_size(cell.drawing, f"the keyframe for frame {frame}")
    return Edit(doc, text, [CellChange("keys", f, None, c) for f, c in sorted(keys.items())])


def mark_key(doc: Document, frame: int, kind: str = "key") -> Edit:
    """Make the drawing on `frame` a key or breakdown: an existing key changes kind; otherwise the
    frame's in-between (e.g. one the animator liked) or its sketch is promoted."""
    project = doc.project
    label = "breakdown" if kind == "breakdown" else "key"
    if frame in project.keys:
        old = project.keys[frame]
        if old.kind == kind:
            raise ProjectError(f"frame {frame} is already a {label}")
        return Edit(doc, f"Mark frame {frame} as {label}", [CellChange("keys", frame, old, replace(old, kind=kind))])
    if frame in project.inbetweens:
        cell = project.inbetweens[frame]
        source = f"in-between of frames {cell.segment[0]}-{cell.segment[1]}"
        return Edit(
            doc,
            f"Mark frame {frame} as {label}",
            [
                CellChange("inbetweens", frame, cell, None),
                CellChange("keys", frame, None, KeyCell(cell.drawing, kind, source)),
            ],
        )
    if frame in project.sketches:
        cell = project.sketches[frame]
        return Edit(
            doc,
            f"Mark frame {frame} as {label}",
            [
                CellChange("sketches", frame, cell, None),
                CellChange("keys", frame, None, KeyCell(cell.drawing, kind, "sketch")),
            ],
        )
    raise ProjectError(f"nothing is drawn on frame {frame}: draw a sketch there or generate it first")


def unmark_key(doc: Document, frame: int) -> Edit:
    """A key stops anchoring the motion; its drawing is kept on the sketch track to steer instead."""
    project = doc.project
    if frame not in project.keys:
        raise ProjectError(f"frame {frame} is not a keyframe")
    if frame in project.sketches:
        raise ProjectError(f"frame {frame} already has a sketch: delete the sketch before unmarking the key")
    cell = project.keys[frame]
    timings = []
    if frame in project.segment_timing:
        timings.append(TimingChange(frame, project.segment_timing[frame], None))
    cells = [CellChange("keys", frame, cell, None)]
    sketch = cell.drawing
    if frame in project.cleanups:  # the corrected drawing becomes the sketch
        sketch = Drawing(project.image_of(frame))
        cells.append(CellChange("cleanups", frame, project.cleanups[frame], None))
    cells.append(CellChange("sketches", frame, None, SketchCell(sketch)))
    return Edit(doc, f"Unmark key at frame {frame}", cells, timings)


def move_key(doc: Document, src: int, dst: int) -> Edit:
    """Move a key (and the timing of the segment it starts); what sat on `dst` moves out of the way
    only if it is an in-between or sketch, which become stale rather than lost."""
    project = doc.project
    project.check_key_move(src, dst)
    cells = [CellChange("keys", src, project.keys[src], None), CellChange("keys", dst, None, project.keys[src])]
    if dst in project.sketches:
        raise ProjectError(f"frame {dst} has a sketch: a key cannot sit on it (delete or move the sketch)")
    if dst in project.inbetweens:
        cells.insert(0, CellChange("inbetweens", dst, project.inbetweens[dst], None))
    if dst in project.cleanups:  # corrections of the in-between that made room
        cells.insert(0, CellChange("cleanups", dst, project.cleanups[dst], None))
    if src in project.cleanups:  # a key's corrections travel with it
        cells += [CellChange("cleanups", src, project.cleanups[src], None),
                  CellChange("cleanups", dst, None, project.cleanups[src])]
    timings = []
    if src in project.segment_timing:
        timing = project.segment_timing[src]
        timings = [TimingChange(src, timing, None), TimingChange(dst, None, timing)]
    return Edit(doc, f"Move key {src} → {dst}", cells, timings)


def delete_cell(doc: Document, track: str, frame: int) -> Edit:
    if track == "keys":
        raise ProjectError("keys are never deleted by accident: unmark the key first (its drawing becomes a sketch)")
    cells = getattr(doc.project, track)
    what = {"cleanups": "clean-up layer", "inbetweens": "in-between", "sketches": "sketch"}[track]
    if frame not in cells:
        raise ProjectError(f"frame {frame} has no {what}")
    changes = [CellChange(track, frame, cells[frame], None)]
    if track == "inbetweens" and frame in doc.project.cleanups:  # corrections of a deleted drawing go with it
        changes.append(CellChange("cleanups", frame, doc.project.cleanups[frame], None))
    return Edit(doc, f"Delete {what} at frame {frame}", changes)


def set_timing(doc: Document, starts: list[int] | None, timing: Timing) -> Edit:
    """Set the timing of some segments (by first key), or the project default when `starts` is None."""
    project = doc.project
    if starts is None:
        return Edit(doc, "Change default timing", timings=[TimingChange(None, project.timing, timing)])
    changes = []
    for start in starts:
        old = project.segment_timing.get(start)
        new = None if timing == project.timing else timing
        if old != new:
            changes.append(TimingChange(start, old, new))
    return Edit(doc, f"Change timing of {len(starts)} segment(s)", timings=changes)


def set_props(doc: Document, text: str, **props) -> Edit:
    return Edit(doc, text, props=props)


def corrected_frames(project, starts) -> list[int]:
    """In-between frames of the segments starting at `starts` that carry a clean-up layer."""
    segments = [s for s in project.segments() if s.start in set(starts)]
    return sorted(f for f in project.cleanups if f in project.inbetweens and any(s.start < f < s.end for s in segments))


def land_results(doc: Document, segment: tuple[int, int], results: dict[int, InbetweenCell], run: str,
                 keep_corrected: bool = True) -> GenerationEdit:
    """Put a segment's generated in-betweens on the in-betweens track, replacing the ones there.

    Frames that became keys while the engine worked are left alone (keys are never overwritten).
    Corrected in-betweens (with a clean-up layer) are kept when `keep_corrected`; otherwise they are
    replaced and their clean-up layer goes with the old drawing (in the same undo step).
    """
    project = doc.project
    start, end = segment
    kept = {f for f in corrected_frames(project, [start]) if keep_corrected}
    cells = [
        CellChange("inbetweens", f, c, None)
        for f, c in sorted(project.inbetweens.items())
        if start < f < end and f not in results and f not in kept
    ]
    for frame, cell in sorted(results.items()):
        if frame in project.keys or frame in kept:
            continue
        project.check_size(cell.drawing, f"the generated in-between for frame {frame}")
        cells.append(CellChange("inbetweens", frame, project.inbetweens.get(frame), cell))
    touched = {c.frame for c in cells}
    cells += [CellChange("cleanups", f, c, None) for f, c in sorted(project.cleanups.items())
              if f in touched and f not in project.keys]
    return GenerationEdit(doc, run, [segment], cells)


def set_status(doc: Document, frames: list[int], status: str, text: str) -> Edit:
    project = doc.project
    cells = [
        CellChange("inbetweens", f, project.inbetweens[f], project.with_inbetween_status(f, status))
        for f in frames
        if f in project.inbetweens and project.inbetweens[f].status != status
    ]
    if not cells:
        raise ProjectError("no generated in-betweens to change here")
    return Edit(doc, text, cells)
