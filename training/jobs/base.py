"""What every training job gives the trainer: a loss module, its optimizer groups, its outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class OptimizerGroup:
    """One optimizer: the (step-module name, parameter) pairs it updates, its learning rate and betas."""

    name: str
    params: list[tuple[str, nn.Parameter]]
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0


@dataclass
class OutputFile:
    """A weights file the job writes: step-module parameters under `prefix` become its keys (the
    prefix removed when `strip`). With `base` (the starting checkpoint's tensors) every other tensor
    is copied from it unchanged; without, the whole module under `prefix` is written."""

    filename: str
    prefix: str
    kind: str  # "tooncrafter" or "sketch_encoder" (the manifest the file must pass)
    base: Callable[[], dict[str, torch.Tensor]] | None = None
    strip: bool = True

    def key(self, name: str) -> str:
        return name[len(self.prefix) :] if self.strip else name


class TrainingJob(nn.Module):
    """forward(batch, step) -> (loss, {name: float tensor to log})."""

    name = "job"
    #: Module types to run under activation checkpointing when it is on.
    checkpoint_types: tuple[type[nn.Module], ...] = ()

    def optimizer_groups(self) -> list[OptimizerGroup]:
        return []

    def outputs(self) -> list[OutputFile]:
        return []

    def shard_units(self) -> list[nn.Module]:
        """Modules FSDP shards one by one (the trained networks' blocks), innermost first."""
        return []

    def frozen_networks(self) -> list[nn.Module]:
        """Networks that only run forward here (safe to hold in bf16 with --frozen-dtype bf16)."""
        return []

    def sample_extras(self) -> Callable | None:
        """A picklable callable (frames uint8 (T, H, W, 3), seed) -> extra tensors for the sample."""
        return None

    def describe(self) -> list[str]:
        return []


def named_trainable(module: nn.Module, prefix: str) -> list[tuple[str, nn.Parameter]]:
    return [(prefix + n, p) for n, p in module.named_parameters() if p.requires_grad]
