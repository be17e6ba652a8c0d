"""torchrun support: one process per device, the same command works with one process.

Training: each step's batch of `batch_size` examples is split across the ranks (so the recipe's
batch, and what it means for the score, stays the same); DDP averages the gradients; rank 0 alone
writes logs, checkpoints and run.json. Evaluation: ranks decode whole batches in turn and rank 0
merges the predictions (`xares_llm.lalm.evaluate`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def current_world() -> World:
    """The process's place in a torchrun launch (RANK, WORLD_SIZE, LOCAL_RANK), or a world of one."""
    return World(
        rank=int(os.environ.get("RANK", 0)),
        size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_process_group(world: World, device: torch.device) -> None:
    if world.size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def mean_across_ranks(value: torch.Tensor, world: World) -> float:
    """The mean of a scalar over all ranks (for logging one loss per step)."""
    if world.size == 1:
        return float(value)
    total = value.detach().clone().float()
    dist.all_reduce(total)
    return float(total) / world.size


def sum_across_ranks(value: torch.Tensor, world: World) -> torch.Tensor:
    """Elementwise sum of a tensor over all ranks (on the tensor's own device, which NCCL needs)."""
    if world.size == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total
