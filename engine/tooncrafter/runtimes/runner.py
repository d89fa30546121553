"""What every runtime's runner does for one model pass, written once.

A runner owns one loaded model (`net`, answering the model contract) and turns a pass request of the
segment strategy (two canvas RGB keyframes, canvas sketches by model frame, the task's generation
settings) into T canvas RGB frames. The shared part: generation settings -> interpolation settings
(presets), images <-> tensors, the sketch hint clip, seeding, the per-prompt context cache and the
call of `interpolation.interpolate`. A runtime adds only what is its own, through the hooks:
where the CLIP towers and the denoising networks sit while they run (`_towers`, `_denoising`),
how the sketch encoder becomes available (`_require_sketch_encoder`), and failure handling around
a pass (the PyTorch runner's low-VRAM retry).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch

from ...api import CancelToken, GenerationSettings
from ..interpolation import InterpolationNoise, InterpolationSettings, PromptContexts, image_context, interpolate, prompt_contexts
from ..networks.config import ToonCrafterConfig
from ..sampler import SamplerSettings
from ..sketch_hints import sketch_hint_clip
from .contract import ToonCrafterNetworks

StageFn = Callable[[str, float, str], None]


def interpolation_settings(s: GenerationSettings) -> InterpolationSettings:
    """The generation settings of a task as one pass uses them. "fast" turns on the lean settings
    (one batched UNet call for both guidance branches, only the two keyframes VAE-encoded); low
    memory encodes only the two keyframes too (the same latents up to float rounding: encoding the
    key video's 16 frames at once held about 7.5 GiB at full size)."""
    fast = s.preset == "fast"
    return InterpolationSettings(
        sampler=SamplerSettings(
            steps=s.steps, eta=s.eta, cfg_scale=s.cfg_scale, guidance_rescale=s.guidance_rescale,
            batch_cond_uncond=fast,
        ),
        fs=s.motion,
        prompt=s.prompt,
        sketch_strength=s.sketch_strength,
        encode_all_frames=not (fast or s.low_vram),
    )


def to_model_input(rgb: np.ndarray) -> torch.Tensor:
    """Canvas RGB uint8 (H, W, 3) -> (1, 3, H, W) float32 in [-1, 1], as the original scales it."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()
    return ((tensor / 255.0 - 0.5) * 2).unsqueeze(0)


def to_rgb_frames(frames: torch.Tensor) -> list[np.ndarray]:
    """Decoded frames (1, 3, T, H, W) in about [-1, 1] -> T canvas RGB uint8 images."""
    frames = frames[0].float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return [f.permute(1, 2, 0).cpu().numpy() for f in frames.unbind(1)]


class ModelRunner(ABC):
    """One loaded ToonCrafter model on one runtime, running passes for the segment strategy."""

    #: "torch" or "onnx" (the values of vocabulary.RUNTIMES other than auto).
    runtime: str = ""

    def __init__(self) -> None:
        self._prompt_cache: dict[str, PromptContexts] = {}

    @property
    @abstractmethod
    def net(self) -> ToonCrafterNetworks:
        """The loaded model behind the contract."""

    @property
    def config(self) -> ToonCrafterConfig:
        return self.net.config

    @abstractmethod
    def describe(self) -> dict:
        """Provenance and placement for results and the health page."""

    # -- hooks -------------------------------------------------------------------------------------

    def _towers(self) -> contextlib.AbstractContextManager:
        """Entered while the CLIP towers and the Resampler run."""
        return contextlib.nullcontext()

    def _denoising(self, with_sketch: bool) -> contextlib.AbstractContextManager:
        """Entered while the VAE, UNet (and sketch encoder) run."""
        return contextlib.nullcontext()

    @abstractmethod
    def _require_sketch_encoder(self) -> None:
        """Make sketch guidance available or raise an EngineError saying how."""

    @property
    def noise_device(self) -> torch.device:
        """Where the sampler's seeded noise is drawn (the original seeds the model device's generator)."""
        return self.net.device

    # -- a pass ------------------------------------------------------------------------------------

    def prompt_contexts(self, prompt: str) -> PromptContexts:
        """Text and zero-image contexts, computed once per prompt."""
        if prompt not in self._prompt_cache:
            with torch.inference_mode(), self._towers():
                self._prompt_cache[prompt] = prompt_contexts(self.net, prompt)
        return self._prompt_cache[prompt]

    def run_pass(
        self,
        s: GenerationSettings,
        first: np.ndarray,
        last: np.ndarray,
        sketches: dict[int, np.ndarray],
        report: StageFn,
        cancel: CancelToken,
    ) -> list[np.ndarray]:
        """One generative pass between two canvas RGB images -> T canvas RGB uint8 frames."""
        cfg = self.config
        hint = None
        if sketches:
            self._require_sketch_encoder()
            hint = sketch_hint_clip(sketches, cfg.frames, cfg.height, cfg.width)
        contexts = self.prompt_contexts(s.prompt)
        with torch.inference_mode():
            first_t, last_t = to_model_input(first), to_model_input(last)
            with self._towers():
                image = image_context(self.net, first_t)
            noise = InterpolationNoise.seeded(s.seed, cfg, self.noise_device)
            with self._denoising(hint is not None):
                result = interpolate(
                    self.net, first_t, last_t, interpolation_settings(s), noise,
                    contexts=contexts, image=image, sketch_hint=hint, on_stage=report, cancel=cancel,
                )
        return to_rgb_frames(result.frames)

