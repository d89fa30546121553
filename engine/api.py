"""The engine's Python API: what a generation request is, what a backend receives, what comes back.

Images cross this API as RGBA uint8 arrays of shape (height, width, 4), straight alpha, sRGB.
Timeline positions are integer frame numbers; a segment is two consecutive keyframes and the
in-betweens between them, each in-between placed at a spacing fraction tau in (0, 1).
This module imports numpy only, so the server and the CLI can build requests without torch.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .core import vocabulary
from .core.planning import SegmentPlan

#: Progress callback: (stage, fraction in [0, 1], human message). Stages are "load", "encode",
#: "denoise i/N", "decode" and "post".
ProgressFn = Callable[[str, float, str], None]


class EngineError(Exception):
    """A problem the user can act on (bad input, missing weights); the message says what to do."""


class Cancelled(Exception):
    """Raised inside a long loop when its CancelToken was set."""


class CancelToken:
    """Thread-safe flag checked by every long loop (each denoising step, each classical frame)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("generation cancelled")


def no_progress(stage: str, fraction: float, message: str) -> None:
    """Progress sink for callers that do not report progress."""


@dataclass(frozen=True)
class GenerationSettings:
    """Everything that changes what a backend draws. Defaults are the official ToonCrafter values."""

    backend: str = "auto"
    motion: int = 10  # the model's fs ("frame stride") conditioning; not a frame rate
    seed: int = 123
    steps: int = 50
    cfg_scale: float = 7.5
    eta: float = 1.0
    guidance_rescale: float = 0.7
    prompt: str = "an anime scene"
    sketch_strength: float = 0.6
    precision: str = "auto"  # auto = fp32 on CPU, fp16 on CUDA
    preset: str = "parity"  # parity | fast (opt-in speed-ups that change numbers) | quality
    low_vram: bool = False
    checkpoint: str | None = None  # path or model-store name of the ToonCrafter weights
    sketch_checkpoint: str | None = None
    device: str = "auto"
    runtime: str = "auto"  # what runs the ToonCrafter networks: torch | onnx | auto
    restore_detail: str = "auto"  # bring in-betweens to the keys' resolution with the keys' own detail
    keep_palette: str = "auto"  # snap flat colours to the keys' palette

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("backend", self.backend, vocabulary.BACKENDS),
            ("precision", self.precision, vocabulary.PRECISIONS),
            ("preset", self.preset, vocabulary.PRESETS),
            ("runtime", self.runtime, vocabulary.RUNTIMES),
            ("restore_detail", self.restore_detail, vocabulary.AUTO_ON_OFF),
            ("keep_palette", self.keep_palette, vocabulary.AUTO_ON_OFF),
        ):
            if value not in choices:
                raise EngineError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")
        if not vocabulary.is_device(self.device):
            raise EngineError(f"unknown device {self.device!r}: choose one of {', '.join(vocabulary.DEVICES)}")
        for name, value, allowed in (
            ("steps", self.steps, vocabulary.STEPS),
            ("motion", self.motion, vocabulary.MOTION),
            ("cfg scale", self.cfg_scale, vocabulary.CFG_SCALE),
            ("sketch strength", self.sketch_strength, vocabulary.SKETCH_STRENGTH),
        ):
            if not allowed.contains(value):
                raise EngineError(f"{name} must be {allowed.describe()}, got {value}")


@dataclass
class InbetweenTask:
    """One segment as a backend sees it: two keyframes and the taus of the in-betweens to draw.

    `sketches` maps a tau of this segment (the sketch's timeline position as a fraction of the
    segment) to the artist's RGBA sketch at the keyframes' size. A backend appends to `warnings`
    what the artist should know about the result (e.g. two sketches landing on one model frame).
    In a shot of more than two keys, `key_before` / `key_after` are the keys either side of the
    segment (None at the shot's ends) and `tau_before` (< 0) / `tau_after` (> 1) their timeline
    positions in this segment's taus, so a backend can carry motion on one smooth arc through all
    the keys instead of a path that turns a corner at every key.
    """

    key_start: np.ndarray
    key_end: np.ndarray
    taus: Sequence[float]
    settings: GenerationSettings
    sketches: Mapping[float, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    key_before: np.ndarray | None = None
    tau_before: float | None = None
    key_after: np.ndarray | None = None
    tau_after: float | None = None


class Backend(ABC):
    """An interpolation backend. Implementations live in engine/backends/."""

    name: str = ""
    #: The canvas (width, height) the backend draws on when that is smaller than the keys (its
    #: frames come back enlarged); the pipeline then restores them from the keys (engine/restoration).
    #: None: the backend draws at the keys' own size.
    draws_at: tuple[int, int] | None = None

    @abstractmethod
    def interpolate(self, task: InbetweenTask, progress: ProgressFn, cancel: CancelToken) -> list[np.ndarray]:
        """Return one RGBA uint8 image per tau of `task`, each at the keyframes' exact size."""

    def describe(self) -> dict:
        """Provenance recorded with every result (backend name, checkpoint hash, ...)."""
        return {"backend": self.name}


@dataclass
class Keyframe:
    frame: int
    image: np.ndarray
    source: str = ""  # file name or layer name, for error messages


@dataclass
class GenerationRequest:
    """Keyframes on a timeline, the planned segments between them and the settings.

    `segments` comes from engine.core.planning.plan_timeline; `sketches` maps timeline frames to
    RGBA sketches; `only_segments` restricts work to some segment indices (None = all).
    """

    keyframes: list[Keyframe]
    segments: list[SegmentPlan]
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    sketches: dict[int, np.ndarray] = field(default_factory=dict)
    only_segments: Sequence[int] | None = None


@dataclass
class FrameResult:
    """What one timeline frame shows: a keyframe, an in-between, or a hold of either."""

    frame: int
    image: np.ndarray
    kind: str  # "key" | "inbetween" | "hold"
    drawing: int  # timeline frame of the drawing shown (equal to `frame` unless a hold)
    segment: int | None = None
    tau: float | None = None


@dataclass
class GenerationResult:
    frames: dict[int, FrameResult]
    provenance: dict
    warnings: list[str] = field(default_factory=list)

    def drawings(self) -> list[FrameResult]:
        """Frames that carry their own drawing (no holds), in timeline order."""
        return [self.frames[f] for f in sorted(self.frames) if self.frames[f].kind != "hold"]
