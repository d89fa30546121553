"""ToonCrafter on ONNX Runtime: the networks of an export folder behind the PyTorch call signatures.

`python -m export_onnx` writes a folder with one ONNX file per network and a manifest
(`onnx_export.json`). This module is the reading side of that folder and the one home of its
contract (file names, tensor names, manifest format), so the exporter imports it from here.

Every wrapper takes and returns torch tensors exactly like the module it stands for
(`ToonCrafterUNet`, `SketchEncoder`, `DualRefAutoencoder`, `CLIPTextEncoder`, `CLIPImageEncoder`,
`Resampler`), so the DDIM sampler and the interpolation pipeline run unchanged on them; the glue
that is not a network (CLIP resizing, posterior sampling, decode chunking and the two-pass
composition, the schedule) stays PyTorch code. Graphs keep float32 inputs and outputs whatever
precision their weights have (the casts are inside the graph), so callers never care.

Providers: CUDA first when onnxruntime has it, then CPU. Tensors cross as CPU numpy arrays; for the
sizes one sampling step moves (a few MB) the copy is negligible next to a UNet evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..api import EngineError
from .clip_preprocess import clip_preprocess
from .model import KeyframeLatents
from .networks.autoencoder import (
    DualRefAutoencoder,
    DualRefAutoencoderConfig,
    LatentPosterior,
    VAEEncoding,
    keyframe_references,
    video_references,
)
from .networks.config import ToonCrafterConfig
from .networks.resampler import ResamplerConfig
from .networks.sketch_encoder import SketchEncoderConfig
from .networks.unet import UNetConfig
from .sampler import Conditioning, DDIMSampler
from .schedule import DiffusionConfig, schedule_buffers

#: The manifest every export folder carries.
MANIFEST_NAME = "onnx_export.json"
#: Bumped whenever a graph's tensors or the manifest change meaning; older folders are refused.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class GraphInterface:
    """File and tensor names of one exported network (inputs in call order)."""

    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def control_names(count: int) -> tuple[str, ...]:
    return tuple(f"control_{i:02d}" for i in range(count))


def graph_interfaces(num_control: int, num_hidden: int) -> dict[str, GraphInterface]:
    """The contract between exporter and runtime. `num_control`: sketch residuals (13 for the released
    model); `num_hidden`: VAE feature maps handed to the dual-reference decoder (5)."""
    hidden = tuple(f"hidden_{i}" for i in range(num_hidden))
    refs = tuple(f"ref_{i}" for i in range(num_hidden))
    controls = control_names(num_control)
    return {
        "unet": GraphInterface("unet.onnx", ("x", "timesteps", "context", "fs"), ("v",)),
        "unet_sketch": GraphInterface("unet_sketch.onnx", ("x", "timesteps", "context", "fs", *controls), ("v",)),
        "sketch_encoder": GraphInterface("sketch_encoder.onnx", ("x", "hint", "timesteps", "context"), controls),
        "vae_encoder": GraphInterface("vae_encoder.onnx", ("frames",), ("mean", "logvar", *hidden)),
        "vae_decoder": GraphInterface("vae_decoder.onnx", ("z", *refs), ("frames",)),
        "resampler": GraphInterface("resampler.onnx", ("clip_tokens",), ("image_context",)),
        "clip_text": GraphInterface("clip_text.onnx", ("tokens",), ("context",)),
        "clip_image": GraphInterface("clip_image.onnx", ("pixels",), ("clip_tokens",)),
    }

#: Networks the interpolation path cannot run without.
REQUIRED_GRAPHS = ("unet", "vae_encoder", "vae_decoder", "resampler", "clip_text", "clip_image")


class OnnxExportError(EngineError):
    """An export folder that cannot be used; the message names the folder and what is wrong."""


# ----------------------------------------------------------------------------------------------
# The configuration stored in the manifest


def config_to_dict(config: ToonCrafterConfig) -> dict[str, Any]:
    """A JSON-able form of the whole model configuration (read back by `config_from_dict`)."""
    return asdict(config)


def config_from_dict(data: Mapping[str, Any]) -> ToonCrafterConfig:
    top = {f.name for f in fields(ToonCrafterConfig)}
    unknown = set(data) - top
    if unknown:
        raise ValueError(f"unknown model settings {sorted(unknown)}")
    diffusion = DiffusionConfig(**data["diffusion"])
    return ToonCrafterConfig(
        unet=UNetConfig.from_dict(data["unet"]),
        first_stage=DualRefAutoencoderConfig.from_dict(data["first_stage"]),
        open_clip=data["open_clip"],
        image_proj=ResamplerConfig.from_dict(data["image_proj"]),
        diffusion=diffusion,
        sketch_encoder=SketchEncoderConfig.from_dict(data["sketch_encoder"]),
        frames=data["frames"],
        width=data["width"],
        height=data["height"],
        name=data["name"],
    )


def num_control_residuals(config: ToonCrafterConfig) -> int:
    return config.sketch_encoder.num_residuals


def num_hidden_maps(config: ToonCrafterConfig) -> int:
    return len(config.first_stage.ch_mult) + 1


# ----------------------------------------------------------------------------------------------
# Sessions


def default_providers() -> list[str]:
    """CUDA when this onnxruntime build has it, CPU always as the fallback."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


