"""Chapter 4's last exercise: multi-head causal self-attention as a module, the piece chapter 5's block uses.

:class:`BookCausalSelfAttention` is the book's version, the one later chapters fall back on when the reader
has not passed the exercise (``use("attention_module", book=BookCausalSelfAttention)``). Its parameters
carry the package's names (``w_qkv``, ``w_o``), so a state dict moves between it, the reader's module and
``gpt2lib.attention.CausalSelfAttention`` unchanged; unlike the package's layer it returns the output
tensor alone, as the reader's does.

The checker (exercise 4.5) builds the reader's class, loads a known state dict into it (strictly: chapter 5
loads trained weights the same way) and compares its output with the book's on batches with several heads
and rows, a single token and a single head. Each listed mistake is a class that differs from the book's in
one step; the first fixed case (4 heads of 6 channels, 2 rows, 5 tokens) exposes every one of them.
"""
from __future__ import annotations

import math
import types
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._core import Case, CheckFailed, Exercise, Mistake, compare, register


class BookCausalSelfAttention(nn.Module):
    """``Concat(head_1..head_h) W^O`` with a causal mask, written from chapter 4's formula."""

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.w_qkv = nn.Linear(n_embd, 3 * n_embd)
        self.w_o = nn.Linear(n_embd, n_embd)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        d = C // self.n_head
        q, k, v = (t.view(B, T, self.n_head, d).transpose(1, 2) for t in self.w_qkv(x).split(C, dim=-1))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=x.device).tril(), float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v
        return self.w_o(y.transpose(1, 2).reshape(B, T, C))


# --- the mistakes: the book's module with one step done wrong ------------------------------------------


