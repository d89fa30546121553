"""The two OpenCLIP towers of the checkpoint, built with open_clip (never downloading anything).

- Text tower (`cond_stage_model`): the prompt's context is the output of the PENULTIMATE residual
  block (the last of the tower's blocks is skipped) followed by ln_final, at all 77 positions, with
  no projection. The module keeps the visual tower out but every text weight in, so its state dict is
  the checkpoint's `cond_stage_model.*` with that prefix removed (`model.*`).
- Image tower (`embedder`): the visual transformer's full token sequence (class token + patches,
  257 tokens for ViT-H/14) BEFORE ln_post and the projection. The module keeps the open_clip model
  without its text transformer (the text-side leftovers stay, as in the checkpoint), so its state
  dict is `embedder.*` with that prefix removed.

The towers are open_clip's `CLIP` built directly from an architecture config ("ViT-H-14" from
open_clip's bundled configs, or a config dict such as the tiny golden model's), so no registry is
touched and no weights are fetched: they come from the ToonCrafter checkpoint. Building on the meta
device (`device="meta"`) and loading with `load_state_dict(..., assign=True)` avoids initialising
a billion parameters only to overwrite them; the towers hold no buffers that the state dict lacks.
The forward passes are written here against open_clip's module attributes (whose names and shapes
the checkpoint fixes) rather than its `encode_*` methods, which changed between open_clip versions.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from engine.tooncrafter.clip_preprocess import clip_preprocess
from engine.torch_compat import import_open_clip

#: The released model's OpenCLIP architecture.
DEFAULT_ARCHITECTURE = "ViT-H-14"
#: Prefixes of the two towers' keys in the official checkpoint.
TEXT_ENCODER_KEY_PREFIX = "cond_stage_model."
IMAGE_ENCODER_KEY_PREFIX = "embedder."

ModelSpec = str | Mapping


def open_clip_model_config(spec: ModelSpec = DEFAULT_ARCHITECTURE) -> dict:
    """An open_clip architecture config: a bundled architecture name or an explicit config dict."""
    if isinstance(spec, Mapping):
        config = copy.deepcopy(dict(spec))
    else:
        config = import_open_clip().get_model_config(spec)
        if config is None:
            raise ValueError(f"open_clip has no architecture named {spec!r}")
    missing = [key for key in ("embed_dim", "vision_cfg", "text_cfg") if key not in config]
    if missing:
        raise ValueError(f"open_clip model config lacks {', '.join(missing)}")
    foreign = (
        config.pop("custom_text", False)
        or "multimodal_cfg" in config
        or "hf_model_name" in config["text_cfg"]
        or "timm_model_name" in config["vision_cfg"]
    )
    if foreign:
        raise ValueError("only open_clip's built-in ViT/text transformer towers match the ToonCrafter checkpoint")
    return config


def build_open_clip(spec: ModelSpec = DEFAULT_ARCHITECTURE, device: torch.device | str | None = None) -> nn.Module:
    """open_clip's CLIP for `spec`, randomly initialised (or uninitialised on the meta device)."""
    open_clip = import_open_clip()
    config = open_clip_model_config(spec)
    if device is None:
        return open_clip.CLIP(**config)
    with torch.device(device):
        return open_clip.CLIP(**config)


def _drop_unsaved_buffers(model: nn.Module) -> None:
    """Remove buffers the state dict does not carry (open_clip's cached causal mask): a model built on
    the meta device would otherwise keep them on meta after loading weights."""
    if "attn_mask" in model._buffers:
        del model.attn_mask


def _run_blocks(transformer: nn.Module, blocks: Sequence[nn.Module], x: torch.Tensor, mask: torch.Tensor | None):
    """Residual blocks on batch-first x, whichever layout the open_clip version builds them in."""
    batch_first = getattr(transformer, "batch_first", False)
    if not batch_first:
        x = x.transpose(0, 1)
    for block in blocks:
        x = block(x, attn_mask=mask)
    return x if batch_first else x.transpose(0, 1)


class CLIPTextEncoder(nn.Module):
    """Prompt tokens -> text context (B, 77, width) from the penultimate block (`layer="last"`: all)."""

    def __init__(
        self,
        spec: ModelSpec = DEFAULT_ARCHITECTURE,
        *,
        layer: str = "penultimate",
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if layer not in ("penultimate", "last"):
            raise ValueError(f"text layer must be 'penultimate' or 'last', got {layer!r}")
        model = build_open_clip(spec, device)
        del model.visual
        _drop_unsaved_buffers(model)
        self.model = model
        self.skip_last_blocks = 1 if layer == "penultimate" else 0

    @property
    def context_length(self) -> int:
        return self.model.positional_embedding.shape[0]

    def tokenize(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """CLIP BPE tokens (B, 77): start 49406, text, end 49407, zero padding (long prompts truncated)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        return import_open_clip().tokenize(prompts, context_length=self.context_length)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[1] != self.context_length:
            raise ValueError(f"text encoder expects (B, {self.context_length}) tokens, got {tuple(tokens.shape)}")
        model = self.model
        dtype = model.token_embedding.weight.dtype
        x = model.token_embedding(tokens.to(model.token_embedding.weight.device)).to(dtype)
        x = x + model.positional_embedding.to(dtype)
        length = x.shape[1]
        mask = torch.full((length, length), float("-inf"), dtype=dtype, device=x.device).triu_(1)
        blocks = model.transformer.resblocks
        blocks = blocks[: len(blocks) - self.skip_last_blocks]
        x = _run_blocks(model.transformer, blocks, x, mask)
        return model.ln_final(x)

    def encode(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """Prompts -> text context (B, 77, width)."""
        return self(self.tokenize(prompts))


class CLIPImageEncoder(nn.Module):
    """Images -> CLIP visual tokens (B, 1 + grid^2, width) before ln_post and the projection."""

    def __init__(self, spec: ModelSpec = DEFAULT_ARCHITECTURE, *, device: torch.device | str | None = None) -> None:
        super().__init__()
        model = build_open_clip(spec, device)
        del model.transformer
        _drop_unsaved_buffers(model)
        self.model = model

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return size[0] if isinstance(size, Sequence) else size

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: (B, 3, S, S) already preprocessed (see `encode` for images in [-1, 1])."""
        visual = self.model.visual
        dtype = visual.conv1.weight.dtype
        x = visual.conv1(pixels.to(dtype))
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        x = visual.patch_dropout(x)
        x = visual.ln_pre(x)
        return _run_blocks(visual.transformer, visual.transformer.resblocks, x, None)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [-1, 1], any size -> visual tokens (resized and normalised here)."""
        return self(clip_preprocess(images, self.image_size))
