"""Segments, spacing and exposure: which timeline frame shows which drawing, and at what tau.

Standard library only: the Krita plugin and the desktop app plan with exactly this code.

Vocabulary (DESIGN.md): keyframes anchor the motion; a segment is two consecutive keyframes and the
in-betweens between them; spacing puts each in-between at a fraction tau in (0, 1) of the way from
the first key to the second; exposure holds each drawing for 1, 2 or 3 timeline frames.

Spacing curves map the in-between's position in time x in (0, 1) to tau:
- linear:      tau = x
- ease-in:     tau = x**2             (slow out of the first key, drawings bunched near it)
- ease-out:    tau = 1 - (1 - x)**2   (slow into the second key)
- ease-in-out: tau = x**2 (3 - 2x)    (slow at both keys)
- a custom list of taus (a timing chart), strictly increasing inside (0, 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SPACINGS = ("linear", "ease-in", "ease-out", "ease-in-out")
EXPOSURES = {"ones": 1, "twos": 2, "threes": 3}
MAX_INBETWEENS_PER_SEGMENT = 240


class PlanningError(ValueError):
    """The keys, count, spacing or exposure asked for cannot be planned; the message says why."""


def spacing_curve(spacing: str, x: float) -> float:
    """tau for a position in time x in (0, 1) under one of the named spacings."""
    if spacing == "linear":
        return x
    if spacing == "ease-in":
        return x * x
    if spacing == "ease-out":
        return 1.0 - (1.0 - x) ** 2
    if spacing == "ease-in-out":
        return x * x * (3.0 - 2.0 * x)
    raise PlanningError(f"unknown spacing {spacing!r}: choose one of {', '.join(SPACINGS)} or a list of taus")


def parse_spacing(text: str) -> str | tuple[float, ...]:
    """A spacing name, or a comma-separated timing chart of taus such as '0.1,0.3,0.7'."""
    text = text.strip()
    if text in SPACINGS:
        return text
    try:
        taus = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise PlanningError(
            f"spacing {text!r} is neither one of {', '.join(SPACINGS)} nor a comma-separated list of taus"
        ) from None
    check_custom_taus(taus)
    return taus


def check_custom_taus(taus: Sequence[float]) -> None:
    if not taus:
        raise PlanningError("a custom spacing needs at least one tau")
    for tau in taus:
        if not 0.0 < tau < 1.0:
            raise PlanningError(f"custom spacing tau {tau} is outside (0, 1): 0 and 1 are the keyframes themselves")
    for a, b in zip(taus, taus[1:]):
        if not a < b:
            raise PlanningError(f"custom spacing taus must increase: {a} is followed by {b}")


def parse_exposure(value: str | int) -> int:
    """1, 2, 3 or 'ones', 'twos', 'threes' -> frames each drawing is held."""
    if isinstance(value, int):
        exposure = value
    elif value in EXPOSURES:
        exposure = EXPOSURES[value]
    else:
        try:
            exposure = int(value)
        except ValueError:
            raise PlanningError(f"exposure {value!r} is not one of ones, twos, threes or a number of frames") from None
    if not 1 <= exposure <= 12:
        raise PlanningError(f"exposure must hold each drawing 1 to 12 frames, got {exposure}")
    return exposure


def spacing_taus(count: int, spacing: str | Sequence[float] = "linear") -> list[float]:
    """taus of `count` in-betweens evenly placed in time under `spacing`."""
    check_count(count)
    if not isinstance(spacing, str):
        check_custom_taus(spacing)
        if len(spacing) != count:
            raise PlanningError(f"custom spacing lists {len(spacing)} taus but the segment has {count} in-betweens")
        return [float(t) for t in spacing]
    return [spacing_curve(spacing, i / (count + 1)) for i in range(1, count + 1)]


def check_count(count: int) -> None:
    if count < 1:
        raise PlanningError(f"in-between count must be at least 1, got {count}")
    if count > MAX_INBETWEENS_PER_SEGMENT:
        raise PlanningError(
            f"in-between count {count} is more than {MAX_INBETWEENS_PER_SEGMENT} in-betweens per segment; "
            "add a breakdown keyframe instead"
        )


@dataclass(frozen=True)
class Inbetween:
    frame: int  # timeline frame where this drawing starts
    tau: float  # spacing fraction between the segment's keys


@dataclass(frozen=True)
class SegmentPlan:
    """Two consecutive keyframes and the in-between drawings planned between them."""

    index: int
    start_frame: int
    end_frame: int
    inbetweens: tuple[Inbetween, ...]

    @property
    def taus(self) -> list[float]:
        return [ib.tau for ib in self.inbetweens]

    def tau_of_frame(self, frame: int) -> float:
        """Where a timeline frame of this segment sits in time, as a fraction of the segment."""
        return (frame - self.start_frame) / (self.end_frame - self.start_frame)

    def drawing_at(self, frame: int) -> int:
        """Timeline frame of the drawing shown at `frame` (start_frame <= frame < end_frame)."""
        if not self.start_frame <= frame < self.end_frame:
            raise PlanningError(f"frame {frame} is outside segment {self.start_frame}-{self.end_frame}")
        shown = self.start_frame
        for ib in self.inbetweens:
            if ib.frame <= frame:
                shown = ib.frame
        return shown


def check_key_frames(key_frames: Sequence[int]) -> None:
    if len(key_frames) < 2:
        raise PlanningError(f"need at least two keyframes, got {len(key_frames)}")
    for a, b in zip(key_frames, key_frames[1:]):
        if b <= a:
            raise PlanningError(f"keyframe positions must increase: frame {a} is followed by frame {b}")
    if key_frames[0] < 0:
        raise PlanningError(f"keyframe positions must not be negative, got {key_frames[0]}")


def key_frames_for_count(n_keys: int, count: int, exposure: int = 1) -> list[int]:
    """Timeline positions of `n_keys` keys with `count` in-betweens each held `exposure` frames."""
    check_count(count)
    gap = (count + 1) * exposure
    return [i * gap for i in range(n_keys)]


def plan_segment(
    index: int,
    start_frame: int,
    end_frame: int,
    exposure: int = 1,
    spacing: str | Sequence[float] = "linear",
    count: int | None = None,
) -> SegmentPlan:
    """Plan one segment: by exposure (a drawing every `exposure` frames) or by an explicit count.

    With an explicit count the drawings are spread as evenly as whole frames allow; spacing then
    decides their taus from their order (timing chart semantics). By exposure, tau follows each
    drawing's actual position in time.
    """
    gap = end_frame - start_frame
    if gap < 2:
        raise PlanningError(f"keyframes at frames {start_frame} and {end_frame} leave no frame for an in-between")
    if count is None:
        frames = list(range(start_frame + exposure, end_frame, exposure))
        if not frames:
            raise PlanningError(
                f"keyframes at frames {start_frame} and {end_frame} are closer than one exposure of {exposure} frames"
            )
        check_count(len(frames))
        xs = [(f - start_frame) / gap for f in frames]
        if isinstance(spacing, str):
            taus = [spacing_curve(spacing, x) for x in xs]
        else:
            taus = spacing_taus(len(frames), spacing)
    else:
        check_count(count)
        if count > gap - 1:
            raise PlanningError(
                f"{count} in-betweens do not fit between keyframes at frames {start_frame} and {end_frame} "
                f"({gap - 1} free frames)"
            )
        frames = [start_frame + round(i * gap / (count + 1)) for i in range(1, count + 1)]
        taus = spacing_taus(count, spacing)
    return SegmentPlan(index, start_frame, end_frame, tuple(Inbetween(f, t) for f, t in zip(frames, taus)))


def plan_timeline(
    key_frames: Sequence[int],
    exposure: int = 1,
    spacing: str | Sequence[float] = "linear",
    count: int | None = None,
) -> list[SegmentPlan]:
    """One SegmentPlan per pair of consecutive keyframes."""
    check_key_frames(key_frames)
    return [
        plan_segment(i, a, b, exposure=exposure, spacing=spacing, count=count)
        for i, (a, b) in enumerate(zip(key_frames, key_frames[1:]))
    ]


@dataclass(frozen=True)
class FrameAssignment:
    """What one timeline frame shows."""

    frame: int
    kind: str  # "key" | "inbetween" | "hold"
    drawing: int  # timeline frame of the drawing shown
    segment: int | None  # index of the segment the drawing belongs to (None for keys)
    tau: float | None  # tau of the drawing (None for keys)


def frame_assignments(segments: Iterable[SegmentPlan]) -> dict[int, FrameAssignment]:
    """Every timeline frame from the first key to the last: key, in-between or hold of which drawing."""
    segments = list(segments)
    out: dict[int, FrameAssignment] = {}
    for seg in segments:
        taus = {ib.frame: ib.tau for ib in seg.inbetweens}
        out[seg.start_frame] = FrameAssignment(seg.start_frame, "key", seg.start_frame, None, None)
        for frame in range(seg.start_frame + 1, seg.end_frame):
            drawing = seg.drawing_at(frame)
            if drawing == frame:
                out[frame] = FrameAssignment(frame, "inbetween", frame, seg.index, taus[frame])
            elif drawing == seg.start_frame:
                out[frame] = FrameAssignment(frame, "hold", drawing, None, None)
            else:
                out[frame] = FrameAssignment(frame, "hold", drawing, seg.index, taus[drawing])
    if segments:
        last = segments[-1].end_frame
        out[last] = FrameAssignment(last, "key", last, None, None)
    return out


def nearest_model_frame(tau: float, model_frames: int = 16) -> int:
    """Index of the generative model's frame closest to tau (model frame k sits at k / (T - 1))."""
    return min(range(model_frames), key=lambda k: (abs(k / (model_frames - 1) - tau), k))
