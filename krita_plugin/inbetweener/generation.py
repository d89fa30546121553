"""From a Krita document to a new in-betweens layer, in three steps that respect Krita's threads.

1. `prepare_take` (Krita's main thread): check the document, scan the keys layer, plan the picked
   segments, read the keys' and sketches' pixels layer by layer.
2. `run_take` (any thread): encode PNGs, send one engine job per run of neighbouring segments,
   follow progress, download each drawing once and write the frame files.
3. `land_take` (main thread): import the files as a new layer (one undo step) and record the take.

The docker runs step 2 in a worker thread; scripts and tests can call `generate` for all three.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import document, pixels, segments, takes
from ._shared import client as engine_client
from ._shared import protocol, vocabulary

ProgressFn = Callable[[float, str], None]
BACKENDS = vocabulary.BACKENDS


class Cancelled(Exception):
    """The animator cancelled the generation."""


@dataclass(frozen=True)
class DrawSettings:
    """The engine settings the plugin exposes; the names are GenerationSettings fields."""

    backend: str = "auto"
    motion: int = 10  # the model's frame-stride conditioning ("fs"), not a frame rate
    seed: int = 123
    steps: int = 50
    sketch_strength: float = 0.6
    runtime: str = "auto"  # what runs ToonCrafter: torch | onnx | auto
    restore_detail: str = "auto"  # full-resolution detail from the keys
    keep_palette: str = "auto"  # snap flat colours to the keys' palette

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        for name, allowed in (("runtime", vocabulary.RUNTIMES), ("restore_detail", vocabulary.AUTO_ON_OFF),
                              ("keep_palette", vocabulary.AUTO_ON_OFF)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not 1 <= self.motion <= 100:
            raise ValueError(f"motion must be between 1 and 100, got {self.motion}")
        if not 1 <= self.steps <= 1000:
            raise ValueError(f"steps must be between 1 and 1000, got {self.steps}")
        if self.sketch_strength < 0:
            raise ValueError(f"sketch strength must be >= 0, got {self.sketch_strength}")

    @classmethod
    def from_json(cls, data: dict) -> "DrawSettings":
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class TakeOptions:
    include_keys: bool = True  # copy the keys into the take so it plays on its own
    keep_frames: bool = False  # keep the PNG frames in a folder next to the .kra


@dataclass
class TakeRequest:
    """Everything read from the document for one take; plain data, safe to hand to a worker thread."""

    key_layer: str
    key_layer_uid: str
    sketch_layer: str | None
    sketch_layer_uid: str | None
    width: int
    height: int
    segments: list[segments.Segment]
    timing: segments.Timing
    settings: DrawSettings
    options: TakeOptions
    keys: dict[int, bytes]  # frame -> BGRA pixels
    sketches: dict[int, bytes]  # frame -> BGRA pixels
    frames_folder: str | None  # where frames are kept (keep_frames), else a temporary folder

    @property
    def spans(self) -> list[tuple[int, int]]:
        return [s.span for s in self.segments]

    @property
    def name(self) -> str:
        return takes.layer_name(self.spans, self.settings.seed)


@dataclass
class TakeFrames:
    """The engine's answer, written to disk and laid out for importAnimation."""

    folder: str
    temporary: bool
    plan: takes.ImportPlan
    files: list[str]
    frames: list[dict]
    provenance: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---- 1. main thread: read the document ----------------------------------------------------------


def scan_layers(doc, key_layer, sketch_layer=None) -> tuple[document.KeyScan, list[int]]:
    """The keys layer's keys in the playback range, and the sketch layer's drawn frames between them."""
    document.check_document(doc)
    found = document.scan_keys(doc, key_layer)
    document.check_keys(found)
    keys = found.keys
    sketches = document.sketch_frames(doc, sketch_layer, list(zip(keys, keys[1:]))) if sketch_layer is not None else []
    return found, sketches


def plan(found: document.KeyScan, sketches: list[int], timing: segments.Timing) -> list[segments.Segment]:
    """The segments between the scanned keys as `timing` plans them."""
    return segments.plan_segments(found.keys, found.blanks, timing, sketches)