class GraphSession:
    """One ONNX file in an onnxruntime session, fed and read as torch tensors by name."""

    def __init__(
        self, path: Path, interface: GraphInterface, providers: Sequence[str] | None = None, precision: str = "fp32"
    ) -> None:
        import onnxruntime as ort

        if not path.is_file():
            raise OnnxExportError(f"{path} is missing from the ONNX export folder (export it again)")
        options = ort.SessionOptions()
        # Sampling alternates PyTorch steps with graph runs; onnxruntime's worker threads would
        # otherwise keep spinning after each run and starve PyTorch's threads of the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if precision == "fp16":
            # onnxruntime 1.32's CPU layout optimisations (the level above EXTENDED) crash the process
            # on these float16 graphs; EXTENDED keeps every fusion and runs them.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        try:
            self.session = ort.InferenceSession(str(path), options, providers=list(providers or default_providers()))
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            raise OnnxExportError(f"onnxruntime cannot load {path}: {exc}") from None
        self.path = path
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        unexpected = sorted(set(inputs) - set(interface.inputs))
        if unexpected or outputs != list(interface.outputs):
            raise OnnxExportError(
                f"{path} does not have the expected tensors: inputs {sorted(inputs)} (expected a subset of "
                f"{list(interface.inputs)}), outputs {outputs} (expected {list(interface.outputs)})"
            )
        self.input_types = {name: _NUMPY_TYPES.get(i.type, np.float32) for name, i in inputs.items()}

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, **tensors: torch.Tensor | None) -> list[torch.Tensor]:
        """Feed the named tensors the graph declares (others are ignored: e.g. an unused fs)."""
        feed = {}
        for name, dtype in self.input_types.items():
            value = tensors.get(name)
            if value is None:
                raise ValueError(f"{self.path.name} needs the input {name!r}")
            feed[name] = np.ascontiguousarray(value.detach().cpu().numpy().astype(dtype, copy=False))
        return [torch.from_numpy(np.asarray(out)) for out in self.session.run(None, feed)]


def _device_of(reference: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.to(reference.device) for t in tensors]


# ----------------------------------------------------------------------------------------------
# The networks


