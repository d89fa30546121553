"""The curation stages: each a callable class turning a batch of rows (a pandas DataFrame) into a
batch of rows, with no other state than the models it loaded. The same classes run in local worker
processes (curation/runner.py) and as Ray Data `map_batches` stages (curation/ray_runner.py).

Order: SplitShots (videos -> clip rows) -> SampleFrames -> StaticFilter -> TextFilter ->
Captioner -> ClipScores (aesthetic + caption/frame alignment). A row rejected by one stage keeps its
first `reject_reason` and is passed through by the later ones (its later scores stay empty).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .config import CurationConfig
from .video import UnreadableVideo, probe, read_frames

#: Score columns, in manifest order, and what each means (README/docs use this).
SCORE_COLUMNS = {
    "shot_index": "index of the shot within its video",
    "motion": "mean optical-flow magnitude, px/frame at 256 px width",
    "text_area": "fraction of the frame inside text boxes (median of first/middle/last)",
    "text_detector": "craft or stroke (weight-free fallback)",
    "aesthetic": "LAION aesthetic score of the mean CLIP image embedding",
    "clip_first": "CLIP cosine of caption and first frame",
    "clip_middle": "CLIP cosine of caption and middle frame",
    "clip_last": "CLIP cosine of caption and last frame",
    "clip_text_video": "mean of the three",
}
CLIP_COLUMNS = ("clip_id", "source", "start_frame", "end_frame", "fps", "width", "height", "split", "kept", "reject_reason", "caption")
FRAMES_COLUMN = "_frames"  # sampled frames travelling between stages (npz bytes), dropped from the manifest
ERROR_COLUMN = "_error"  # an unreadable video: one row with the message, reported and not kept


def empty_scores() -> dict:
    return {"shot_index": -1, "motion": np.nan, "text_area": np.nan, "text_detector": "", "aesthetic": np.nan,
            "clip_first": np.nan, "clip_middle": np.nan, "clip_last": np.nan, "clip_text_video": np.nan}


def clip_id(source: str, start: int) -> str:
    """Stable id from the file name, a hash of its full path and the first frame."""
    digest = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:8]
    return f"{Path(source).stem}-{digest}-{start:07d}"


def eval_share(source: str, shot_index: int) -> float:
    """A number in [0, 1) fixed by the file name and shot: the train/eval split never depends on
    the machine, the order of work or Ray (clips of one shot never straddle the split)."""
    digest = hashlib.sha1(f"{Path(source).name}#{shot_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _kept(batch: pd.DataFrame) -> pd.Series:
    return batch["kept"].astype(bool)


def _reject(batch: pd.DataFrame, mask: pd.Series, reason: str) -> None:
    mask = mask & _kept(batch)
    batch.loc[mask, "kept"] = False
    batch.loc[mask, "reject_reason"] = reason


class SplitShots:
    """Videos -> clip rows: PySceneDetect's ContentDetector finds the cuts; shots shorter than
    `min_shot_frames` are dropped, long ones cut into clips of at most `max_clip_frames`."""

    def __init__(self, config: CurationConfig) -> None:
        self.config = config

    def shots(self, path: str) -> list[tuple[int, int]]:
        from scenedetect import ContentDetector, detect

        scenes = detect(path, ContentDetector(threshold=self.config.cut_threshold, min_scene_len=self.config.min_shot_frames),
                        backend="pyav")
        return [(start.frame_num, end.frame_num) for start, end in scenes]

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for source in batch["source"]:
            source = str(source)
            try:
                info = probe(source)
                shots = self.shots(source) or [(0, info.frames)]
            except UnreadableVideo as exc:
                rows.append({**self._row(source, 0, 0, 0.0, 0, 0, -1), "kept": False, "reject_reason": "unreadable",
                             ERROR_COLUMN: str(exc)})
                continue
            except Exception as exc:  # a decoder failing mid-file surfaces from scenedetect as anything
                rows.append({**self._row(source, 0, 0, 0.0, 0, 0, -1), "kept": False, "reject_reason": "unreadable",
                             ERROR_COLUMN: f"{source}: {type(exc).__name__}: {exc}"})
                continue
            for shot_index, (start, end) in enumerate(shots):
                end = min(end, info.frames)
                for clip_start in range(start, end, self.config.max_clip_frames):
                    clip_end = min(end, clip_start + self.config.max_clip_frames)
                    row = self._row(source, clip_start, clip_end, info.fps, info.width, info.height, shot_index)
                    if clip_end - clip_start < self.config.min_clip_frames:
                        row.update(kept=False, reject_reason="too_short")
                    rows.append(row)
        return pd.DataFrame(rows)

    def _row(self, source, start, end, fps, width, height, shot_index) -> dict:
        split = "eval" if eval_share(source, shot_index) < self.config.eval_fraction else "train"
        return {"clip_id": clip_id(source, start), "source": str(Path(source).resolve()), "start_frame": int(start),
                "end_frame": int(end), "fps": float(fps), "width": int(width), "height": int(height), "split": split,
                "kept": True, "reject_reason": "", "caption": "", **empty_scores(), "shot_index": int(shot_index),
                FRAMES_COLUMN: b"", ERROR_COLUMN: ""}


def key_frame_indices(start: int, end: int) -> list[int]:
    return [start, (start + end - 1) // 2, end - 1]


def motion_pair_starts(start: int, end: int, pairs: int) -> list[int]:
    """First frames of `pairs` evenly spread pairs of consecutive frames."""
    return sorted(set(int(i) for i in np.linspace(start, end - 2, pairs).round()))


def pack_frames(key: list[np.ndarray], pairs: list[tuple[np.ndarray, np.ndarray]]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, key=np.stack(key), pairs=np.stack([np.stack(p) for p in pairs]))
    return buffer.getvalue()


def unpack_frames(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(key frames (3, H, W, 3): first, middle, last; motion pairs (K, 2, H, W, 3))."""
    with np.load(io.BytesIO(blob)) as data:
        return data["key"], data["pairs"]


