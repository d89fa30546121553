"""The one model contract: what the sampler and the segment strategy need from a ToonCrafter model.

Both runtimes answer it: `TorchNetworks` (runtimes/torch_runtime.py) on the PyTorch modules and
`OnnxNetworks` (runtimes/onnx_runtime.py) on the exported graphs. Each call here is ONE network
evaluation; everything between the networks (tokenizing, CLIP resizing, posterior sampling, how the
keyframe latents and the c_concat are built, sketch residual scaling, classifier-free guidance,
decode chunking and the official two-pass decode, the DDIM steps) is written once in
engine/tooncrafter/interpolation.py and sampler.py and runs the same on both.

Tensors cross the contract as torch tensors on `device` (the runtime moves them to where its
networks live) in float32, whatever precision the weights have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from ..networks.autoencoder import LatentPosterior
from ..networks.config import ToonCrafterConfig


@runtime_checkable
class ToonCrafterNetworks(Protocol):
    """The networks of one loaded ToonCrafter model, behind flat tensor calls."""

    #: The model configuration (frames T, canvas, channel counts, diffusion schedule).
    config: ToonCrafterConfig

    @property
    def device(self) -> torch.device:
        """Where the sampler keeps its tensors (latents stay there between steps)."""

    @property
    def has_sketch_encoder(self) -> bool:
        """Whether sketch guidance can run (the sketch encoder is loaded or exported)."""

    @property
    def text_context_length(self) -> int:
        """Tokens per prompt (77)."""

    @property
    def clip_image_size(self) -> int:
        """Side of the square image the CLIP image tower takes (224)."""

    def tokenize(self, prompts: Sequence[str]) -> torch.Tensor:
        """Prompts -> CLIP tokens (B, 77) int64."""

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLIP tokens (B, 77) -> text context (B, 77, D) from the text tower's penultimate block."""

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """CLIP-preprocessed pixels (B, 3, S, S) -> visual tokens (B, 1 + patches, W)."""

    def resample_image_tokens(self, clip_tokens: torch.Tensor) -> torch.Tensor:
        """Visual tokens -> image context (B, 16·T, D) through the Resampler."""

    def encode_frames(self, frames: torch.Tensor) -> tuple[LatentPosterior, list[torch.Tensor]]:
        """Frames (N, 3, H, W) in [-1, 1] -> the posterior (unscaled, logvar clamped) and the
        encoder's feature maps that the dual-reference decoder takes as references."""

    def decode_frames(self, z: torch.Tensor, references: Sequence[torch.Tensor], num_frames: int) -> torch.Tensor:
        """Unscaled latent frames (B·n, z, h, w) of B videos of `num_frames` frames, with each video's
        reference maps (B, C, 2, H_i, W_i) -> frames (B·n, 3, 8h, 8w), not clamped."""

    def unet(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        fs: torch.Tensor | None = None,
        control: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """v for x (B, 8, T, h, w) = noisy latents then c_concat, motion fs (B,) (None: the model's
        default), with already scaled sketch residuals."""

    def sketch_residuals(
        self, x: torch.Tensor, hint: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor
    ) -> list[torch.Tensor]:
        """The sketch encoder's residuals at strength 1 for noisy latents (B, 4, T, h, w) and hints
        (B, 1, T, 8h, 8w) in [0, 1]."""

    def schedule_buffers(self) -> dict[str, torch.Tensor]:
        """The float32 diffusion schedule (alphas_cumprod, ..., scale_arr) the DDIM sampler reads."""
