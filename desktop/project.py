"""The document an animator edits: keys, sketches and in-betweens on one timeline.

Three tracks share the timeline's frame numbers (0-based, as the engine counts them):
- keys: the artist's keyframes (kind "key" or "breakdown"; both anchor the motion and are never
  overwritten by generation);
- sketches: rough drawings on in-between frames that steer generation;
- in-betweens: generated drawings, each remembering the segment and tau it was made for.

Timing (exposure, in-between count, spacing) has a project default and optional per-segment
overrides. Which frame shows which drawing comes from engine.core.planning, never from a copy of it.
Drawings are immutable: an edit replaces a Drawing, so undo can keep references instead of copies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from engine.core.planning import PlanningError, SegmentPlan, plan_segment
from engine.core.timing import Timing

__all__ = ["Timing"]  # the shared timing choice, re-exported for the desktop's modules

KEY_KINDS = ("key", "breakdown")
INBETWEEN_STATES = ("generated", "accepted")


class ProjectError(ValueError):
    """An edit or file the project cannot take; the message names the frame, file or size."""


class Drawing:
    """One RGBA uint8 image (H, W, 4), frozen so that many cells and undo steps can share it."""

    __slots__ = ("image", "__dict__")

    def __init__(self, image: np.ndarray) -> None:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 4:
            raise ProjectError(f"a drawing must be RGBA uint8 (H, W, 4), got {image.dtype} {image.shape}")
        image = np.ascontiguousarray(image)
        if image.flags.writeable:
            image = image.copy()
            image.setflags(write=False)
        self.image = image

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), the order artists and file dialogs use."""
        return self.image.shape[1], self.image.shape[0]

    @cached_property
    def digest(self) -> str:
        """Content hash: names the PNG on disk, so unchanged drawings are never rewritten."""
        h = hashlib.sha1(self.image.tobytes())
        h.update(repr(self.image.shape).encode())
        return h.hexdigest()[:16]

    @classmethod
    def blank(cls, width: int, height: int) -> "Drawing":
        return cls(np.zeros((height, width, 4), np.uint8))

    def is_empty(self) -> bool:
        return not self.image[..., 3].any()


@dataclass(frozen=True)
class KeyCell:
    drawing: Drawing
    kind: str = "key"  # "key" | "breakdown"
    source: str = ""  # file or layer it came from, for messages


@dataclass(frozen=True)
class SketchCell:
    drawing: Drawing


