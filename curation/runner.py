"""Running the curation: videos -> scored clip rows -> manifest, split and summary.

The unit of work and of resuming is one source video: its rows are written (atomically) to
`<dataset>/.work/<key>.parquet` as soon as it is done, tagged with the settings' fingerprint and
the file's size and modification time. A re-run reuses every video whose tag still matches and
processes the rest, locally (worker processes) or on Ray (curation/ray_runner.py); the manifest
and summary are then rebuilt from all the work files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.core.files import atomic_write_bytes

from .config import CurationConfig
from .stages import CLIP_COLUMNS, ERROR_COLUMN, FRAMES_COLUMN, SCORE_COLUMNS, SplitShots, plan_stages

MANIFEST_NAME = "manifest.parquet"
SUMMARY_NAME = "summary.json"
WORK_DIR = ".work"
MANIFEST_COLUMNS = (*CLIP_COLUMNS, *SCORE_COLUMNS)
#: Reject reasons in the order the stages give them (the summary's per-stage counts).
STAGE_REASONS = (
    ("decode", "unreadable"),
    ("shot split", "too_short"),
    ("static filter", "static"),
    ("text filter", "text"),
    ("aesthetic filter", "low_aesthetic"),
    ("caption alignment", "caption_mismatch"),
)


def work_key(source: str) -> str:
    return hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:16]


def source_stamp(source: str) -> str:
    try:
        stat = os.stat(source)
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


class WorkStore:
    """The finished videos' rows under <dataset>/.work, keyed by source path."""

    def __init__(self, dataset: Path, config: CurationConfig) -> None:
        self.folder = dataset / WORK_DIR
        self.fingerprint = config.fingerprint()

    def path(self, source: str) -> Path:
        return self.folder / f"{work_key(source)}.parquet"

    def load(self, source: str) -> pd.DataFrame | None:
        path = self.path(source)
        if not path.exists():
            return None
        try:
            rows = pd.read_parquet(path)
        except Exception:  # a damaged work file is redone, never trusted
            return None
        if rows.empty or (rows["_fingerprint"] != self.fingerprint).any() or (rows["_stamp"] != source_stamp(source)).any():
            return None
        return rows

    def save(self, source: str, rows: pd.DataFrame) -> None:
        rows = rows.drop(columns=[FRAMES_COLUMN], errors="ignore").assign(_fingerprint=self.fingerprint, _stamp=source_stamp(source))
        atomic_write_bytes(self.path(source), parquet_bytes(rows))


def build_stages(config: CurationConfig, names: list[str]) -> list:
    from . import stages

    return [getattr(stages, name)(config) for name in names]


def run_video(source: str, config: CurationConfig, stage_objects: list) -> pd.DataFrame:
    rows = SplitShots(config)(pd.DataFrame({"source": [source]}))
    for stage in stage_objects:
        rows = stage(rows)
    return rows.drop(columns=[FRAMES_COLUMN])


_worker: tuple[CurationConfig, list] | None = None


def _init_worker(config: CurationConfig, names: list[str]) -> None:
    global _worker
    import torch

    torch.set_num_threads(1)
    _worker = (config, build_stages(config, names))


def _run_in_worker(source: str) -> tuple[str, pd.DataFrame]:
    return source, run_video(source, *_worker)


def run_local(sources: list[str], config: CurationConfig, names: list[str], workers: int,
              done: Callable[[str, pd.DataFrame], None]) -> None:
    """Each video through every stage, in `workers` processes (each loads the models once)."""
    if workers <= 1 or len(sources) <= 1:
        stage_objects = build_stages(config, names)
        for source in sources:
            done(source, run_video(source, config, stage_objects))
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(config, names)) as pool:
        futures = [pool.submit(_run_in_worker, source) for source in sources]
        for future in as_completed(futures):
            done(*future.result())


