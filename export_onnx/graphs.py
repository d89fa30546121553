"""What gets exported: each network behind a flat tensor signature, with example and check inputs.

An adapter module gives the exporter plain tensors in and out (names from the runtime's contract in
`engine.tooncrafter.runtimes.onnx_folder`) and keeps float32 at the graph's edges whatever precision the
weights have. A `GraphSpec` adds the example inputs the graph is traced with, which axes stay
dynamic, and the input sets the check feeds: the example, a second shape (so the dynamic axes are
really exercised), and for the tiny reference model the golden cases with their recorded outputs.

Fixed at export (by design, and checked by the runtime wrappers): the frame count T and the context
length 77 + 16·T of the UNet and the sketch encoder (the per-frame image context of the released
model), the CLIP image size and token count, the 77 text tokens. RIFE is exported for one frame
size (see `rife_spec`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from engine.tooncrafter.clip_preprocess import clip_preprocess
from engine.tooncrafter.frames import clip_to_frames
from engine.tooncrafter.networks.autoencoder import keyframe_references
from engine.tooncrafter.runtimes.onnx_folder import GraphInterface, graph_interfaces, num_control_residuals, num_hidden_maps

from .sources import RifeSource, ToonCrafterSource

#: The RIFE flow network (default variant), exported for one frame size.
RIFE_INTERFACE = GraphInterface("rife.onnx", ("key_a", "key_b", "tau"), ("flow", "mask"))
#: Latent size (h, w) the ToonCrafter graphs are traced at: small, so tracing the full model is
#: cheap, even at every UNet level (16x24 -> 8x12 -> 4x6 -> 2x3) and not square.
EXAMPLE_LATENT = (16, 24)
#: Batch of the example inputs: 2, because tracers may specialise an axis of size 1.
EXAMPLE_BATCH = 2
#: The export parts a user can pick, and the graphs each one makes.
PARTS = {
    "clip": ("clip_text", "clip_image"),
    "resampler": ("resampler",),
    "vae": ("vae_encoder", "vae_decoder"),
    "sketch": ("sketch_encoder", "unet_sketch"),
    "unet": ("unet",),
    "rife": ("rife",),
}
#: The parts of the loaded model each graph needs: a part is freed once no later graph needs it.
GRAPH_USES = {
    "clip_text": ("cond_stage_model",),
    "clip_image": ("embedder",),
    "resampler": ("image_proj_model",),
    "vae_encoder": ("first_stage_model",),
    "vae_decoder": ("first_stage_model",),
    "sketch_encoder": ("sketch_encoder",),
    "unet": ("model",),
    "unet_sketch": ("model",),
    "rife": (),
}


@dataclass
class InputSet:
    """One set of inputs the check feeds; `golden` holds outputs recorded by the reference code."""

    label: str
    inputs: tuple[torch.Tensor, ...]
    golden: dict[str, torch.Tensor] = field(default_factory=dict)
    golden_tolerance: float | None = None


@dataclass
class GraphSpec:
    name: str
    interface: GraphInterface
    module: nn.Module
    example: tuple[torch.Tensor, ...]
    dynamic_axes: dict[str, dict[int, str]]
    checks: list[InputSet]
    info: dict[str, Any] = field(default_factory=dict)
    #: an exporter this graph must use whatever the settings say (None: the settings' choice)
    exporter: str | None = None
    #: entered around tracing, for networks with state that tracing must not see or keep
    tracing_context: Callable[[], AbstractContextManager] = contextlib.nullcontext


# ----------------------------------------------------------------------------------------------
# Adapters


class UNetGraph(nn.Module):
    """The UNet with its sketch residuals as trailing positional inputs (none: the plain graph)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x, timesteps, context, fs, *control):
        return self.unet(x, timesteps, context, fs, control=list(control) if control else None).float()


class SketchEncoderGraph(nn.Module):
    """The 13 residuals at strength 1 (the runtime scales them, as SketchEncoder does)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x, hint, timesteps, context):
        return tuple(r.float() for r in self.encoder(x, hint, timesteps, context))


class VAEEncoderGraph(nn.Module):
    """Frames -> posterior mean, clamped logvar and the five feature maps (after quant_conv)."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, frames):
        encoding = self.vae.encode(frames.to(self.vae.quant_conv.weight.dtype))
        posterior = encoding.posterior
        return (posterior.mean.float(), posterior.logvar.float(), *(h.float() for h in encoding.hidden_states))


