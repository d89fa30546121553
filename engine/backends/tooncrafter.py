"""The ToonCrafter backend: generative in-betweens from the released model (or any config).

One model pass draws T = 16 frames, keyframes included, at tau = k/15 on the model canvas. For a
segment the backend fits the keys (and sketches) onto the canvas, runs a pass, brings the frames
back to the keys' size and transparency, and answers every requested tau:
- a tau on a model frame is that frame;
- any other tau comes from RIFE between the two neighbouring model frames (the artist's own keys at
  the ends), or, in the "quality" preset, from a second generative pass between those two frames
  (finer model frames; RIFE only between those).
Presets: "parity" runs the original's numbers; "fast" turns on the lean settings (one batched UNet
call for both guidance branches, only the two keyframes VAE-encoded); "quality" is parity plus the
extra passes. The text and image CLIP towers leave the GPU once their outputs are cached; on a CUDA
out-of-memory error the pass is retried once in low-VRAM mode (parts moved to the GPU only while they
run, attention computed in chunks).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..api import Backend, CancelToken, EngineError, GenerationSettings, InbetweenTask, ProgressFn
from ..core.planning import nearest_model_frame

#: Distance (in tau) under which a requested tau counts as sitting on a model frame.
TAU_EPSILON = 1e-6
#: Sequences per attention kernel call in low-VRAM mode (exact; bounds the attention matrices).
LOW_VRAM_ATTENTION_CHUNK = 4096


def _torch():
    import torch

    return torch


def resolve_device(settings: GenerationSettings) -> str:
    torch = _torch()
    if settings.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError(f"device {settings.device} was asked for but PyTorch sees no CUDA GPU")
    return settings.device


def resolve_dtype(settings: GenerationSettings, device: str):
    torch = _torch()
    if settings.precision == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[settings.precision]


def _store():
    from ..tooncrafter.weights.store import ModelStore

    return ModelStore()


def availability(settings: GenerationSettings) -> tuple[bool, str]:
    """Ready when torch imports and the weights are in the store (or given as a file)."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return False, f"PyTorch is not installed ({exc})"
    try:
        from ..tooncrafter.weights.store import locate_weights

        locate_weights(_store(), settings.checkpoint, settings.sketch_checkpoint)
        resolve_device(settings)
    except EngineError as exc:
        return False, str(exc)
    return True, ""


def instance_key(settings: GenerationSettings) -> tuple:
    """What forces a reload: the weights, where and in what precision they live."""
    from ..tooncrafter.weights.store import models_dir

    return (
        settings.checkpoint,
        settings.sketch_checkpoint,
        settings.device,
        settings.precision,
        settings.low_vram,
        str(models_dir()),
    )


@dataclass
class _ModelFrames:
    """One pass's frames back at the keys' size: index k sits at taus[k]."""

    taus: list[float]
    images: list[np.ndarray]


