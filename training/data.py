"""Training clips: where they come from, how one 16-frame sample is cut, and a resumable order.

Sources (`discover_clips`):
- a Parquet manifest written by the curation pipeline (one row per clip: clip_id, source,
  start_frame, end_frame (exclusive), fps, width, height, split, kept, reject_reason, caption, plus
  score columns); only rows with `kept` and `split == 'train'` are used;
- a folder of clips: video files (read with PyAV) and/or sub-folders of numbered PNGs; a caption
  may sit beside a clip as `<video>.txt` or `<png folder>/caption.txt`.

A sample (`ClipDataset[g]`) is T frames at a frame stride drawn from [stride_min, stride_max]
("dynamic frame stride"), resized to cover the model canvas and centre-cropped, in [-1, 1], with
its caption and its fs (the clip's frame rate after striding, the model's `fps` condition).
All randomness of sample g comes from its own seed (`sample_seed`), so what a sample holds does not
depend on worker processes, the number of GPUs, or where a run was resumed.

`GlobalOrder` is the sample stream: epoch e is a seeded permutation of the clips; optimizer step s
consumes stream positions [s·G, (s+1)·G) for the global batch G, split over micro-steps and ranks.
The data position of a checkpoint is therefore just the step number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v")
MANIFEST_COLUMNS = ("clip_id", "source", "start_frame", "end_frame", "fps", "split", "kept", "caption")
#: Frame rate assumed for PNG folders (no timing in the files).
PNG_FOLDER_FPS = 24.0


class DataError(ValueError):
    """Unusable training data; the message names the file, row or clip."""


@dataclass(frozen=True)
class Clip:
    clip_id: str
    source: Path
    start_frame: int
    end_frame: int  # exclusive
    fps: float
    caption: str = ""

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame


def _numbered_pngs(folder: Path) -> list[Path]:
    def number(p: Path) -> int:
        digits = re.findall(r"\d+", p.stem)
        return int(digits[-1]) if digits else -1

    return sorted((p for p in folder.iterdir() if p.suffix.lower() == ".png"), key=lambda p: (number(p), p.name))


def _video_info(path: Path) -> tuple[int, float]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 24)
            frames = stream.frames or sum(1 for _ in container.decode(stream))
    except (av.error.FFmpegError, IndexError) as exc:
        raise DataError(f"{path}: not a readable video ({exc})") from None
    return frames, fps


def _caption_beside(path: Path) -> str:
    candidate = path / "caption.txt" if path.is_dir() else path.with_suffix(".txt")
    return candidate.read_text(encoding="utf-8").strip() if candidate.is_file() else ""


def clips_from_folder(folder: Path) -> list[Clip]:
    clips = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            frames, fps = _video_info(entry)
            clips.append(Clip(entry.stem, entry, 0, frames, fps, _caption_beside(entry)))
        elif entry.is_dir():
            pngs = _numbered_pngs(entry)
            if pngs:
                clips.append(Clip(entry.name, entry, 0, len(pngs), PNG_FOLDER_FPS, _caption_beside(entry)))
    if not clips:
        raise DataError(f"{folder}: no video files ({', '.join(VIDEO_SUFFIXES)}) or folders of PNG frames found")
    return clips


def clips_from_manifest(path: Path) -> list[Clip]:
    """The manifest's `kept & split == 'train'` rows; relative sources are relative to the manifest."""
    import pandas as pd

    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet manifest ({exc})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    rows = table[table["kept"].astype(bool) & (table["split"] == "train")]
    clips = []
    for index, row in rows.iterrows():
        source = Path(str(row["source"]))
        if not source.is_absolute():
            source = path.parent / source
        start, end = int(row["start_frame"]), int(row["end_frame"])
        if end <= start:
            raise DataError(f"{path}: row {index} (clip {row['clip_id']}): end_frame {end} <= start_frame {start}")
        caption = row["caption"] if isinstance(row["caption"], str) else ""
        clips.append(Clip(str(row["clip_id"]), source, start, end, float(row["fps"]), caption))
    if not clips:
        raise DataError(f"{path}: no rows with kept=True and split='train'")
    return clips


