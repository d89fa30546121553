"""Run a shot batch segment by segment: resumable, and never overwriting a finished or foreign frame.

A batch is cut into segment jobs (one segment of one shot each) in a fixed order, and the jobs into
groups of a fixed size; a render-farm task runs one group in one process, so the model is loaded once
for all of its segments (the backend registry keeps one instance per process). Locally every group
runs in turn.

Each segment owns the timeline frames from its first key up to (not including) its second key; the
last segment of a shot also owns the shot's last key. Its files are PNGs named like the `inbetween`
command's (`<shot>_<####>.png`, holds written out), each written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..api import Cancelled, CancelToken, EngineError, Keyframe, ProgressFn, no_progress
from ..core.files import atomic_write_bytes
from ..core.planning import SegmentPlan, frame_assignments
from ..exports import sequence_file_name
from ..imaging import encode_png_rgba, read_image
from .shots import Batch, Shot
from .sources import read_key
from .state import DONE, FAILED, WRITING, BatchState, SegmentRecord, sha256_of


@dataclass(frozen=True)
class SegmentJob:
    shot: Shot
    segment: SegmentPlan
    last: bool  # the shot's last segment also writes the shot's last key

    @property
    def label(self) -> str:
        return f"{self.shot.name} segment {self.segment.index} (frames {self.segment.start_frame}-{self.segment.end_frame})"

    def frames(self) -> list[int]:
        end = self.segment.end_frame + (1 if self.last else 0)
        return list(range(self.segment.start_frame, end))

    def files(self) -> dict[int, Path]:
        shot = self.shot
        return {f: shot.out / sequence_file_name(shot.name, shot.frame_number(f), shot.padding) for f in self.frames()}


def segment_jobs(batch: Batch) -> list[SegmentJob]:
    """Every segment of every shot, shots in file order, segments in timeline order."""
    jobs = []
    for shot in batch.shots:
        segments = shot.segments()
        jobs.extend(SegmentJob(shot, seg, seg is segments[-1]) for seg in segments)
    return jobs


def group_jobs(jobs: list[SegmentJob], group_size: int) -> list[list[SegmentJob]]:
    if group_size < 1:
        raise EngineError(f"--group-size must be at least 1, got {group_size}")
    return [jobs[i:i + group_size] for i in range(0, len(jobs), group_size)]


@dataclass
class BatchReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished in an earlier run
    failed: list[str] = field(default_factory=list)  # "label: reason"
    warnings: list[str] = field(default_factory=list)


def default_state_folder(batch: Batch) -> Path:
    return batch.path.with_name(f"{batch.path.stem}.state")


class BatchRunner:
    def __init__(self, batch: Batch, state: BatchState) -> None:
        self.batch = batch
        self.state = state
        self._keys: dict[str, list[Keyframe]] = {}

    def run(self, jobs: list[SegmentJob], progress: ProgressFn = no_progress,
            cancel: CancelToken | None = None) -> BatchReport:
        cancel = cancel or CancelToken()
        report = BatchReport()
        for number, job in enumerate(jobs):
            cancel.check()

            def job_progress(stage: str, fraction: float, message: str, number: int = number,
                             label: str = job.label) -> None:
                progress(stage, (number + fraction) / len(jobs), f"{number + 1}/{len(jobs)} {label}: {message}")

            self._run_one(job, job_progress, cancel, report)
        progress("post", 1.0, "batch finished")
        return report

    def _run_one(self, job: SegmentJob, progress: ProgressFn, cancel: CancelToken, report: BatchReport) -> None:
        shot, index = job.shot.name, job.segment.index
        record = self.state.get(shot, index)
        planned = job.files()
        if record is not None and record.status == DONE:
            missing = [p for p in planned.values() if not p.exists()]
            changed = [p for p, digest in record.files.items() if Path(p).exists() and sha256_of(Path(p)) != digest]
            if changed:
                report.warnings.append(f"{job.label}: kept {len(changed)} frame(s) changed since the batch wrote them "
                                       f"(e.g. {changed[0]})")
            if not missing:
                report.skipped.append(job.label)
                return
        ours = self._replaceable(record)
        blockers = [p for p in planned.values() if os.path.lexists(p) and str(p) not in ours]
        if blockers:
            reason = f"refusing to overwrite {blockers[0]}: it exists and was not written by this batch"
            self._fail(job, record, reason, report)
            return
        attempts = (record.attempts if record else 0) + 1
        self.state.put(SegmentRecord(shot, index, WRITING, {str(p): "" for p in planned.values()}, attempts))
        try:
            frames, backend = self._draw(job, progress, cancel)
            written = {}
            for frame, path in planned.items():
                atomic_write_bytes(path, encode_png_rgba(frames[frame]))
                written[str(path)] = sha256_of(path)
        except (Cancelled, KeyboardInterrupt):
            raise  # the record stays 'writing': a rerun may replace exactly these files
        except (EngineError, OSError) as exc:
            self._fail(job, SegmentRecord(shot, index, WRITING, {str(p): "" for p in planned.values()}, attempts),
                       str(exc), report, count_attempt=False)
            return
        self.state.put(SegmentRecord(shot, index, DONE, written, attempts, backend=backend))
        report.done.append(job.label)

    @staticmethod
    def _replaceable(record: SegmentRecord | None) -> set[str]:
        """Files a rerun may replace: those of an interrupted or failed write (ours, whatever they hold)
        and those of a finished segment that still hold exactly what the batch wrote."""
        if record is None:
            return set()
        if record.status == DONE:
            return {p for p, digest in record.files.items() if Path(p).exists() and sha256_of(Path(p)) == digest}
        return set(record.files)

    def _fail(self, job: SegmentJob, record: SegmentRecord | None, reason: str, report: BatchReport,
              count_attempt: bool = True) -> None:
        attempts = (record.attempts if record else 0) + (1 if count_attempt else 0)
        files = record.files if record is not None and record.status != DONE else {}
        self.state.put(SegmentRecord(job.shot.name, job.segment.index, FAILED, files, attempts, reason))
        report.failed.append(f"{job.label}: {reason}")

    def _keyframes(self, shot: Shot) -> list[Keyframe]:
        if shot.name not in self._keys:
            self._keys[shot.name] = [
                Keyframe(frame, read_key(path, layer), f"{path}" + (f" layer {layer}" if layer is not None else ""))
                for frame, path, layer in zip(shot.key_frames, shot.key_paths, shot.key_layers)
            ]
        return self._keys[shot.name]

    def _draw(self, job: SegmentJob, progress: ProgressFn, cancel: CancelToken) -> tuple[dict[int, np.ndarray], str]:
        from ..pipeline import build_request, generate

        shot = job.shot
        seg = job.segment
        sketches = {f: read_image(p) for f, p in shot.sketches.items() if seg.start_frame < f < seg.end_frame}
        request = build_request(self._keyframes(shot), sketches=sketches, exposure=shot.exposure, spacing=shot.spacing,
                                count=shot.count, settings=shot.settings, only_segments=[seg.index])
        result = generate(request, progress=progress, cancel=cancel)
        assignments = frame_assignments(request.segments)
        missing = [f for f in job.frames() if f not in result.frames]
        if missing or any(assignments[f].kind != result.frames[f].kind for f in job.frames()):
            raise EngineError(f"{job.label}: the engine returned no image for frame(s) {missing}")
        return {f: result.frames[f].image for f in job.frames()}, str(result.provenance.get("backend", ""))
