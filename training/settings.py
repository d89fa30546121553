"""Settings of one training run; the defaults are the paper's (section 5.1) where it gives them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.tooncrafter.networks.config import ToonCrafterConfig, tiny_from_reference

JOBS = ("rectify", "decoder", "sketch")
#: Learning rates of the paper: rectification 1e-5, decoder 4.5e-6, sketch encoder 5e-5.
DEFAULT_LR = {"rectify": 1e-5, "decoder": 4.5e-6, "sketch": 5e-5}
PRECISIONS = ("auto", "bf16", "fp32")
OPTIMIZERS = ("adamw", "adamw8bit")


@dataclass
class TrainSettings:
    job: str
    data: Path
    out: Path
    init: Path | None = None
    clip: Path | None = None
    model_config: Path | None = None
    sketch_init: Path | None = None
    steps: int = 1000
    lr: float | None = None  # None: the job's paper value
    batch: int = 32  # global batch per optimizer step (micro-batch × accumulation × processes)
    micro_batch: int = 1
    width: int | None = None  # None: the model's canvas (512 × 320 for the released model)
    height: int | None = None
    stride_min: int = 1
    stride_max: int = 4
    seed: int = 20241203
    device: str = "auto"
    precision: str = "auto"
    gradient_checkpointing: bool = False
    frozen_dtype: str = "fp32"  # "bf16": networks that only run forward are held in bf16
    optimizer: str = "adamw"
    warmup_steps: int = 0
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    save_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 1
    resume: str | None = None  # a checkpoint folder, or "auto": the newest under OUT/checkpoints
    workers: int = 0
    fsdp: bool = False
    text_dropout: float = 0.05
    image_dropout: float = 0.05
    # decoder job
    perceptual_weight: float = 0.1
    lpips_vgg: Path | None = None
    lpips_heads: Path | None = None
    disc_start: int = 2001
    disc_weight: float = 0.5
    # sketch job
    anime2sketch: Path | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.job not in JOBS:
            raise ValueError(f"unknown training job {self.job!r}: choose one of {', '.join(JOBS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.frozen_dtype not in ("fp32", "bf16"):
            raise ValueError(f"--frozen-dtype must be fp32 or bf16, got {self.frozen_dtype!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("steps", "batch", "micro_batch", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"--ema-decay must be in [0, 1), got {self.ema_decay}")
        for name in ("init", "clip", "model_config", "sketch_init", "lpips_vgg", "lpips_heads", "anime2sketch"):
            value = getattr(self, name)
            if value is not None:
                path = Path(value)
                if not path.is_file():
                    raise FileNotFoundError(f"--{name.replace('_', '-')}: file not found: {path}")
                setattr(self, name, path)
        self.data, self.out = Path(self.data), Path(self.out)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.job]

    def accumulation(self, world_size: int) -> int:
        per_step = self.micro_batch * world_size
        if self.batch % per_step:
            raise ValueError(
                f"global batch {self.batch} is not a multiple of micro-batch {self.micro_batch} × {world_size} process(es)"
            )
        return self.batch // per_step

    def model_config_object(self) -> ToonCrafterConfig:
        if self.model_config is None:
            return ToonCrafterConfig()
        return tiny_from_reference(json.loads(self.model_config.read_text()))

    def fingerprint(self) -> dict:
        """What must not change across a resume (the data order and the objective depend on it)."""
        keep = ("job", "seed", "batch", "micro_batch", "width", "height", "stride_min", "stride_max", "text_dropout",
                "image_dropout")
        return {k: v for k, v in asdict(self).items() if k in keep}