@dataclass(frozen=True)
class CleanupCell:
    """The animator's corrections on a frame's own layer: `paint` goes over the drawing, and `cut`
    (its alpha) is where the eraser took the drawing beneath away. The drawing beneath never changes."""

    paint: Drawing
    cut: Drawing | None = None

    def over(self, image: np.ndarray) -> np.ndarray:
        """`image` (RGBA uint8) with the cut taken out and the paint on top (straight alpha)."""
        base = image.astype(np.float32) / 255.0
        if self.cut is not None:
            base[..., 3] *= 1.0 - self.cut.image[..., 3].astype(np.float32) / 255.0
        top = self.paint.image.astype(np.float32) / 255.0
        alpha = top[..., 3:] + base[..., 3:] * (1.0 - top[..., 3:])
        rgb = top[..., :3] * top[..., 3:] + base[..., :3] * base[..., 3:] * (1.0 - top[..., 3:])
        rgb = np.divide(rgb, alpha, out=np.zeros_like(rgb), where=alpha > 0)
        return np.clip(np.concatenate([rgb, alpha], axis=2) * 255.0 + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class InbetweenCell:
    """A generated drawing and what it was generated for (so retiming can tell it is stale)."""

    drawing: Drawing
    tau: float
    segment: tuple[int, int]  # timeline frames of the two keys it sits between
    status: str = "generated"  # "generated" | "accepted"
    provenance: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SegmentInfo:
    """A segment as the timeline shows it: its plan (or why it cannot be planned) and its state."""

    index: int
    start: int
    end: int
    timing: Timing
    plan: SegmentPlan | None
    error: str | None

    @property
    def planned_frames(self) -> list[int]:
        return [ib.frame for ib in self.plan.inbetweens] if self.plan else []


@dataclass(frozen=True)
class ShownFrame:
    """What one timeline frame shows in playback and export."""

    frame: int
    image: np.ndarray
    kind: str  # "key" | "inbetween" | "hold"
    drawing: int  # timeline frame of the drawing shown


#: Generation settings the project remembers (names are GenerationSettings fields).
DEFAULT_SETTINGS = {
    "backend": "auto",  # the best backend the engine can run: ToonCrafter with its weights, else cel
    "motion": 10,
    "seed": 123,
    "seed_locked": True,
    "steps": 50,
    "cfg_scale": 7.5,
    "sketch_strength": 0.6,
    "prompt": "an anime scene",
    "preset": "parity",
}


@dataclass
class Project:
    """All of an animation shot. Mutated only through desktop.commands (so every edit can be undone)."""

    name: str = "Untitled"
    fps: int = 12
    size: tuple[int, int] | None = None  # (width, height) of every drawing; set by the first key
    keys: dict[int, KeyCell] = field(default_factory=dict)
    sketches: dict[int, SketchCell] = field(default_factory=dict)
    inbetweens: dict[int, InbetweenCell] = field(default_factory=dict)
    cleanups: dict[int, CleanupCell] = field(default_factory=dict)  # corrections over a key or in-between
    timing: Timing = field(default_factory=Timing)
    segment_timing: dict[int, Timing] = field(default_factory=dict)  # by the segment's first key frame
    playback: tuple[int, int] | None = None  # None: from the first key to the last
    loop: bool = True
    settings: dict = field(default_factory=lambda: dict(DEFAULT_SETTINGS))

    # ---- keys and segments -------------------------------------------------------------------
    def key_frames(self) -> list[int]:
        return sorted(self.keys)

    def check_size(self, drawing: Drawing, what: str) -> None:
        """Every drawing shares the canvas size: the engine needs keys of one size."""
        if self.size is not None and drawing.size != self.size:
            w, h = drawing.size
            pw, ph = self.size
            raise ProjectError(
                f"{what} is {w}×{h} pixels but this project's canvas is {pw}×{ph}: "
                "export all drawings at the same canvas size"
            )

    def timing_for(self, start: int) -> Timing:
        return self.segment_timing.get(start, self.timing)

    def segments(self) -> list[SegmentInfo]:
        keys = self.key_frames()
        cache_key = (tuple(keys), self.timing, tuple(sorted(self.segment_timing.items())))
        cached = self.__dict__.get("_segments_cache")
        if cached is not None and cached[0] == cache_key:
            return cached[1]
        out = []
        for index, (a, b) in enumerate(zip(keys, keys[1:])):
            timing = self.timing_for(a)
            try:
                plan = plan_segment(index, a, b, exposure=timing.exposure, spacing=timing.spacing, count=timing.count)
                error = None
            except PlanningError as exc:
                plan, error = None, str(exc)
            out.append(SegmentInfo(index, a, b, timing, plan, error))
        self.__dict__["_segments_cache"] = (cache_key, out)
        return out

    def segment_at(self, frame: int) -> SegmentInfo | None:
        """The segment whose in-between frames include `frame` (keys belong to no segment)."""
        for seg in self.segments():
            if seg.start < frame < seg.end:
                return seg
        return None

    def last_frame(self) -> int:
        """Last frame that holds anything (at least 0)."""
        frames = [*self.keys, *self.sketches, *self.inbetweens]
        return max(frames) if frames else 0

    def playback_range(self) -> tuple[int, int]:
        if self.playback is not None:
            return self.playback
        keys = self.key_frames()
        if not keys:
            return (0, 0)
        return (keys[0], max(keys[-1], self.last_frame()))

    # ---- in-between states -------------------------------------------------------------------
    def inbetween_state(self, frame: int) -> str:
        """"generated" / "accepted", or "stale" (made for other keys or timing), or "off-plan"."""
        cell = self.inbetweens[frame]
        seg = self.segment_at(frame)
        if seg is None or seg.plan is None or frame not in seg.planned_frames:
            return "off-plan"
        tau = next(ib.tau for ib in seg.plan.inbetweens if ib.frame == frame)
        if cell.segment != (seg.start, seg.end) or abs(cell.tau - tau) > 1e-6:
            return "stale"
        return cell.status

    def segment_state(self, seg: SegmentInfo) -> str:
        """"empty", "partial", "generated", "accepted" or "stale" for a whole segment."""
        states = [self.inbetween_state(f) for f in seg.planned_frames if f in self.inbetweens]
        if not states:
            return "empty"
        if "stale" in states:
            return "stale"
        if len(states) < len(seg.planned_frames):
            return "partial"
        return "accepted" if all(s == "accepted" for s in states) else "generated"

    # ---- what each frame shows -----------------------------------------------------------------
    def shown_drawing(self, frame: int) -> tuple[str, int] | None:
        """(kind, drawing frame) shown at `frame`: a key, an in-between, or a hold of an earlier one.

        Planned drawings not generated yet hold the previous drawing, so keys alone already play
        back as a pose test. Off-plan in-betweens are kept but not shown.
        """
        keys = self.key_frames()
        if not keys or frame < keys[0]:
            return None
        if frame in self.keys:
            return ("key", frame)
        seg = self.segment_at(frame)
        if seg is None:  # after the last key: it holds
            return ("hold", keys[-1])
        if seg.plan is not None:
            planned = seg.plan.drawing_at(frame)
            candidates = [f for f in seg.planned_frames if f <= planned and f in self.inbetweens]
        else:
            candidates = [f for f in self.inbetweens if seg.start < f <= frame]
        drawing = max(candidates) if candidates else seg.start
        if drawing == frame:
            return ("inbetween", frame)
        return ("hold", drawing)

    def image_of(self, drawing_frame: int) -> np.ndarray | None:
        """The frame's drawing as it plays and exports: with its clean-up layer on top."""
        cell = self.keys.get(drawing_frame) or self.inbetweens.get(drawing_frame)
        if cell is None:
            return None
        cleanup = self.cleanups.get(drawing_frame)
        return cleanup.over(cell.drawing.image) if cleanup is not None else cell.drawing.image

    def shown_frames(self, frames: Iterable[int]) -> list[ShownFrame]:
        out = []
        for frame in frames:
            shown = self.shown_drawing(frame)
            if shown is None:
                continue
            kind, drawing = shown
            out.append(ShownFrame(frame, self.image_of(drawing), kind, drawing))
        return out

    def drawings_around(self, frame: int, before: int, after: int) -> tuple[list[int], list[int]]:
        """Drawing frames for the onion skin: up to `before` earlier and `after` later drawings.

        Nearest first. The frame's own drawing is excluded; on a frame without a drawing of its own
        the held drawing counts as an earlier one (what the animator draws over).
        """
        shown = self.shown_drawing(frame)
        current = shown[1] if shown and shown[0] != "hold" else None
        drawings = sorted({*self.keys, *(f for f in self.inbetweens if self.inbetween_state(f) != "off-plan")})
        earlier = [d for d in drawings if d < frame and d != current][::-1][:before]
        later = [d for d in drawings if d > frame and d != current][:after]
        return earlier, later

    def neighbour_key(self, frame: int, direction: int) -> int | None:
        keys = self.key_frames()
        if direction < 0:
            earlier = [k for k in keys if k < frame]
            return earlier[-1] if earlier else None
        later = [k for k in keys if k > frame]
        return later[0] if later else None

    # ---- edits (used by desktop.commands; each returns what undo needs) -----------------------
    def with_inbetween_status(self, frame: int, status: str) -> InbetweenCell:
        if status not in INBETWEEN_STATES:
            raise ProjectError(f"unknown in-between status {status!r}")
        return replace(self.inbetweens[frame], status=status)

    def check_key_move(self, src: int, dst: int) -> None:
        """A key moves to a free frame between its neighbouring keys (key order is the motion)."""
        if src not in self.keys:
            raise ProjectError(f"frame {src} holds no keyframe to move")
        if dst < 0:
            raise ProjectError("a keyframe cannot move before frame 0")
        prev_key = self.neighbour_key(src, -1)
        next_key = self.neighbour_key(src, +1)
        if (prev_key is not None and dst <= prev_key) or (next_key is not None and dst >= next_key):
            raise ProjectError(
                f"frame {dst} is not between the neighbouring keys ({prev_key}, {next_key}): "
                "keys keep their order; add a new key instead"
            )