class OnnxUNet:
    """`ToonCrafterUNet(x, timesteps, context, fs, control)` on the exported graphs.

    The export fixes the frame count and the context length (77 text tokens + 16 image tokens per
    frame): the per-frame image context is what the released model needs, so a context of any other
    length is refused here instead of silently computed differently.
    """

    def __init__(self, plain: GraphSession, controlled: GraphSession | None, config: ToonCrafterConfig) -> None:
        self.plain = plain
        self.controlled = controlled
        self.config = config.unet
        self.frames = config.frames
        self.num_control = num_control_residuals(config)

    @property
    def context_length(self) -> int:
        return self.config.text_context_len + self.config.image_tokens_per_frame * self.frames

    def __call__(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        fs: torch.Tensor | None = None,
        control: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        b = x.shape[0]
        if x.ndim != 5 or x.shape[1] != self.config.in_channels or x.shape[2] != self.frames:
            raise ValueError(
                f"the exported UNet takes (B, {self.config.in_channels}, {self.frames}, h, w), got {tuple(x.shape)}"
            )
        if context.shape[1] != self.context_length:
            raise ValueError(
                f"the exported UNet takes a context of {self.context_length} tokens "
                f"({self.config.text_context_len} text + {self.config.image_tokens_per_frame} per frame), "
                f"got {context.shape[1]}"
            )
        timesteps = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
        if fs is None:
            fs = torch.full((b,), self.config.default_fs, dtype=torch.long)
        feed = {"x": x, "timesteps": timesteps.long(), "context": context, "fs": fs.long()}
        if control is None:
            (v,) = self.plain.run(**feed)
        else:
            if self.controlled is None:
                raise OnnxExportError("sketch residuals were given but the export folder has no unet_sketch.onnx")
            if len(control) != self.num_control:
                raise ValueError(f"control must hold {self.num_control} residuals, got {len(control)}")
            (v,) = self.controlled.run(**feed, **dict(zip(control_names(self.num_control), control)))
        return v.to(x.device, x.dtype)


class OnnxSketchEncoder:
    """`SketchEncoder(x, hint, timesteps, context, strength)` on the exported graph."""

    def __init__(self, session: GraphSession, config: ToonCrafterConfig) -> None:
        self.session = session
        self.config = config.sketch_encoder

    def __call__(
        self,
        x: torch.Tensor,
        hint: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        strength: float = 1.0,
    ) -> list[torch.Tensor]:
        b = x.shape[0]
        timesteps = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
        residuals = self.session.run(x=x, hint=hint, timesteps=timesteps.long(), context=context)
        residuals = _device_of(x, *residuals)
        return [r * strength for r in residuals] if strength != 1.0 else residuals


class OnnxDecoder:
    """`DualRefDecoder(z, references, num_frames)`: z (B·T, z, h, w) unscaled, five maps (B, C, 2, H, W)."""

    def __init__(self, session: GraphSession) -> None:
        self.session = session

    def __call__(self, z: torch.Tensor, references: Sequence[torch.Tensor], num_frames: int) -> torch.Tensor:
        if z.shape[0] != references[0].shape[0] * num_frames:
            raise ValueError(
                f"{z.shape[0]} latent frames do not make {references[0].shape[0]} videos of {num_frames} frames"
            )
        refs = {f"ref_{i}": r for i, r in enumerate(references)}
        (frames,) = self.session.run(z=z, **refs)
        return frames.to(z.device)


class OnnxAutoencoder:
    """The first stage with `DualRefAutoencoder`'s methods: encode, scaled_latents, decode, decode_two_pass.

    Decoding reuses the PyTorch class's own chunking and two-pass code on the exported decoder, so
    the reference maps land on exactly the frames they land on in PyTorch.
    """

    def __init__(self, encoder: GraphSession, decoder: GraphSession, config: DualRefAutoencoderConfig) -> None:
        self.encoder_session = encoder
        self.decoder = OnnxDecoder(decoder)
        self.config = config

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.config.ch_mult) - 1)

    def encode(self, frames: torch.Tensor) -> VAEEncoding:
        if frames.ndim != 4 or frames.shape[1] != self.config.in_channels:
            raise ValueError(f"VAE encode expects (N, {self.config.in_channels}, H, W) frames, got {tuple(frames.shape)}")
        if frames.shape[-2] % self.downscale or frames.shape[-1] % self.downscale:
            raise ValueError(f"frame size {frames.shape[-1]}x{frames.shape[-2]} is not a multiple of {self.downscale}")
        mean, logvar, *hidden = _device_of(frames, *self.encoder_session.run(frames=frames))
        return VAEEncoding(LatentPosterior(mean, logvar), hidden)

    def scaled_latents(self, posterior: LatentPosterior, noise: torch.Tensor | None = None) -> torch.Tensor:
        return DualRefAutoencoder.scaled_latents(self, posterior, noise)

    def decode(
        self, latents: torch.Tensor, references: Sequence[torch.Tensor], chunk_frames: int | None = None
    ) -> torch.Tensor:
        return DualRefAutoencoder.decode(self, latents, references, chunk_frames)

    def decode_two_pass(self, latents: torch.Tensor, references: Sequence[torch.Tensor]):
        return DualRefAutoencoder.decode_two_pass(self, latents, references)


