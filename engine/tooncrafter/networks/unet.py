"""The ToonCrafter (DynamiCrafter) 3D UNet: the denoiser that predicts v for a 16-frame latent clip.

Input (B, 8, T, H, W): the 4 noisy latent channels, then the 4 keyframe-conditioning channels
(zeros except the first and last frame). Levels with channel multipliers 1, 2, 4, 4; two ResBlocks
per level, each followed at the first three levels by a spatial transformer (per frame, with text
and keyframe-image cross-attention) and a temporal transformer (across frames). An extra temporal
transformer (`init_attn`) follows the first convolution. The time embedding and the motion (`fs`)
embedding are summed and shared by every frame. The output blocks can take additive residuals
from the sketch encoder.

Parameter names are the checkpoint's (`model.diffusion_model.` prefix removed), misspellings
included, so the official weights load with `load_state_dict(strict=True)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..frames import clip_to_frames
from .attention import set_attention_chunk
from .embeddings import EmbeddingMLP
from .layer_stack import FrameConditioning, LayerStack
from .normalization import group_norm
from .resample import Downsample, Upsample
from .resblock import ResBlock
from .transformer import SpatialTransformer, TemporalTransformer

#: Checkpoint prefix of the UNet inside the official `model.ckpt` state dict.
UNET_KEY_PREFIX = "model.diffusion_model."


@dataclass(frozen=True)
class EncoderLayout:
    """The down path (input blocks and middle block) shared by the UNet and the sketch encoder.

    Defaults are the full-size ToonCrafter / SD-2.1 values.
    """

    in_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (4, 2, 1)
    num_head_channels: int = 64
    transformer_depth: int = 1
    context_dim: int = 1024

    @property
    def emb_channels(self) -> int:
        return 4 * self.model_channels


@dataclass(frozen=True)
class UNetConfig(EncoderLayout):
    """Hyperparameters of the video UNet; defaults build the released 512×320 interpolation model."""

    in_channels: int = 8
    out_channels: int = 4
    temporal_conv: bool = True
    temporal_attention: bool = True
    addition_attention: bool = True  # the extra `init_attn` temporal transformer after block 0
    init_attn_heads: int = 8
    init_attn_dim_head: int | None = None  # None: num_head_channels
    image_cross_attention: bool = True
    image_cross_attention_scale: float = 1.0
    fs_condition: bool = True
    default_fs: int = 24
    text_context_len: int = 77
    image_tokens_per_frame: int = 16

    #: Options of the original class that this implementation fixes; `from_dict` checks them.
    FIXED_OPTIONS: ClassVar[dict[str, Any]] = {
        "use_linear": True,
        "temporal_selfatt_only": True,
        "use_relative_position": False,
        "use_causal_attention": False,
        "image_cross_attention_scale_learnable": False,
        "dims": 2,
        "conv_resample": True,
        "resblock_updown": False,
        "use_scale_shift_norm": False,
        "tempspatial_aware": False,
    }
    #: Options that do not change inference (dropout, gradient checkpointing, dtype flags, and the
    #: temporal length, which only matters with relative positions).
    IGNORED_OPTIONS: ClassVar[tuple[str, ...]] = ("dropout", "temporal_length", "use_checkpoint", "use_fp16")

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> "UNetConfig":
        """Build from the original `unet_config.params` mapping (e.g. the reference config.json)."""
        return config_from_options(cls, params, "UNet")


def config_from_options(cls: type, params: Mapping[str, Any], what: str) -> Any:
    """A config dataclass from the original code's option mapping.

    Options that are fields are taken (lists become tuples); options this implementation fixes
    (`cls.FIXED_OPTIONS`) must have the supported value; options without effect at inference
    (`cls.IGNORED_OPTIONS`) are skipped; anything else is an error, so a typo cannot pass silently.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in params.items():
        if key in fields:
            values[key] = tuple(value) if isinstance(value, list) else value
        elif key in cls.FIXED_OPTIONS:
            if value != cls.FIXED_OPTIONS[key]:
                supported = cls.FIXED_OPTIONS[key]
                raise ValueError(f"{what} option {key}={value!r} is not supported (only {supported!r})")
        elif key not in cls.IGNORED_OPTIONS:
            raise ValueError(f"unknown {what} option {key!r}")
    return cls(**values)


