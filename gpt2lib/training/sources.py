"""Where a run's batches come from: windows of one long token stream (pre-training), or whole
examples (fine-tuning, :mod:`gpt2lib.finetune`).

:func:`~gpt2lib.training.train` asks a source four things: whether the data fits the model
(:meth:`check`, once, before the first step), which items one global batch holds (:meth:`draw`, from
the run's seeded generator, so a resumed run draws what the uninterrupted one would have), the tensors
of some of those items (:meth:`batch`), and the validation loss (:meth:`val_loss`). Everything else (the
schedule, clipping, the guards against divergence, atomic checkpoints, resume, DDP) is the same loop.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..batches import get_batch
from ..data import TokenData
from ..evaluation import evaluate_loss
from ..runtime import InputError

__all__ = ["BatchSource", "TokenWindows", "as_source"]


class BatchSource:
    """The interface :func:`~gpt2lib.training.train` draws batches through (subclass it)."""

    name: str = "data"
    vocab_size: int = 0

    def check(self, model_config: Any, block: int) -> None:
        """Raise :class:`~gpt2lib.runtime.InputError`, saying what to change, if the data cannot train
        a model of ``model_config`` with windows of ``block`` tokens."""

    def draw(self, gen: torch.Generator, n: int, block: int) -> torch.Tensor:
        """``n`` picks (a 1-D integer tensor) for one global batch, drawn from ``gen`` only."""
        raise NotImplementedError

    def batch(self, picks: torch.Tensor, block: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)`` for ``picks`` on ``device``: what ``model(inputs, targets)`` takes."""
        raise NotImplementedError

    def val_loss(self, model: torch.nn.Module, *, block: int, batch_size: int, max_batches: int | None,
                 device: torch.device) -> float:
        """The mean validation loss of ``model`` (in eval mode; the caller restores the mode)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What a checkpoint records about the data."""
        return {"name": self.name, "vocab_size": self.vocab_size}


class TokenWindows(BatchSource):
    """Pre-training: random windows of ``block + 1`` tokens from the training ids; the validation loss
    over the whole validation split in order."""

    def __init__(self, data: TokenData) -> None:
        self.data, self.name, self.vocab_size = data, data.name, data.vocab_size

    def check(self, model_config: Any, block: int) -> None:
        data = self.data
        if data.vocab_size > model_config.vocab_size:
            raise InputError(f"the data's tokenizer has {data.vocab_size} ids but the model only "
                             f"{model_config.vocab_size}; build the model with vocab_size={data.vocab_size}")
        # The ids are checked here, once, so that every step's forward can skip reading them back from the device.
        top = max((int(np.asarray(ids).max()) for ids in (data.train, data.val) if len(ids)), default=0)
        if top >= model_config.vocab_size:
            raise InputError(f"the data holds token id {top}, but the model has only {model_config.vocab_size} "
                             f"ids; was it encoded with a tokenizer of a different vocabulary?")
        # Both splits must hold a window of block + 1 tokens, or the run would fail only at its end.
        short = [(name, len(ids)) for name, ids in (("training", data.train), ("validation", data.val))
                 if len(ids) < block + 1]
        if short:
            fits = min(len(data.train), len(data.val)) - 1
            raise InputError(f"the {' and '.join(f'{name} split ({n} tokens)' for name, n in short)} cannot fill "
                             f"one window of block_size + 1 = {block + 1} tokens; "
                             + (f"use --block-size {fits} or less, or " if fits >= 1 else "")
                             + "give a longer corpus")

    def draw(self, gen: torch.Generator, n: int, block: int) -> torch.Tensor:
        return torch.randint(len(self.data.train) - block, (n,), generator=gen)

    def batch(self, picks: torch.Tensor, block: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return get_batch(self.data.train, len(picks), block, device=device, starts=picks)

    def val_loss(self, model: torch.nn.Module, *, block: int, batch_size: int, max_batches: int | None,
                 device: torch.device) -> float:
        loss, _ = evaluate_loss(model, self.data.val, block_size=block, batch_size=batch_size,
                                max_batches=max_batches, device=device)
        return loss


def as_source(data: Any) -> BatchSource:
    """``data`` as a :class:`BatchSource`: a :class:`~gpt2lib.data.TokenData` becomes windows of it."""
    if isinstance(data, BatchSource):
        return data
    if isinstance(data, TokenData):
        return TokenWindows(data)
    raise TypeError(f"data must be a TokenData from gpt2lib.data.prepare(...) (or a gpt2lib.training.BatchSource, "
                    f"e.g. fine-tuning examples), got {type(data).__name__}")
