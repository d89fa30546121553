"""The three training jobs and how each is built from the settings."""

from __future__ import annotations

import logging

import torch

from engine.tooncrafter.model import build_sketch_encoder
from engine.tooncrafter.networks.config import ToonCrafterConfig
from engine.tooncrafter.weights.checkpoint import load_sketch_encoder, load_tooncrafter, manifest_for, tooncrafter_source

from ..diffusion import ConditionDropout
from ..perceptual import LPIPS
from ..settings import TrainSettings
from .base import OptimizerGroup, OutputFile, TrainingJob
from .decoder import DecoderJob
from .rectify import RectifyJob
from .sketch import SketchJob, init_from_unet

__all__ = ["OptimizerGroup", "OutputFile", "TrainingJob", "build_job"]

log = logging.getLogger("training")


def starting_tensors(settings: TrainSettings, config: ToonCrafterConfig):
    """A loader of the starting checkpoint's tensors under their official keys (as stored, any dtype)."""

    def load() -> dict[str, torch.Tensor]:
        source = tooncrafter_source(settings.init, settings.clip, manifest_for(config, "tooncrafter"))
        try:
            return {key: source.get(key).clone() for key in source.entries}
        finally:
            source.close()

    return load


def build_job(settings: TrainSettings, config: ToonCrafterConfig, device: torch.device) -> TrainingJob:
    if settings.init is None:
        raise ValueError(f"the {settings.job} job starts from a ToonCrafter checkpoint: pass --init WEIGHTS")
    model = load_tooncrafter(settings.init, settings.clip, config, torch.float32, "cpu")
    base = starting_tensors(settings, config)
    dropout = ConditionDropout(settings.text_dropout, settings.image_dropout)
    lr = settings.learning_rate
    if settings.job == "rectify":
        return RectifyJob(model.to(device), lr, dropout, base)
    if settings.job == "sketch":
        if settings.sketch_init is not None:
            encoder = load_sketch_encoder(settings.sketch_init, config, torch.float32, "cpu")
        else:
            encoder = build_sketch_encoder(config, "cpu").train()
            copied = init_from_unet(encoder, model)
            log.info("sketch encoder initialised from the UNet (%d tensors copied, zero convs at zero)", len(copied))
        return SketchJob(model.to(device), encoder.to(device), lr, dropout, settings.anime2sketch)
    perceptual = None
    if settings.lpips_vgg and settings.lpips_heads:
        perceptual = LPIPS.from_files(settings.lpips_vgg, settings.lpips_heads).to(device)
    elif settings.lpips_vgg or settings.lpips_heads:
        raise ValueError("LPIPS needs both --lpips-vgg (torchvision VGG16 weights) and --lpips-heads (lpips vgg.pth)")
    vae = model.first_stage_model.to(device)
    del model
    return DecoderJob(vae, lr, base, perceptual=perceptual, perceptual_weight=settings.perceptual_weight,
                      disc_start=settings.disc_start, disc_weight=settings.disc_weight)
