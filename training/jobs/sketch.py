"""Sketch-encoder training (paper 4.3): a frame-independent ControlNet, the denoiser frozen.

The whole interpolation model is frozen; the sketch encoder's residuals enter the frozen UNet's
skips exactly as at inference (`ToonCrafterUNet(control=...)`, strength 1). Sketches are drawn
from the clip's own frames by a line extractor on the frames `training.sketches` selects (80 %
bisection, 20 % random); frames without a sketch get the empty hint.

Without `--sketch-init` the encoder starts as ControlNet does: its blocks copied from the UNet's
spatial down path (first convolution: the 4 noisy-latent input channels), zero convolutions and the
hint encoder's last convolution at zero, so training starts from "no effect".
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.tooncrafter.model import ToonCrafterModel
from engine.tooncrafter.networks.layer_stack import LayerStack
from engine.tooncrafter.networks.sketch_encoder import SketchEncoder

from ..diffusion import ConditionDropout, diffusion_inputs
from ..sketches import LineExtractor, select_sketch_frames, sketch_hints
from .base import OptimizerGroup, OutputFile, TrainingJob, named_trainable


def init_from_unet(encoder: SketchEncoder, model: ToonCrafterModel) -> list[str]:
    """ControlNet initialisation from the denoiser; returns the keys copied from the UNet."""
    unet_state = model.unet.state_dict()
    copied = []
    with torch.no_grad():
        for key, tensor in encoder.state_dict().items():
            if key.startswith(("zero_convs.", "middle_block_out.")):
                tensor.zero_()
            elif key == "input_blocks.0.0.weight":
                tensor.copy_(unet_state[key][:, : tensor.shape[1]])
                copied.append(key)
            elif key in unet_state and unet_state[key].shape == tensor.shape:
                tensor.copy_(unet_state[key])
                copied.append(key)
        last = encoder.input_hint_block[-1]
        last.weight.zero_()
        last.bias.zero_()
    return copied


class SketchHintMaker:
    """Dataset extra: the sample's sketch hints (1, T, H, W), chosen with the sample's own seed."""

    def __init__(self, anime2sketch=None) -> None:
        self.anime2sketch = anime2sketch
        self._extractor: LineExtractor | None = None

    def __call__(self, frames: np.ndarray, seed: int) -> dict[str, torch.Tensor]:
        if self._extractor is None:
            self._extractor = LineExtractor(self.anime2sketch)
        chosen = select_sketch_frames(frames.shape[0], np.random.default_rng([seed, 1]))
        return {"hint": sketch_hints(frames, chosen, self._extractor)}


class SketchJob(TrainingJob):
    name = "sketch"
    checkpoint_types = (LayerStack,)

    def __init__(self, model: ToonCrafterModel, encoder: SketchEncoder, lr: float, dropout: ConditionDropout,
                 anime2sketch=None) -> None:
        super().__init__()
        self.tooncrafter = model.requires_grad_(False)
        self.sketch_encoder = encoder.requires_grad_(True)
        self.lr = lr
        self.dropout = dropout
        self.anime2sketch = anime2sketch

    def forward(self, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self.tooncrafter
        inputs = diffusion_inputs(model, batch, self.dropout, model.device)
        hint = batch["hint"].to(inputs.x_t.device)
        control = self.sketch_encoder(inputs.x_t, hint, inputs.t, inputs.context.detach(), 1.0)
        x = torch.cat([inputs.x_t, inputs.c_concat], dim=1)
        v = model.unet(x, inputs.t, inputs.context.detach(), inputs.fs, control=control)
        loss = F.mse_loss(v.float(), inputs.v_target)
        return loss, {"loss": loss.detach()}

    def optimizer_groups(self) -> list[OptimizerGroup]:
        return [OptimizerGroup("main", named_trainable(self, ""), self.lr)]

    def outputs(self) -> list[OutputFile]:
        return [OutputFile("sketch_encoder.safetensors", "sketch_encoder.", "sketch_encoder")]

    def frozen_networks(self):
        m = self.tooncrafter
        return [m.model, m.first_stage_model, m.cond_stage_model, m.embedder, m.image_proj_model]

    def sample_extras(self):
        return SketchHintMaker(self.anime2sketch)

    def shard_units(self):
        enc = self.sketch_encoder
        return [*enc.input_blocks, enc.middle_block, enc]

    def describe(self) -> list[str]:
        return [f"sketches: {'Anime2Sketch' if self.anime2sketch else 'XDoG line extraction (no Anime2Sketch weights given)'}"]