def prepare_take(
    doc,
    key_layer,
    picked: list[tuple[int, int]] | None,
    timing: segments.Timing,
    settings: DrawSettings,
    options: TakeOptions = TakeOptions(),
    sketch_layer=None,
) -> TakeRequest:
    """Check and read everything one take needs. `picked` lists segments as (start, end) key frames;
    None means every segment that can be generated."""
    document.check_document(doc)
    if key_layer is None:
        raise document.DocumentError("Pick the layer that holds the keyframes")
    if sketch_layer is not None and document.node_uid(sketch_layer) == document.node_uid(key_layer):
        raise document.DocumentError("The sketch layer must be another layer than the keys layer")
    found, sketches = scan_layers(doc, key_layer, sketch_layer)
    planned = plan(found, sketches, timing)
    by_span = {s.span: s for s in planned}
    if picked is None:
        chosen = [s for s in planned if s.plan is not None]
        if not chosen:
            raise document.DocumentError("No segment can be generated: " + "; ".join(s.describe() for s in planned))
    else:
        if not picked:
            raise document.DocumentError("Pick at least one segment to generate")
        chosen = []
        for span in picked:
            seg = by_span.get(tuple(span))
            if seg is None:
                raise document.DocumentError(
                    f"The keys changed: f{span[0]} → f{span[1]} is no longer a segment of '{key_layer.name()}'; refresh the list"
                )
            if seg.plan is None:
                raise document.DocumentError(seg.describe())
            chosen.append(seg)
    frames_folder = None
    if options.keep_frames:
        path = doc.fileName()
        if not path:
            raise document.DocumentError(
                "Save the document first: the generated frames are kept in a folder next to it "
                "(or untick 'Keep the PNG frames')"
            )
        frames_folder = str(frames_folder_for(path, takes.layer_name([s.span for s in chosen], settings.seed)))
    key_frames = sorted({f for s in chosen for f in s.span})
    sketch_frames = sorted({f for s in chosen for f in s.sketches})
    return TakeRequest(
        key_layer=key_layer.name(),
        key_layer_uid=document.node_uid(key_layer),
        sketch_layer=None if sketch_layer is None else sketch_layer.name(),
        sketch_layer_uid=None if sketch_layer is None else document.node_uid(sketch_layer),
        width=doc.width(),
        height=doc.height(),
        segments=sorted(chosen, key=lambda s: s.start),
        timing=timing,
        settings=settings,
        options=options,
        keys={f: document.read_frame(doc, key_layer, f) for f in key_frames},
        sketches={f: document.read_frame(doc, sketch_layer, f) for f in sketch_frames},
        frames_folder=frames_folder,
    )


def frames_folder_for(document_path: str, take_name: str) -> Path:
    """'<folder of the .kra>/<name>_inbetweens/<take>_<time>': frames kept next to the document."""
    doc_path = Path(document_path)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", take_name.replace("–", "-")).strip("_")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return doc_path.parent / f"{doc_path.stem}_inbetweens" / f"{safe}_{stamp}"


# ---- 2. any thread: talk to the engine ----------------------------------------------------------