def assemble(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """(manifest in its column order, sorted by source and first frame; unreadable videos)."""
    errors = rows[rows[ERROR_COLUMN].astype(str) != ""]
    unreadable = [{"source": s, "error": e} for s, e in zip(errors["source"], errors[ERROR_COLUMN])]
    manifest = rows[rows[ERROR_COLUMN].astype(str) == ""]
    manifest = manifest.sort_values(["source", "start_frame"]).reset_index(drop=True)
    manifest = manifest[list(MANIFEST_COLUMNS)].copy()
    for column, kind in (("start_frame", "int64"), ("end_frame", "int64"), ("width", "int64"), ("height", "int64"),
                         ("shot_index", "int64"), ("fps", "float64"), ("kept", "bool")):
        manifest[column] = manifest[column].astype(kind)
    for column in ("motion", "text_area", "aesthetic", "clip_first", "clip_middle", "clip_last", "clip_text_video"):
        manifest[column] = pd.to_numeric(manifest[column], errors="coerce").astype("float64")  # all-empty arrives as None from Ray
    for column in ("clip_id", "source", "split", "reject_reason", "caption", "text_detector"):
        manifest[column] = manifest[column].fillna("").astype(str)
    return manifest, unreadable


def summarise(manifest: pd.DataFrame, unreadable: list[dict], videos: int, skipped: dict[str, str], reused: int) -> dict:
    seconds = (manifest["end_frame"] - manifest["start_frame"]) / manifest["fps"].where(manifest["fps"] > 0, 1.0)
    kept = manifest["kept"]
    remaining = len(manifest)
    stages = []
    for stage, reason in STAGE_REASONS[1:]:
        rejected = int((manifest["reject_reason"] == reason).sum())
        stages.append({"stage": stage, "clips_in": remaining, "rejected": rejected, "reason": reason})
        remaining -= rejected
    return {
        "videos": videos,
        "videos_unreadable": len(unreadable),
        "videos_reused_from_previous_run": reused,
        "unreadable": unreadable,
        "clips": len(manifest),
        "clips_kept": int(kept.sum()),
        "clips_kept_train": int((kept & (manifest["split"] == "train")).sum()),
        "clips_kept_eval": int((kept & (manifest["split"] == "eval")).sum()),
        "hours_total": round(float(seconds.sum()) / 3600, 4),
        "hours_kept": round(float(seconds[kept].sum()) / 3600, 4),
        "stages": stages,
        "skipped_stages": skipped,
        "text_detector": sorted(set(manifest.loc[manifest["text_detector"] != "", "text_detector"])),
    }


def format_summary(summary: dict) -> str:
    lines = [
        f"videos: {summary['videos']} ({summary['videos_unreadable']} unreadable, "
        f"{summary['videos_reused_from_previous_run']} reused from the previous run)",
        f"clips: {summary['clips']}, kept {summary['clips_kept']} (train {summary['clips_kept_train']}, "
        f"eval {summary['clips_kept_eval']}); hours kept {summary['hours_kept']:.4f} of {summary['hours_total']:.4f}",
    ]
    for stage in summary["stages"]:
        lines.append(f"  {stage['stage']:<18} in {stage['clips_in']:>6}  rejected {stage['rejected']:>6} ({stage['reason']})")
    for name, reason in summary["skipped_stages"].items():
        lines.append(f"  skipped {name}: {reason}")
    for item in summary["unreadable"]:
        lines.append(f"  unreadable: {item['error']}")
    return "\n".join(lines)


def curate(sources: list[str], dataset: str | Path, config: CurationConfig, *, workers: int = 1,
           ray_address: str | None = None, progress: bool = True) -> dict:
    """Curate `sources` into `dataset` (manifest.parquet, summary.json); returns the summary."""
    from tqdm import tqdm

    dataset = Path(dataset)
    dataset.mkdir(parents=True, exist_ok=True)
    store = WorkStore(dataset, config)
    stage_classes, skipped = plan_stages(config)
    names = [cls.__name__ for cls in stage_classes]
    results: dict[str, pd.DataFrame] = {}
    pending = []
    for source in sources:
        previous = store.load(source)
        if previous is None:
            pending.append(source)
        else:
            results[source] = previous
    reused = len(results)
    bar = tqdm(total=len(sources), initial=reused, unit="video", desc="curating", disable=not progress)

    def done(source: str, rows: pd.DataFrame) -> None:
        store.save(source, rows)
        results[source] = rows
        bar.update(1)

    if pending and ray_address:
        from .ray_runner import run_ray

        run_ray(pending, config, stage_classes, ray_address, done)
    elif pending:
        run_local(pending, config, names, workers, done)
    bar.close()
    rows = pd.concat([results[s] for s in sources if s in results], ignore_index=True)
    manifest, unreadable = assemble(rows)
    summary = summarise(manifest, unreadable, len(sources), skipped, reused)
    summary["config"] = asdict(config)
    atomic_write_bytes(dataset / MANIFEST_NAME, parquet_bytes(manifest))
    atomic_write_bytes(dataset / SUMMARY_NAME, json.dumps(summary, indent=1).encode())
    return summary
