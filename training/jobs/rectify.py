"""Toon rectification learning (paper 4.1): cartoons into the spatial layers, motion priors kept.

The image-context projector (Resampler) and every SPATIAL layer of the UNet train (ResBlock convs,
spatial transformers, embeddings, input/output convs); every TEMPORAL layer (temporal transformers,
temporal convolutions, the extra `init_attn`) stays frozen, chosen by module type in
`training.parameters`. VAE and CLIP towers are frozen and run without gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.tooncrafter.model import ToonCrafterModel
from engine.tooncrafter.networks.layer_stack import LayerStack

from ..diffusion import ConditionDropout, diffusion_inputs
from ..parameters import set_trainable, split_temporal
from .base import OptimizerGroup, OutputFile, TrainingJob, named_trainable


class RectifyJob(TrainingJob):
    name = "rectify"
    checkpoint_types = (LayerStack,)

    def __init__(self, model: ToonCrafterModel, lr: float, dropout: ConditionDropout, base) -> None:
        super().__init__()
        self.tooncrafter = model
        self.lr = lr
        self.dropout = dropout
        self.base = base
        spatial, _ = split_temporal(model.unet)
        set_trainable(model, [p for _, p in spatial] + list(model.image_proj_model.parameters()))

    def forward(self, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self.tooncrafter
        inputs = diffusion_inputs(model, batch, self.dropout, model.device)
        x = torch.cat([inputs.x_t, inputs.c_concat], dim=1)
        v = model.unet(x, inputs.t, inputs.context, inputs.fs)
        loss = F.mse_loss(v.float(), inputs.v_target)
        return loss, {"loss": loss.detach()}

    def optimizer_groups(self) -> list[OptimizerGroup]:
        return [OptimizerGroup("main", named_trainable(self, ""), self.lr)]

    def outputs(self) -> list[OutputFile]:
        return [OutputFile("model.safetensors", "tooncrafter.", "tooncrafter", self.base)]

    def frozen_networks(self):
        m = self.tooncrafter
        return [m.first_stage_model, m.cond_stage_model, m.embedder]

    def shard_units(self):
        unet = self.tooncrafter.unet
        blocks = [*unet.input_blocks, unet.middle_block, *unet.output_blocks]
        if unet.config.addition_attention:
            blocks.append(unet.init_attn)
        return [*blocks, unet, self.tooncrafter.image_proj_model]
