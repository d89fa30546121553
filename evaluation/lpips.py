"""LPIPS (Zhang et al. 2018), v0.1 with the AlexNet backbone, from two local files: torchvision's
AlexNet ImageNet weights and the lpips package's linear heads (weights/v0.1/alex.pth).

d(x, y) = sum over the five ReLU stages l of mean_{h,w} || w_l * (f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)|) ||^2,
with the inputs in [-1, 1] passed through LPIPS's fixed scaling layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from curation.clip_model import load_state_dict
from engine.torch_compat import import_torchvision

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
#: AlexNet `features` slices ending at relu1..relu5.
STAGES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
CHANNELS = (64, 192, 384, 256, 256)


class Lpips(nn.Module):
    def __init__(self, backbone: str | Path | dict, heads: str | Path | dict) -> None:
        super().__init__()
        alexnet = import_torchvision().models.alexnet(weights=None)
        state = backbone if isinstance(backbone, dict) else load_state_dict(backbone)
        alexnet.load_state_dict(state, strict=True)
        self.stages = nn.ModuleList(nn.Sequential(*alexnet.features[a:b]) for a, b in STAGES)
        heads_state = heads if isinstance(heads, dict) else load_state_dict(heads)
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        for k, head in enumerate(self.heads):
            head.weight.data.copy_(heads_state[f"lin{k}.model.1.weight"])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x, y: (N, 3, H, W) in [-1, 1] -> (N,) distances."""
        fx, fy = (x - self.shift) / self.scale, (y - self.shift) / self.scale
        total = torch.zeros(x.shape[0], device=x.device)
        for stage, head in zip(self.stages, self.heads):
            fx, fy = stage(fx), stage(fy)
            nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + head((nx - ny) ** 2).mean(dim=(1, 2, 3))
        return total

    @torch.no_grad()
    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS of two RGB uint8 images."""
        def tensor(image):
            return torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1)[None].float() / 127.5 - 1.0

        return float(self(tensor(a), tensor(b))[0])