@dataclass(frozen=True)
class BlockFactory:
    """Builds the UNet's blocks; the sketch encoder uses it with the video options off (2-D)."""

    layout: EncoderLayout
    temporal_conv: bool = False
    temporal_attention: bool = False
    image_cross_attention: bool = False
    text_context_len: int = 77
    image_scale: float = 1.0

    def resblock(self, channels: int, out_channels: int | None = None) -> ResBlock:
        return ResBlock(channels, self.layout.emb_channels, out_channels, temporal_conv=self.temporal_conv)

    def attention(self, channels: int) -> list[nn.Module]:
        heads = channels // self.layout.num_head_channels
        dim_head = self.layout.num_head_channels
        depth = self.layout.transformer_depth
        layers: list[nn.Module] = [
            SpatialTransformer(
                channels,
                heads,
                dim_head,
                depth,
                self.layout.context_dim,
                image_cross_attention=self.image_cross_attention,
                text_context_len=self.text_context_len,
                image_scale=self.image_scale,
            )
        ]
        if self.temporal_attention:
            layers.append(TemporalTransformer(channels, heads, dim_head, depth))
        return layers

    def input_blocks(self) -> tuple[nn.ModuleList, list[int]]:
        """Input blocks and the channel count of each one's output (the skip connections)."""
        layout = self.layout
        ch = layout.model_channels
        blocks = nn.ModuleList([LayerStack([nn.Conv2d(layout.in_channels, ch, 3, padding=1)])])
        skip_channels = [ch]
        downsampling = 1
        for level, mult in enumerate(layout.channel_mult):
            for _ in range(layout.num_res_blocks):
                layers: list[nn.Module] = [self.resblock(ch, mult * layout.model_channels)]
                ch = mult * layout.model_channels
                if downsampling in layout.attention_resolutions:
                    layers.extend(self.attention(ch))
                blocks.append(LayerStack(layers))
                skip_channels.append(ch)
            if level != len(layout.channel_mult) - 1:
                blocks.append(LayerStack([Downsample(ch)]))
                skip_channels.append(ch)
                downsampling *= 2
        return blocks, skip_channels

    def middle_block(self) -> LayerStack:
        ch = self.layout.model_channels * self.layout.channel_mult[-1]
        return LayerStack([self.resblock(ch), *self.attention(ch), self.resblock(ch)])

    def output_blocks(self, skip_channels: Sequence[int]) -> nn.ModuleList:
        layout = self.layout
        skips = list(skip_channels)
        ch = layout.model_channels * layout.channel_mult[-1]
        downsampling = 2 ** (len(layout.channel_mult) - 1)
        blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(layout.channel_mult))):
            for i in range(layout.num_res_blocks + 1):
                layers: list[nn.Module] = [self.resblock(ch + skips.pop(), layout.model_channels * mult)]
                ch = layout.model_channels * mult
                if downsampling in layout.attention_resolutions:
                    layers.extend(self.attention(ch))
                if level and i == layout.num_res_blocks:
                    layers.append(Upsample(ch))
                    downsampling //= 2
                blocks.append(LayerStack(layers))
        return blocks


