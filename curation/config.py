"""Curation settings: thresholds of every filter and where each network's weights are."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CurationConfig:
    # Shot splitting (PySceneDetect's ContentDetector) and clip cutting.
    cut_threshold: float = 27.0
    min_shot_frames: int = 8
    min_clip_frames: int = 16
    max_clip_frames: int = 96  # long shots are cut into consecutive clips of at most this length
    # Static shots: mean Farneback flow magnitude, in pixels per frame at a 256 px analysis width.
    min_motion: float = 0.08
    motion_pairs: int = 4
    # On-screen text: fraction of the frame inside text boxes (median over first, middle, last frame).
    max_text_area: float = 0.05
    # LAION aesthetic score (1-10) of the clip's mean CLIP image embedding.
    min_aesthetic: float = 4.0
    # CLIP cosine similarity of the caption with the first, middle and last frame (their mean).
    min_text_video_similarity: float = 0.2
    # Held-out share, chosen per shot by a hash of (file name, shot), so it never changes between runs.
    eval_fraction: float = 0.05
    # Frames kept for analysis are scaled to this width.
    analysis_width: int = 512
    # Weights (None: look in the model store) and the CLIP architecture they are for.
    clip_weights: str | None = None
    clip_architecture: str = "ViT-L-14"
    aesthetic_weights: str | None = None
    craft_weights: str | None = None
    captioner_weights: str | None = None
    captions: bool = True
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.min_clip_frames < 2 or self.max_clip_frames < self.min_clip_frames:
            raise ValueError(f"clip lengths must satisfy 2 <= min ({self.min_clip_frames}) <= max ({self.max_clip_frames})")
        if not 0.0 <= self.eval_fraction <= 1.0:
            raise ValueError(f"eval_fraction {self.eval_fraction} is not within 0..1")

    def fingerprint(self) -> str:
        """Identifies the settings a clip was scored with; resumed work is reused only when it matches."""
        blob = json.dumps({k: v for k, v in asdict(self).items() if k != "device"}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]
