"""The feature networks the paper's metrics need, loaded from local weights or reported absent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.weights import resolve


@dataclass
class MetricNetworks:
    """Loaded networks (None when absent) and, for each absent one, why."""

    i3d: Any = None  # callable: list of (T, H, W, 3) uint8 videos -> (N, d) features
    lpips: Any = None  # evaluation.lpips.Lpips
    clip: Any = None  # curation.clip_model.ClipEmbedder
    missing: dict[str, str] = field(default_factory=dict)


def load_networks(i3d: str | None = None, lpips_backbone: str | None = None, lpips_heads: str | None = None,
                  clip: str | None = None, clip_architecture: str = "ViT-L-14", device: str = "cpu") -> MetricNetworks:
    networks = MetricNetworks()
    path, reason = resolve("i3d", i3d)
    if path is None:
        networks.missing["FVD"] = networks.missing["KVD"] = reason
    else:
        from .i3d import I3DFeatures

        networks.i3d = I3DFeatures(path, device=device)
    backbone, reason_b = resolve("lpips-backbone", lpips_backbone)
    heads, reason_h = resolve("lpips-heads", lpips_heads)
    if backbone is None or heads is None:
        networks.missing["LPIPS"] = "; ".join(r for r in (reason_b, reason_h) if r)
    else:
        from .lpips import Lpips

        networks.lpips = Lpips(backbone, heads).to(device)
    path, reason = resolve("clip", clip)
    if path is None:
        networks.missing["CLIP-img"] = networks.missing["CLIP-txt"] = reason
    else:
        from curation.clip_model import ClipEmbedder

        networks.clip = ClipEmbedder(path, clip_architecture, device=device)
    return networks
