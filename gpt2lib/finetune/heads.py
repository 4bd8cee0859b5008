"""A classification head on a pre-trained GPT, and which of its parameters train.

Each text is closed by an end-of-text token, and the head reads that token's final hidden state: under
the causal mask it is the only position that has seen the whole text, and being the same token in every
example it gives the head one fixed place to look (GPT-1 appended an "extract" token for the same
reason; Radford et al. 2018). A linear layer turns its ``n_embd`` numbers into one logit per class.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..runtime import InputError

__all__ = ["last_token_states", "Classifier", "set_trainable", "count_parameters"]


def last_token_states(hidden: Tensor, lengths: Tensor) -> Tensor:
    """``hidden[b, lengths[b] - 1]`` for every row ``b``: ``(B, T, C)`` and ``(B,)`` -> ``(B, C)``."""
    if hidden.dim() != 3 or lengths.shape != hidden.shape[:1]:
        raise InputError(f"need hidden (B, T, C) and lengths (B,), got {tuple(hidden.shape)} and {tuple(lengths.shape)}")
    if bool((lengths < 1).any()) or bool((lengths > hidden.size(1)).any()):
        raise InputError(f"every length must be in [1, {hidden.size(1)}], got {lengths.tolist()}")
    rows = torch.arange(hidden.size(0), device=hidden.device)
    return hidden[rows, lengths.to(hidden.device) - 1]


class Classifier(nn.Module):
    """``body`` (a :class:`~gpt2lib.model.GPT`) with a linear head on the state of the end-of-text token
    (``pad_id``) that closes each text; rows are padded on the right with more of it, and the head reads
    the first (a row without one: its last position). ``forward(idx, labels)`` returns ``(logits, loss)``
    like the GPT, with logits ``(B, n_classes)``."""

    def __init__(self, body: nn.Module, n_classes: int, pad_id: int) -> None:
        super().__init__()
        if n_classes < 2:
            raise InputError(f"a classifier needs at least 2 classes, got {n_classes}")
        self.body, self.pad_id, self.config = body, int(pad_id), body.config
        self.head = nn.Linear(body.config.n_embd, n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, idx: Tensor, targets: Tensor | None = None, **_: object) -> tuple[Tensor, Tensor | None]:
        ends = idx == self.pad_id
        lengths = torch.where(ends.any(dim=1), ends.int().argmax(dim=1) + 1, idx.size(1))
        logits = self.head(last_token_states(self.body.hidden_states(idx), lengths))
        return logits, (F.cross_entropy(logits, targets) if targets is not None else None)


def set_trainable(model: nn.Module, train: str | Iterable[str]) -> int:
    """Freeze every parameter of ``model`` but those whose name starts with one of ``train`` (``"all"``
    trains everything); return how many numbers train. Names are ``model.named_parameters()``'s, e.g.
    ``"head"`` or ``"body.blocks.3"``."""
    prefixes = [train] if isinstance(train, str) else list(train)
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if prefix != "all" and not any(n == prefix or n.startswith(prefix + ".") for n in names):
            raise InputError(f"no parameter is named {prefix!r} or starts with {prefix + '.'!r}; "
                             f"names start with: {sorted({n.split('.')[0] for n in names})}")
    for name, p in model.named_parameters():
        p.requires_grad_("all" in prefixes or any(name == q or name.startswith(q + ".") for q in prefixes))
    return count_parameters(model)


def count_parameters(model: nn.Module, trainable: bool = True) -> int:
    """The numbers in ``model``'s parameters (the trainable ones only, by default); a tied weight once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)