class OnnxTextEncoder:
    """`CLIPTextEncoder`: tokenize (open_clip's tokenizer) and tokens (B, 77) -> context (B, 77, D)."""

    def __init__(self, session: GraphSession, context_length: int) -> None:
        self.session = session
        self.context_length = context_length

    def tokenize(self, prompts: str | Sequence[str]) -> torch.Tensor:
        from engine.torch_compat import import_open_clip

        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        return import_open_clip().tokenize(prompts, context_length=self.context_length)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[1] != self.context_length:
            raise ValueError(f"text encoder expects (B, {self.context_length}) tokens, got {tuple(tokens.shape)}")
        (context,) = self.session.run(tokens=tokens.long())
        return context.to(tokens.device)

    def encode(self, prompts: str | Sequence[str]) -> torch.Tensor:
        return self(self.tokenize(prompts))


class OnnxImageEncoder:
    """`CLIPImageEncoder`: preprocessed pixels (B, 3, S, S) -> visual tokens; `encode` resizes first."""

    def __init__(self, session: GraphSession, image_size: int) -> None:
        self.session = session
        self.image_size = image_size

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        (tokens,) = self.session.run(pixels=pixels)
        return tokens.to(pixels.device)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self(clip_preprocess(images, self.image_size))


class OnnxResampler:
    def __init__(self, session: GraphSession) -> None:
        self.session = session

    def __call__(self, clip_tokens: torch.Tensor) -> torch.Tensor:
        (context,) = self.session.run(clip_tokens=clip_tokens)
        return context.to(clip_tokens.device)


# ----------------------------------------------------------------------------------------------
# The folder as a model


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of an export folder, checked for existence and format version."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OnnxExportError(f"ONNX export folder {folder} does not exist (run `python -m export_onnx`)")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise OnnxExportError(f"{folder} is not an ONNX export folder: {MANIFEST_NAME} is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OnnxExportError(f"{path} is unreadable: {exc}") from None
    version = manifest.get("format")
    if version != FORMAT_VERSION:
        raise OnnxExportError(
            f"{path} has export format {version!r}; this engine reads format {FORMAT_VERSION}: export the model again"
        )
    return manifest


