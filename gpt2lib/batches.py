"""Batches: windows of ``block_size + 1`` ids cut from a token array. The first ``block_size`` ids of a
window are the input, the last ``block_size`` (shifted by one) the targets. Random windows for training
(:func:`get_batch`), every token once in order for evaluation (:func:`sequential_batches`).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from .runtime import InputError

__all__ = ["get_batch", "sequential_batches"]


def _check_windows(data: np.ndarray | torch.Tensor, block_size: int, batch_size: int) -> int:
    if not isinstance(block_size, int) or block_size < 1:
        raise InputError(f"block_size must be a positive int, got {block_size!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    n = len(data)
    if n < block_size + 1:
        raise InputError(f"{n} tokens cannot fill one window of block_size + 1 = {block_size + 1}; "
                         f"use a smaller block_size or a longer corpus")
    return n


def get_batch(data: np.ndarray | torch.Tensor, batch_size: int, block_size: int, *,
              generator: torch.Generator | None = None, device: torch.device | str = "cpu",
              starts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of shape ``(batch_size, block_size)``: windows at random start positions, ``y`` is ``x``
    shifted left by one. Draw the starts from ``generator`` (seeded: the same batches every run), or
    pass ``starts`` yourself (the DDP loop draws the global batch's starts and gives each process its
    share)."""
    n = _check_windows(data, block_size, batch_size)
    if starts is None:
        starts = torch.randint(n - block_size, (batch_size,), generator=generator)
    else:
        starts = torch.as_tensor(starts)
        if starts.dim() != 1 or starts.is_floating_point() or starts.dtype == torch.bool:
            raise InputError(f"starts must be a 1-D tensor of integer positions, got {starts.dtype} of shape "
                             f"{tuple(starts.shape)}")
        if len(starts) and (int(starts.min()) < 0 or int(starts.max()) > n - block_size - 1):
            raise InputError(f"starts must lie in [0, {n - block_size - 1}] so that each window of "
                             f"block_size + 1 = {block_size + 1} fits in {n} tokens; got "
                             f"[{int(starts.min())}, {int(starts.max())}]")
    rows = [np.asarray(data[int(s): int(s) + block_size + 1], dtype=np.int64) for s in starts]
    chunk = torch.from_numpy(np.stack(rows))
    x, y = chunk[:, :-1], chunk[:, 1:]
    device = torch.device(device)
    if device.type == "cuda":  # pinned memory lets the copy overlap with compute
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.contiguous().to(device), y.contiguous().to(device)


def sequential_batches(data: np.ndarray | torch.Tensor, batch_size: int, block_size: int, *,
                       device: torch.device | str = "cpu",
                       max_batches: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Non-overlapping windows from the start of ``data`` in order, ``batch_size`` at a time (the last
    batch may be smaller): every token is predicted exactly once (the tail that does not fill a
    window is left out), which is what an evaluation wants."""
    n = _check_windows(data, block_size, batch_size)
    starts = torch.arange(0, n - block_size, block_size)
    for i, first in enumerate(range(0, len(starts), batch_size)):
        if max_batches is not None and i >= max_batches:
            return
        yield get_batch(data, batch_size, block_size, device=device, starts=starts[first: first + batch_size])
