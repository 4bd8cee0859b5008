"""Training: the loop, its schedule and optimizer, checkpoints, many processes, and the book's model.

- :mod:`.schedule`: warm-up + cosine learning rate, AdamW with decay on matrices only;
- :mod:`.loop`: :class:`TrainConfig`, :func:`train` (accumulation, clipping, bf16, compile, DDP);
- :mod:`.checkpoint`: safetensors + JSON, written atomically; exact resume;
- :mod:`.distributed`: DistributedDataParallel under ``torchrun`` (gloo on CPU, NCCL on GPUs);
- :mod:`.book`: :func:`book_model`, the small model the chapters share, trained once and cached.
"""
from __future__ import annotations

from .book import BOOK_MODEL, BOOK_TRAIN, book_data, book_model, book_tokenizer
from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint_info, save_checkpoint
from .loop import TrainConfig, TrainResult, train
from .schedule import lr_at, make_optimizer, param_groups

__all__ = ["TrainConfig", "TrainResult", "train", "lr_at", "make_optimizer", "param_groups",
           "CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint_info",
           "BOOK_MODEL", "BOOK_TRAIN", "book_model", "book_tokenizer", "book_data"]
