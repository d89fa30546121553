"""The diffusion schedule of ToonCrafter and the DDIM step parameters derived from it.

ToonCrafter predicts v (not noise) on a 1000-step schedule whose betas are linear in sqrt space
(0.00085 -> 0.012) and then rescaled to zero terminal SNR, so t = 999 is pure noise
(alphas_cumprod[999] == 0 exactly). Sampling uses DDIM on "trailing" timesteps (the last one is 999)
and a per-timestep "dynamic rescale" factor that shrinks the predicted clean latent early on.

Every buffer is derived in float64 and stored as float32, as the original does, because the
checkpoint carries these 13 buffers and the sampler reads the float32 copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: Names of the schedule buffers stored in the checkpoint, in checkpoint order.
SCHEDULE_BUFFER_NAMES = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
    "scale_arr",
)

TIMESTEP_SPACINGS = ("uniform_trailing",)


@dataclass(frozen=True)
class DiffusionConfig:
    """Hyperparameters of the diffusion process (identical for the tiny and the full model)."""

    timesteps: int = 1000
    linear_start: float = 0.00085
    linear_end: float = 0.012
    rescale_betas_zero_snr: bool = True
    parameterization: str = "v"
    use_dynamic_rescale: bool = True
    base_scale: float = 0.7
    turning_step: int = 400
    scale_factor: float = 0.18215


def linear_betas(config: DiffusionConfig) -> np.ndarray:
    """Betas linear in sqrt space, float64 (the 'linear' schedule of latent diffusion)."""
    root = torch.linspace(config.linear_start**0.5, config.linear_end**0.5, config.timesteps, dtype=torch.float64, device="cpu")
    return (root**2).numpy()


def rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
    """Shift and scale sqrt(alphas_cumprod) so the last step has zero signal (Lin et al. 2023).

    The first value is kept, so the low-noise end of the schedule is unchanged.
    """
    alphas_bar_sqrt = np.sqrt(np.cumprod(1.0 - betas, axis=0))
    first, last = alphas_bar_sqrt[0].copy(), alphas_bar_sqrt[-1].copy()
    alphas_bar_sqrt = (alphas_bar_sqrt - last) * (first / (first - last))
    alphas_bar = alphas_bar_sqrt**2
    alphas = np.concatenate([alphas_bar[0:1], alphas_bar[1:] / alphas_bar[:-1]])
    return 1.0 - alphas


def dynamic_scale_arr(config: DiffusionConfig) -> np.ndarray:
    """Per-timestep pred-x0 scale: 1.0 at t = 0 falling linearly to base_scale at turning_step - 1.

    The original stores turning_step + timesteps entries (1400); only the first 1000 are read.
    """
    ramp = np.linspace(1.0, config.base_scale, config.turning_step)
    flat = np.full(config.timesteps, config.base_scale)
    return np.concatenate([ramp, flat])


def schedule_buffers(config: DiffusionConfig = DiffusionConfig()) -> dict[str, torch.Tensor]:
    """The 13 float32 schedule buffers of the checkpoint, computed from the config."""
    betas = linear_betas(config)
    if config.rescale_betas_zero_snr:
        betas = rescale_zero_terminal_snr(betas)
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas, axis=0)
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    if config.parameterization == "v":
        # The original stores zeros for these two under v-prediction (they would divide by zero at t=999).
        sqrt_recip = np.zeros_like(alphas_cumprod)
        sqrt_recipm1 = np.zeros_like(alphas_cumprod)
    else:
        sqrt_recip = np.sqrt(1.0 / alphas_cumprod)
        sqrt_recipm1 = np.sqrt(1.0 / alphas_cumprod - 1)
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    with np.errstate(divide="ignore"):
        log_one_minus = np.log(1.0 - alphas_cumprod)
    arrays = {
        "betas": betas,
        "alphas_cumprod": alphas_cumprod,
        "alphas_cumprod_prev": alphas_cumprod_prev,
        "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
        "log_one_minus_alphas_cumprod": log_one_minus,
        "sqrt_recip_alphas_cumprod": sqrt_recip,
        "sqrt_recipm1_alphas_cumprod": sqrt_recipm1,
        "posterior_variance": posterior_variance,
        "posterior_log_variance_clipped": np.log(np.maximum(posterior_variance, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
        "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - alphas_cumprod),
    }
    if config.use_dynamic_rescale:
        arrays["scale_arr"] = dynamic_scale_arr(config)
    return {name: torch.tensor(arrays[name], dtype=torch.float32, device="cpu") for name in SCHEDULE_BUFFER_NAMES if name in arrays}


def trailing_timesteps(steps: int, num_timesteps: int = 1000) -> np.ndarray:
    """DDIM 'uniform_trailing' timesteps, ascending, ending at num_timesteps - 1 (19, 39, ..., 999 for 50)."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"DDIM steps must be between 1 and {num_timesteps}, got {steps}")
    stride = num_timesteps / steps
    return np.flip(np.round(np.arange(num_timesteps, 0, -stride))).astype(np.int64) - 1


