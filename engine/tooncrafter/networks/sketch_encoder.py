"""ToonCrafter's sketch encoder: a frame-independent 2-D ControlNet that steers in-betweens.

It is the down path of an SD-2.1-style UNet (no temporal layers, no motion embedding, plain
cross-attention over the whole context, linear transformer projections) run on every frame of the
NOISY latent (4 channels, without the keyframe conditioning), plus a small hint encoder that brings
the artist's sketch (1 channel, latent size × 8) to latent resolution and adds it after the first
convolution. Each input block's output goes through a 1×1 "zero conv", and so does the middle
block's: 13 residuals that the video UNet adds to its skip connections and middle block, scaled by
the sketch strength. A frame without a sketch has an all-zero hint (it still yields residuals).

Parameter names are those of `sketch_encoder.ckpt` (bare ControlNet keys, no prefix).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..frames import clip_to_frames
from .attention import set_attention_chunk
from .embeddings import EmbeddingMLP
from .layer_stack import FrameConditioning
from .unet import BlockFactory, EncoderLayout, config_from_options

#: Widths of the hint encoder's convolutions before the last one (fixed in the original code).
HINT_WIDTHS = (16, 16, 32, 32, 96, 96, 256)
#: Indices (in HINT_WIDTHS) of the convolutions that halve the resolution.
HINT_STRIDE_2 = (2, 4, 6)
#: Sketch pixels per latent pixel.
HINT_DOWNSCALE = 2 ** len(HINT_STRIDE_2)


@dataclass(frozen=True)
class SketchEncoderConfig(EncoderLayout):
    """Hyperparameters of the sketch ControlNet; defaults build the released `sketch_encoder.ckpt`."""

    in_channels: int = 4
    hint_channels: int = 1

    FIXED_OPTIONS: ClassVar[dict[str, Any]] = {
        "use_spatial_transformer": True,
        "use_linear_in_transformer": True,
        "dims": 2,
        "conv_resample": True,
        "resblock_updown": False,
        "use_scale_shift_norm": False,
        "use_new_attention_order": False,
        "disable_self_attentions": None,
        "num_attention_blocks": None,
        "disable_middle_self_attn": False,
        "n_embed": None,
        "num_heads": -1,
    }
    #: Options without effect here: `legacy` only changes head sizes when num_head_channels does
    #: not divide the width; `image_size` is unused by the original; `context` is a description
    #: in the reference config; `n_control_residuals` is checked against the layout.
    IGNORED_OPTIONS: ClassVar[tuple[str, ...]] = (
        "image_size",
        "dropout",
        "use_checkpoint",
        "use_fp16",
        "legacy",
        "num_heads_upsample",
        "context",
        "n_control_residuals",
    )

    @property
    def num_residuals(self) -> int:
        levels = len(self.channel_mult)
        return 1 + levels * self.num_res_blocks + (levels - 1) + 1

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> "SketchEncoderConfig":
        """Build from the original `control_stage_config.params` (or the reference config's section)."""
        config = config_from_options(cls, params, "sketch encoder")
        expected = params.get("n_control_residuals")
        if expected is not None and expected != config.num_residuals:
            raise ValueError(f"the layout gives {config.num_residuals} residuals, the config says {expected}")
        return config


class HintEncoder(nn.Sequential):
    """Eight 3×3 convs with SiLU between, three of stride 2: sketch (×8 size) -> latent-size features."""

    def __init__(self, hint_channels: int, out_channels: int) -> None:
        layers: list[nn.Module] = []
        widths = (hint_channels, *HINT_WIDTHS)
        for index in range(len(HINT_WIDTHS)):
            stride = 2 if index in HINT_STRIDE_2 else 1
            layers += [nn.Conv2d(widths[index], widths[index + 1], 3, stride=stride, padding=1), nn.SiLU()]
        layers.append(nn.Conv2d(HINT_WIDTHS[-1], out_channels, 3, padding=1))
        super().__init__(*layers)


def _zero_conv(channels: int) -> nn.Sequential:
    """A 1×1 conv wrapped so its keys read `.0.weight` as in the checkpoint."""
    return nn.Sequential(nn.Conv2d(channels, channels, 1))


class SketchEncoder(nn.Module):
    def __init__(self, config: SketchEncoderConfig | None = None) -> None:
        super().__init__()
        config = config or SketchEncoderConfig()
        self.config = config
        factory = BlockFactory(config)
        self.time_embed = EmbeddingMLP(config.model_channels, config.emb_channels)
        self.input_blocks, skip_channels = factory.input_blocks()
        self.zero_convs = nn.ModuleList(_zero_conv(ch) for ch in skip_channels)
        self.input_hint_block = HintEncoder(config.hint_channels, config.model_channels)
        self.middle_block = factory.middle_block()
        self.middle_block_out = _zero_conv(config.model_channels * config.channel_mult[-1])

    def set_attention_chunk(self, chunk_size: int | None, query_chunk_size: int | None = None) -> None:
        """Cap the sequences (and query tokens) per attention kernel call (exact; trades speed for memory)."""
        set_attention_chunk(self, chunk_size, query_chunk_size)

    def forward(
        self,
        x: torch.Tensor,
        hint: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        strength: float = 1.0,
    ) -> list[torch.Tensor]:
        """Residuals for the video UNet, already multiplied by `strength`.

        x (B, 4, T, h, w) noisy latent (without the conditioning channels); hint (B, hint_channels,
        T, 8h, 8w) in [0, 1], lines bright on black; timesteps (B,) the UNet's timestep; context
        (B, L, D) the UNet's full context, given whole to every frame.
        Returns 13 tensors (B·T, C_i, h_i, w_i) in the order `ToonCrafterUNet(control=...)` takes.
        Batch entries are independent clips, each with its own timestep and context (the community
        code handles B = 1 only; for B = 1 the numbers are the same).
        """
        b, t = self._check_inputs(x, hint, timesteps, context)
        dtype = self.input_hint_block[0].weight.dtype
        timesteps = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
        emb = self.time_embed.embed(timesteps).to(dtype).repeat_interleave(t, dim=0)
        cond = FrameConditioning(emb, context.to(dtype).repeat_interleave(t, dim=0), None)

        h = clip_to_frames(x.to(dtype))
        guided_hint = self.input_hint_block(clip_to_frames(hint.to(dtype)))
        residuals = []
        for index, (block, zero_conv) in enumerate(zip(self.input_blocks, self.zero_convs)):
            h = block(h, cond)
            if index == 0:
                h = h + guided_hint
            residuals.append(zero_conv(h))
        h = self.middle_block(h, cond)
        residuals.append(self.middle_block_out(h))
        if strength != 1.0:
            residuals = [r * strength for r in residuals]
        return residuals

    def _check_inputs(self, x, hint, timesteps, context) -> tuple[int, int]:
        cfg = self.config
        if x.ndim != 5 or x.shape[1] != cfg.in_channels:
            raise ValueError(
                f"sketch encoder latent must be (B, {cfg.in_channels}, T, h, w) (noisy channels only), "
                f"got {tuple(x.shape)}"
            )
        b, _, t, lh, lw = x.shape
        expected = (b, cfg.hint_channels, t, lh * HINT_DOWNSCALE, lw * HINT_DOWNSCALE)
        if tuple(hint.shape) != expected:
            raise ValueError(f"sketch hint must be {expected} for a {lh}x{lw} latent, got {tuple(hint.shape)}")
        if timesteps.numel() not in (1, b):
            raise ValueError(f"timesteps must have 1 or {b} values, got shape {tuple(timesteps.shape)}")
        if context.ndim != 3 or context.shape[0] != b or context.shape[2] != cfg.context_dim:
            raise ValueError(f"context must be ({b}, L, {cfg.context_dim}), got {tuple(context.shape)}")
        return b, t

