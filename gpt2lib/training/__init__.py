"""Training: the loop, its schedule and optimizer, checkpoints, many processes.

- :mod:`.schedule`: warm-up + cosine learning rate, AdamW with decay on matrices only;
- :mod:`.config`: :class:`TrainConfig` (checked where it is made) and :class:`TrainResult`;
- :mod:`.loop`: :func:`train` as named steps (accumulation, clipping, bf16, compile, DDP);
- :mod:`.checkpoint`: safetensors + JSON, written atomically, one run per folder; exact resume;
- :mod:`.sources`: where batches come from: windows of a token stream, or fine-tuning examples;
- :mod:`.distributed`: DistributedDataParallel under ``torchrun`` (gloo on CPU, NCCL on GPUs);
"""
from __future__ import annotations

from .checkpoint import (CheckpointError, FolderBusyError, NonFiniteWeightsError, load_checkpoint,
                         read_checkpoint_info, save_checkpoint)
from .config import TrainConfig, TrainResult
from .loop import DivergedError, train
from .schedule import lr_at, make_optimizer, param_groups
from .sources import BatchSource

__all__ = ["BatchSource", "TrainConfig", "TrainResult", "train", "lr_at", "make_optimizer", "param_groups",
           "CheckpointError", "FolderBusyError", "NonFiniteWeightsError", "DivergedError", "save_checkpoint", "load_checkpoint", "read_checkpoint_info"]
