"""ToonCrafter's DDIM sampler, step for step as the original runs it.

Each step predicts v twice, with the conditional and the unconditional context (same keyframe
latents and motion), combines them with classifier-free guidance, rescales the guided v towards the
conditional one's standard deviation (guidance rescale), turns v into the predicted noise and the
predicted clean latent, scales the latter by the dynamic-rescale factor, and takes the DDIM step
with eta-controlled fresh noise. The original draws one noise tensor per step even when eta is 0;
so does this sampler, so a seed gives the same numbers for every eta.

Parity is the default. The one speed-up here is opt-in: `batch_cond_uncond` runs the conditional
and unconditional predictions as one batch of two (one UNet call per step instead of two).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..api import CancelToken
from .schedule import DDIMSchedule, ddim_schedule


@dataclass(frozen=True)
class SamplerSettings:
    """Official defaults (run.sh / the demo): 50 steps, eta 1, CFG 7.5, guidance rescale 0.7."""

    steps: int = 50
    eta: float = 1.0
    cfg_scale: float = 7.5
    guidance_rescale: float = 0.7
    #: Lean setting, off in parity mode: one UNet call on the stacked cond/uncond batch per step.
    batch_cond_uncond: bool = False


@dataclass
class Conditioning:
    """What the UNet sees besides the noisy latent, for one branch of the guidance.

    context (B, 77 + 16·T, D): text tokens then image tokens; c_concat (B, 4, T, h, w): keyframe
    latents at the first and last frame, zeros between; fs (B,): the motion value. `sketch_hint`
    (B, 1, T, 8h, 8w) with its `sketch_strength` switches on the sketch encoder's residuals.
    """

    context: torch.Tensor
    c_concat: torch.Tensor
    fs: torch.Tensor
    sketch_hint: torch.Tensor | None = None
    sketch_strength: float = 0.0

    def stacked_with(self, other: "Conditioning") -> "Conditioning":
        """This branch and `other` as one batch (this one first)."""
        hint = None
        if self.sketch_hint is not None:
            hint = torch.cat([self.sketch_hint, other.sketch_hint], dim=0)
        return Conditioning(
            torch.cat([self.context, other.context], dim=0),
            torch.cat([self.c_concat, other.c_concat], dim=0),
            torch.cat([self.fs, other.fs], dim=0),
            hint,
            self.sketch_strength,
        )


#: Predicts v: (x (B, 4, T, h, w), timesteps (B,), conditioning) -> v of x's shape.
Denoiser = Callable[[torch.Tensor, torch.Tensor, Conditioning], torch.Tensor]


class NoiseSource(ABC):
    """Where the sampler's random numbers come from: x_T first, then one tensor per step."""

    @abstractmethod
    def initial(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """The starting noise x_T."""

    @abstractmethod
    def step(self, index: int, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """The fresh noise of step `index` (in sampling order), scaled by sigma by the sampler."""


class SeededNoise(NoiseSource):
    """Standard normal noise from a generator, drawn in the original's order."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def _draw(self, shape, device) -> torch.Tensor:
        noise = torch.randn(shape, generator=self.generator, device=self.generator.device, dtype=torch.float32)
        return noise.to(device)

    def initial(self, shape, device):
        return self._draw(shape, device)

    def step(self, index, shape, device):
        return self._draw(shape, device)


class RecordedNoise(NoiseSource):
    """Replays given noises (the golden cases record x_T and every step's noise)."""

    def __init__(self, x_T: torch.Tensor, step_noise: torch.Tensor) -> None:
        self.x_T = x_T
        self.step_noise = step_noise

    def initial(self, shape, device):
        return self.x_T.reshape(shape).to(device)

    def step(self, index, shape, device):
        return self.step_noise[index].reshape(shape).to(device)


@dataclass
class StepRecord:
    """Values of one DDIM step, kept when the caller asks for them (debugging, teacher forcing)."""

    t: int
    x_in: torch.Tensor
    v_cond: torch.Tensor
    v_uncond: torch.Tensor | None
    pred_x0: torch.Tensor
    x_out: torch.Tensor


@dataclass
class SamplerTrace:
    steps: list[StepRecord] = field(default_factory=list)


def guided_v(v_cond: torch.Tensor, v_uncond: torch.Tensor, cfg_scale: float, guidance_rescale: float) -> torch.Tensor:
    """Classifier-free guidance on v, then the rescale towards the conditional v's spread.

    The factor is std(v_cond) / std(v_cfg) with the unbiased std over every non-batch dimension.
    """
    v = v_uncond + cfg_scale * (v_cond - v_uncond)
    if guidance_rescale > 0.0:
        dims = list(range(1, v.ndim))
        std_cond = v_cond.std(dim=dims, keepdim=True)
        std_cfg = v.std(dim=dims, keepdim=True)
        v = guidance_rescale * (v * (std_cond / std_cfg)) + (1 - guidance_rescale) * v
    return v


class DDIMSampler:
    """DDIM on v-prediction with the model's float32 schedule buffers."""

    def __init__(
        self,
        alphas_cumprod: torch.Tensor,
        sqrt_alphas_cumprod: torch.Tensor,
        sqrt_one_minus_alphas_cumprod: torch.Tensor,
        scale_arr: torch.Tensor | None,
    ) -> None:
        self.alphas_cumprod = alphas_cumprod
        self.sqrt_alphas_cumprod = sqrt_alphas_cumprod
        self.sqrt_one_minus_alphas_cumprod = sqrt_one_minus_alphas_cumprod
        self.scale_arr = scale_arr

    @classmethod
    def from_buffers(cls, buffers: dict[str, torch.Tensor] | torch.nn.Module) -> "DDIMSampler":
        get = (lambda n: getattr(buffers, n, None)) if isinstance(buffers, torch.nn.Module) else buffers.get
        return cls(get("alphas_cumprod"), get("sqrt_alphas_cumprod"), get("sqrt_one_minus_alphas_cumprod"), get("scale_arr"))

    def schedule(self, steps: int) -> DDIMSchedule:
        return ddim_schedule(self.alphas_cumprod, steps, self.scale_arr)

    def _per_sample(self, table: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
        values = table.to(t.device).gather(-1, t)
        return values.reshape(t.shape[0], *([1] * (ndim - 1)))

    def step(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        v: torch.Tensor,
        index: int,
        schedule: DDIMSchedule,
        eta: float,
        noise: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One DDIM update from guided v: returns (x_prev, pred_x0).

        Every per-step scalar is a float32 tensor broadcast over the batch, as in the original.
        """
        size = (x.shape[0],) + (1,) * (x.ndim - 1)
        device = x.device
        sqrt_a = self._per_sample(self.sqrt_alphas_cumprod, t, x.ndim)
        sqrt_1m_a = self._per_sample(self.sqrt_one_minus_alphas_cumprod, t, x.ndim)
        e_t = sqrt_a * v + sqrt_1m_a * x
        pred_x0 = sqrt_a * x - sqrt_1m_a * v
        factor = schedule.rescale_factor(index)
        if factor is not None:
            scale_t = torch.full(size, float(schedule.scale_arr[index]), device=device)
            prev_scale_t = torch.full(size, float(schedule.scale_arr_prev[index]), device=device)
            pred_x0 = pred_x0 * (prev_scale_t / scale_t)
        a_prev = torch.full(size, float(schedule.alphas_prev[index]), device=device)
        sigma_t = torch.full(size, float(eta * schedule.sigmas_eta1[index]), device=device)
        dir_xt = (1.0 - a_prev - sigma_t**2).sqrt() * e_t
        x_prev = a_prev.sqrt() * pred_x0 + dir_xt + sigma_t * noise
        return x_prev, pred_x0

    def sample(
        self,
        denoise: Denoiser,
        cond: Conditioning,
        uncond: Conditioning | None,
        shape: tuple[int, ...],
        settings: SamplerSettings,
        noise: NoiseSource,
        device: torch.device | str = "cpu",
        on_step: Callable[[int, int], None] | None = None,
        cancel: CancelToken | None = None,
        trace: SamplerTrace | None = None,
    ) -> torch.Tensor:
        """Run the DDIM loop from x_T and return the final latent (B, 4, T, h, w), float32.

        `on_step(i, n)` is called after step i of n; `cancel.check()` runs before every step.
        `uncond` None (or cfg_scale 1) skips guidance.
        """
        device = torch.device(device)
        schedule = self.schedule(settings.steps)
        x = noise.initial(shape, device).to(torch.float32)
        guided = uncond is not None and settings.cfg_scale != 1.0
        stacked = cond.stacked_with(uncond) if guided and settings.batch_cond_uncond else None
        total = schedule.steps
        for i in range(total):
            if cancel is not None:
                cancel.check()
            index = total - 1 - i
            t = torch.full((shape[0],), int(schedule.timesteps[index]), device=device, dtype=torch.long)
            v_uncond = None
            if not guided:
                v_cond = denoise(x, t, cond)
                v = v_cond
            elif stacked is not None:
                both = denoise(torch.cat([x, x]), torch.cat([t, t]), stacked)
                v_cond, v_uncond = both.chunk(2)
                v = guided_v(v_cond, v_uncond, settings.cfg_scale, settings.guidance_rescale)
            else:
                v_cond = denoise(x, t, cond)
                v_uncond = denoise(x, t, uncond)
                v = guided_v(v_cond, v_uncond, settings.cfg_scale, settings.guidance_rescale)
            step_noise = noise.step(i, shape, device)
            x_prev, pred_x0 = self.step(x, t, v.to(torch.float32), index, schedule, settings.eta, step_noise)
            if trace is not None:
                trace.steps.append(StepRecord(int(t[0]), x, v_cond, v_uncond, pred_x0, x_prev))
            x = x_prev
            if on_step is not None:
                on_step(i, total)
        return x
