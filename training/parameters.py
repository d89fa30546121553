"""Which parameters each job trains, chosen by MODULE TYPE (never by name substrings).

Toon rectification freezes every temporal layer of the video UNet: the temporal transformers
(including the extra `init_attn`, which is one) and the temporal convolution blocks that end every
ResBlock. A parameter is temporal when any module on its path is one of those types, so a new
temporal layer type is one line here, and a renamed parameter cannot slip through.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from torch import nn

from engine.tooncrafter.networks.temporal_conv import TemporalConvBlock
from engine.tooncrafter.networks.transformer import TemporalTransformer

#: Module types whose parameters are the UNet's motion prior.
TEMPORAL_MODULE_TYPES: tuple[type[nn.Module], ...] = (TemporalTransformer, TemporalConvBlock)


def _parameters_under(module: nn.Module, types: tuple[type[nn.Module], ...]) -> set[int]:
    """ids of every parameter inside a submodule of one of `types`."""
    found: set[int] = set()
    for sub in module.modules():
        if isinstance(sub, types):
            found.update(id(p) for p in sub.parameters())
    return found


def split_temporal(unet: nn.Module) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """(spatial, temporal) named parameters of a video UNet."""
    temporal_ids = _parameters_under(unet, TEMPORAL_MODULE_TYPES)
    spatial, temporal = [], []
    for name, p in unet.named_parameters():
        (temporal if id(p) in temporal_ids else spatial).append((name, p))
    return spatial, temporal


def set_trainable(root: nn.Module, trainable: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    """Freeze everything under `root`, then unfreeze exactly `trainable`; returns that list."""
    root.requires_grad_(False)
    chosen = list(trainable)
    for p in chosen:
        p.requires_grad_(True)
    return chosen


@dataclass(frozen=True)
class ParameterCount:
    trained: int
    frozen: int

    def __str__(self) -> str:
        total = self.trained + self.frozen
        return f"{self.trained:,} trained / {self.frozen:,} frozen ({100 * self.trained / max(total, 1):.1f} % of {total:,})"


def count(root: nn.Module) -> ParameterCount:
    trained = frozen = 0
    for p in root.parameters():
        if p.requires_grad:
            trained += p.numel()
        else:
            frozen += p.numel()
    return ParameterCount(trained, frozen)


def trained_names(root: nn.Module, prefix: str = "") -> Iterator[str]:
    """State-dict names of the parameters that require grad (with `prefix` prepended)."""
    for name, p in root.named_parameters():
        if p.requires_grad:
            yield prefix + name
