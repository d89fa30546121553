"""The job queue: one worker thread runs jobs one at a time (one model on one GPU), the rest wait FIFO.

A job's life is queued -> running -> done | failed | cancelled. Every change is appended to the
job's event log, which the server streams as server-sent events; waiting asyncio readers are woken
thread-safely. A job that raises anything fails alone: the worker records the message and moves on.
Finished jobs are kept for a bounded time and count, then evicted with their frames.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..api import Cancelled, CancelToken, EngineError, GenerationRequest, GenerationResult, ProgressFn
from ..core import protocol

log = logging.getLogger("engine.server")

GenerateFn = Callable[[GenerationRequest, ProgressFn, CancelToken], GenerationResult]

#: Events kept per job for late SSE readers; older progress events are dropped first.
MAX_EVENTS_PER_JOB = 2000


def jsonable(value: Any) -> Any:
    """Provenance and warnings as plain JSON (numpy scalars, tuples, paths become JSON values)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if hasattr(value, "item") and callable(value.item):
        try:
            return jsonable(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


@dataclass
class Job:
    id: str
    request: GenerationRequest | None
    created: float = field(default_factory=time.monotonic)
    state: str = "queued"
    stage: str = ""
    progress: float = 0.0
    message: str = "waiting for the engine"
    error: str | None = None
    finished: float | None = None
    cancel: CancelToken = field(default_factory=CancelToken)
    frames: list[dict] = field(default_factory=list)
    #: PNG bytes per timeline frame (holds share their drawing's bytes).
    pngs: dict[int, bytes] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    events: collections.deque = field(default_factory=lambda: collections.deque(maxlen=MAX_EVENTS_PER_JOB))
    event_count: int = 0
    listeners: set = field(default_factory=set)

    @property
    def terminal(self) -> bool:
        return self.state in protocol.TERMINAL_STATES


class JobQueue:
    """Thread-safe job store + FIFO queue + the single worker thread."""

    def __init__(
        self,
        generate: GenerateFn,
        *,
        keep_seconds: float = 30 * 60,
        keep_count: int = 32,
        max_queued: int = protocol.MAX_QUEUED_JOBS,
    ) -> None:
        self._generate = generate
        self.keep_seconds = keep_seconds
        self.keep_count = keep_count
        self.max_queued = max_queued
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._jobs: dict[str, Job] = {}
        self._queue: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._stopping = False
        self._ids = itertools.count(1)
        self._worker = threading.Thread(target=self._work, name="inbetween-job-worker", daemon=True)
        self._worker.start()

    # -- public API (any thread) ------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> Job:
        with self._lock:
            self._evict()
            if self._stopping:
                raise QueueFull("the engine server is stopping; start it again and resubmit", status=503)
            if len(self._queue) >= self.max_queued:
                raise QueueFull(f"{len(self._queue)} jobs are already waiting; try again when one has finished")
            job = Job(id=f"{next(self._ids)}-{secrets.token_hex(6)}", request=request)
            self._jobs[job.id] = job
            self._queue.append(job)
            self._record(job, "state")
            self._wake.notify_all()
            return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            self._evict()
            try:
                return self._jobs[job_id]
            except KeyError:
                raise UnknownJob(job_id) from None

    def cancel(self, job_id: str) -> dict:
        """Queued: cancelled at once. Running: stops at its next cancel check. Finished: forgotten."""
        with self._lock:
            job = self.get(job_id)
            if job.state == "queued":
                self._queue.remove(job)
                self._finish(job, "cancelled", message="cancelled before it started")
            elif job.state == "running":
                job.cancel.cancel()
                job.message = "cancelling"
                self._record(job, "progress")
            else:
                del self._jobs[job.id]
            return self.status(job)

    def status(self, job: Job) -> dict:
        with self._lock:
            position = None
            if job.state == "queued":
                position = next((i for i, j in enumerate(self._queue) if j is job), None)
            return {
                "id": job.id,
                "state": job.state,
                "stage": job.stage,
                "progress": job.progress,
                "message": job.message,
                "error": job.error,
                "queue_position": position,
                "frames": list(job.frames),
                "provenance": job.provenance,
                "warnings": list(job.warnings),
            }

    def events_since(self, job: Job, seen: int) -> list[tuple[int, str, dict]]:
        """Events with a sequence number above `seen` (those still kept), oldest first."""
        with self._lock:
            return [e for e in job.events if e[0] > seen]

    def subscribe(self, job: Job) -> asyncio.Event:
        """An asyncio.Event of the running loop, set whenever `job` changes."""
        event = asyncio.Event()
        with self._lock:
            job.listeners.add((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, job: Job, event: asyncio.Event) -> None:
        with self._lock:
            job.listeners = {(loop, ev) for loop, ev in job.listeners if ev is not event}

    def all_statuses(self) -> list[dict]:
        """Every job still known, oldest first, without frame lists (GET /v1/jobs)."""
        with self._lock:
            self._evict()
            return [{**self.status(j), "frames": []} for j in sorted(self._jobs.values(), key=lambda j: j.created)]

    def summary(self) -> dict:
        with self._lock:
            return {
                "running": self._running.id if self._running else None,
                "queued": len(self._queue),
                "kept": sum(1 for j in self._jobs.values() if j.terminal),
            }

    def shutdown(self) -> None:
        """Cancel everything and let the worker exit (used when the server stops)."""
        with self._lock:
            self._stopping = True
            for job in list(self._queue):
                self._finish(job, "cancelled", message="the engine server stopped")
            self._queue.clear()
            if self._running is not None:
                self._running.cancel.cancel()
            self._wake.notify_all()

    # -- worker -----------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                self._running = job
                job.state = "running"
                job.message = "starting"
                self._record(job, "state")
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running = None

    def _run(self, job: Job) -> None:
        def progress(stage: str, fraction: float, message: str) -> None:
            with self._lock:
                fraction = min(max(float(fraction), 0.0), 1.0)
                if (stage, fraction, message) == (job.stage, job.progress, job.message):
                    return
                job.stage, job.progress, job.message = stage, fraction, message
                self._record(job, "progress")

        try:
            result = self._generate(job.request, progress, job.cancel)
            job.cancel.check()
            progress("post", job.progress, "encoding frames")
            frames, pngs = _encode_frames(result, job.cancel)
        except Cancelled:
            with self._lock:
                self._finish(job, "cancelled", message="cancelled")
            return
        except EngineError as exc:
            self._fail(job, str(exc))
            return
        except BaseException as exc:  # noqa: BLE001 - a crashed job must never take the server down
            log.exception("job %s failed", job.id)
            self._fail(job, f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            job.frames, job.pngs = frames, pngs
            job.provenance = jsonable(result.provenance)
            job.warnings = [str(w) for w in result.warnings]
            job.stage, job.progress = "post", 1.0
            self._finish(job, "done", message=f"{sum(f['kind'] == 'inbetween' for f in frames)} in-betweens drawn")

    def _fail(self, job: Job, message: str) -> None:
        with self._lock:
            job.error = message or "the job failed without a message"
            self._finish(job, "failed", message=job.error)

    # -- bookkeeping (lock held) ------------------------------------------------------------------

    def _finish(self, job: Job, state: str, *, message: str) -> None:
        job.state = state
        job.message = message
        job.finished = time.monotonic()
        job.request = None  # the uploaded images are not needed any more
        self._record(job, "state")

    def _record(self, job: Job, kind: str) -> None:
        job.event_count += 1
        data = {
            "id": job.id,
            "state": job.state,
            "stage": job.stage,
            "progress": job.progress,
            "message": job.message,
            "error": job.error,
        }
        if job.terminal:
            data = self.status(job)
        job.events.append((job.event_count, kind, data))
        for loop, event in list(job.listeners):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that reader's loop has closed
                job.listeners.discard((loop, event))

    def _evict(self) -> None:
        now = time.monotonic()
        finished = sorted((j for j in self._jobs.values() if j.terminal), key=lambda j: j.finished or 0.0)
        expired = [j for j in finished if now - (j.finished or now) > self.keep_seconds]
        surplus = finished[: max(0, len(finished) - self.keep_count)]
        for job in {j.id: j for j in expired + surplus}.values():
            del self._jobs[job.id]


def _encode_frames(result: GenerationResult, cancel: CancelToken) -> tuple[list[dict], dict[int, bytes]]:
    """PNG-encode each drawing once; holds point at their drawing's bytes."""
    from ..imaging import encode_png_rgba

    frames: list[dict] = []
    by_drawing: dict[int, bytes] = {}
    pngs: dict[int, bytes] = {}
    for number in sorted(result.frames):
        fr = result.frames[number]
        if fr.drawing not in by_drawing:
            cancel.check()
            by_drawing[fr.drawing] = encode_png_rgba(fr.image)
        pngs[number] = by_drawing[fr.drawing]
        frames.append(
            {
                "frame": int(fr.frame),
                "kind": fr.kind,
                "drawing": int(fr.drawing),
                "segment": None if fr.segment is None else int(fr.segment),
                "tau": None if fr.tau is None else float(fr.tau),
            }
        )
    return frames, pngs


class QueueFull(Exception):
    """The job was not queued: too many are waiting (429) or the server is stopping (503)."""

    def __init__(self, message: str, status: int = 429) -> None:
        super().__init__(message)
        self.status = status


class UnknownJob(KeyError):
    pass