class VAEDecoderGraph(nn.Module):
    """`DualRefDecoder(z, references, num_frames)` with num_frames = frames per reference pair."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.decoder = vae.decoder
        self.dtype = vae.quant_conv.weight.dtype

    def forward(self, z, *references):
        num_frames = z.shape[0] // references[0].shape[0]
        refs = [r.to(self.dtype) for r in references]
        return self.decoder(z.to(self.dtype), refs, num_frames).float()


class FloatOutput(nn.Module):
    """A one-input network whose output is brought to float32 (Resampler, CLIP towers)."""

    def __init__(self, module: nn.Module, input_dtype: torch.dtype | None) -> None:
        super().__init__()
        self.module = module
        self.input_dtype = input_dtype

    def forward(self, x):
        if self.input_dtype is not None:
            x = x.to(self.input_dtype)
        return self.module(x).float()


class RifeGraph(nn.Module):
    """IFNet's own forward (the released arithmetic) at a fixed pyramid scale."""

    def __init__(self, network: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        self.network = network
        self.scale = scale

    def forward(self, key_a, key_b, tau):
        return self.network(key_a, key_b, tau, self.scale)


# ----------------------------------------------------------------------------------------------
# Specs


def _batch_axes(*names: str) -> dict[str, dict[int, str]]:
    return {name: {0: "batch"} for name in names}


class ToonCrafterGraphs:
    """Builds the specs of one source's graphs (in an order that lets big parts be freed early)."""

    def __init__(self, source: ToonCrafterSource, seed: int = 0) -> None:
        self.source = source
        self.config = source.config
        self.interfaces = graph_interfaces(num_control_residuals(self.config), num_hidden_maps(self.config))
        self.generator = torch.Generator().manual_seed(seed)
        self._example_controls: tuple[torch.Tensor, ...] | None = None

    # -- helpers ---------------------------------------------------------------------------------

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator)

    def golden(self, case: str, name: str) -> torch.Tensor | None:
        """A tensor of a golden case by its contract name (None without golden data)."""
        source = self.source
        if source.golden is None or case not in source.golden_cases:
            return None
        contract = source.golden_cases[case]
        entry = {**contract.get("inputs", {}), **contract.get("outputs", {}), **(contract.get("intermediates") or {})}
        key = entry.get(name, {}).get("key")
        return source.golden.get(key) if key else None

    def golden_tolerance(self, case: str) -> float | None:
        return self.source.golden_cases.get(case, {}).get("suggested_atol")

    @property
    def context_length(self) -> int:
        unet = self.config.unet
        return unet.text_context_len + unet.image_tokens_per_frame * self.config.frames

    @property
    def canvas_latent(self) -> tuple[int, int]:
        shape = self.config.latent_shape()
        return shape[3], shape[4]

    def unet_inputs(self, batch: int, latent: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        cfg = self.config
        x = self.randn(batch, cfg.unet.in_channels, cfg.frames, *latent)
        timesteps = torch.tensor([999, 519, 39, 0][:batch] + [250] * max(0, batch - 4))
        context = self.randn(batch, self.context_length, cfg.unet.context_dim)
        fs = torch.tensor([10, 24, 5, 30][:batch] + [10] * max(0, batch - 4))
        return x, timesteps, context, fs

    # -- the graphs ------------------------------------------------------------------------------

    def build(self, name: str) -> GraphSpec:
        return getattr(self, f"_{name}")()

    def _clip_text(self) -> GraphSpec:
        encoder = self.source.model.cond_stage_model
        tokens = encoder.tokenize(["an anime scene", ""])
        vocabulary = encoder.model.token_embedding.num_embeddings
        random_tokens = torch.randint(0, vocabulary, (3, encoder.context_length), generator=self.generator)
        checks = [InputSet("random tokens, batch 3", (random_tokens,))]
        golden = self.golden("text_encode", "tokens")
        if golden is not None:
            expected = {"context": self.golden("text_encode", "context")}
            checks.append(InputSet("golden text_encode", (golden,), expected, self.golden_tolerance("text_encode")))
        return GraphSpec(
            "clip_text", self.interfaces["clip_text"], FloatOutput(encoder, None), (tokens,),
            _batch_axes("tokens", "context"), checks,
            info={"context_length": encoder.context_length},
        )

    def _clip_image(self) -> GraphSpec:
        encoder = self.source.model.embedder
        size = encoder.image_size
        example = (self.randn(EXAMPLE_BATCH, 3, size, size),)
        checks = [InputSet("random pixels, batch 1", (self.randn(1, 3, size, size),))]
        images = self.golden("image_encode", "images")
        if images is not None:
            tol = self.golden_tolerance("image_encode")
            pixels = clip_preprocess(images, size)
            expected = {"clip_tokens": self.golden("image_encode", "clip_tokens")}
            checks.append(InputSet("golden image_encode", (pixels,), expected, tol))
            zero = clip_preprocess(torch.zeros(1, 3, size, size), size)
            expected = {"clip_tokens": self.golden("image_encode", "uncond_clip_tokens")}
            checks.append(InputSet("golden image_encode (zero image)", (zero,), expected, tol))
        dtype = encoder.model.visual.conv1.weight.dtype
        return GraphSpec(
            "clip_image", self.interfaces["clip_image"], FloatOutput(encoder, dtype), example,
            _batch_axes("pixels", "clip_tokens"), checks, info={"image_size": size},
        )

    def _resampler(self) -> GraphSpec:
        resampler = self.source.model.image_proj_model
        cfg = self.config.image_proj
        tokens = self._clip_token_count()
        example = (self.randn(EXAMPLE_BATCH, tokens, cfg.embedding_dim),)
        checks = [InputSet("random CLIP tokens, batch 1", (self.randn(1, tokens, cfg.embedding_dim),))]
        golden = self.golden("image_encode", "clip_tokens")
        if golden is not None:
            tol = self.golden_tolerance("image_encode")
            expected = {"image_context": self.golden("image_encode", "image_context")}
            checks.append(InputSet("golden image_encode", (golden,), expected, tol))
            zero_tokens = self.golden("image_encode", "uncond_clip_tokens")
            expected = {"image_context": self.golden("image_encode", "uncond_image_context")}
            checks.append(InputSet("golden image_encode (zero image)", (zero_tokens,), expected, tol))
        dtype = resampler.proj_in.weight.dtype
        return GraphSpec(
            "resampler", self.interfaces["resampler"], FloatOutput(resampler, dtype), example,
            _batch_axes("clip_tokens", "image_context"), checks,
        )

    def _clip_token_count(self) -> int:
        from engine.tooncrafter.networks.clip_towers import open_clip_model_config

        vision = open_clip_model_config(self.config.open_clip)["vision_cfg"]
        return 1 + (vision["image_size"] // vision["patch_size"]) ** 2

    def _vae_encoder(self) -> GraphSpec:
        vae = self.source.model.first_stage_model
        d = vae.downscale
        h, w = EXAMPLE_LATENT
        example = (self.randn(EXAMPLE_BATCH, 3, h * d, w * d).clamp(-1, 1),)
        ch, cw = self.canvas_latent
        canvas = self.randn(1, 3, ch * d, cw * d).clamp(-1, 1)
        checks = [InputSet("random frames, batch 1 at the model canvas", (canvas,))]
        keyframes = self.golden("vae_encode", "keyframes")
        if keyframes is not None:
            outputs = {"mean": self.golden("vae_encode", "posterior_mean"), "logvar": self.golden("vae_encode", "posterior_logvar")}
            for i in range(num_hidden_maps(self.config)):
                outputs[f"hidden_{i}"] = self.golden("vae_encode", f"hidden_{i}")
            checks.append(InputSet("golden vae_encode", (keyframes,), outputs, self.golden_tolerance("vae_encode")))
        axes = {"frames": {0: "frames", 2: "height", 3: "width"}}
        for name in self.interfaces["vae_encoder"].outputs:
            axes[name] = {0: "frames", 2: f"{name}_height", 3: f"{name}_width"}
        return GraphSpec("vae_encoder", self.interfaces["vae_encoder"], VAEEncoderGraph(vae), example, axes, checks)

    def _decoder_inputs(self, videos: int, frames: int, latent: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        """Unscaled latents (videos·frames, z, h, w) and random reference maps of matching sizes."""
        vae = self.source.model.first_stage_model
        cfg = self.config.first_stage
        z = self.randn(videos * frames, cfg.z_channels, *latent)
        refs = []
        for level, mult in enumerate(cfg.ch_mult):
            factor = 2 ** (len(cfg.ch_mult) - 1 - level)
            refs.append(self.randn(videos, cfg.ch * mult, 2, latent[0] * factor, latent[1] * factor))
        refs.append(self.randn(videos, cfg.ch, 2, latent[0] * vae.downscale, latent[1] * vae.downscale))
        return (z, *refs)

    def _vae_decoder(self) -> GraphSpec:
        vae = self.source.model.first_stage_model
        t = self.config.frames
        example = self._decoder_inputs(EXAMPLE_BATCH, t, EXAMPLE_LATENT)
        shorter = self._decoder_inputs(1, t - 2, self.canvas_latent)
        checks = [InputSet(f"random, 1 video of {t - 2} frames at the model canvas", shorter)]
        latents = self.golden("dualref_decode", "latents")
        if latents is not None:
            hidden = [self.golden("vae_encode", f"hidden_{i}") for i in range(num_hidden_maps(self.config))]
            refs = keyframe_references([h[0:1] for h in hidden], [h[1:2] for h in hidden])
            z = clip_to_frames(latents / vae.config.scale_factor)
            n = latents.shape[2]
            keep = [i for i in range(n) if i not in (1, n - 2)]
            tol = self.golden_tolerance("dualref_decode")
            single = clip_to_frames(self.golden("dualref_decode", "frames_single_pass"))
            middle = clip_to_frames(self.golden("dualref_decode", "frames_middle_pass"))
            checks.append(InputSet("golden dualref_decode (single pass)", (z, *refs), {"frames": single}, tol))
            z_middle = clip_to_frames(latents[:, :, keep] / vae.config.scale_factor)
            checks.append(InputSet("golden dualref_decode (middle pass)", (z_middle, *refs), {"frames": middle}, tol))
        axes = {"z": {0: "frames", 2: "height", 3: "width"}, "frames": {0: "frames", 2: "out_height", 3: "out_width"}}
        for i in range(num_hidden_maps(self.config)):
            axes[f"ref_{i}"] = {0: "videos", 3: f"ref_{i}_height", 4: f"ref_{i}_width"}
        return GraphSpec(
            "vae_decoder", self.interfaces["vae_decoder"], VAEDecoderGraph(vae), example, axes, checks)

    def _sketch_inputs(self, batch: int, latent: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        from engine.tooncrafter.networks.sketch_encoder import HINT_DOWNSCALE

        x, timesteps, context, _ = self.unet_inputs(batch, latent)
        x = x[:, : self.config.sketch_encoder.in_channels]
        hint_size = (latent[0] * HINT_DOWNSCALE, latent[1] * HINT_DOWNSCALE)
        hint = torch.rand((batch, 1, self.config.frames, *hint_size), generator=self.generator)
        return x, hint, timesteps, context

    def _sketch_encoder(self) -> GraphSpec:
        encoder = self.source.sketch_encoder
        if encoder is None:
            raise ValueError("no sketch encoder weights were given (--sketch-checkpoint)")
        example = self._sketch_inputs(EXAMPLE_BATCH, EXAMPLE_LATENT)
        with torch.inference_mode():
            self._example_controls = tuple(r.float() for r in encoder(*example))
        checks = [InputSet("random, batch 1 at the model canvas", self._sketch_inputs(1, self.canvas_latent))]
        x = self.golden("unet_with_sketch", "x_noisy")
        if x is not None:
            inputs = (x, *(self.golden("unet_with_sketch", n) for n in ("sketch", "timesteps", "context")))
            outputs = {name: self.golden("unet_with_sketch", name) for name in self.interfaces["sketch_encoder"].outputs}
            checks.append(InputSet("golden unet_with_sketch", inputs, outputs, self.golden_tolerance("unet_with_sketch")))
        axes = {
            "x": {0: "batch", 3: "height", 4: "width"},
            "hint": {0: "batch", 3: "hint_height", 4: "hint_width"},
            "timesteps": {0: "batch"},
            "context": {0: "batch"},
        }
        for name in self.interfaces["sketch_encoder"].outputs:
            axes[name] = {0: "batch_frames", 2: f"{name}_height", 3: f"{name}_width"}
        return GraphSpec(
            "sketch_encoder", self.interfaces["sketch_encoder"], SketchEncoderGraph(encoder), example, axes, checks)

    def _unet_axes(self, controls: tuple[str, ...] = ()) -> dict[str, dict[int, str]]:
        axes = {
            "x": {0: "batch", 3: "height", 4: "width"},
            "timesteps": {0: "batch"},
            "context": {0: "batch"},
            "fs": {0: "batch"},
            "v": {0: "batch", 3: "height", 4: "width"},
        }
        for name in controls:
            axes[name] = {0: "batch_frames", 2: f"{name}_height", 3: f"{name}_width"}
        return axes

    def _unet_golden(self, case: str, with_control: bool) -> InputSet | None:
        x = self.golden(case, "x_noisy")
        if x is None:
            return None
        inputs = (
            torch.cat([x, self.golden(case, "c_concat")], dim=1),
            self.golden(case, "timesteps"),
            self.golden(case, "context"),
            self.golden(case, "fs"),
        )
        if with_control:
            scale = float(self.source.golden_cases[case]["params"]["control_scale"])
            inputs += tuple(self.golden(case, name) * scale for name in self.interfaces["sketch_encoder"].outputs)
        return InputSet(f"golden {case}", inputs, {"v": self.golden(case, "model_output")}, self.golden_tolerance(case))

    def _unet(self) -> GraphSpec:
        unet = self.source.model.unet
        checks = [InputSet("random, batch 1 at the model canvas", self.unet_inputs(1, self.canvas_latent))]
        golden = self._unet_golden("unet", with_control=False)
        if golden is not None:
            checks.append(golden)
        return GraphSpec(
            "unet", self.interfaces["unet"], UNetGraph(unet), self.unet_inputs(EXAMPLE_BATCH, EXAMPLE_LATENT),
            self._unet_axes(), checks,
        )

    def _random_controls(self, batch: int, latent: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        """Residual-shaped noise for a UNet input of this batch and latent size."""
        if self._example_controls is None:
            raise ValueError("the sketch encoder graph must be built before the sketch-controlled UNet")
        controls = []
        h, w = EXAMPLE_LATENT
        for r in self._example_controls:
            fh, fw = h // r.shape[2], w // r.shape[3]
            controls.append(self.randn(batch * self.config.frames, r.shape[1], -(-latent[0] // fh), -(-latent[1] // fw)) * 0.1)
        return tuple(controls)

    def _unet_sketch(self) -> GraphSpec:
        unet = self.source.model.unet
        controls = self.interfaces["sketch_encoder"].outputs
        example = self.unet_inputs(EXAMPLE_BATCH, EXAMPLE_LATENT) + tuple(r * 0.6 for r in self._example_controls)
        canvas = self.unet_inputs(1, self.canvas_latent) + self._random_controls(1, self.canvas_latent)
        checks = [InputSet("random, batch 1 at the model canvas", canvas)]
        golden = self._unet_golden("unet_with_sketch", with_control=True)
        if golden is not None:
            checks.append(golden)
        return GraphSpec(
            "unet_sketch", self.interfaces["unet_sketch"], UNetGraph(unet), example, self._unet_axes(controls), checks)


@contextlib.contextmanager
def fresh_warp_grids() -> Iterator[None]:
    """Empty RIFE's per-size cache of sampling grids before and after tracing.

    The warp caches its identity grid per frame size in a module dictionary; a grid made while
    tracing is a tracer's placeholder tensor that must not be served to later eager calls, and a
    grid cached earlier must not be baked into the graph as a constant.
    """
    from engine.rife import warp

    warp._identity_grids.clear()
    try:
        yield
    finally:
        warp._identity_grids.clear()


def rife_spec(source: RifeSource, size: tuple[int, int], seed: int = 0) -> GraphSpec:
    """RIFE at one frame size (height, width), batch 1, always with the dynamo exporter.

    The warp computes its sampling grid and pixel-to-[-1, 1] factors from the frame size in Python
    and caches the grid per size (as a dictionary keyed by sizes), so neither exporter can keep the
    size symbolic: the graph is exact for the size it is made for, and the check refuses others. The
    TorchScript tracer would also turn that size arithmetic into float64 grids, which onnxruntime's
    GridSample does not take; torch.export keeps them float32.
    """
    multiple = source.network.size_multiple
    if size[0] % multiple or size[1] % multiple:
        raise ValueError(f"RIFE frame size must be a multiple of {multiple}, got {size[1]}x{size[0]}")
    generator = torch.Generator().manual_seed(seed)

    def smooth_key(shift: float) -> torch.Tensor:
        """A soft gradient with a disc: something with edges for the flow to follow."""
        ys = torch.linspace(-1, 1, size[0]).view(-1, 1)
        xs = torch.linspace(-1, 1, size[1]).view(1, -1)
        disc = (((xs - shift) ** 2 + ys**2) < 0.15).float()
        base = torch.stack([0.5 + 0.3 * xs.expand(size), 0.5 + 0.3 * ys.expand(size), 0.4 + 0.0 * xs.expand(size)])
        return (base * (1 - disc) + disc * torch.tensor([0.9, 0.2, 0.1]).view(3, 1, 1)).unsqueeze(0)

    example = (smooth_key(-0.2), smooth_key(0.2), torch.tensor([0.5]))
    checks = [
        InputSet("drawn keys, tau 0.25", (smooth_key(-0.3), smooth_key(0.1), torch.tensor([0.25]))),
        InputSet("random keys, tau 0.7", (*torch.rand((2, 1, 3, *size), generator=generator), torch.tensor([0.7]))),
    ]
    return GraphSpec(
        "rife", RIFE_INTERFACE, RifeGraph(source.network), example, {}, checks,
        info={"variant": source.variant, "size": list(size), **source.description},
        exporter="dynamo", tracing_context=fresh_warp_grids,
    )

