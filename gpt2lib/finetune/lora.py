"""LoRA (Hu et al. 2021): fine-tune a linear layer through a low-rank update, the weights frozen.

A frozen ``W`` (``out x in``) gains ``(alpha / r) B A`` with ``A`` (``r x in``) and ``B`` (``out x r``):
``r (in + out)`` trainable numbers instead of ``in x out``. ``B`` starts at zero, so training starts
from exactly the pre-trained model, and ``A`` starts random, so the gradient of ``B`` is not zero (were
both zero, neither would ever move). ``alpha / r`` keeps the update's scale steady when ``r`` changes, so
a learning rate found at one rank carries over. After training, ``W + (alpha / r) B A`` can be merged
into one matrix: the fine-tuned model then costs exactly what the original did.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn

from ..runtime import InputError

__all__ = ["LoRALinear", "add_lora", "merge_lora", "DEFAULT_TARGETS"]

# The attention's two projections, as the LoRA paper adapts (W_q, W_v there; here the fused qkv and the output).
DEFAULT_TARGETS = ("attn.w_qkv", "attn.w_o")


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * x A^T B^T``, with ``base`` frozen."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise InputError(f"LoRA wraps an nn.Linear, got {type(base).__name__}")
        if rank < 1:
            raise InputError(f"rank must be >= 1, got {rank}")
        self.base, self.rank, self.alpha = base, int(rank), float(alpha)
        self.scaling = self.alpha / self.rank
        for p in base.parameters():
            p.requires_grad_(False)
        w = base.weight
        self.A = nn.Parameter(torch.empty(rank, base.in_features, device=w.device, dtype=w.dtype))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # what nn.Linear draws for a weight of A's shape

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + (x @ self.A.t() @ self.B.t()) * self.scaling

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` computing the same function (the update added to the weight)."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                        device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scaling * self.B @ self.A)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def add_lora(model: nn.Module, rank: int = 8, alpha: float = 16.0, targets: Iterable[str] = DEFAULT_TARGETS,
             keep_training: Iterable[str] = (), layer: type[nn.Module] = LoRALinear) -> list[str]:
    """Wrap every ``nn.Linear`` whose name ends with one of ``targets`` in ``layer`` (LoRALinear, or the
    reader's class with its interface), freeze everything else but the parameters whose name starts with
    one of ``keep_training`` (a classifier's ``"head"``); return the names wrapped."""
    targets, keep = tuple(targets), tuple(keep_training)
    wrapped = [name for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets)]
    if not wrapped:
        raise InputError(f"no linear layer of the model is named like {list(targets)}; the model's linear layers: "
                         f"{sorted({n.split('.')[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})}")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in wrapped:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer(getattr(parent, child), rank, alpha))
    for name, p in model.named_parameters():
        if any(name == k or name.startswith(k + ".") for k in keep):
            p.requires_grad_(True)
    return wrapped


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` in ``model`` by its merged ``nn.Linear``, in place."""
    for name, m in list(model.named_modules()):
        if isinstance(m, LoRALinear):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, m.merged())
    return model
