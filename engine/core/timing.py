"""How an animator times a segment, and the words the front ends offer for it.

One home for the timing choice both front ends store and show (the desktop app's project files and
the Krita plugin's document annotations use the same JSON), on top of the planning core.
Standard library only: it runs inside Krita.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import planning

#: Drawing modes offered in the UI: a drawing every 1/2/3 frames of the gap, or an exact count.
DRAWING_MODES = (("on ones", 1), ("on twos", 2), ("on threes", 3), ("exact count", None))
#: Spacing choices with the labels animators see ("custom" = a timing chart of taus).
SPACING_CHOICES = (
    ("linear", "Even (linear)"),
    ("ease-in", "Slow out of the first key (ease in)"),
    ("ease-out", "Slow into the second key (ease out)"),
    ("ease-in-out", "Slow out and in (ease in-out)"),
    ("custom", "Custom timing chart"),
)


@dataclass(frozen=True)
class Timing:
    """Drawings every `exposure` frames of the gap (count from the gap), or exactly `count` of them,
    placed in time by `spacing` (a named curve or a timing chart of taus). Invalid values raise
    planning.PlanningError with the reason."""

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

    def plan(self, index: int, start: int, end: int) -> planning.SegmentPlan:
        return planning.plan_segment(index, start, end, exposure=self.exposure, spacing=self.spacing, count=self.count)

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
