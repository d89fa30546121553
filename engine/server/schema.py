"""Job JSON (POST /v1/jobs) to a GenerationRequest, with errors that name the offending field.

The body is parsed and type-checked strictly by pydantic (no silent "1" -> 1 coercion, no NaN), then
images are checked against the protocol limits from their PNG headers before any pixel is decoded,
and the pipeline's own build_request plans the segments. Every problem becomes a JobInputError
(HTTP 4xx) whose message starts with the field, e.g. "keyframes[1].png: not a PNG image".
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from ..api import EngineError, GenerationRequest, GenerationSettings, Keyframe
from ..core import protocol
from ..core.planning import (
    MAX_INBETWEENS_PER_SEGMENT,
    SPACINGS,
    Inbetween,
    PlanningError,
    SegmentPlan,
    check_custom_taus,
    parse_exposure,
)

STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

Frame = Annotated[int, Field(ge=0, le=protocol.MAX_FRAME)]


class JobInputError(Exception):
    """A job the server refuses; `field` is the JSON path of the problem ("" when it is the whole job)."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.status = status


class ImageUpload(BaseModel):
    model_config = STRICT
    frame: Frame
    png: str


class InbetweenPlacement(BaseModel):
    """One drawing of an explicitly planned job: its timeline frame and its spacing fraction."""

    model_config = STRICT
    frame: Frame
    tau: float


class Timing(BaseModel):
    model_config = STRICT
    exposure: Any = 1
    spacing: Any = "linear"
    count: Annotated[int, Field(ge=1, le=MAX_INBETWEENS_PER_SEGMENT)] | None = None

    @field_validator("exposure", mode="plain")
    @classmethod
    def _exposure(cls, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError("must be a number of frames (1 to 12) or ones, twos, threes")
        return parse_exposure(value)

    @field_validator("spacing", mode="plain")
    @classmethod
    def _spacing(cls, value: Any) -> str | tuple[float, ...]:
        if isinstance(value, str):
            if value not in SPACINGS:
                raise ValueError(f"unknown spacing {value!r}: choose one of {', '.join(SPACINGS)} or a list of taus")
            return value
        if not isinstance(value, list):
            raise ValueError("must be a spacing name or a list of taus")
        if len(value) > MAX_INBETWEENS_PER_SEGMENT:
            raise ValueError(f"lists {len(value)} taus; at most {MAX_INBETWEENS_PER_SEGMENT} per segment")
        for i, tau in enumerate(value):
            if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau):
                raise ValueError(f"tau {i} ({tau!r}) is not a number")
        taus = tuple(float(t) for t in value)
        check_custom_taus(taus)
        return taus


def _settings_model() -> type[BaseModel]:
    """The settings object mirrors GenerationSettings field for field (one home for the names)."""
    hints = typing.get_type_hints(GenerationSettings)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(GenerationSettings):
        hint = hints[f.name]
        if hint is int:
            hint = Annotated[int, Field(ge=0, le=2**63 - 1)]
        fields[f.name] = (hint, f.default)
    return create_model("Settings", __config__=STRICT, **fields)


Settings = _settings_model()


class Job(BaseModel):
    model_config = STRICT
    keyframes: list[ImageUpload] = Field(min_length=2, max_length=protocol.MAX_KEYFRAMES)
    sketches: list[ImageUpload] = Field(default_factory=list, max_length=protocol.MAX_SKETCHES)
    timing: Timing | None = None
    inbetweens: list[InbetweenPlacement] | None = Field(default=None, max_length=protocol.MAX_INBETWEENS_PER_JOB)
    segments: list[Annotated[int, Field(ge=0, le=protocol.MAX_KEYFRAMES)]] | None = None
    settings: Settings = Field(default_factory=Settings)  # type: ignore[valid-type]
    fit: bool = False


