"""Dual-reference 3D decoder training (paper 4.2), the latent-diffusion autoencoder recipe.

The VAE encoder (and quant_conv) are frozen; the decoder — ResNet blocks with their temporal
stacks, the reference fusion attentions and combiners, conv_out with its time-mix conv — starts from
the given checkpoint and learns to rebuild every frame of a clip from its latents plus the encoder
features of the clip's first and last frame (the references, taken as at inference).

Loss: L1 + 0.1·LPIPS + λ·adversarial, λ the adaptive weight (gradient-norm ratio of the
reconstruction loss and the generator loss at the decoder's last layer, × disc_weight), a hinge
PatchGAN discriminator on single frames that joins at `disc_start`. Without LPIPS weight files the
perceptual term is left out and the run says so.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.tooncrafter.networks.autoencoder import DualRefAutoencoder, video_references
from engine.tooncrafter.networks.dualref_decoder import VideoResnetBlock

from ..perceptual import LPIPS, PatchDiscriminator, adaptive_weight, hinge_d_loss
from .base import OptimizerGroup, OutputFile, TrainingJob, named_trainable

#: Adam betas of the latent-diffusion autoencoder recipe (generator and discriminator).
GAN_BETAS = (0.5, 0.9)


class DecoderJob(TrainingJob):
    name = "decoder"
    checkpoint_types = (VideoResnetBlock,)

    def __init__(self, vae: DualRefAutoencoder, lr: float, base, *, perceptual: LPIPS | None,
                 perceptual_weight: float = 0.1, disc_start: int = 2001, disc_weight: float = 0.5) -> None:
        super().__init__()
        self.first_stage_model = vae.requires_grad_(False)
        vae.decoder.requires_grad_(True)
        self.discriminator = PatchDiscriminator(vae.config.out_channels)
        self.perceptual = perceptual
        self.perceptual_weight = perceptual_weight if perceptual is not None else 0.0
        self.disc_start = disc_start
        self.disc_weight = disc_weight
        self.lr = lr
        self.base = base

    def last_layer(self) -> torch.Tensor:
        return self.first_stage_model.decoder.conv_out.time_mix_conv.weight

    def forward(self, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        vae = self.first_stage_model
        device = vae.quant_conv.weight.device
        video = batch["video"].to(device)
        b, _, t, height, width = video.shape
        frames = video.transpose(1, 2).reshape(b * t, 3, height, width)
        noise = torch.cat([
            torch.randn((t, vae.config.z_channels, height // vae.downscale, width // vae.downscale),
                        generator=torch.Generator().manual_seed(seed))
            for seed in batch["seed"]
        ]).to(device)
        with torch.no_grad():
            encoding = vae.encode(frames.to(vae.quant_conv.weight.dtype))
            z = encoding.posterior.sample(noise).float()
            references = [h.float() for h in encoding.hidden_states]
            references = video_references(references, t)
        reconstruction = vae.decoder(z, references, t).float()
        l1 = (reconstruction - frames).abs().mean()
        nll = l1
        logs = {"l1": l1.detach()}
        if self.perceptual is not None:
            p = self.perceptual(reconstruction, frames).mean()
            nll = nll + self.perceptual_weight * p
            logs["lpips"] = p.detach()
        disc = self.discriminator
        disc_on = step >= self.disc_start
        for p in disc.parameters():
            p.requires_grad_(False)
        g_loss = -disc(reconstruction).mean()
        for p in disc.parameters():
            p.requires_grad_(True)
        if disc_on and torch.is_grad_enabled():
            weight = adaptive_weight(nll, g_loss, self.last_layer(), self.disc_weight)
        else:
            weight = torch.zeros((), device=device)
        d_loss = hinge_d_loss(disc(frames), disc(reconstruction.detach()))
        factor = 1.0 if disc_on else 0.0
        loss = nll + weight * g_loss + factor * d_loss
        logs.update(rec=nll.detach(), g_loss=g_loss.detach(), d_weight=weight.detach(), d_loss=d_loss.detach())
        return loss, logs

    def optimizer_groups(self) -> list[OptimizerGroup]:
        decoder = named_trainable(self.first_stage_model, "first_stage_model.")
        disc = named_trainable(self.discriminator, "discriminator.")
        return [OptimizerGroup("decoder", decoder, self.lr, GAN_BETAS), OptimizerGroup("discriminator", disc, self.lr, GAN_BETAS)]

    def outputs(self) -> list[OutputFile]:
        return [OutputFile("model.safetensors", "first_stage_model.", "tooncrafter", self.base, strip=False)]

    def frozen_networks(self) -> list[nn.Module]:
        return [self.first_stage_model.encoder, self.first_stage_model.quant_conv]

    def shard_units(self) -> list[nn.Module]:
        decoder = self.first_stage_model.decoder
        return [*decoder.up, decoder.mid, decoder, self.discriminator]

    def describe(self) -> list[str]:
        if self.perceptual is None:
            return ["LPIPS left out: no --lpips-vgg/--lpips-heads weight files given (nothing is downloaded); "
                    "the loss is L1 + adversarial"]
        return [f"LPIPS (VGG16) weight {self.perceptual_weight}"]