class SampleFrames:
    """Decodes the frames the filters look at, once per clip: first/middle/last and a few
    consecutive pairs for the optical flow, scaled to the analysis width."""

    def __init__(self, config: CurationConfig) -> None:
        self.config = config

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch = batch.copy()
        blobs = list(batch[FRAMES_COLUMN])
        for n, (index, row) in enumerate(batch.iterrows()):
            if not row["kept"]:
                continue
            start, end = int(row["start_frame"]), int(row["end_frame"])
            keys = key_frame_indices(start, end)
            firsts = motion_pair_starts(start, end, self.config.motion_pairs)
            width = min(self.config.analysis_width, int(row["width"]))
            try:
                frames = read_frames(row["source"], keys + firsts + [i + 1 for i in firsts], width=width)
            except UnreadableVideo as exc:
                batch.loc[index, ["kept", "reject_reason", ERROR_COLUMN]] = [False, "unreadable", str(exc)]
                continue
            blobs[n] = pack_frames([frames[i] for i in keys], [(frames[i], frames[i + 1]) for i in firsts])
        batch[FRAMES_COLUMN] = blobs
        return batch


def mean_flow_magnitude(pairs: np.ndarray, width: int = 256) -> float:
    """Mean Farneback optical-flow magnitude over the given frame pairs, px/frame at `width`."""
    magnitudes = []
    for a, b in pairs:
        scale = width / a.shape[1]
        size = (width, max(8, round(a.shape[0] * scale)))
        ga = cv2.cvtColor(cv2.resize(a, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        gb = cv2.cvtColor(cv2.resize(b, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        magnitudes.append(float(np.linalg.norm(flow, axis=-1).mean()))
    return float(np.mean(magnitudes)) if magnitudes else 0.0


class StaticFilter:
    """Rejects clips whose mean optical-flow magnitude is below `min_motion` ("static")."""

    def __init__(self, config: CurationConfig) -> None:
        self.config = config

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch = batch.copy()
        for index, row in batch[_kept(batch)].iterrows():
            _, pairs = unpack_frames(row[FRAMES_COLUMN])
            batch.loc[index, "motion"] = mean_flow_magnitude(pairs)
        _reject(batch, batch["motion"] < self.config.min_motion, "static")
        return batch


class TextFilter:
    """Rejects clips with much on-screen text ("text"): CRAFT when its weights are here, else the
    weight-free stroke detector (curation/text.py)."""

    def __init__(self, config: CurationConfig) -> None:
        from .text import CraftDetector, stroke_text_fraction
        from .weights import resolve

        self.config = config
        path, self.craft_reason = resolve("craft", config.craft_weights)
        if path is not None:
            detector = CraftDetector(path, device=config.device)
            self.name, self.measure = "craft", detector.text_fraction
        else:
            self.name, self.measure = "stroke", stroke_text_fraction

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch = batch.copy()
        for index, row in batch[_kept(batch)].iterrows():
            keys, _ = unpack_frames(row[FRAMES_COLUMN])
            batch.loc[index, "text_area"] = float(np.median([self.measure(frame) for frame in keys]))
            batch.loc[index, "text_detector"] = self.name
        _reject(batch, batch["text_area"] > self.config.max_text_area, "text")
        return batch


def captioner_availability(config: CurationConfig) -> tuple[bool, str]:
    from .weights import resolve

    if not config.captions:
        return False, "captions turned off (--no-captions)"
    path, reason = resolve("captioner", config.captioner_weights)
    if path is None:
        return False, reason
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False, "the transformers package is not installed (pip install transformers) for the captioner"
    return True, ""


class Captioner:
    """Captions the middle frame with a transformers image-to-text model from a local folder
    (BLIP / BLIP-2 save_pretrained layout; loaded with local_files_only, never downloading)."""

    def __init__(self, config: CurationConfig) -> None:
        from transformers import AutoModelForVision2Seq, AutoProcessor

        from .weights import resolve

        path, reason = resolve("captioner", config.captioner_weights)
        if path is None:
            raise FileNotFoundError(reason)
        self.processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModelForVision2Seq.from_pretrained(str(path), local_files_only=True).eval().to(config.device)
        self.device = config.device

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        import torch

        batch = batch.copy()
        for index, row in batch[_kept(batch)].iterrows():
            keys, _ = unpack_frames(row[FRAMES_COLUMN])
            inputs = self.processor(images=keys[1], return_tensors="pt").to(self.device)
            with torch.no_grad():
                tokens = self.model.generate(**inputs, max_new_tokens=40)
            batch.loc[index, "caption"] = self.processor.batch_decode(tokens, skip_special_tokens=True)[0].strip()
        return batch


class AestheticHead:
    """LAION's aesthetic predictor: an MLP on the L2-normalised CLIP image embedding (its layer
    sizes are read from the weights file, so any CLIP width works)."""

    def __init__(self, weights) -> None:
        import torch
        from torch import nn

        from .clip_model import load_state_dict

        state = load_state_dict(weights)
        linear = sorted({int(k.split(".")[1]) for k in state if k.startswith("layers.") and k.endswith(".weight")})
        modules: list[nn.Module] = []
        for position in range(linear[-1] + 1):
            if position in linear:
                out_features, in_features = state[f"layers.{position}.weight"].shape
                modules.append(nn.Linear(in_features, out_features))
            else:
                modules.append(nn.Identity())  # the original's Dropout slots (identity at inference)
        self.layers = nn.Sequential(*modules).eval()
        self.layers.load_state_dict({k.removeprefix("layers."): v for k, v in state.items() if k.startswith("layers.")})
        self.torch = torch

    def __call__(self, embedding: np.ndarray) -> float:
        with self.torch.no_grad():
            return float(self.layers(self.torch.from_numpy(embedding[None].astype(np.float32)))[0, 0])


def clip_scores_availability(config: CurationConfig) -> tuple[bool, str]:
    from .weights import resolve

    path, reason = resolve("clip", config.clip_weights)
    return (path is not None), reason


class ClipScores:
    """CLIP image embeddings of first/middle/last frame, then (when its head is here) the aesthetic
    score and (for captioned clips) the caption's similarity to each of the three frames."""

    def __init__(self, config: CurationConfig) -> None:
        from .clip_model import ClipEmbedder
        from .weights import resolve

        self.config = config
        path, reason = resolve("clip", config.clip_weights)
        if path is None:
            raise FileNotFoundError(reason)
        self.clip = ClipEmbedder(path, config.clip_architecture, device=config.device)
        head, self.aesthetic_reason = resolve("aesthetic", config.aesthetic_weights)
        self.aesthetic = AestheticHead(head) if head is not None else None

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch = batch.copy()
        for index, row in batch[_kept(batch)].iterrows():
            keys, _ = unpack_frames(row[FRAMES_COLUMN])
            images = self.clip.images(list(keys))
            if self.aesthetic is not None:
                mean = images.mean(0)
                batch.loc[index, "aesthetic"] = self.aesthetic(mean / np.linalg.norm(mean))
            caption = row["caption"]
            if isinstance(caption, str) and caption:
                cosines = images @ self.clip.texts([caption])[0]
                batch.loc[index, ["clip_first", "clip_middle", "clip_last", "clip_text_video"]] = [*map(float, cosines), float(cosines.mean())]
        if self.aesthetic is not None:
            _reject(batch, batch["aesthetic"] < self.config.min_aesthetic, "low_aesthetic")
        _reject(batch, batch["clip_text_video"] < self.config.min_text_video_similarity, "caption_mismatch")
        return batch


def plan_stages(config: CurationConfig) -> tuple[list[type], dict[str, str]]:
    """The per-clip stages that can run with the weights here, and why each other one is skipped."""
    from .weights import resolve

    stages: list[type] = [SampleFrames, StaticFilter, TextFilter]
    skipped: dict[str, str] = {}
    if resolve("craft", config.craft_weights)[0] is None:
        skipped["text (CRAFT)"] = resolve("craft", config.craft_weights)[1] + "; the weight-free stroke detector ran instead"
    ok, reason = captioner_availability(config)
    if ok:
        stages.append(Captioner)
    else:
        skipped["captions"] = reason
    ok, reason = clip_scores_availability(config)
    if ok:
        stages.append(ClipScores)
        head, head_reason = resolve("aesthetic", config.aesthetic_weights)
        if head is None:
            skipped["aesthetic"] = head_reason
        if "captions" in skipped:
            skipped["caption alignment"] = "no captions (the captioner did not run)"
    else:
        skipped["aesthetic"] = reason
        skipped["caption alignment"] = reason
    return stages, skipped


#: Stages that hold a network (Ray runs them as actors, on a GPU when the cluster has one).
MODEL_STAGES = (TextFilter, Captioner, ClipScores)
