"""The generation pipeline: a thin composition of planning, a backend and frame assembly.

build_request() checks the artist's input (sizes, sketch positions) and plans the segments;
generate() runs the chosen backend segment by segment, brings in-betweens a backend drew below the
keys' size back to full resolution from the keys (engine/restoration), and lays the drawings out on
the timeline (keys, in-betweens and holds), with progress and cancellation passed straight through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import numpy as np

from . import __version__
from .api import (
    CancelToken,
    EngineError,
    FrameResult,
    GenerationRequest,
    GenerationResult,
    GenerationSettings,
    InbetweenTask,
    Keyframe,
    ProgressFn,
    no_progress,
)
from .backends import get_backend, resolve_backend_name
from .core import vocabulary
from .core.planning import PlanningError, SegmentPlan, frame_assignments, plan_timeline
from .imaging import check_rgba, fit_into, is_blank, size_of
from .restoration import restore_inbetweens


class TimingError(EngineError):
    """The keys' positions, count, spacing or exposure cannot be planned (a PlanningError)."""


def build_request(
    keyframes: Sequence[Keyframe],
    *,
    sketches: dict[int, np.ndarray] | None = None,
    exposure: int = 1,
    spacing: str | Sequence[float] = "linear",
    count: int | None = None,
    settings: GenerationSettings | None = None,
    only_segments: Sequence[int] | None = None,
    fit: bool = False,
    segments: Sequence[SegmentPlan] | None = None,
) -> GenerationRequest:
    """Validate the artist's keyframes and sketches and plan the segments between the keys.

    With `fit`, keyframes and sketches of another size are fitted (scaled, padded, never cropped)
    into the first keyframe's size; without it a size mismatch is an error naming both sizes.
    `segments` are segments the caller planned already (a job sent by `inbetween --server`): they
    are used as they are, so the server draws exactly what the caller planned, and exposure,
    spacing and count are not planned again.
    """
    keyframes = list(keyframes)
    if len(keyframes) < 2:
        raise EngineError(f"need at least two keyframes, got {len(keyframes)}")
    for key in keyframes:
        check_rgba(key.image, key.source or f"keyframe at frame {key.frame}")
    width, height = size_of(keyframes[0].image)

    def conform(image: np.ndarray, what: str) -> np.ndarray:
        if size_of(image) == (width, height):
            return image
        if fit:
            return fit_into(image, width, height)
        w, h = size_of(image)
        raise EngineError(
            f"{what} is {w}x{h} but {keyframes[0].source or 'the first keyframe'} is {width}x{height}; "
            "use the same size or --fit to fit it in"
        )

    keyframes = [
        Keyframe(k.frame, conform(k.image, k.source or f"keyframe at frame {k.frame}"), k.source) for k in keyframes
    ]
    try:
        if segments is None:
            segments = plan_timeline([k.frame for k in keyframes], exposure=exposure, spacing=spacing, count=count)
        else:
            segments = _check_planned([k.frame for k in keyframes], list(segments))
    except PlanningError as exc:
        raise TimingError(str(exc)) from None

    if only_segments is not None:
        only_segments = sorted(set(only_segments))
        for index in only_segments:
            if not 0 <= index < len(segments):
                raise EngineError(f"segment {index} does not exist: there are {len(segments)} segments (0-based)")

    checked_sketches: dict[int, np.ndarray] = {}
    key_frames = {k.frame for k in keyframes}
    for frame, image in sorted((sketches or {}).items()):
        what = f"sketch at frame {frame}"
        check_rgba(image, what)
        if frame in key_frames:
            raise EngineError(f"{what} sits on a keyframe; sketches steer in-betweens only")
        if not keyframes[0].frame < frame < keyframes[-1].frame:
            raise EngineError(
                f"{what} is outside the keyframes' range {keyframes[0].frame}-{keyframes[-1].frame}"
            )
        if is_blank(image):
            continue  # an empty sketch layer means "no sketch", exactly as a missing one
        checked_sketches[frame] = conform(image, what)

    return GenerationRequest(
        keyframes=keyframes,
        segments=segments,
        settings=settings or GenerationSettings(),
        sketches=checked_sketches,
        only_segments=only_segments,
    )


