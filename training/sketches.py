"""Training sketches: line art extracted from the clip's own frames, and which frames get one.

Selection follows the paper: with probability 0.8 the frames come from BISECTION — the middle frame
of (i, j), recursively, from the whole clip (1, L) down to a depth drawn from 1–4 (depth 1: the
middle frame; depth 2: also the middles of both halves; …) — otherwise a random subset of the
in-between frames. The keyframes never get a sketch (the model sees them as images). Frames
without a sketch get the empty hint (all zeros), the same "no sketch" signal inference uses.

Line extraction: Anime2Sketch (a pix2pix U-Net generator) when its weights are given, else a
classical XDoG extractor (difference of Gaussians with a soft threshold), which needs no download.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from engine.tooncrafter.sketch_hints import sketch_to_hint

BISECTION_PROBABILITY = 0.8
MAX_BISECTION_DEPTH = 4


def bisection_frames(length: int, depth: int) -> list[int]:
    """0-based frames chosen by bisecting (0, length-1) `depth` times (the paper's (1, L), 1-based)."""
    if length < 3:
        raise ValueError(f"a clip of {length} frames has no in-between frame to sketch")
    if depth < 1:
        raise ValueError(f"bisection depth must be at least 1, got {depth}")
    chosen: set[int] = set()
    intervals = [(0, length - 1)]
    for _ in range(depth):
        next_intervals = []
        for i, j in intervals:
            if j - i < 2:
                continue
            middle = (i + j) // 2
            chosen.add(middle)
            next_intervals += [(i, middle), (middle, j)]
        intervals = next_intervals
    return sorted(chosen)


def select_sketch_frames(length: int, rng: np.random.Generator) -> list[int]:
    """The frames of one training clip that get a sketch (paper: 80 % bisection, 20 % random)."""
    if rng.random() < BISECTION_PROBABILITY:
        return bisection_frames(length, int(rng.integers(1, MAX_BISECTION_DEPTH + 1)))
    inner = np.arange(1, length - 1)
    size = int(rng.integers(1, len(inner) + 1))
    return sorted(int(f) for f in rng.choice(inner, size=size, replace=False))


# ----------------------------------------------------------------------------------------------
# Line extractors: RGB uint8 frame -> sketch uint8 (dark lines on white paper)


def xdog_sketch(frame: np.ndarray, sigma: float = 0.8, k: float = 1.6, tau: float = 0.98, epsilon: float = 0.0,
                phi: float = 200.0) -> np.ndarray:
    """eXtended Difference of Gaussians (Winnemöller et al. 2012): (H, W, 3) uint8 -> (H, W) uint8."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    fine = cv2.GaussianBlur(grey, (0, 0), sigma)
    coarse = cv2.GaussianBlur(grey, (0, 0), sigma * k)
    dog = fine - tau * coarse
    soft = np.where(dog >= epsilon, 1.0, 1.0 + np.tanh(phi * (dog - epsilon)))
    return np.clip(soft * 255.0, 0, 255).astype(np.uint8)


class _SkipBlock(nn.Module):
    """One level of the pix2pix U-Net generator: down conv, inner block, up conv, concat skip."""

    def __init__(self, outer: int, inner: int, in_channels: int | None = None, submodule: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        in_channels = in_channels or outer
        down = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=True)
        if outermost:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1)
            layers = [down, submodule, nn.ReLU(True), up, nn.Tanh()]
        elif innermost:
            up = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=True)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, nn.InstanceNorm2d(outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=True)
            layers = [nn.LeakyReLU(0.2, True), down, nn.InstanceNorm2d(inner), submodule, nn.ReLU(True), up,
                      nn.InstanceNorm2d(outer)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class Anime2SketchGenerator(nn.Module):
    """Anime2Sketch's generator: pix2pix U-Net, 8 downsamplings, 64 filters, instance norm, RGB -> 1."""

    def __init__(self, ngf: int = 64, num_downs: int = 8) -> None:
        super().__init__()
        block = _SkipBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = _SkipBlock(ngf * 8, ngf * 8, submodule=block)
        block = _SkipBlock(ngf * 4, ngf * 8, submodule=block)
        block = _SkipBlock(ngf * 2, ngf * 4, submodule=block)
        block = _SkipBlock(ngf, ngf * 2, submodule=block)
        self.model = _SkipBlock(1, ngf, in_channels=3, submodule=block, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LineExtractor:
    """Frames -> sketches; Anime2Sketch when `weights` is given, XDoG otherwise (named in `.name`)."""

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.network: Anime2SketchGenerator | None = None
        self.name = "xdog"
        if weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"Anime2Sketch weights not found: {path}")
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k.removeprefix("module."): v for k, v in state.items()}
            network = Anime2SketchGenerator()
            try:
                network.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise ValueError(f"{path}: not Anime2Sketch generator weights ({str(exc).splitlines()[0]})") from None
            self.network = network.eval().requires_grad_(False).to(self.device)
            self.name = "anime2sketch"

    @torch.no_grad()
    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.network is None:
            return xdog_sketch(frame)
        h, w = frame.shape[:2]
        size = (max(256, (w + 255) // 256 * 256), max(256, (h + 255) // 256 * 256))
        resized = cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC)
        x = torch.from_numpy(resized).permute(2, 0, 1)[None].float().div(127.5).sub(1.0).to(self.device)
        y = self.network(x)[0, 0].clamp(-1, 1).add(1.0).mul(127.5).round().byte().cpu().numpy()
        return cv2.resize(y, (w, h), interpolation=cv2.INTER_AREA)


def sketch_hints(frames: np.ndarray, chosen: list[int], extractor: LineExtractor) -> torch.Tensor:
    """(T, H, W, 3) uint8 frames -> (1, T, H, W) float32 hints; zero (empty) on unchosen frames."""
    t, h, w = frames.shape[:3]
    hints = torch.zeros(1, t, h, w)
    for f in chosen:
        hints[0, f] = torch.from_numpy(sketch_to_hint(extractor(frames[f]), source=f"training sketch of frame {f}"))
    return hints