def field_path(loc: tuple) -> str:
    """pydantic's ('keyframes', 1, 'png') as 'keyframes[1].png'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    return message[:1].lower() + message[1:]


def validate_job(body: bytes) -> Job:
    """Parse and type-check the JSON body; JobInputError naming the first bad field."""
    try:
        return Job.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise JobInputError("body", _clean(first["msg"]), status=400) from None
        field = field_path(first["loc"]) or "body"
        message = _clean(first["msg"])
        if first["type"] == "model_type" and not first["loc"]:
            message = "must be a JSON object"
        raise JobInputError(field, message) from None


def _decode_images(job: Job):
    """Base64 and PNG checks for every image, pixel budget checked from headers before decoding."""
    from ..imaging import ImageInputError, decode_png_rgba

    uploads = [(f"keyframes[{i}]", up) for i, up in enumerate(job.keyframes)]
    uploads += [(f"sketches[{i}]", up) for i, up in enumerate(job.sketches)]
    raw = []
    total = 0
    for name, up in uploads:
        field = f"{name}.png"
        try:
            data = base64.b64decode(up.png, validate=True)
        except (binascii.Error, ValueError):
            raise JobInputError(field, "not valid base64") from None
        try:
            width, height = protocol.check_png(data, field)
        except ValueError as exc:
            raise JobInputError(field, str(exc).removeprefix(f"{field}: ")) from None
        total += width * height
        if total > protocol.MAX_JOB_PIXELS:
            raise JobInputError(
                name.split("[")[0],
                f"the job's images have more than {protocol.MAX_JOB_PIXELS} pixels together; send fewer or smaller images",
                status=413,
            )
        raw.append((name, field, up.frame, data))
    images = []
    for name, field, frame, data in raw:
        try:
            image = decode_png_rgba(data, source=field, max_pixels=protocol.MAX_IMAGE_PIXELS)
        except ImageInputError as exc:
            raise JobInputError(field, str(exc).removeprefix(f"{field}: ")) from None
        images.append((name, frame, image))
    return images


def _unique_frames(uploads: list[ImageUpload], kind: str) -> None:
    seen: dict[int, int] = {}
    for i, up in enumerate(uploads):
        if up.frame in seen:
            raise JobInputError(f"{kind}[{i}].frame", f"frame {up.frame} is given twice (also {kind}[{seen[up.frame]}])")
        seen[up.frame] = i


def explicit_segments(key_frames: list[int], placements: list[InbetweenPlacement]) -> list[SegmentPlan]:
    """Segments from drawings the caller placed itself: each frame strictly between two keys,
    frames and taus increasing together within a segment, at least one drawing per segment."""
    by_segment: list[list[tuple[int, Inbetween]]] = [[] for _ in key_frames[1:]]
    seen: dict[int, int] = {}
    for i, p in enumerate(placements):
        field = f"inbetweens[{i}]"
        if p.frame in seen:
            raise JobInputError(f"{field}.frame", f"frame {p.frame} is given twice (also inbetweens[{seen[p.frame]}])")
        seen[p.frame] = i
        if not 0.0 < p.tau < 1.0:
            raise JobInputError(f"{field}.tau", f"{p.tau} is outside (0, 1): 0 and 1 are the keyframes themselves")
        segment = next((s for s, (a, b) in enumerate(zip(key_frames, key_frames[1:])) if a < p.frame < b), None)
        if segment is None:
            raise JobInputError(
                f"{field}.frame", f"frame {p.frame} is not strictly between two keyframes ({key_frames})"
            )
        by_segment[segment].append((i, Inbetween(p.frame, p.tau)))
    plans = []
    for s, drawings in enumerate(by_segment):
        if not drawings:
            raise JobInputError(
                "inbetweens", f"segment {s} (frames {key_frames[s]}-{key_frames[s + 1]}) has no in-between"
            )
        drawings.sort(key=lambda item: item[1].frame)
        for (_, a), (j, b) in zip(drawings, drawings[1:]):
            if not a.tau < b.tau:
                raise JobInputError(
                    f"inbetweens[{j}].tau",
                    f"tau {b.tau} at frame {b.frame} does not increase after tau {a.tau} at frame {a.frame}",
                )
        if len(drawings) > MAX_INBETWEENS_PER_SEGMENT:
            raise JobInputError("inbetweens", f"segment {s} has {len(drawings)} in-betweens; at most {MAX_INBETWEENS_PER_SEGMENT}")
        plans.append(SegmentPlan(s, key_frames[s], key_frames[s + 1], tuple(ib for _, ib in drawings)))
    return plans


def job_to_request(job: Job) -> GenerationRequest:
    """Decoded images + settings + timing -> the pipeline's request (planned by build_request)."""
    from ..pipeline import TimingError, build_request

    if job.timing is not None and job.inbetweens is not None:
        raise JobInputError("inbetweens", "give either timing or inbetweens, not both")
    _unique_frames(job.keyframes, "keyframes")
    _unique_frames(job.sketches, "sketches")
    try:
        settings = GenerationSettings(**job.settings.model_dump())
    except EngineError as exc:
        raise JobInputError("settings", str(exc)) from None
    images = _decode_images(job)
    keyframes = sorted(
        (Keyframe(frame, image, f"{name}.png") for name, frame, image in images if name.startswith("keyframes")),
        key=lambda k: k.frame,
    )
    sketches = {frame: image for name, frame, image in images if name.startswith("sketches")}
    timing = job.timing or Timing()
    planned = None
    if job.inbetweens is not None:  # the caller planned the drawings itself: they are not planned again
        planned = explicit_segments([k.frame for k in keyframes], job.inbetweens)
    try:
        request = build_request(
            keyframes,
            sketches=sketches,
            exposure=timing.exposure,
            spacing=timing.spacing,
            count=timing.count,
            settings=settings,
            only_segments=job.segments,
            fit=job.fit,
            segments=planned,
        )
    except (TimingError, PlanningError) as exc:
        raise JobInputError("timing", str(exc)) from None
    except EngineError as exc:
        raise JobInputError("", str(exc)) from None
    wanted = [s for s in request.segments if request.only_segments is None or s.index in request.only_segments]
    drawings = sum(len(s.inbetweens) for s in wanted)
    if drawings > protocol.MAX_INBETWEENS_PER_JOB:
        raise JobInputError(
            "timing",
            f"the job asks for {drawings} in-betweens; at most {protocol.MAX_INBETWEENS_PER_JOB} per job "
            "(add keyframes or hold drawings longer)",
        )
    return request


def parse_job(body: bytes) -> GenerationRequest:
    return job_to_request(validate_job(body))
