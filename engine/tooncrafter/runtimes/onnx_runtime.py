"""ToonCrafter on ONNX Runtime: the model contract on an export folder's graphs, and its runner.

`OnnxNetworks` answers the contract (runtimes/contract.py) with one onnxruntime session per exported
network; everything between the networks is the shared code of interpolation.py, exactly as on
PyTorch. Graphs keep float32 inputs and outputs whatever precision their weights have (the casts
are inside the graph), so fp16 exports need nothing special here. The export fixes the frame count
and the context length (77 text tokens + 16 image tokens per frame, the released model's layout):
a context of another length is refused instead of silently computed differently.

`OnnxRunner` opens the export folder of the installed weights (or one given by path), with the
execution providers of `onnx_sessions.plan_providers`, and reports which provider really runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ...api import EngineError, GenerationSettings
from ..networks.autoencoder import LatentPosterior
from ..schedule import schedule_buffers
from .onnx_folder import (
    MANIFEST_NAME,
    REQUIRED_GRAPHS,
    OnnxExportError,
    config_from_dict,
    control_names,
    graph_interfaces,
    num_control_residuals,
    num_hidden_maps,
    read_manifest,
)
from .onnx_sessions import GraphSession, ProviderPlan, plan_providers, session_summary
from .runner import ModelRunner


class OnnxNetworks:
    """The model contract on an export folder (see runtimes/contract.py)."""

    def __init__(self, folder: str | Path, plan: ProviderPlan | Sequence[str] | None = None) -> None:
        self.folder = Path(folder)
        self.manifest = manifest = read_manifest(self.folder)
        if "config" not in manifest:
            raise OnnxExportError(f"{self.folder} holds no ToonCrafter export (only {sorted(manifest.get('graphs', {}))})")
        try:
            self.config = config = config_from_dict(manifest["config"])
            self._text_length, self._image_size = int(manifest["text_context_length"]), int(manifest["clip_image_size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise OnnxExportError(f"{self.folder / MANIFEST_NAME} has an unusable model config: {exc!r}") from None
        graphs = manifest.get("graphs", {})
        missing = [name for name in REQUIRED_GRAPHS if name not in graphs]
        if missing:
            raise OnnxExportError(f"{self.folder} lacks the exported {', '.join(missing)} (export them again)")
        if plan is None or not isinstance(plan, ProviderPlan):
            plan = ProviderPlan([(name, {}) for name in plan]) if plan else plan_providers("auto", self.precision)
        self.plan = plan
        # Tensors live on the GPU between runs only when PyTorch can hold them there too.
        gpu = plan.wants_gpu and torch.cuda.is_available()
        self._device = torch.device("cuda", plan.device_id) if gpu else torch.device("cpu")
        interfaces = graph_interfaces(num_control_residuals(config), num_hidden_maps(config))
        self.sessions: dict[str, GraphSession | None] = {}
        for name in interfaces:
            if name in graphs:
                self.sessions[name] = GraphSession(
                    self.folder / interfaces[name].file, interfaces[name], plan, self.precision, self._device
                )
            else:
                self.sessions[name] = None
        if not self.sessions["unet"].runs_on_gpu:
            self._device = torch.device("cpu")  # the GPU providers did not load: nothing to keep there
            for session in self.sessions.values():
                if session is not None:
                    session.device = self._device
        self._schedule = schedule_buffers(config.diffusion)
        self._num_control = num_control_residuals(config)

    @property
    def precision(self) -> str:
        return self.manifest.get("precision", "fp32")

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def has_sketch_encoder(self) -> bool:
        return self.sessions["sketch_encoder"] is not None and self.sessions["unet_sketch"] is not None

    @property
    def text_context_length(self) -> int:
        return self._text_length

    @property
    def clip_image_size(self) -> int:
        return self._image_size

    @property
    def providers(self) -> dict[str, str]:
        """graph -> the execution provider that really runs it."""
        return session_summary(self.sessions)

    @property
    def warnings(self) -> list[str]:
        return [w for s in self.sessions.values() if s is not None for w in s.warnings] + list(self.plan.notes)

    @property
    def context_length(self) -> int:
        unet = self.config.unet
        return unet.text_context_len + unet.image_tokens_per_frame * self.config.frames

    def _run(self, graph: str, **tensors: torch.Tensor) -> list[torch.Tensor]:
        return self.sessions[graph].run(**tensors)

    def tokenize(self, prompts: Sequence[str]) -> torch.Tensor:
        from engine.torch_compat import import_open_clip

        return import_open_clip().tokenize(list(prompts), context_length=self._text_length)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[1] != self._text_length:
            raise ValueError(f"text encoder expects (B, {self._text_length}) tokens, got {tuple(tokens.shape)}")
        return self._run("clip_text", tokens=tokens)[0]

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._run("clip_image", pixels=pixels)[0]

    def resample_image_tokens(self, clip_tokens: torch.Tensor) -> torch.Tensor:
        return self._run("resampler", clip_tokens=clip_tokens)[0]

    def encode_frames(self, frames: torch.Tensor) -> tuple[LatentPosterior, list[torch.Tensor]]:
        stage = self.config.first_stage
        down = 2 ** (len(stage.ch_mult) - 1)
        if frames.ndim != 4 or frames.shape[1] != stage.in_channels:
            raise ValueError(f"VAE encode expects (N, {stage.in_channels}, H, W) frames, got {tuple(frames.shape)}")
        if frames.shape[-2] % down or frames.shape[-1] % down:
            raise ValueError(f"frame size {frames.shape[-1]}x{frames.shape[-2]} is not a multiple of {down}")
        mean, logvar, *hidden = self._run("vae_encoder", frames=frames)
        return LatentPosterior(mean, logvar), hidden

    def decode_frames(self, z: torch.Tensor, references: Sequence[torch.Tensor], num_frames: int) -> torch.Tensor:
        if z.shape[0] != references[0].shape[0] * num_frames:
            raise ValueError(f"{z.shape[0]} latent frames do not make {references[0].shape[0]} videos of {num_frames} frames")
        return self._run("vae_decoder", z=z, **{f"ref_{i}": r for i, r in enumerate(references)})[0]

    def unet(self, x, timesteps, context, fs=None, control=None) -> torch.Tensor:
        unet = self.config.unet
        b = x.shape[0]
        if x.ndim != 5 or x.shape[1] != unet.in_channels or x.shape[2] != self.config.frames:
            raise ValueError(f"the exported UNet takes (B, {unet.in_channels}, {self.config.frames}, h, w), got {tuple(x.shape)}")
        if context.shape[1] != self.context_length:
            raise ValueError(
                f"the exported UNet takes a context of {self.context_length} tokens "
                f"({unet.text_context_len} text + {unet.image_tokens_per_frame} per frame), got {context.shape[1]}"
            )
        timesteps = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
        if fs is None:
            fs = torch.full((b,), unet.default_fs, dtype=torch.long, device=x.device)
        feed = {"x": x, "timesteps": timesteps, "context": context, "fs": fs}
        if control is None:
            return self._run("unet", **feed)[0]
        if self.sessions["unet_sketch"] is None:
            raise OnnxExportError(f"sketch residuals were given but {self.folder} has no unet_sketch.onnx")
        if len(control) != self._num_control:
            raise ValueError(f"control must hold {self._num_control} residuals, got {len(control)}")
        return self._run("unet_sketch", **feed, **dict(zip(control_names(self._num_control), control)))[0]

    def sketch_residuals(self, x, hint, timesteps, context) -> list[torch.Tensor]:
        if self.sessions["sketch_encoder"] is None:
            raise OnnxExportError(f"a sketch hint was given but {self.folder} has no exported sketch encoder")
        timesteps = timesteps.reshape(-1).expand(x.shape[0]) if timesteps.numel() == 1 else timesteps
        return self._run("sketch_encoder", x=x, hint=hint, timesteps=timesteps, context=context)

    def schedule_buffers(self) -> dict[str, torch.Tensor]:
        return self._schedule


def load_onnx_model(folder: str | Path, providers: ProviderPlan | Sequence[str] | None = None) -> OnnxNetworks:
    """Open a ToonCrafter export folder (raises OnnxExportError naming what is missing or wrong)."""
    return OnnxNetworks(folder, providers)


class OnnxRunner(ModelRunner):
    """The ONNX Runtime runtime: an export folder in sessions on the best provider that loads."""

    runtime = "onnx"

    def __init__(self, settings: GenerationSettings, folder: Path, trt_cache: Path | None = None) -> None:
        super().__init__()
        self.folder = folder
        manifest = read_manifest(folder)
        plan = plan_providers(settings.device, manifest.get("precision", "fp32"), trt_cache)
        self._net = OnnxNetworks(folder, plan)
        self.notes = self._net.warnings

    @property
    def net(self) -> OnnxNetworks:
        return self._net

    def _require_sketch_encoder(self) -> None:
        if not self._net.has_sketch_encoder:
            raise EngineError(
                f"sketch guidance needs the sketch encoder in the ONNX export {self.folder}: install the sketch "
                "encoder weights and run `inbetween models export-onnx` again"
            )

    def describe(self) -> dict:
        providers = self._net.providers
        return {
            "runtime": self.runtime,
            "onnx_export": str(self.folder),
            "device": str(self._net.device),
            "execution_provider": providers.get("unet"),
            "execution_providers": providers,
            "precision": self._net.precision,
            "provider_notes": self.notes,
        }
