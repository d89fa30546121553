"""ToonCrafter on PyTorch: the model contract on the nn.Modules, and the runner that places them.

`TorchNetworks` answers the contract on a loaded `ToonCrafterModel` (plus the sketch encoder): each
call moves its inputs to the device and dtype of the part that runs and returns that part's output.
`TorchRunner` is what only PyTorch needs: loading the weights straight to where each part will run,
precision (fp32 on the CPU, fp16 on CUDA unless asked otherwise), keeping the CLIP towers on the CPU
between their uses, chunk sizes chosen from the free memory (runtimes/memory_plan.py), low-memory
mode (`low_vram`: the tightest exact chunks on any device; on a GPU the parts also visit it only
while they run) and one retry in low-VRAM mode after a CUDA out-of-memory error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ...api import EngineError, GenerationSettings
from ..model import ToonCrafterModel
from ..networks.autoencoder import LatentPosterior
from ..networks.config import ToonCrafterConfig
from ..networks.key_maps import RecomputedKeyMap
from ..networks.sketch_encoder import SketchEncoder
from .memory_plan import ChunkPlan, free_memory_bytes, plan_chunks
from .runner import ModelRunner


def _home(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    weight = next(p for p in module.parameters() if p.is_floating_point())
    return weight.device, weight.dtype


class TorchNetworks:
    """The model contract on PyTorch modules (see runtimes/contract.py)."""

    def __init__(self, model: ToonCrafterModel, sketch_encoder: SketchEncoder | None = None) -> None:
        self.model = model
        self.sketch_encoder = sketch_encoder
        self.config: ToonCrafterConfig = model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def has_sketch_encoder(self) -> bool:
        return self.sketch_encoder is not None

    @property
    def text_context_length(self) -> int:
        return self.model.cond_stage_model.context_length

    @property
    def clip_image_size(self) -> int:
        return self.model.embedder.image_size

    def tokenize(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.model.cond_stage_model.tokenize(list(prompts))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        device, _ = _home(self.model.cond_stage_model)
        return self.model.cond_stage_model(tokens.to(device))

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        device, dtype = _home(self.model.embedder)
        return self.model.embedder(pixels.to(device, dtype))

    def resample_image_tokens(self, clip_tokens: torch.Tensor) -> torch.Tensor:
        device, dtype = _home(self.model.image_proj_model)
        return self.model.image_proj_model(clip_tokens.to(device, dtype))

    def encode_frames(self, frames: torch.Tensor) -> tuple[LatentPosterior, list[torch.Tensor]]:
        vae = self.model.first_stage_model
        device, dtype = _home(vae)
        frames = frames.to(device, dtype)
        encoding = vae.encode(frames)
        hidden = encoding.hidden_states
        if vae.decoder.in_row_bands:
            # The tightest decode recomputes the two full-resolution maps from the keys when it
            # reads them (networks/key_maps.py) instead of holding them through the pass.
            hidden = [
                RecomputedKeyMap.of_frames(vae.encoder, frames, 0),
                *hidden[1:-1],
                RecomputedKeyMap.of_frames(vae.encoder, frames, None),
            ]
        return encoding.posterior, hidden

    def decode_frames(self, z: torch.Tensor, references: Sequence[torch.Tensor], num_frames: int) -> torch.Tensor:
        vae = self.model.first_stage_model
        device, dtype = _home(vae)
        return vae.decoder(z.to(device, dtype), [r.to(device, dtype) for r in references], num_frames)

    def unet(self, x, timesteps, context, fs=None, control=None) -> torch.Tensor:
        device, _ = _home(self.model.unet)
        fs = fs.to(device) if fs is not None else None
        v = self.model.unet(x.to(device), timesteps.to(device), context.to(device), fs, control=control)
        return v.to(x.device)

    def sketch_residuals(self, x, hint, timesteps, context) -> list[torch.Tensor]:
        if self.sketch_encoder is None:
            raise EngineError("sketch guidance needs the sketch encoder weights")
        device, _ = _home(self.sketch_encoder)
        return self.sketch_encoder(x.to(device), hint.to(device), timesteps.to(device), context.to(device))

    def schedule_buffers(self) -> dict[str, torch.Tensor]:
        names = ("alphas_cumprod", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "scale_arr")
        return {name: getattr(self.model, name, None) for name in names}


# ----------------------------------------------------------------------------------------------
# The runner


def resolve_device(settings: GenerationSettings) -> str:
    if settings.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError(f"device {settings.device} was asked for but PyTorch sees no CUDA GPU")
    return settings.device


def resolve_dtype(settings: GenerationSettings, device: str) -> torch.dtype:
    if settings.precision == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[settings.precision]


class TorchRunner(ModelRunner):
    """The PyTorch runtime: weights from the store (or a model handed over), placement and retry."""

    runtime = "torch"

    def __init__(self, settings: GenerationSettings, files, config: ToonCrafterConfig, model: ToonCrafterModel | None = None) -> None:
        """`files` are the store's WeightFiles; `model` hands over an already built model instead
        (benchmarks with random weights), then `files.tooncrafter` is None."""
        super().__init__()
        self.settings = settings
        self.files = files
        self.device = resolve_device(settings)
        self.dtype = resolve_dtype(settings, self.device)
        self.low_vram = settings.low_vram and self.device.startswith("cuda")
        #: The chunk sizes in use (chosen by `place`).
        self.chunks = ChunkPlan()
        if model is None:
            from ..weights.checkpoint import load_tooncrafter

            def device_for(key: str) -> str:
                # Straight to where each part will run: no second copy in RAM on the way to the GPU.
                on_cpu = self.low_vram or key.startswith(("cond_stage_model.", "embedder."))
                return "cpu" if on_cpu else self.device

            model = load_tooncrafter(files.tooncrafter, files.clip, config, self.dtype, device_for)
        else:
            model = model.cast_weights(self.dtype)
        self._net = TorchNetworks(model)
        self.place()

    @property
    def net(self) -> TorchNetworks:
        return self._net

    @property
    def model(self) -> ToonCrafterModel:
        return self._net.model

    @property
    def sketch_encoder(self) -> SketchEncoder | None:
        return self._net.sketch_encoder

    @property
    def noise_device(self) -> torch.device:
        return torch.device(self.device)

    def place(self) -> None:
        """Denoising parts on the device unless in low-VRAM mode; CLIP towers stay on the CPU; chunk
        sizes from the memory left free once the weights are in place (the tightest in low-memory mode)."""
        model = self.model
        home = "cpu" if self.low_vram else self.device
        for part in (model.model, model.first_stage_model, model.image_proj_model):
            part.to(home)
        model.cond_stage_model.to("cpu")
        model.embedder.to("cpu")
        tightest = self.low_vram or self.settings.low_vram
        itemsize = torch.finfo(self.dtype).bits // 8
        self.chunks = plan_chunks(self.config, itemsize, free_memory_bytes(self.device), tightest, parts_visit=self.low_vram)
        self.chunks.apply(model)
        if self.sketch_encoder is not None:
            self.sketch_encoder.to(home)

    @contextlib.contextmanager
    def _on_device(self, *modules: nn.Module) -> Iterator[None]:
        """Run modules on the device; afterwards send them back to where they live."""
        homes = [_home(m)[0] for m in modules]
        for module in modules:
            module.to(self.device)
        try:
            yield
        finally:
            for module, home in zip(modules, homes):
                module.to(home)
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()

    def _towers(self):
        model = self.model
        return self._on_device(model.cond_stage_model, model.embedder, model.image_proj_model)

    def _denoising(self, with_sketch: bool):
        if not self.low_vram:
            return contextlib.nullcontext()
        parts = [self.model.model, self.model.first_stage_model]
        return self._on_device(*parts, *([self.sketch_encoder] if with_sketch else []))

    def _require_sketch_encoder(self) -> None:
        if self.sketch_encoder is not None:
            return
        if self.files.sketch_encoder is None:
            raise EngineError(
                "sketch guidance needs the sketch encoder weights: run `inbetween models download sketch-encoder`"
            )
        from ..weights.checkpoint import load_sketch_encoder

        encoder = load_sketch_encoder(self.files.sketch_encoder, self.config, self.dtype, "cpu")
        self._net.sketch_encoder = encoder.to("cpu" if self.low_vram else self.device)

    def run_pass(self, s, first, last, sketches, report, cancel):
        """A pass; on CUDA out-of-memory, once more in low-VRAM mode."""
        try:
            return super().run_pass(s, first, last, sketches, report, cancel)
        except torch.cuda.OutOfMemoryError:
            if self.low_vram:
                raise EngineError(
                    "out of GPU memory even in low-VRAM mode: close other GPU programs or use --device cpu"
                ) from None
            torch.cuda.empty_cache()
            report("load", 0.0, "out of GPU memory: retrying in low-VRAM mode")
            self.low_vram = True
            self.place()
            return super().run_pass(s, first, last, sketches, report, cancel)

    def describe(self) -> dict:
        return {
            "runtime": self.runtime,
            "device": self.device,
            "precision": str(self.dtype).removeprefix("torch."),
            "low_vram": self.low_vram,
            "chunks": self.chunks.describe(),
        }