class ToonCrafterBackend(Backend):
    """Holds the loaded model; each task brings its own generation settings (seed, steps, preset...).
    The instance-level settings (weights, device, precision, low-VRAM) come from the constructor."""

    name = "tooncrafter"

    def __init__(self, settings: GenerationSettings, config=None, store=None, model=None) -> None:
        """Loads the weights the settings name (or the store's best). `model` hands over an already
        built ToonCrafterModel instead (benchmarks with random weights); `config` must match it."""
        from ..tooncrafter.networks.config import ToonCrafterConfig
        from ..tooncrafter.weights.store import WeightFiles, locate_weights

        self.settings = settings
        self.config = config or (model.config if model is not None else ToonCrafterConfig())
        self.store = store or _store()
        if model is None:
            self.files = locate_weights(self.store, settings.checkpoint, settings.sketch_checkpoint)
        else:
            sketch = self.store.resolve(settings.sketch_checkpoint) if settings.sketch_checkpoint else None
            self.files = WeightFiles(None, None, sketch)
        self.device = resolve_device(settings)
        self.dtype = resolve_dtype(settings, self.device)
        self.low_vram = settings.low_vram and self.device.startswith("cuda")
        self.model = model
        self.sketch_encoder = None
        self._prompt_cache: dict[str, object] = {}
        self._rife = None
        if model is None:
            self._load()
        else:
            self.model = model.cast_weights(self.dtype)
            self._place()

    # -- loading and placement -------------------------------------------------------------------

    def _load(self) -> None:
        from ..tooncrafter.weights.checkpoint import load_tooncrafter

        def device_for(key: str) -> str:
            # Straight to where each part will run: no second copy in RAM on the way to the GPU.
            on_cpu = self.low_vram or key.startswith(("cond_stage_model.", "embedder."))
            return "cpu" if on_cpu else self.device

        self.model = load_tooncrafter(self.files.tooncrafter, self.files.clip, self.config, self.dtype, device_for)
        self._place()

    def _place(self) -> None:
        """Denoising parts on the device unless in low-VRAM mode; CLIP towers stay on the CPU."""
        model = self.model
        for part in (model.model, model.first_stage_model, model.image_proj_model):
            part.to("cpu" if self.low_vram else self.device)
        model.cond_stage_model.to("cpu")
        model.embedder.to("cpu")
        model.unet.set_attention_chunk(LOW_VRAM_ATTENTION_CHUNK if self.low_vram else None)
        model.first_stage_model.decoder.set_attention_chunk(1 if self.low_vram else None)
        if self.sketch_encoder is not None:
            self.sketch_encoder.to("cpu" if self.low_vram else self.device)

    @contextlib.contextmanager
    def _on_device(self, *modules) -> Iterator[None]:
        """Run modules on the device; afterwards send them back to the CPU when they live there."""
        torch = _torch()
        homes = [next(m.parameters()).device for m in modules]
        for module in modules:
            module.to(self.device)
        try:
            yield
        finally:
            for module, home in zip(modules, homes):
                module.to(home)
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()

    def _load_sketch_encoder(self):
        if self.sketch_encoder is None:
            if self.files.sketch_encoder is None:
                raise EngineError(
                    "sketch guidance needs the sketch encoder weights: run `inbetween models download sketch-encoder`"
                )
            from ..tooncrafter.weights.checkpoint import load_sketch_encoder

            self.sketch_encoder = load_sketch_encoder(self.files.sketch_encoder, self.config, self.dtype, "cpu")
            self.sketch_encoder.to("cpu" if self.low_vram else self.device)
        return self.sketch_encoder

    def _prompt_contexts(self, prompt: str):
        """Text and zero-image contexts, computed once per prompt; the towers go back to the CPU."""
        from ..tooncrafter.model import prompt_contexts

        if prompt not in self._prompt_cache:
            model = self.model
            with _torch().inference_mode(), self._on_device(model.cond_stage_model, model.embedder, model.image_proj_model):
                self._prompt_cache[prompt] = prompt_contexts(model, prompt)
        return self._prompt_cache[prompt]

    # -- one model pass ----------------------------------------------------------------------------

    def _pass(
        self, s: GenerationSettings, first: np.ndarray, last: np.ndarray, sketches: dict[int, np.ndarray], report, cancel
    ) -> list[np.ndarray]:
        """One generative pass between two canvas RGB images -> T canvas RGB uint8 frames."""
        torch = _torch()
        from ..tooncrafter.model import InterpolationNoise, InterpolationSettings, interpolate
        from ..tooncrafter.sampler import SamplerSettings
        from ..tooncrafter.sketch_hints import sketch_hint_clip

        fast = s.preset == "fast"
        settings = InterpolationSettings(
            sampler=SamplerSettings(
                steps=s.steps, eta=s.eta, cfg_scale=s.cfg_scale, guidance_rescale=s.guidance_rescale,
                batch_cond_uncond=fast,
            ),
            fs=s.motion,
            prompt=s.prompt,
            sketch_strength=s.sketch_strength,
            encode_all_frames=not fast,
        )
        cfg = self.config
        hint = encoder = None
        if sketches:
            encoder = self._load_sketch_encoder()
            hint = sketch_hint_clip(sketches, cfg.frames, cfg.height, cfg.width)
        model = self.model
        contexts = self._prompt_contexts(s.prompt)
        with torch.inference_mode():
            first_t, last_t = _to_model_input(first), _to_model_input(last)
            with self._on_device(model.embedder, model.image_proj_model):
                image = model.image_context(first_t)
            # The pass below recomputes nothing of the towers: its image context comes from `image`.
            noise = InterpolationNoise.seeded(s.seed, cfg, self.device)
            parts = [model.model, model.first_stage_model] + ([encoder] if encoder is not None else [])
            with self._on_device(*parts) if self.low_vram else contextlib.nullcontext():
                result = interpolate(
                    model, first_t, last_t, settings, noise,
                    contexts=contexts, image_context=image, sketch_hint=hint, sketch_encoder=encoder,
                    on_stage=report, cancel=cancel,
                )
        frames = result.frames[0].float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
        return [f.permute(1, 2, 0).cpu().numpy() for f in frames.unbind(1)]

    def _pass_with_retry(self, s, first, last, sketches, report, cancel) -> list[np.ndarray]:
        torch = _torch()
        try:
            return self._pass(s, first, last, sketches, report, cancel)
        except torch.cuda.OutOfMemoryError:
            if self.low_vram:
                raise EngineError(
                    "out of GPU memory even in low-VRAM mode: close other GPU programs or use --device cpu"
                ) from None
            torch.cuda.empty_cache()
            report("load", 0.0, "out of GPU memory: retrying in low-VRAM mode")
            self.low_vram = True
            self._place()
            return self._pass(s, first, last, sketches, report, cancel)

    # -- the Backend contract ------------------------------------------------------------------------

    def interpolate(self, task: InbetweenTask, progress: ProgressFn, cancel: CancelToken) -> list[np.ndarray]:
        from ..tooncrafter.fitting import (
            choose_key_colour,
            composite_on,
            fit_to_canvas,
            has_transparency,
            key_out,
        )

        key_a, key_b = task.key_start, task.key_end
        if key_a.shape != key_b.shape:
            raise EngineError(
                f"keyframes differ in size: {key_a.shape[1]}x{key_a.shape[0]} and {key_b.shape[1]}x{key_b.shape[0]}"
            )
        taus = [float(t) for t in task.taus]
        for tau in taus:
            if not 0.0 < tau < 1.0:
                raise EngineError(f"tau must be strictly between 0 and 1 (the keys themselves), got {tau}")
        cancel.check()
        cfg = self.config
        t = cfg.frames
        height, width = key_a.shape[:2]
        fit = fit_to_canvas(width, height, cfg.width, cfg.height)
        transparent = has_transparency(key_a, key_b)
        key_colour, key_distance = choose_key_colour(key_a, key_b) if transparent else (None, 0.0)

        def to_canvas(image: np.ndarray) -> np.ndarray:
            rgb = composite_on(image, key_colour) if transparent else image[..., :3]
            return fit.to_canvas(np.ascontiguousarray(rgb))

        def from_canvas(rgb: np.ndarray) -> np.ndarray:
            back = fit.from_canvas(rgb)
            if transparent:
                return key_out(back, key_colour, key_distance)
            return np.concatenate([back, np.full(back.shape[:2] + (1,), 255, np.uint8)], axis=-1)

        sketches: dict[int, np.ndarray] = {}
        sketch_taus: dict[int, float] = {}
        for tau, sketch in sorted(task.sketches.items()):
            if sketch.shape[:2] != key_a.shape[:2]:
                raise EngineError(
                    f"sketch at tau {tau:.3f} is {sketch.shape[1]}x{sketch.shape[0]}, the keyframes are {width}x{height}"
                )
            model_frame = nearest_model_frame(tau, t)
            if model_frame in sketch_taus:
                task.warnings.append(
                    f"the sketches at {sketch_taus[model_frame]:.0%} and {tau:.0%} of the way between the keys "
                    f"both land on model frame {model_frame} of {t}; only the one at {tau:.0%} is used"
                )
            sketch_taus[model_frame] = tau
            sketches[model_frame] = fit.to_canvas(sketch, pad="zero")

        settings = task.settings
        passes = 1 + (self._extra_passes_needed(taus) if settings.preset == "quality" else 0)
        reporter = _PassProgress(progress, passes)
        canvas_frames = self._pass_with_retry(settings, to_canvas(key_a), to_canvas(key_b), sketches, reporter.stage, cancel)
        grid = _ModelFrames([k / (t - 1) for k in range(t)], [key_a] + [from_canvas(f) for f in canvas_frames[1:-1]] + [key_b])

        if settings.preset == "quality":
            grid = self._refine(settings, grid, canvas_frames, taus, to_canvas, from_canvas, reporter, cancel)

        return self._answer(settings, grid, taus, reporter, cancel)

    def _extra_passes_needed(self, taus: Sequence[float]) -> int:
        return len({k for k in (self._interval(tau) for tau in taus) if k is not None})

    def _interval(self, tau: float) -> int | None:
        """Index k of the model-frame interval [k, k+1] holding an off-grid tau (None: on a frame)."""
        position = tau * (self.config.frames - 1)
        if abs(position - round(position)) <= TAU_EPSILON * (self.config.frames - 1):
            return None
        return int(math.floor(position))

    def _refine(self, settings, grid, canvas_frames, taus, to_canvas, from_canvas, reporter, cancel) -> _ModelFrames:
        """Quality preset: a generative pass between the model frames around each off-grid tau."""
        t = self.config.frames
        taus_out, images = list(grid.taus), list(grid.images)
        for k in sorted({k for k in (self._interval(tau) for tau in taus) if k is not None}):
            reporter.next_pass()
            first = canvas_frames[k] if k > 0 else to_canvas(grid.images[0])
            last = canvas_frames[k + 1] if k + 1 < t - 1 else to_canvas(grid.images[-1])
            finer = self._pass_with_retry(settings, first, last, {}, reporter.stage, cancel)
            lo = k / (t - 1)
            for j in range(1, t - 1):
                taus_out.append(lo + j / ((t - 1) * (t - 1)))
                images.append(from_canvas(finer[j]))
        order = sorted(range(len(taus_out)), key=taus_out.__getitem__)
        return _ModelFrames([taus_out[i] for i in order], [images[i] for i in order])

    def _answer(self, settings, grid: _ModelFrames, taus: Sequence[float], reporter: "_PassProgress", cancel) -> list:
        """Every requested tau: a grid frame when it sits on one, else RIFE between its neighbours
        (one RIFE call per pair of neighbours, for all the taus between them)."""
        out: list[np.ndarray | None] = [None] * len(taus)
        between: dict[int, list[tuple[int, float]]] = {}
        for n, tau in enumerate(taus):
            i = int(np.searchsorted(grid.taus, tau))
            if i < len(grid.taus) and abs(grid.taus[i] - tau) <= TAU_EPSILON:
                out[n] = grid.images[i].copy()
            elif abs(grid.taus[i - 1] - tau) <= TAU_EPSILON:
                out[n] = grid.images[i - 1].copy()
            else:
                local = (tau - grid.taus[i - 1]) / (grid.taus[i] - grid.taus[i - 1])
                between.setdefault(i, []).append((n, local))
        done = len(taus) - sum(len(v) for v in between.values())
        reporter.post(done / len(taus), "placing the model frames")
        for i, wanted in sorted(between.items()):
            cancel.check()
            task = InbetweenTask(grid.images[i - 1], grid.images[i], [t for _, t in wanted], settings)
            for (n, _), image in zip(wanted, self._rife_backend().interpolate(task, lambda *a: None, cancel)):
                out[n] = image
            done += len(wanted)
            reporter.post(done / len(taus), f"{done}/{len(taus)} in-betweens placed")
        return out

    def _rife_backend(self):
        from .rife import RifeBackend

        if self._rife is None:
            self._rife = RifeBackend(self.settings)
        return self._rife

    def describe(self) -> dict:
        files = self.files
        return {
            "backend": self.name,
            "model": self.config.name,
            "checkpoint": files.tooncrafter.name if files.tooncrafter else "in-memory model",
            "checkpoint_sha256": (self.store.sha256(files.tooncrafter) if files.tooncrafter else None) or "not recorded",
            "clip_checkpoint": files.clip.name if files.clip else None,
            "sketch_checkpoint": files.sketch_encoder.name if files.sketch_encoder else None,
            "device": self.device,
            "precision": str(self.dtype).removeprefix("torch."),
            "low_vram": self.low_vram,
            "model_frames": self.config.frames,
            "canvas": f"{self.config.width}x{self.config.height}",
        }