class ToonCrafterUNet(nn.Module):
    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        config = config or UNetConfig()
        self.config = config
        mc = config.model_channels
        factory = BlockFactory(
            config,
            temporal_conv=config.temporal_conv,
            temporal_attention=config.temporal_attention,
            image_cross_attention=config.image_cross_attention,
            text_context_len=config.text_context_len,
            image_scale=config.image_cross_attention_scale,
        )
        self.time_embed = EmbeddingMLP(mc, config.emb_channels)
        if config.fs_condition:
            self.fps_embedding = EmbeddingMLP(mc, config.emb_channels)
        self.input_blocks, skip_channels = factory.input_blocks()
        if config.addition_attention:
            dim_head = config.init_attn_dim_head or config.num_head_channels
            self.init_attn = LayerStack(
                [
                    TemporalTransformer(
                        mc, config.init_attn_heads, dim_head, config.transformer_depth, conv_projection=True
                    )
                ]
            )
        self.middle_block = factory.middle_block()
        self.output_blocks = factory.output_blocks(skip_channels)
        self.out = nn.Sequential(group_norm(mc), nn.SiLU(), nn.Conv2d(mc, config.out_channels, 3, padding=1))

    def set_attention_chunk(self, chunk_size: int | None, query_chunk_size: int | None = None) -> None:
        """Cap the sequences (and query tokens) per attention kernel call (exact; trades speed for memory)."""
        set_attention_chunk(self, chunk_size, query_chunk_size)

    def frame_context(self, context: torch.Tensor, num_frames: int) -> torch.Tensor:
        """(B, L, D) -> (B·T, L', D): the cross-attention context each frame sees.

        When L is exactly text + tokens_per_frame·T (77 + 16·16 for the released model), frame f
        gets the text tokens plus its own image tokens (the Resampler's queries are frame-major);
        otherwise every frame gets the whole context, as the original does.
        """
        cfg = self.config
        b, length, dim = context.shape
        if length == cfg.text_context_len + cfg.image_tokens_per_frame * num_frames:
            text = context[:, : cfg.text_context_len].repeat_interleave(num_frames, dim=0)
            image = context[:, cfg.text_context_len :].reshape(b * num_frames, cfg.image_tokens_per_frame, dim)
            return torch.cat([text, image], dim=1)
        return context.repeat_interleave(num_frames, dim=0)

    def embed_step(self, timesteps: torch.Tensor, fs: torch.Tensor | None) -> torch.Tensor:
        """(B,) timesteps and motion values -> (B, E) embedding (fs None: the default 24)."""
        emb = self.time_embed.embed(timesteps)
        if self.config.fs_condition:
            if fs is None:
                fs = torch.full_like(timesteps, self.config.default_fs, dtype=torch.long)
            emb = emb + self.fps_embedding.embed(fs)
        return emb

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        fs: torch.Tensor | None = None,
        control: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Predict v.

        x (B, in_channels, T, H, W): noisy latent channels then conditioning channels.
        timesteps (B,) integer DDPM steps; context (B, L, context_dim); fs (B,) motion or None.
        control: sketch-encoder residuals, already scaled, each (B·T, C, h, w), one per input block
        plus one for the middle block (13 in the released model): entry i is added to the skip of
        input block i before it is concatenated (output block j takes entry 11 − j), the last entry
        to the middle-block output.
        Returns (B, out_channels, T, H, W) in x's dtype.
        """
        b, _, t, _, _ = self._check_inputs(x, timesteps, context, fs, control)
        dtype = self.out[2].weight.dtype
        timesteps = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
        emb = self.embed_step(timesteps, fs).to(dtype).repeat_interleave(t, dim=0)
        cond = FrameConditioning(emb, self.frame_context(context.to(dtype), t), t)

        h = clip_to_frames(x.to(dtype))
        skips = []
        for index, block in enumerate(self.input_blocks):
            h = block(h, cond)
            if index == 0 and self.config.addition_attention:
                h = self.init_attn(h, cond)
            skips.append(h)
        h = self.middle_block(h, cond)
        if control is not None:
            h = h + control[-1].to(dtype)
        for block in self.output_blocks:
            skip = skips.pop()
            if control is not None:
                skip = skip + control[len(skips)].to(dtype)
            h = block(torch.cat([h, skip], dim=1), cond)
        y = self.out(h)
        return y.reshape(b, t, *y.shape[1:]).transpose(1, 2).to(x.dtype)

    def _check_inputs(self, x, timesteps, context, fs, control) -> tuple[int, ...]:
        cfg = self.config
        if x.ndim != 5 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"UNet input must be (B, {cfg.in_channels}, T, H, W), got {tuple(x.shape)}")
        b = x.shape[0]
        if timesteps.numel() not in (1, b):
            raise ValueError(f"timesteps must have 1 or {b} values, got shape {tuple(timesteps.shape)}")
        if context.ndim != 3 or context.shape[0] != b or context.shape[2] != cfg.context_dim:
            raise ValueError(f"context must be ({b}, L, {cfg.context_dim}), got {tuple(context.shape)}")
        if fs is not None and fs.shape != (b,):
            raise ValueError(f"fs must have shape ({b},), got {tuple(fs.shape)}")
        if control is not None and len(control) != len(self.input_blocks) + 1:
            raise ValueError(f"control must hold {len(self.input_blocks) + 1} residuals, got {len(control)}")
        return tuple(x.shape)
