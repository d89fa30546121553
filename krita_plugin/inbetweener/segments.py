"""Segments of a Krita layer's timeline and how they are timed, planned with the shared planner.

A segment is two consecutive drawn keyframes. An empty keyframe between them (the animator ended
the drawing there) breaks the pair: nothing is generated across it. Each job sent to the engine is
one run of neighbouring segments, so the engine plans exactly the segments the animator picked.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._shared import planning, timing

DRAWING_MODES = timing.DRAWING_MODES
SPACINGS = planning.SPACINGS
Timing = timing.Timing


@dataclass(frozen=True)
class Segment:
    """Two consecutive drawn keyframes; `plan` when it can be generated, else `problem` says why."""

    start: int
    end: int
    plan: planning.SegmentPlan | None
    problem: str | None = None
    sketches: tuple[int, ...] = ()

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end

    def describe(self) -> str:
        head = f"f{self.start} → f{self.end}"
        if self.plan is None:
            return f"{head}: {self.problem}"
        frames = [ib.frame for ib in self.plan.inbetweens]
        text = f"{head}: {len(frames)} in-between{'s' if len(frames) != 1 else ''}"
        if self.sketches:
            text += " · sketches " + ", ".join(f"f{f}" for f in self.sketches)
        return text


def plan_segments(keys: list[int], blanks, timing: Timing, sketches: list[int] = ()) -> list[Segment]:
    """One Segment per pair of consecutive drawn keys, planned with `timing`."""
    keys = sorted(keys)
    blanks = sorted(blanks)
    out = []
    for index, (start, end) in enumerate(zip(keys, keys[1:])):
        inside = tuple(f for f in sorted(sketches) if start < f < end)
        blank = next((f for f in blanks if start < f < end), None)
        if blank is not None:
            out.append(Segment(start, end, None, f"the empty keyframe at f{blank} ends the drawing between them"))
            continue
        try:
            plan = planning.plan_segment(
                index, start, end, exposure=timing.exposure, spacing=timing.spacing, count=timing.count
            )
        except planning.PlanningError as exc:
            out.append(Segment(start, end, None, str(exc), inside))
            continue
        out.append(Segment(start, end, plan, None, inside))
    return out


def runs(segments: list[Segment]) -> list[list[Segment]]:
    """Split picked segments into runs of neighbours (each run becomes one engine job)."""
    out: list[list[Segment]] = []
    for seg in sorted(segments, key=lambda s: s.start):
        if out and out[-1][-1].end == seg.start:
            out[-1].append(seg)
        else:
            out.append([seg])
    return out