@dataclass(frozen=True)
class DDIMSchedule:
    """Per-step DDIM values for one step count; index k belongs to timesteps[k] (ascending).

    `alphas`, `alphas_prev` and `sigmas_eta1` are float64 arrays of the float32 buffer values, as in
    the original; the sampler broadcasts each per-step scalar as float32 when it uses it.
    """

    timesteps: torch.Tensor  # int64, ascending
    alphas: torch.Tensor  # float64
    alphas_prev: torch.Tensor  # float64; alphas_prev[0] = alphas_cumprod[0], not 1
    sigmas_eta1: torch.Tensor  # float64
    scale_arr: torch.Tensor | None  # float32, dynamic-rescale factor of each step's timestep
    scale_arr_prev: torch.Tensor | None  # float32, factor of the next lower timestep

    @property
    def steps(self) -> int:
        return int(self.timesteps.numel())

    def sigmas(self, eta: float) -> torch.Tensor:
        return eta * self.sigmas_eta1

    def rescale_factor(self, index: int) -> torch.Tensor | None:
        """Factor (float32 scalar) the predicted x0 of step `index` is multiplied by; None without rescale."""
        if self.scale_arr is None:
            return None
        return self.scale_arr_prev[index] / self.scale_arr[index]


def ddim_schedule(
    alphas_cumprod: torch.Tensor,
    steps: int,
    scale_arr: torch.Tensor | None = None,
    spacing: str = "uniform_trailing",
) -> DDIMSchedule:
    """DDIM parameters from the model's float32 alphas_cumprod (and scale_arr) buffers."""
    if spacing not in TIMESTEP_SPACINGS:
        raise ValueError(f"unknown DDIM timestep spacing {spacing!r}: choose one of {', '.join(TIMESTEP_SPACINGS)}")
    ac = alphas_cumprod.detach().to("cpu", torch.float32)
    ts = torch.from_numpy(trailing_timesteps(steps, ac.numel()).copy()).to("cpu")
    alphas32 = ac[ts]
    alphas_prev = torch.cat([ac[:1], ac[ts[:-1]]]).double()
    # Bit-exact with the original, where alphas is a float32 tensor and alphas_prev a float64 array:
    # array / tensor runs as tensor.reciprocal() * array, so 1 / (1 - alpha) is taken in float32.
    inv_one_minus_alpha = (1 - alphas32).reciprocal().double()
    sigmas = torch.sqrt(inv_one_minus_alpha * (1 - alphas_prev) * (1 - alphas32.double() / alphas_prev))
    alphas = alphas32.double()
    if scale_arr is not None:
        sa = scale_arr.detach().to("cpu", torch.float32)[ts]
        sa_prev = torch.cat([sa[:1], sa[:-1]])
    else:
        sa = sa_prev = None
    return DDIMSchedule(ts, alphas, alphas_prev, sigmas, sa, sa_prev)