def discover_clips(path: str | Path, min_frames: int) -> tuple[list[Clip], list[str]]:
    """Usable clips and the reasons others were skipped (too short for one sample)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"training data not found: {path}")
    clips = clips_from_manifest(path) if path.is_file() else clips_from_folder(path)
    usable = [c for c in clips if c.frames >= min_frames]
    skipped = [f"{c.clip_id}: {c.frames} frames, a sample needs {min_frames}" for c in clips if c.frames < min_frames]
    if not usable:
        raise DataError(f"{path}: no clip has the {min_frames} frames one sample needs ({len(skipped)} too short)")
    return usable, skipped


# ----------------------------------------------------------------------------------------------
# Reading and cutting frames


def read_frames(clip: Clip, indices: list[int]) -> np.ndarray:
    """Frames at `indices` (relative to the clip start) -> (n, H, W, 3) uint8 RGB."""
    absolute = [clip.start_frame + i for i in indices]
    if clip.source.is_dir():
        pngs = _numbered_pngs(clip.source)
        frames = []
        for i in absolute:
            image = cv2.imread(str(pngs[i]), cv2.IMREAD_COLOR)
            if image is None:
                raise DataError(f"{pngs[i]}: not a readable image")
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return np.stack(frames)
    return _read_video_frames(clip.source, absolute)


def _read_video_frames(path: Path, absolute: list[int]) -> np.ndarray:
    import av

    wanted = {i: None for i in absolute}
    last = max(absolute)
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(container.streams.video[0])):
            if index in wanted:
                wanted[index] = frame.to_ndarray(format="rgb24")
            if index >= last:
                break
    missing = [i for i, f in wanted.items() if f is None]
    if missing:
        raise DataError(f"{path}: frame {missing[0]} could not be decoded (the video is shorter than indexed)")
    return np.stack([wanted[i] for i in absolute])


def cover_and_crop(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize (n, h, w, 3) so it covers width×height, then centre-crop to exactly that."""
    h, w = frames.shape[1:3]
    scale = max(width / w, height / h)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    out = []
    for frame in frames:
        resized = cv2.resize(frame, size, interpolation=interpolation)
        top, left = (size[1] - height) // 2, (size[0] - width) // 2
        out.append(resized[top : top + height, left : left + width])
    return np.stack(out)


def sample_seed(seed: int, position: int) -> int:
    """The seed of stream position `position` (independent of ranks, workers and resumption)."""
    return int(np.random.SeedSequence([seed, position]).generate_state(1, np.uint64)[0] >> 1)


@dataclass(frozen=True)
class SampleSpec:
    frames: int
    width: int
    height: int
    stride_min: int = 1
    stride_max: int = 1


class ClipDataset(Dataset):
    """Stream position g -> one training sample (see the module docstring)."""

    def __init__(self, clips: list[Clip], spec: SampleSpec, seed: int, extras: Callable | None = None) -> None:
        """`extras(frames uint8 (T, H, W, 3), seed)` adds job-specific tensors (the sketch hints)."""
        if spec.stride_min < 1 or spec.stride_max < spec.stride_min:
            raise ValueError(f"frame stride range [{spec.stride_min}, {spec.stride_max}] is invalid")
        self.clips = clips
        self.spec = spec
        self.seed = seed
        self.extras = extras

    def clip_at(self, position: int) -> Clip:
        n = len(self.clips)
        epoch, offset = divmod(position, n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        return self.clips[int(order[offset])]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, position: int) -> dict:
        spec = self.spec
        clip = self.clip_at(position)
        seed = sample_seed(self.seed, position)
        rng = np.random.default_rng(seed)
        longest = (clip.frames - 1) // max(spec.frames - 1, 1)
        high = max(1, min(spec.stride_max, longest))  # the clip may be too short for the widest strides
        stride = int(rng.integers(min(spec.stride_min, high), high + 1))
        span = (spec.frames - 1) * stride + 1
        start = int(rng.integers(0, clip.frames - span + 1))
        indices = [start + k * stride for k in range(spec.frames)]
        frames = cover_and_crop(read_frames(clip, indices), spec.width, spec.height)
        video = torch.from_numpy(frames).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)
        sample = {
            "video": video,  # (3, T, H, W) in [-1, 1]
            "caption": clip.caption,
            "fs": max(1, round(clip.fps / stride)),
            "seed": seed,
            "position": position,
        }
        if self.extras is not None:
            sample.update(self.extras(frames, seed))
        return sample


def collate(samples: list[dict]) -> dict:
    out = {
        "caption": [s["caption"] for s in samples],
        "fs": torch.tensor([s["fs"] for s in samples], dtype=torch.long),
        "seed": [s["seed"] for s in samples],
        "position": [s["position"] for s in samples],
    }
    for key, value in samples[0].items():
        if isinstance(value, torch.Tensor):
            out[key] = torch.stack([s[key] for s in samples])
    return out


@dataclass(frozen=True)
class GlobalOrder:
    """Which stream positions each rank reads at each micro-step (see the module docstring)."""

    micro_batch: int
    accumulation: int
    world_size: int
    rank: int

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.accumulation * self.world_size

    def positions(self, step: int, micro: int) -> list[int]:
        base = step * self.global_batch + (micro * self.world_size + self.rank) * self.micro_batch
        return list(range(base, base + self.micro_batch))

    def batches(self, start_step: int) -> Iterator[list[int]]:
        """Batch samplers for a DataLoader: micro-batches from `start_step` on, forever."""
        step = start_step
        while True:
            for micro in range(self.accumulation):
                yield self.positions(step, micro)
            step += 1
