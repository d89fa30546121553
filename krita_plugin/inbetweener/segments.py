"""Segments of a Krita layer's timeline and how they are timed, planned with the shared planner.

A segment is two consecutive drawn keyframes. An empty keyframe between them (the animator ended
the drawing there) breaks the pair: nothing is generated across it. Each job sent to the engine is
one run of neighbouring segments, so the engine plans exactly the segments the animator picked.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._shared import planning

DRAWING_MODES = (("on ones", 1), ("on twos", 2), ("on threes", 3), ("exact count", None))
SPACINGS = planning.SPACINGS


@dataclass(frozen=True)
class Timing:
    """Drawings every `exposure` frames of the gap (count from the gap), or exactly `count` of them,
    placed in time by `spacing` (a named curve or a timing chart of taus)."""

    exposure: int = 1
    count: int | None = None
    spacing: str | tuple[float, ...] = "linear"

    def __post_init__(self) -> None:
        planning.parse_exposure(self.exposure)
        if self.count is not None:
            planning.check_count(self.count)
        if isinstance(self.spacing, str):
            object.__setattr__(self, "spacing", planning.parse_spacing(self.spacing))
        if not isinstance(self.spacing, str):
            object.__setattr__(self, "spacing", tuple(float(t) for t in self.spacing))
            planning.check_custom_taus(self.spacing)

    def describe(self) -> str:
        if self.count:
            drawings = f"exactly {self.count} in-betweens"
        else:
            drawings = {1: "on ones", 2: "on twos", 3: "on threes"}.get(self.exposure, f"every {self.exposure} frames")
        spacing = self.spacing if isinstance(self.spacing, str) else "chart " + ",".join(f"{t:g}" for t in self.spacing)
        return f"{drawings}, {spacing}"

    def to_json(self) -> dict:
        spacing = self.spacing if isinstance(self.spacing, str) else list(self.spacing)
        return {"exposure": self.exposure, "count": self.count, "spacing": spacing}

    @classmethod
    def from_json(cls, data: dict) -> "Timing":
        spacing = data.get("spacing", "linear")
        return cls(
            exposure=int(data.get("exposure", 1)),
            count=None if data.get("count") is None else int(data["count"]),
            spacing=spacing if isinstance(spacing, str) else tuple(spacing),
        )


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
