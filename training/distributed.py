"""One process, one GPU, or many through torchrun: DDP for the usual case, FSDP2 for the full UNet.

The process group comes from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT): NCCL on GPUs, Gloo on CPUs (tests run two CPU processes on loopback). DDP averages
the gradients of the trained parameters only; frozen parts are simply replicated. FSDP2
(`fully_shard`) shards each block the job names, then the networks around them, so the
parameters, gradients and optimizer state of the 1.4 B-parameter UNet are split over the GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def start(device_choice: str) -> tuple[Processes, torch.device]:
    """Join torchrun's process group when launched by it; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_choice == "auto":
        device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    else:
        device = torch.device(device_choice)
        if device.type == "cuda" and device.index is None:
            device = torch.device(f"cuda:{local}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {device_choice}: CUDA is not available on this machine")
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Processes(rank, world, local), device


def stop() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def wrap_ddp(job: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        job = nn.SyncBatchNorm.convert_sync_batchnorm(job)
        return DistributedDataParallel(job, device_ids=[device.index])
    return DistributedDataParallel(job)


def shard_fsdp(units: list[nn.Module], mixed_bf16: bool) -> None:
    """fully_shard every unit (blocks first, then the networks holding them)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if mixed_bf16 else MixedPrecisionPolicy()
    for unit in units:
        fully_shard(unit, mp_policy=policy)


def is_sharded(t: torch.Tensor) -> bool:
    return type(t).__name__ == "DTensor"


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """A parameter's whole value on this process (gathers FSDP shards; a collective call)."""
    return t.full_tensor() if is_sharded(t) else t


def like(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A whole tensor laid out like `target` (sharded the same way when target is an FSDP shard)."""
    if is_sharded(target):
        from torch.distributed.tensor import distribute_tensor

        return distribute_tensor(value.to(target.device_mesh.device_type), target.device_mesh, target.placements)
    return value.to(target.device)
