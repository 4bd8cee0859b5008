"""The learning rate over a run, and which parameters the optimizer decays.

Warm-up: Adam's second-moment estimates start at zero and are noisy for the first steps, so a full
learning rate at step 0 can throw the weights far from their careful initialisation; ramping up
linearly over ``warmup_steps`` avoids that. Cosine decay: the loss keeps falling late in a run when
the steps shrink smoothly towards ``min_lr`` instead of stopping at a plateau of large, noisy steps.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..runtime import InputError

__all__ = ["lr_at", "param_groups", "make_optimizer"]


def lr_at(step: int, *, lr: float, warmup_steps: int, max_steps: int, min_lr: float = 0.0) -> float:
    """The learning rate for optimizer step ``step`` (0-based): linear warm-up to the peak rate ``lr`` (``TrainConfig.lr``) over
    ``warmup_steps`` steps, then half a cosine down to ``min_lr`` at ``max_steps``, flat after."""
    if step < 0:
        raise InputError(f"step must be >= 0, got {step}")
    if warmup_steps < 0 or max_steps < 1:
        raise InputError(f"need warmup_steps >= 0 and max_steps >= 1, got {warmup_steps} and {max_steps}")
    if not 0.0 <= min_lr <= lr:
        raise InputError(f"need 0 <= min_lr <= lr, got min_lr={min_lr}, lr={lr}")
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps  # step 0 already moves: lr > 0
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: matrices (linear weights, embeddings) decay; vectors (biases, LayerNorm gains) do not.

    Decay pulls weights towards zero. For a matrix that is regularisation; for a LayerNorm gain it
    would pull the normalised activations towards zero, and for a bias towards an arbitrary origin, so
    GPT-style training exempts every parameter with fewer than two dimensions. Tied weights (the
    embedding shared with the output head) appear once: ``named_parameters`` deduplicates them.
    """
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": float(weight_decay)},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, *, lr: float, weight_decay: float = 0.1,
                   betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`; the fused CUDA kernel when every parameter is on a GPU."""
    if lr <= 0:
        raise InputError(f"lr must be > 0, got {lr}")
    if weight_decay < 0:
        raise InputError(f"weight_decay must be >= 0, got {weight_decay}")
    on_cuda = all(p.is_cuda for p in model.parameters())
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas, eps=eps,
                             fused=True if on_cuda else None)
