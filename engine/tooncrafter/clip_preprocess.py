"""The CLIP image embedder's preprocessing, as the original runs it (through kornia 0.7).

The keyframe, in [-1, 1], is resized straight to 224x224 (no crop: the aspect ratio is squashed)
with bicubic interpolation (align_corners=True). When an axis shrinks, the image is first blurred
with a Gaussian whose sigma follows the skimage rule (factor - 1) / 2 (at least 0.001) and whose
kernel spans about four sigmas (odd, at least 3), reflecting at the borders. Then the values are
mapped to [0, 1] and normalised with CLIP's mean/std. Reproduced here without depending on kornia.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CLIP_IMAGE_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def antialias_blur_parameters(
    in_size: tuple[int, int], out_size: tuple[int, int]
) -> tuple[tuple[float, float], tuple[int, int]] | None:
    """(sigmas, kernel sizes) per axis (height, width) of the pre-resize blur, or None when no axis shrinks."""
    factors = (in_size[0] / out_size[0], in_size[1] / out_size[1])
    if max(factors) <= 1:
        return None
    sigmas = (max((factors[0] - 1.0) / 2.0, 0.001), max((factors[1] - 1.0) / 2.0, 0.001))
    sizes = tuple(int(max(4.0 * s, 3)) for s in sigmas)
    sizes = tuple(k + 1 if k % 2 == 0 else k for k in sizes)
    return sigmas, sizes


def _gaussian_kernel(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    sigma_t = torch.tensor(sigma, dtype=dtype, device=device)
    x = torch.arange(size, dtype=dtype, device=device) - size // 2
    kernel = torch.exp(-x.pow(2.0) / (2 * sigma_t.pow(2.0)))
    return kernel / kernel.sum()


def gaussian_blur(images: torch.Tensor, kernel_sizes: tuple[int, int], sigmas: tuple[float, float]) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) images with reflected borders (width pass, then height)."""
    n, c, h, w = images.shape
    flat = images.reshape(n * c, 1, h, w)
    ky, kx = kernel_sizes
    row = _gaussian_kernel(kx, sigmas[1], images.dtype, images.device).view(1, 1, 1, kx)
    column = _gaussian_kernel(ky, sigmas[0], images.dtype, images.device).view(1, 1, ky, 1)
    flat = F.conv2d(F.pad(flat, (kx // 2, kx // 2, 0, 0), mode="reflect"), row)
    flat = F.conv2d(F.pad(flat, (0, 0, ky // 2, ky // 2), mode="reflect"), column)
    return flat.reshape(n, c, h, w)


def antialiased_resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic (align_corners=True) resize of (N, C, H, W) to `size`, Gaussian-blurred first if it shrinks."""
    in_size = (images.shape[-2], images.shape[-1])
    if in_size == tuple(size):
        return images
    blur = antialias_blur_parameters(in_size, size)
    if blur is not None:
        sigmas, kernel_sizes = blur
        images = gaussian_blur(images, kernel_sizes, sigmas)
    return F.interpolate(images, size=tuple(size), mode="bicubic", align_corners=True)


def clip_preprocess(images: torch.Tensor, size: int = CLIP_IMAGE_SIZE) -> torch.Tensor:
    """(N, 3, H, W) images in [-1, 1] -> (N, 3, size, size) CLIP input."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"CLIP preprocessing expects (N, 3, H, W) RGB images, got {tuple(images.shape)}")
    x = antialiased_resize(images, (size, size))
    x = (x + 1.0) / 2.0
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
