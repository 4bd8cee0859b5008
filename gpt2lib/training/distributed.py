"""Many processes, one model: DistributedDataParallel (DDP) under ``torchrun``.

``torchrun --nproc_per_node=K ...`` starts K copies of the same program and tells each its ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` in environment variables. Each copy holds a full replica of the
model, computes gradients on its own share of the global batch, and DDP averages the gradients across
copies (an all-reduce, overlapped with the backward pass) before every optimizer step, so the replicas
stay identical. With equal shares, the average of the per-process mean gradients is the gradient of
the global batch's mean loss: K processes train exactly the model one process would, K times faster.

On GPUs the backend is NCCL; on CPUs (and in the book's tests) it is gloo.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..runtime import InputError

__all__ = ["DistInfo", "setup", "teardown", "all_reduce_mean", "is_distributed_env"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank among ``world_size`` processes, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 alone prints, logs and writes checkpoints, so that files are written once."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def is_distributed_env() -> bool:
    """True when started by ``torchrun`` (or anything else that sets ``RANK`` and ``WORLD_SIZE``) with
    more than one process."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device | str | None = None) -> DistInfo:
    """Join the process group when started by ``torchrun`` (once per process; later calls reuse it),
    otherwise describe a single process on ``device``."""
    from ..runtime import get_device

    # get_device checks that the machine has the device asked for (a clear error, not torch's assert)
    want = get_device(str(device)) if device is not None else get_device()
    if not is_distributed_env():
        return DistInfo(device=want)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if want.type == "cuda":
        # One GPU per process: the local rank picks it.
        want = torch.device("cuda", local)
        torch.cuda.set_device(want)
    elif want.type != "cpu":
        raise InputError(f"distributed training runs on cuda (nccl) or cpu (gloo), not {want.type}")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, want)


def teardown() -> None:
    """Leave the process group (call once, at the end of the program)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over all processes (``value`` itself when there is one)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= dist.get_world_size()
    return value