class OnnxToonCrafter:
    """The parts of `ToonCrafterModel` the interpolation pipeline uses, running on ONNX Runtime.

    Same names and signatures: `config`, `unet`, `first_stage_model`, `cond_stage_model`, `embedder`,
    `image_proj_model`, `sketch_encoder` (None without a sketch export), `text_context`,
    `image_context`, `unconditional_image_context`, `encode_keyframes`, `decode`, `predict_v`,
    `sampler`. Tensors live on the CPU (`device`); onnxruntime moves them to its provider.
    """

    device = torch.device("cpu")

    def __init__(self, folder: str | Path, providers: Sequence[str] | None = None) -> None:
        self.folder = Path(folder)
        self.manifest = manifest = read_manifest(self.folder)
        if "config" not in manifest:
            raise OnnxExportError(f"{self.folder} holds no ToonCrafter export (only {sorted(manifest.get('graphs', {}))})")
        try:
            self.config = config = config_from_dict(manifest["config"])
            text_length, image_size = int(manifest["text_context_length"]), int(manifest["clip_image_size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise OnnxExportError(f"{self.folder / MANIFEST_NAME} has an unusable model config: {exc!r}") from None
        graphs = manifest.get("graphs", {})
        missing = [name for name in REQUIRED_GRAPHS if name not in graphs]
        if missing:
            raise OnnxExportError(f"{self.folder} lacks the exported {', '.join(missing)} (export them again)")
        self.providers = list(providers or default_providers())
        interfaces = graph_interfaces(num_control_residuals(config), num_hidden_maps(config))

        def session(name: str) -> GraphSession | None:
            if name not in graphs:
                return None
            return GraphSession(self.folder / interfaces[name].file, interfaces[name], self.providers, self.precision)

        self.unet = OnnxUNet(session("unet"), session("unet_sketch"), config)
        sketch = session("sketch_encoder")
        self.sketch_encoder = OnnxSketchEncoder(sketch, config) if sketch is not None else None
        self.first_stage_model = OnnxAutoencoder(session("vae_encoder"), session("vae_decoder"), config.first_stage)
        self.cond_stage_model = OnnxTextEncoder(session("clip_text"), text_length)
        self.embedder = OnnxImageEncoder(session("clip_image"), image_size)
        self.image_proj_model = OnnxResampler(session("resampler"))
        self._schedule = schedule_buffers(config.diffusion)

    @property
    def precision(self) -> str:
        return self.manifest.get("precision", "fp32")

    def sampler(self) -> DDIMSampler:
        return DDIMSampler.from_buffers(self._schedule)

    def text_context(self, prompts: str | list[str] | torch.Tensor) -> torch.Tensor:
        tokens = prompts if isinstance(prompts, torch.Tensor) else self.cond_stage_model.tokenize(prompts)
        return self.cond_stage_model(tokens)

    def image_context(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_proj_model(self.embedder.encode(images.float()))

    def unconditional_image_context(self, batch: int = 1) -> torch.Tensor:
        size = self.embedder.image_size
        return self.image_context(torch.zeros(batch, 3, size, size))

    def encode_keyframes(
        self, first: torch.Tensor, last: torch.Tensor, posterior_noise: torch.Tensor, encode_all_frames: bool = True
    ) -> KeyframeLatents:
        """As `ToonCrafterModel.encode_keyframes`: c_concat, reference maps and (parity) all latents."""
        t = self.config.frames
        vae = self.first_stage_model
        first, last, posterior_noise = (x.float().cpu() for x in (first, last, posterior_noise))
        if encode_all_frames:
            video = torch.cat([first.expand(t // 2, -1, -1, -1), last.expand(t - t // 2, -1, -1, -1)])
            encoding = vae.encode(video)
            z = vae.scaled_latents(encoding.posterior, posterior_noise)
            references = video_references(encoding.hidden_states, t)
            z_video = z.unsqueeze(0).transpose(1, 2)
            z_first, z_last = z_video[:, :, 0], z_video[:, :, -1]
        else:
            encoding = vae.encode(torch.cat([first, last]))
            z = vae.scaled_latents(encoding.posterior, torch.stack([posterior_noise[0], posterior_noise[-1]]))
            hidden = encoding.hidden_states
            references = keyframe_references([h[0:1] for h in hidden], [h[1:2] for h in hidden])
            z_video = None
            z_first, z_last = z[0:1], z[1:2]
        c_concat = torch.zeros(1, z_first.shape[1], t, *z_first.shape[2:])
        c_concat[:, :, 0] = z_first
        c_concat[:, :, -1] = z_last
        return KeyframeLatents(c_concat, references, z_video)

    def decode(self, latents: torch.Tensor, references: list[torch.Tensor], two_pass: bool = True) -> torch.Tensor:
        latents = latents.float().cpu()
        if two_pass:
            return self.first_stage_model.decode_two_pass(latents, references).frames
        return self.first_stage_model.decode(latents, references)

    def predict_v(self, x: torch.Tensor, t: torch.Tensor, cond: Conditioning, sketch_encoder=None) -> torch.Tensor:
        """As `ToonCrafterModel.predict_v`; `sketch_encoder` defaults to the folder's own."""
        control = None
        if cond.sketch_hint is not None:
            encoder = sketch_encoder or self.sketch_encoder
            if encoder is None:
                raise OnnxExportError(f"a sketch hint was given but {self.folder} has no exported sketch encoder")
            control = encoder(x, cond.sketch_hint, t, cond.context, cond.sketch_strength)
        return self.unet(torch.cat([x, cond.c_concat.to(x.dtype)], dim=1), t, cond.context, cond.fs, control=control)


def load_onnx_model(folder: str | Path, providers: Sequence[str] | None = None) -> OnnxToonCrafter:
    """Open a ToonCrafter export folder (raises OnnxExportError naming what is missing or wrong)."""
    return OnnxToonCrafter(folder, providers)

