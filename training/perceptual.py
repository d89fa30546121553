"""LPIPS (Zhang et al. 2018, VGG variant) from local weight files, and the patch discriminator.

Both are the latent-diffusion autoencoder recipe's (taming-transformers' LPIPSWithDiscriminator):
LPIPS compares unit-normalised VGG16 features at five depths through learned 1×1 weights; the
discriminator is a 3-layer PatchGAN with batch norm. Nothing is downloaded: LPIPS needs the
torchvision VGG16 weights (`vgg16-397923af.pth`, keys `features.*`) and the LPIPS linear heads
(`vgg.pth` of the lpips package, keys `lin0.model.1.weight` …) as local files.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: torchvision's VGG16 `features` layout: output channels, "M" for max pooling.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: Indices in `features` after which LPIPS taps the activations (relu1_2 … relu5_3).
LPIPS_TAPS = (3, 8, 15, 22, 29)
LPIPS_CHANNELS = (64, 128, 256, 512, 512)


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=False)]
            channels = item
    return nn.Sequential(*layers)


class _Linear(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """Perceptual distance of images in [-1, 1]; frozen; (N,) distances."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.features = _vgg16_features()[: LPIPS_TAPS[-1] + 1]
        for i, c in enumerate(LPIPS_CHANNELS):
            self.add_module(f"lin{i}", _Linear(c))

    @classmethod
    def from_files(cls, vgg16: str | Path, heads: str | Path) -> "LPIPS":
        model = cls()
        vgg = torch.load(Path(vgg16), map_location="cpu", weights_only=True)
        features = {k.removeprefix("features."): v for k, v in vgg.items() if k.startswith("features.")}
        expected = set(model.features.state_dict())
        wrong = [k for k in expected if k not in features or features[k].shape != model.features.state_dict()[k].shape]
        if wrong:
            raise ValueError(f"{vgg16}: not torchvision VGG16 weights (missing or mis-shaped: {sorted(wrong)[:3]})")
        features = {k: features[k] for k in expected}
        lin = torch.load(Path(heads), map_location="cpu", weights_only=True)
        expected = {f"lin{i}.model.1.weight" for i in range(len(LPIPS_CHANNELS))}
        if not expected <= set(lin):
            raise ValueError(f"{heads}: not LPIPS VGG linear heads (expected keys {sorted(expected)[:2]} …)")
        model.load_state_dict({**{f"features.{k}": v for k, v in features.items()}, **{k: lin[k] for k in expected},
                               "shift": model.shift, "scale": model.scale}, strict=True)
        return model.eval().requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = (torch.cat([a, b]) - self.shift) / self.scale
        total = 0.0
        tap = 0
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index == LPIPS_TAPS[tap]:
                fa, fb = x.chunk(2)
                fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                head = getattr(self, f"lin{tap}").model[1]
                total = total + head((fa - fb) ** 2).mean(dim=(1, 2, 3))
                tap += 1
        return total


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix): 4×4 convs, 64 → 512 filters, batch norm, one logit per patch."""

    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < layers else 1
            seq += [nn.Conv2d(width * prev, width * mult, 4, stride, 1, bias=False), nn.BatchNorm2d(width * mult),
                    nn.LeakyReLU(0.2, True)]
        seq.append(nn.Conv2d(width * mult, 1, 4, 1, 1))
        self.main = nn.Sequential(*seq)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def adaptive_weight(nll: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor, scale: float) -> torch.Tensor:
    """‖∇nll‖ / ‖∇g‖ at the decoder's last layer (clamped to [0, 1e4]) × scale, without gradient."""
    nll_grad = torch.autograd.grad(nll, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = torch.norm(nll_grad) / (torch.norm(g_grad) + 1e-4)
    return torch.clamp(weight, 0.0, 1e4).detach() * scale
