"""A classification head on a pre-trained GPT, and which of its parameters train.

The head reads the final hidden state of each text's last real token: under the causal mask it is the
only position that has seen the whole text, and it is a state the model was trained to produce (it
predicts the next token from it). GPT-1 instead appended an "extract" token and read its state
(Radford et al. 2018), but it fine-tuned every weight, that token's embedding included; the book's
model never saw its end-of-text token in pre-training, so that token's embedding, and any state
computed at it, is untrained. A linear layer turns the ``n_embd`` numbers into one logit per class.
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
        raise InputError(f"every length must be in [1, {hidden.size(1)}] (a row needs a real token), "
                         f"got {lengths.tolist()}")
    rows = torch.arange(hidden.size(0), device=hidden.device)
    return hidden[rows, lengths.to(hidden.device) - 1]


class Classifier(nn.Module):
    """``body`` (a :class:`~gpt2lib.model.GPT`) with a linear head on the state of each text's last real
    token. Rows are padded on the right with ``pad_id`` (end-of-text, which never occurs inside a text),
    so a row's length is the index of its first ``pad_id`` (``T`` for a row without one), and the head
    reads position ``length - 1``. ``forward(idx, labels)`` returns ``(logits, loss)`` like the GPT,
    with logits ``(B, n_classes)``."""

    def __init__(self, body: nn.Module, n_classes: int, pad_id: int) -> None:
        super().__init__()
        if n_classes < 2:
            raise InputError(f"a classifier needs at least 2 classes, got {n_classes}")
        self.body, self.pad_id, self.config = body, int(pad_id), body.config
        self.head = nn.Linear(body.config.n_embd, n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def lengths(self, idx: Tensor) -> Tensor:
        """The real tokens in each row of ``idx`` ``(B, T)``: the index of its first ``pad_id``, else ``T``."""
        pads = idx == self.pad_id
        return torch.where(pads.any(dim=1), pads.int().argmax(dim=1), idx.size(1))

    def forward(self, idx: Tensor, targets: Tensor | None = None, **_: object) -> tuple[Tensor, Tensor | None]:
        logits = self.head(last_token_states(self.body.hidden_states(idx), self.lengths(idx)))
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
