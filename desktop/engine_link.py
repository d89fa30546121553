"""The app's line to the engine: the stdlib client, run off the UI thread.

Connecting (which may start `inbetween serve` as our child) and generating both happen in QThreads;
results come back as Qt signals, so the canvas and timeline stay live while the engine works.
A run is one job per run of adjacent selected segments, each drawing placed explicitly
(frame, tau) from the project's own planning, so per-segment timing needs no second planner.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from qtpy import QtCore

from engine.core import client as engine_client
from engine.core.protocol import build_job
from engine.imaging import decode_png_rgba, encode_png_rgba

from .errors import plain_message
from .project import Drawing, InbetweenCell, Project, SegmentInfo


@dataclass
class JobSpec:
    """One engine job: adjacent segments, their keys, sketches and planned drawings (PNG bytes)."""

    segments: list[tuple[int, int]]
    keyframes: dict[int, bytes]
    sketches: dict[int, bytes]
    inbetweens: list[tuple[int, float]]
    settings: dict

    def job(self) -> dict:
        return build_job(self.keyframes, self.sketches, inbetweens=self.inbetweens, settings=self.settings)


@dataclass
class SegmentResult:
    segment: tuple[int, int]
    cells: dict[int, InbetweenCell] = field(default_factory=dict)


def runs_of(segments: list[SegmentInfo]) -> list[list[SegmentInfo]]:
    """Split segments into runs that share keys (seg.end == next.start)."""
    runs: list[list[SegmentInfo]] = []
    for seg in sorted(segments, key=lambda s: s.start):
        if runs and runs[-1][-1].end == seg.start:
            runs[-1].append(seg)
        else:
            runs.append([seg])
    return runs


def plan_jobs(project: Project, starts: list[int], settings: dict, sketches: bool = True) -> list[JobSpec]:
    """Jobs for the segments starting at `starts`, with the keys (and sketches) as PNG bytes.

    `sketches=False` leaves the sketches out: only the generative backend reads them, and the
    engine refuses them for RIFE rather than silently ignoring the artist's guidance.
    """
    wanted = [seg for seg in project.segments() if seg.start in set(starts)]
    bad = [seg for seg in wanted if seg.plan is None]
    if bad:
        seg = bad[0]
        raise ValueError(f"segment {seg.start}–{seg.end} cannot be timed: {seg.error}")
    specs = []
    for run in runs_of(wanted):
        key_frames = [run[0].start] + [seg.end for seg in run]
        lo, hi = key_frames[0], key_frames[-1]
        specs.append(
            JobSpec(
                segments=[(seg.start, seg.end) for seg in run],
                # As the artist sees them: a key's clean-up corrections are part of the key.
                keyframes={f: encode_png_rgba(project.image_of(f)) for f in key_frames},
                sketches={
                    f: encode_png_rgba(c.drawing.image)
                    for f, c in project.sketches.items()
                    if sketches and lo < f < hi and f not in project.keys
                },
                inbetweens=[(ib.frame, ib.tau) for seg in run for ib in seg.plan.inbetweens],
                settings=dict(settings),
            )
        )
    return specs


class ConnectWorker(QtCore.QThread):
    connected = QtCore.Signal(object, dict)  # client, health
    failed = QtCore.Signal(str)

    def __init__(self, options: dict, parent=None) -> None:
        super().__init__(parent)
        self.options = options

    def run(self) -> None:
        try:
            client = engine_client.connect_or_start(**self.options)
            health = client.health()
        except Exception as exc:  # every failure is shown to the artist in words, never a crash
            self.failed.emit(plain_message(exc))
            return
        self.connected.emit(client, health)


class GenerateWorker(QtCore.QThread):
    """Runs the jobs one after another; emits progress, each segment's results, then the end."""

    progress = QtCore.Signal(str, float, str)
    segmentReady = QtCore.Signal(object)  # SegmentResult
    failed = QtCore.Signal(str)
    done = QtCore.Signal(str)  # "done" | "cancelled"

    def __init__(self, client, specs: list[JobSpec], parent=None) -> None:
        super().__init__(parent)
        self.client = client
        self.specs = specs
        self._cancel = threading.Event()
        self._job_id: str | None = None
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Ask the engine to stop; safe from the UI thread (the HTTP call runs in its own thread)."""
        self._cancel.set()
        with self._lock:
            job_id = self._job_id
        if job_id is not None:
            threading.Thread(target=self._cancel_job, args=(job_id,), daemon=True).start()

    def _cancel_job(self, job_id: str) -> None:
        try:
            self.client.cancel(job_id)
        except engine_client.ClientError:
            pass  # the job ended meanwhile, or the engine is gone: either way nothing runs

    def run(self) -> None:
        total = len(self.specs)
        try:
            for index, spec in enumerate(self.specs):
                if self._cancel.is_set():
                    break
                job_id = self.client.submit(spec.job())
                with self._lock:
                    self._job_id = job_id
                if self._cancel.is_set():
                    self._cancel_job(job_id)

                def on_event(event: dict, index=index) -> None:
                    fraction = (index + float(event.get("progress") or 0.0)) / total
                    stage = event.get("stage") or event.get("state") or ""
                    prefix = f"job {index + 1}/{total} · " if total > 1 else ""
                    self.progress.emit(prefix + stage, fraction, event.get("message") or "")

                status = self.client.wait(job_id, on_progress=on_event)
                self._land(job_id, spec, status)
        except engine_client.JobCancelled:
            self.done.emit("cancelled")
            return
        except Exception as exc:
            if self._cancel.is_set():
                self.done.emit("cancelled")
            else:
                self.failed.emit(plain_message(exc))
            return
        self.done.emit("cancelled" if self._cancel.is_set() else "done")

    def _land(self, job_id: str, spec: JobSpec, status: dict) -> None:
        provenance = dict(status.get("provenance") or {})
        for start, end in spec.segments:
            result = SegmentResult((start, end))
            for info in status.get("frames", []):
                frame = info["frame"]
                if info["kind"] != "inbetween" or not start < frame < end:
                    continue
                png = self.client.frame_png(job_id, frame)
                image = decode_png_rgba(png, source=f"engine frame {frame}")
                result.cells[frame] = InbetweenCell(Drawing(image), float(info["tau"]), (start, end), "generated",
                                                    provenance)
            self.segmentReady.emit(result)