def _to_model_input(rgb: np.ndarray):
    """Canvas RGB uint8 (H, W, 3) -> (1, 3, H, W) float32 in [-1, 1], as the original scales it."""
    torch = _torch()
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()
    return ((tensor / 255.0 - 0.5) * 2).unsqueeze(0)


class _PassProgress:
    """Maps each pass's encode/denoise/decode progress onto the segment's 0..1 (placing the
    in-betweens, "post", takes the last few percent)."""

    WEIGHTS = {"load": (0.0, 0.0), "encode": (0.0, 0.05), "denoise": (0.05, 0.9), "decode": (0.9, 1.0)}
    PASSES_SHARE = 0.95

    def __init__(self, progress: ProgressFn, passes: int) -> None:
        self.progress = progress
        self.passes = max(passes, 1)
        self.current = 0

    def next_pass(self) -> None:
        self.current += 1

    def stage(self, stage: str, fraction: float, message: str) -> None:
        start, end = self.WEIGHTS.get(stage.split(" ")[0], (1.0, 1.0))
        within = start + (end - start) * min(max(fraction, 0.0), 1.0)
        overall = self.PASSES_SHARE * min((self.current + within) / self.passes, 1.0)
        prefix = f"pass {self.current + 1}/{self.passes}: " if self.passes > 1 else ""
        self.progress(stage, overall, prefix + message)

    def post(self, fraction: float, message: str) -> None:
        self.progress("post", self.PASSES_SHARE + (1 - self.PASSES_SHARE) * fraction, message)
