"""Between the artist's RGBA keyframes and RIFE's tensors: guides, carried channels, padding, alpha.

RIFE looks at RGB only. For each key we therefore make two tensors:
- the *guide*, the RGB the flow network sees: the key itself when it is opaque, otherwise the key
  composited on a backdrop colour far from every colour in the art (so lines and fills stay visible
  to the network whatever colour they are);
- the *carried* image that the flows and the fusion mask actually move: the RGB of an opaque key, or
  premultiplied RGB plus alpha of a key with transparency, so that colour and coverage are warped and
  mixed together and un-premultiplying afterwards keeps the anti-aliased edges of lines.
Frames are padded (edge pixels repeated) to the size the network's pyramid needs and cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

#: Backdrop candidates for the guide of a transparent key: white first (line art on paper).
BACKDROPS = np.array(
    [[255, 255, 255], [0, 0, 0], [255, 0, 255], [0, 255, 0], [0, 128, 255], [128, 128, 128]], dtype=np.float32
)


def is_opaque(image: np.ndarray) -> bool:
    return bool((image[..., 3] == 255).all())


def pick_backdrop(*images: np.ndarray, sample: int = 65536) -> np.ndarray:
    """The candidate backdrop colour (RGB 0-255) farthest from every visible colour of the images.

    'Farthest' is the largest distance to the nearest visible colour, measured on a fixed subsample
    of the visible pixels (deterministic).
    """
    visible = np.concatenate([img[img[..., 3] >= 16][:, :3] for img in images]).astype(np.float32)
    if len(visible) == 0:
        return BACKDROPS[0]
    if len(visible) > sample:
        visible = visible[np.linspace(0, len(visible) - 1, sample).astype(np.int64)]
    nearest = [float(np.min(np.sum((visible - colour) ** 2, axis=1))) for colour in BACKDROPS]
    return BACKDROPS[int(np.argmax(nearest))]


def to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (H, W, C) to float (1, C, H, W) in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).to(device).permute(2, 0, 1).unsqueeze(0).float() / 255.0


@dataclass
class KeyPair:
    """Two keyframes as the network sees them (guides) and as the flows move them (carried)."""

    guide_a: torch.Tensor  # (1, 3, Hp, Wp) RGB
    guide_b: torch.Tensor
    carried_a: torch.Tensor  # (1, 3 or 4, Hp, Wp): RGB, or premultiplied RGB + alpha
    carried_b: torch.Tensor
    height: int  # the keyframes' own size, before padding
    width: int

    @property
    def has_alpha(self) -> bool:
        return self.carried_a.shape[1] == 4


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    height, width = x.shape[2:]
    bottom, right = -height % multiple, -width % multiple
    if bottom == 0 and right == 0:
        return x
    return F.pad(x, (0, right, 0, bottom), mode="replicate")


def key_pair(key_a: np.ndarray, key_b: np.ndarray, multiple: int, device: torch.device) -> KeyPair:
    """Guides and carried images of two same-size RGBA uint8 keys, padded to `multiple`."""
    height, width = key_a.shape[:2]
    if is_opaque(key_a) and is_opaque(key_b):
        a, b = (pad_to_multiple(to_tensor(k[..., :3], device), multiple) for k in (key_a, key_b))
        return KeyPair(a, b, a, b, height, width)
    backdrop = torch.from_numpy(pick_backdrop(key_a, key_b) / 255.0).to(device).view(1, 3, 1, 1)
    guides, carried = [], []
    for key in (key_a, key_b):
        rgba = to_tensor(key, device)
        alpha = rgba[:, 3:]
        premultiplied = torch.cat((rgba[:, :3] * alpha, alpha), 1)
        guides.append(pad_to_multiple(premultiplied[:, :3] + backdrop * (1 - alpha), multiple))
        carried.append(pad_to_multiple(premultiplied, multiple))
    return KeyPair(guides[0], guides[1], carried[0], carried[1], height, width)


def to_rgba(carried: torch.Tensor, height: int, width: int) -> np.ndarray:
    """A carried in-between (1, 3|4, Hp, Wp) back to straight-alpha RGBA uint8 at the keys' size."""
    x = carried[0, :, :height, :width].clamp(0.0, 1.0)
    if x.shape[0] == 3:
        rgb, alpha = x, torch.ones_like(x[:1])
    else:
        alpha = x[3:]
        visible = alpha >= 0.5 / 255.0
        rgb = torch.where(visible, x[:3] / alpha.clamp_min(0.5 / 255.0), torch.zeros_like(x[:3])).clamp(0.0, 1.0)
        alpha = torch.where(visible, alpha, torch.zeros_like(alpha))
    out = torch.cat((rgb, alpha), 0).mul(255.0).round().to(torch.uint8)
    return out.permute(1, 2, 0).cpu().numpy()
