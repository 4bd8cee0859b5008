"""Chapter 6.1's exercises: 6.7 the state a classification head reads (the last real token of each padded
row), and 6.8 a LoRA layer written as a class.

6.7's fixed cases pad rows to different lengths, none of them the full width, so that reading the last
position, ``lengths`` itself, the first position or one index for every row each gives other numbers. 6.8's
checker builds the reader's layer on a known ``nn.Linear`` and reports, as one dict, what it computes
with known ``A`` and ``B``, whether it starts as the base layer, whether ``B`` gets a gradient at the start,
whether the base is frozen and how many numbers train: each listed mistake changes at least one of them
in the first case (a square layer, where a transposed update still runs, with ``alpha / rank`` = 4).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._core import Case, Exercise, Mistake, compare, register
from .ch05_modules import _class_runner

__all__ = ["check_last_token_states", "check_lora_linear", "BookLoRALinear"]


# --- 6.7 the last real token's state ------------------------------------------------------------------


def _last_token_states(hidden: Tensor, lengths: Tensor) -> Tensor:
    return hidden[torch.arange(hidden.size(0)), lengths - 1]


def _last_position(hidden: Tensor, lengths: Tensor) -> Tensor:
    return hidden[:, -1]


def _at_lengths(hidden: Tensor, lengths: Tensor) -> Tensor:
    return hidden[torch.arange(hidden.size(0)), lengths]


def _every_row_at_every_length(hidden: Tensor, lengths: Tensor) -> Tensor:
    return hidden[:, lengths - 1]


def _kept_time_axis(hidden: Tensor, lengths: Tensor) -> Tensor:
    return hidden[torch.arange(hidden.size(0)), lengths - 1].unsqueeze(1)


def _first_position(hidden: Tensor, lengths: Tensor) -> Tensor:
    return hidden[:, 0]


def _longest_for_all(hidden: Tensor, lengths: Tensor) -> Tensor:
    return hidden[:, int(lengths.max()) - 1]


def _last_token_cases(rng):
    def case(name: str, lengths: list[int], T: int, C: int) -> Case:
        hidden = torch.randn(len(lengths), T, C)
        return Case(f"{name} (B={len(lengths)}, T={T}, C={C}, lengths={lengths})",
                    (hidden, torch.tensor(lengths)))

    B = rng.randint(1, 5)
    T = rng.randint(2, 12)
    return [
        case("rows padded to different lengths", [2, 5, 3], 7, 4),
        case("one row fills the batch, one is a single token", [6, 1, 4, 6], 6, 3),
        case("one row", [3], 5, 8),
        case("random lengths", [rng.randint(1, T) for _ in range(B)], T, rng.choice([2, 5, 16])),
    ]


check_last_token_states = register(Exercise(
    "last_token_states", number="6.7", chapter=6, title="The state of each row's last real token", level="easy",
    minutes=8, reference=_last_token_states, cases=_last_token_cases,
    mistakes=[
        Mistake("you read the last position of every row, hidden[:, -1]: in a padded row that is padding; "
                "row b's last real token is at lengths[b] - 1", _last_position),
        Mistake("you read position lengths[b], one past the last real token (positions count from 0): "
                "take lengths - 1", _at_lengths),
        Mistake("you indexed hidden[:, lengths - 1], which takes every row at every length, (B, B, C): pair "
                "each row with its own length, hidden[torch.arange(B), lengths - 1]", _every_row_at_every_length),
        Mistake("your result keeps a time axis, (B, 1, C): the head wants (B, C); index with two tensors, or "
                ".squeeze(1) after gather", _kept_time_axis),
        Mistake("you read the first position, which has seen only the first token: under the causal mask only "
                "the last real token has seen the whole text", _first_position),
        Mistake("you read every row at the longest row's last position: each row has its own length",
                _longest_for_all),
    ],
))


# --- 6.8 LoRA as a module ---------------------------------------------------------------------------------


class BookLoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * x A^T B^T`` with ``base`` frozen, ``A`` (rank x in) random, ``B``
    (out x rank) zero: the answer key, the same layer as :class:`gpt2lib.finetune.LoRALinear`."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base, self.scaling = base, alpha / rank
        for p in base.parameters():
            p.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + self.scaling * (x @ self.A.T @ self.B.T)


class _LoRAVariant(BookLoRALinear):
    """The answer key with one switch flipped (the listed mistakes)."""

    scale: Callable[[float, float], float] = staticmethod(lambda rank, alpha: alpha / rank)
    b_random = a_zero = unfrozen = transposed = no_base = False

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__(base, rank, alpha)
        self.scaling = self.scale(rank, alpha)
        if self.b_random:
            nn.init.kaiming_uniform_(self.B, a=math.sqrt(5))
        if self.a_zero:
            nn.init.zeros_(self.A)
        if self.unfrozen:
            for p in base.parameters():
                p.requires_grad_(True)

    def forward(self, x: Tensor) -> Tensor:
        update = x @ (self.B @ self.A) if self.transposed else x @ self.A.T @ self.B.T
        return (0 if self.no_base else self.base(x)) + self.scaling * update


def _lora_variant(name: str, **switches: Any) -> type:
    return type(name, (_LoRAVariant,), {**switches, "__module__": __name__})


_NoScaling = _lora_variant("_NoScaling", scale=staticmethod(lambda rank, alpha: 1.0))
_AlphaOnly = _lora_variant("_AlphaOnly", scale=staticmethod(lambda rank, alpha: alpha))
_RankOverAlpha = _lora_variant("_RankOverAlpha", scale=staticmethod(lambda rank, alpha: rank / alpha))
_BRandom = _lora_variant("_BRandom", b_random=True)
_BothZero = _lora_variant("_BothZero", a_zero=True)
_Unfrozen = _lora_variant("_Unfrozen", unfrozen=True)
_Transposed = _lora_variant("_Transposed", transposed=True)
_NoBase = _lora_variant("_NoBase", no_base=True)

OUTPUT = "output with the case's A and B"
STARTS_AS_BASE = "output right after construction equals base(x)"
B_GRADIENT = "B has a non-zero gradient at the start"
FROZEN = "the base layer's parameters are frozen"
TRAINABLE = "trainable numbers"


def _param(module: nn.Module, name: str, shape: tuple[int, ...], cls: type) -> nn.Parameter:
    p = getattr(module, name, None)
    if not isinstance(p, nn.Parameter):
        raise TypeError(f"{cls.__name__} needs self.{name} as an nn.Parameter (got {type(p).__name__}): "
                        f"self.A (rank x in_features) and self.B (out_features x rank)")
    if tuple(p.shape) != shape:
        raise ValueError(f"self.{name} is {tuple(p.shape)}, expected {shape}: A is (rank, in_features) and B is "
                         f"(out_features, rank), the shapes of gpt2lib.finetune.LoRALinear, so the update "
                         f"x A^T B^T has the base layer's output size")
    return p


def _run_lora(cls: type, base_state: dict[str, Tensor], rank: int, alpha: float, A: Tensor, B: Tensor,
              x: Tensor) -> dict[str, Any]:
    out_f, in_f = base_state["weight"].shape
    base = nn.Linear(in_f, out_f, bias="bias" in base_state)
    base.load_state_dict(base_state)
    with torch.random.fork_rng():  # the layer's random A, the same on every run, the reader's RNG untouched
        torch.manual_seed(0)
        layer = cls(base, rank, alpha)
    if not isinstance(layer, nn.Module):
        raise TypeError(f"{cls.__name__}(base, rank, alpha) made a {type(layer).__name__}, not an nn.Module: write "
                        f"`class {cls.__name__}(nn.Module)` and call super().__init__() first")
    if getattr(layer, "base", None) is not base:
        raise TypeError(f"{cls.__name__} must keep the layer it was given as self.base (the frozen weights)")
    pa, pb = _param(layer, "A", (rank, in_f), cls), _param(layer, "B", (out_f, rank), cls)
    reference = base(x).detach()
    y0 = layer(x)
    starts_as_base = bool(torch.allclose(y0, reference, atol=1e-6, rtol=1e-5))
    y0.square().sum().backward()
    b_grad = pb.grad is not None and bool(pb.grad.abs().max() > 0)
    frozen = not any(p.requires_grad for p in base.parameters())
    trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    with torch.no_grad():
        base.load_state_dict(base_state)  # a base left trainable is not moved by backward, but be sure
        pa.copy_(A)
        pb.copy_(B)
        y1 = layer(x)
    return {OUTPUT: y1, STARTS_AS_BASE: starts_as_base, B_GRADIENT: b_grad, FROZEN: frozen, TRAINABLE: trainable}


def _lora_cases(rng):
    def case(name: str, in_f: int, out_f: int, rank: int, alpha: float, bias: bool = True) -> Case:
        state = {"weight": torch.randn(out_f, in_f) / math.sqrt(in_f)}
        if bias:
            state["bias"] = 0.1 * torch.randn(out_f)
        A, B = torch.randn(rank, in_f) / math.sqrt(in_f), torch.randn(out_f, rank)
        x = torch.randn(2, 3, in_f)
        return Case(f"{name} (in={in_f}, out={out_f}, rank={rank}, alpha={alpha:g}, bias={bias})",
                    (state, rank, alpha, A, B, x))

    rank = rng.choice([2, 4, 8])
    return [
        case("a square layer, alpha / rank = 4", 8, 8, 2, 8.0),
        case("a wider output, no bias", 12, 20, 4, 16.0, bias=False),
        case("the book's setting, rank 8 and alpha 16", 16, 48, 8, 16.0),
        case("random sizes", rng.randint(4, 24), rng.randint(4, 24), rank, float(rank * rng.choice([2, 3, 4]))),
    ]


def _compare_lora(expected: Any, got: Any) -> None:
    compare(expected, got, atol=1e-5, rtol=1e-5)


check_lora_linear = register(Exercise(
    "lora_linear", number="6.8", chapter=6, title="A LoRA layer on a frozen linear layer", level="medium",
    minutes=15, reference=BookLoRALinear, cases=_lora_cases, grad=True, compare=_compare_lora,
    adapt=_class_runner("lora_linear", "MyLoRALinear", "__init__(self, base, rank, alpha) and forward(self, x)",
                        _run_lora),
    mistakes=[
        Mistake("your numbers match no scaling at all: the update is multiplied by alpha / rank", _NoScaling),
        Mistake("your numbers match scaling by alpha alone: divide it by the rank, alpha / rank", _AlphaOnly),
        Mistake("your numbers match scaling by rank / alpha, upside down: it is alpha / rank", _RankOverAlpha),
        Mistake("your numbers match B initialised at random: B starts at zero, so the layer starts as exactly "
                "the pre-trained one", _BRandom),
        Mistake("your numbers match A initialised at zero as well as B: then neither ever gets a gradient and "
                "nothing trains; keep A random", _BothZero),
        Mistake("your numbers match a base layer left trainable: call requires_grad_(False) on base's "
                "parameters, so only A and B train", _Unfrozen),
        Mistake("your numbers match the update transposed, x (B A) instead of x (B A)^T = x A^T B^T", _Transposed),
        Mistake("your numbers match the update without base(x): LoRA adds to the frozen layer's output",
                _NoBase),
    ],
))