def _check_planned(key_frames: list[int], segments: list[SegmentPlan]) -> list[SegmentPlan]:
    """Segments planned elsewhere must join the keys in order, one segment per pair of keys."""
    pairs = list(zip(key_frames, key_frames[1:]))
    if any(a >= b for a, b in pairs):
        raise PlanningError(f"keyframe positions must increase, got {key_frames}")
    if [(s.start_frame, s.end_frame) for s in segments] != pairs or [s.index for s in segments] != list(range(len(pairs))):
        raise PlanningError(f"the planned segments do not join the keyframes {key_frames} in order")
    return segments


def _segment_progress(progress: ProgressFn, done: int, total: int) -> ProgressFn:
    """Map a backend's per-segment fraction onto the whole request."""

    def report(stage: str, fraction: float, message: str) -> None:
        overall = (done + min(max(fraction, 0.0), 1.0)) / total
        prefix = f"segment {done + 1}/{total}: " if total > 1 else ""
        progress(stage, overall, prefix + message)

    return report


def generate(
    request: GenerationRequest,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> GenerationResult:
    """Run the request's segments through its backend and lay the results out on the timeline."""
    cancel = cancel or CancelToken()
    settings = request.settings
    backend_name = resolve_backend_name(settings)
    if request.sketches and backend_name not in vocabulary.SKETCH_BACKENDS:
        raise EngineError(
            f"sketch guidance needs the {' or '.join(vocabulary.SKETCH_BACKENDS)} backend, but {backend_name} would run "
            "(choose one of them, or remove the sketches)"
        )
    progress("load", 0.0, f"loading the {backend_name} backend")
    backend = get_backend(backend_name, settings)
    keys = {k.frame: k for k in request.keyframes}
    selected = [
        seg for seg in request.segments if request.only_segments is None or seg.index in request.only_segments
    ]

    drawings: dict[int, np.ndarray] = {}
    warnings: list[str] = []
    for done, seg in enumerate(selected):
        cancel.check()
        sketches = {
            seg.tau_of_frame(frame): image
            for frame, image in request.sketches.items()
            if seg.start_frame < frame < seg.end_frame
        }
        before = next((s for s in request.segments if s.end_frame == seg.start_frame), None)
        after = next((s for s in request.segments if s.start_frame == seg.end_frame), None)
        task = InbetweenTask(
            key_start=keys[seg.start_frame].image,
            key_end=keys[seg.end_frame].image,
            taus=seg.taus,
            settings=settings,
            sketches=sketches,
            key_before=None if before is None else keys[before.start_frame].image,
            tau_before=None if before is None else seg.tau_of_frame(before.start_frame),
            key_after=None if after is None else keys[after.end_frame].image,
            tau_after=None if after is None else seg.tau_of_frame(after.end_frame),
        )
        segment_progress = _segment_progress(progress, done, len(selected))
        images = backend.interpolate(task, segment_progress, cancel)
        warnings.extend(f"segment {seg.start_frame}-{seg.end_frame}: {w}" for w in task.warnings)
        if len(images) != len(seg.inbetweens):
            raise EngineError(f"{backend_name} returned {len(images)} frames for {len(seg.inbetweens)} in-betweens")
        images = restore_inbetweens(
            task.key_start, task.key_end, images, task.taus, settings,
            draws_at=getattr(backend, "draws_at", None), progress=segment_progress, cancel=cancel,
        )
        for inbetween, image in zip(seg.inbetweens, images):
            drawings[inbetween.frame] = image

    frames: dict[int, FrameResult] = {}
    selected_indices = {seg.index for seg in selected}
    for frame, slot in frame_assignments(request.segments).items():
        owner = _segment_of(request.segments, frame)
        if owner not in selected_indices and slot.kind != "key":
            continue
        if slot.kind == "key" and not _key_touches(request.segments, frame, selected_indices):
            continue
        image = keys[slot.drawing].image if slot.drawing in keys else drawings[slot.drawing]
        frames[frame] = FrameResult(frame, image, slot.kind, slot.drawing, slot.segment, slot.tau)

    progress("post", 1.0, "done")
    provenance = {
        "engine_version": __version__,
        **backend.describe(),
        "backend": backend_name,
        "settings": asdict(settings),
        "segments": sorted(selected_indices),
    }
    return GenerationResult(frames=frames, provenance=provenance, warnings=warnings)


def _segment_of(segments, frame: int) -> int | None:
    for seg in segments:
        if seg.start_frame < frame < seg.end_frame:
            return seg.index
    return None


def _key_touches(segments, frame: int, selected: set[int]) -> bool:
    return any(seg.index in selected and frame in (seg.start_frame, seg.end_frame) for seg in segments)