def build_jobs(request: TakeRequest) -> list[dict]:
    """One engine job per run of neighbouring segments."""
    settings = asdict(request.settings)
    jobs = []
    encoded: dict[tuple[int, int], bytes] = {}

    def png(frame: int, store: dict[int, bytes]) -> bytes:
        """Encode each picture once."""
        if (id(store), frame) not in encoded:
            encoded[id(store), frame] = pixels.bgra_png(store[frame], request.width, request.height)
        return encoded[id(store), frame]

    for run in segments.runs(request.segments):
        keys = [run[0].start] + [s.end for s in run]
        sketches = [f for s in run for f in s.sketches]
        jobs.append(
            protocol.build_job(
                keyframes={f: png(f, request.keys) for f in keys},
                sketches={f: png(f, request.sketches) for f in sketches},
                exposure=request.timing.exposure,
                spacing=request.timing.spacing,
                count=request.timing.count,
                settings=settings,
            )
        )
    return jobs


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def run_take(request: TakeRequest, client, progress: ProgressFn, cancel: threading.Event) -> TakeFrames:
    """Generate every run of the take on the engine and write the frame files."""
    jobs = build_jobs(request)
    n = len(jobs)
    statuses: list[tuple[str, dict]] = []
    for i, job in enumerate(jobs):
        if cancel.is_set():
            raise Cancelled("generation cancelled")
        progress(i / n, f"sending segments {_run_label(request, i)} to the engine")
        job_id = client.submit(job)
        cancelled_sent = False

        def on_event(event: dict, i=i, job_id=job_id) -> None:
            nonlocal cancelled_sent
            if cancel.is_set() and not cancelled_sent:
                cancelled_sent = True
                try:
                    client.cancel(job_id)
                except engine_client.ClientError:
                    pass  # the job may have ended meanwhile; wait() reports how it ended
            stage = event.get("stage") or event.get("state") or ""
            message = event.get("message") or stage
            progress((i + float(event.get("progress") or 0.0)) / n, f"{_run_label(request, i)}: {message}")

        try:
            status = client.wait(job_id, on_progress=on_event)
        except engine_client.JobCancelled:
            raise Cancelled("generation cancelled") from None
        statuses.append((job_id, status))
    if cancel.is_set():
        raise Cancelled("generation cancelled")

    progress(1.0, "downloading the in-betweens")
    temporary = request.frames_folder is None
    folder = Path(tempfile.mkdtemp(prefix="inbetweener-")) if temporary else Path(request.frames_folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        frames = [f for _, status in statuses for f in status.get("frames", [])]
        plan = takes.plan_import(takes.shown_drawings(frames, request.options.include_keys))
        owner = {int(f["frame"]): job_id for job_id, status in statuses for f in status.get("frames", [])}
        files: dict[int | None, str] = {}
        for source in plan.sources:
            if source in files:
                continue
            if cancel.is_set():
                raise Cancelled("generation cancelled")
            if source is None:
                path, data = folder / "empty.png", pixels.transparent_png(request.width, request.height)
            else:
                path, data = folder / f"frame_{source:05d}.png", client.frame_png(owner[source], source)
            _write_atomic(path, data)
            files[source] = str(path)
    except BaseException:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return TakeFrames(
        folder=str(folder),
        temporary=temporary,
        plan=plan,
        files=[files[s] for s in plan.sources],
        frames=frames,
        provenance=[status.get("provenance", {}) for _, status in statuses],
        warnings=[w for _, status in statuses for w in status.get("warnings", [])],
    )


def _run_label(request: TakeRequest, index: int) -> str:
    run = segments.runs(request.segments)[index]
    return f"f{run[0].start}–f{run[-1].end}"


# ---- 3. main thread: land the take --------------------------------------------------------------


def land_take(doc, request: TakeRequest, result: TakeFrames, guard: takes.ImportGuard | None = None):
    """Import the frames as a new layer above everything (one undo step) and record the take.
    Inside Krita pass guard=import_pacing.paced_import (see there why)."""
    try:
        name = takes.unique_layer_name(request.name, takes.layer_names(doc))
        layer = takes.import_take(doc, result.files, result.plan, name, guard)
    finally:
        if result.temporary:
            shutil.rmtree(result.folder, ignore_errors=True)
    takes.record_take(doc, take_record(request, result, document.node_uid(layer), layer.name()))
    return layer


def take_record(request: TakeRequest, result: TakeFrames, layer_uid: str, layer_name: str) -> dict:
    """What is stored in the document so the take can be regenerated."""
    return {
        "layer_uid": layer_uid,
        "layer_name": layer_name,
        "key_layer": request.key_layer,
        "key_layer_uid": request.key_layer_uid,
        "sketch_layer": request.sketch_layer,
        "sketch_layer_uid": request.sketch_layer_uid,
        "segments": [list(span) for span in request.spans],
        "timing": request.timing.to_json(),
        "settings": asdict(request.settings),
        "options": asdict(request.options),
        "keyframes": sorted(result.plan.changes()),
        "frames_folder": None if result.temporary else result.folder,
        "provenance": result.provenance,
    }


def generate(doc, key_layer, client, picked=None, timing: segments.Timing | None = None, settings=DrawSettings(),
             options=TakeOptions(), sketch_layer=None, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None, guard: takes.ImportGuard | None = None):
    """All three steps in the calling thread (scripts, tests); the new layer."""
    timing = timing if timing is not None else segments.Timing()
    request = prepare_take(doc, key_layer, picked, timing, settings, options, sketch_layer)
    result = run_take(request, client, progress or (lambda fraction, message: None), cancel or threading.Event())
    return land_take(doc, request, result, guard)