class _Variant(BookCausalSelfAttention):
    """The book's module with switches, one per mistake (each subclass turns one on)."""

    mask, scale, split, merge, order, dim, out = "causal", "head", "view_transpose", "transpose", "qkv", -1, True

    def _split(self, t: Tensor) -> Tensor:
        B, T, C = t.shape
        h, d = self.n_head, C // self.n_head
        if self.split == "reshape":
            return t.reshape(B, h, T, d)
        if self.split == "d_first":
            return t.reshape(B, T, d, h).permute(0, 3, 1, 2)
        return t.view(B, T, h, d).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        parts = dict(zip(self.order, self.w_qkv(x).split(C, dim=-1)))
        q, k, v = (self._split(parts[name]) for name in "qkv")
        scores = q @ k.transpose(-2, -1)
        scores = scores / {"head": math.sqrt(C // self.n_head), "n_embd": math.sqrt(C), "none": 1.0,
                           "d_k": C // self.n_head}[self.scale]
        if self.mask != "none":
            keep = torch.ones(T, T, dtype=torch.bool).tril(-1 if self.mask == "no_diagonal" else 0)
            scores = scores.masked_fill(~keep, float("-inf"))
        y = torch.softmax(scores, dim=self.dim) @ v
        y = y.transpose(1, 2).reshape(B, T, C) if self.merge == "transpose" else y.reshape(B, T, C)
        return self.w_o(y) if self.out else y


def _variant(name: str, **switches: Any) -> type[nn.Module]:
    return types.new_class(name, (_Variant,), exec_body=lambda ns: ns.update(switches, __module__=__name__))


_NoMask = _variant("_NoMask", mask="none")
_NoScale = _variant("_NoScale", scale="none")
_ScaleByEmbd = _variant("_ScaleByEmbd", scale="n_embd")
_ScaleByDk = _variant("_ScaleByDk", scale="d_k")
_MergeNoTranspose = _variant("_MergeNoTranspose", merge="reshape")
_SplitNoTranspose = _variant("_SplitNoTranspose", split="reshape")
_ReshapeBothWays = _variant("_ReshapeBothWays", split="reshape", merge="reshape")
_SplitDFirst = _variant("_SplitDFirst", split="d_first")
_KQV = _variant("_KQV", order="kqv")
_SoftmaxQueries = _variant("_SoftmaxQueries", dim=-2)
_NoWO = _variant("_NoWO", out=False)
_MaskDiagonal = _variant("_MaskDiagonal", mask="no_diagonal")


# --- how the cases run a class ------------------------------------------------------------------------

_KEYS = ("w_qkv.weight", "w_qkv.bias", "w_o.weight", "w_o.bias")


def _build(cls: type, n_embd: int, n_head: int, state: dict[str, Tensor]) -> nn.Module:
    module = cls(n_embd, n_head)
    if not isinstance(module, nn.Module):
        raise TypeError(f"{cls.__name__}(n_embd, n_head) made a {type(module).__name__}, not an nn.Module: "
                        "write `class MyCausalSelfAttention(nn.Module)` and call super().__init__() first")
    names = list(module.state_dict())
    if sorted(names) != sorted(_KEYS):
        missing = [k for k in _KEYS if k not in names]
        extra = [k for k in names if k not in _KEYS]
        raise ValueError(
            f"your module's weights are named {names}; the checker (and chapter 5, which loads trained weights "
            f"into it) expects exactly {list(_KEYS)}: self.w_qkv = nn.Linear(n_embd, 3 * n_embd) and "
            f"self.w_o = nn.Linear(n_embd, n_embd), both with bias"
            + (f". Missing: {missing}" if missing else "") + (f". Not expected: {extra}" if extra else "")
            + (" (a mask kept as a buffer: register_buffer(..., persistent=False), or build it in forward)"
               if extra else ""))
    module.load_state_dict(state)
    return module.eval()


def _run(cls: Any) -> Callable[..., Any]:
    """What a case calls: build ``cls``, load the case's weights, run it on the case's batch."""
    if isinstance(cls, nn.Module):
        def instance(*args: Any) -> Any:
            raise TypeError("you passed a module (an instance); pass the class itself: "
                            "check_attention_module(MyCausalSelfAttention), without parentheses")
        return instance
    if not isinstance(cls, type):
        if getattr(cls, "__module__", None) == "__main__":  # a function written in the notebook
            def function(*args: Any) -> Any:
                raise TypeError(f"{getattr(cls, '__name__', 'that')} is a function; this exercise asks for a "
                                "class: `class MyCausalSelfAttention(nn.Module)` with __init__(self, n_embd, "
                                "n_head) and forward(self, x)")
            return function
        return cls  # already takes a case's arguments (the checker's own adapted reference and mistakes)

    def run(n_embd: int, n_head: int, state: dict[str, Tensor], x: Tensor) -> Any:
        module = _build(cls, n_embd, n_head, state)
        with torch.no_grad():
            return module(x)
    return run


def _compare(expected: Tensor, got: Any) -> None:
    """The default comparison, with a word for a forward that returns a tuple like gpt2lib's layer."""
    if isinstance(got, (tuple, list)) and got and isinstance(got[0], Tensor):
        raise CheckFailed(f"your forward returned a {type(got).__name__} of {len(got)} items; return the output "
                          f"tensor alone, of shape {tuple(expected.shape)} (gpt2lib's CausalSelfAttention returns "
                          "(y, weights); this module returns y only)")
    compare(expected, got)


def _state(n_embd: int, bias: float = 0.1) -> dict[str, Tensor]:
    """Weights that make scores of a few units: every mistake moves the output by far more than rounding."""
    s = 1 / math.sqrt(n_embd)
    return {"w_qkv.weight": torch.randn(3 * n_embd, n_embd) * 2 * s, "w_qkv.bias": torch.randn(3 * n_embd) * bias,
            "w_o.weight": torch.randn(n_embd, n_embd) * s, "w_o.bias": torch.randn(n_embd) * bias}


def _module_cases(rng):
    def case(name: str, B: int, T: int, C: int, h: int) -> Case:
        return Case(f"{name} (B={B}, T={T}, n_embd={C}, n_head={h})", (C, h, _state(C), torch.randn(B, T, C)))
    h = rng.choice([1, 2, 3, 4, 6])
    return [case("several heads and rows", 2, 5, 24, 4),
            case("three heads, one row", 1, 6, 12, 3),
            case("one head", 2, 4, 8, 1),
            case("a single token", 2, 1, 8, 2),
            case("random sizes", rng.randint(1, 3), rng.randint(2, 9), h * rng.randint(1, 6), h)]


check_attention_module = register(Exercise(
    "attention_module", number="4.5", chapter=4, title="Causal self-attention as an nn.Module", level="hard",
    minutes=20, reference=BookCausalSelfAttention, cases=_module_cases, adapt=_run, compare=_compare,
    mistakes=[
        Mistake("there were no causal mask; a token must not see the tokens after it", _NoMask),
        Mistake("you left out the scaling; divide the scores by sqrt(d_k), d_k = n_embd // n_head", _NoScale),
        Mistake("you divided the scores by sqrt(n_embd); the scale is the size of ONE head, sqrt(n_embd // n_head)",
                _ScaleByEmbd),
        Mistake("you divided the scores by d_k; the formula divides by its square root", _ScaleByDk),
        Mistake("you merged the heads without the transpose; (B, n_head, T, d) -> .transpose(1, 2) -> "
                "(B, T, n_head, d) -> .reshape(B, T, C)", _MergeNoTranspose),
        Mistake("you split the heads by viewing (B, T, C) straight as (B, n_head, T, d), which mixes positions "
                "and heads; view as (B, T, n_head, d), then .transpose(1, 2)", _SplitNoTranspose),
        Mistake("you split the heads by reshaping straight to (B, n_head, T, d) and merged them back the same "
                "way; the two cancel in shape but not in meaning: view as (B, T, n_head, d) and transpose",
                _ReshapeBothWays),
        Mistake("you split each vector as (d, n_head); head h owns the contiguous channels h*d .. (h+1)*d - 1, "
                "so view as (n_head, d)", _SplitDFirst),
        Mistake("you took k, q, v from w_qkv in that order; its output holds q, then k, then v "
                "(.split(n_embd, dim=-1))", _KQV),
        Mistake("you took the softmax over the queries (dim=-2); each query's weights over the keys (dim=-1) "
                "must sum to 1", _SoftmaxQueries),
        Mistake("you left out w_o; the heads' concatenation goes through self.w_o before it is returned", _NoWO),
        Mistake("the mask also hid the diagonal; a token may look at itself (tril with diagonal=0)",
                _MaskDiagonal),
    ],
))
