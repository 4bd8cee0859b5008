"""Chapter 4's exercises: the pieces of multi-head causal self-attention.

Every checker compares the reader's function with a reference on fresh random tensors and on the edge
cases that break naive code (large scores, a single token, one head), and knows the classic mistakes:
softmax over the wrong dimension, a missing sqrt(d_k), an off-by-one in the causal mask, a forgotten
transpose.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ._core import Case, CheckFailed, Exercise, Mistake, compare, register

# --- 4.1 softmax ---------------------------------------------------------------------------------


def _softmax(x: Tensor) -> Tensor:
    z = x - x.max(dim=-1, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=-1, keepdim=True)


def _softmax_dim0(x: Tensor) -> Tensor:
    z = x - x.max(dim=0, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=0, keepdim=True)


def _softmax_no_max(x: Tensor) -> Tensor:
    e = x.exp()
    return e / e.sum(dim=-1, keepdim=True)


def _softmax_global_sum(x: Tensor) -> Tensor:
    e = (x - x.max()).exp()
    return e / e.sum()


def _softmax_cases(rng):
    return [
        Case("random 3x5 scores", (torch.randn(3, 5),)),
        Case(f"one vector of {(n := rng.randint(4, 12))} scores", (torch.randn(n) * 2,)),
        Case("a batch of 2 heads, 4x4 scores", (torch.randn(2, 4, 4) * 3,)),
        Case("large scores (exp overflows in float32)", (torch.tensor([[1000.0, 999.0, 998.0], [-5.0, 0.0, 5.0]]),)),
        Case("a row with -inf (a masked key)", (torch.tensor([[0.5, float("-inf"), 1.5], [2.0, 1.0, float("-inf")]]),)),
    ]


check_softmax = register(Exercise(
    "softmax", number="4.1", chapter=4, title="A numerically stable softmax over the last dimension", level="easy", minutes=5,
    reference=_softmax, cases=_softmax_cases,
    mistakes=[
        Mistake("you took the softmax over dim=0; each row (the last dimension, dim=-1) must sum to 1",
                _softmax_dim0),
        Mistake("you took exp of the raw scores; large scores overflow to inf, so subtract each row's maximum "
                "first (it cancels out)", _softmax_no_max),
        Mistake("you divided by the sum of the whole tensor; divide by each row's own sum (dim=-1, keepdim=True)",
                _softmax_global_sum),
    ],
))

# --- 4.2 scaled, masked scores ---------------------------------------------------------------------


def _masked_scores(q: Tensor, k: Tensor) -> Tensor:
    T = q.size(-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    keep = torch.ones(T, T, dtype=torch.bool).tril()
    return scores.masked_fill(~keep, float("-inf"))


def _masked_scores_no_sqrt(q: Tensor, k: Tensor) -> Tensor:
    T = q.size(-2)
    scores = q @ k.transpose(-2, -1)
    return scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))


def _masked_scores_by_dk(q: Tensor, k: Tensor) -> Tensor:
    T = q.size(-2)
    scores = q @ k.transpose(-2, -1) / q.size(-1)
    return scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))


def _masked_scores_diag(q: Tensor, k: Tensor) -> Tensor:
    T = q.size(-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    return scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(-1), float("-inf"))


def _masked_scores_upper(q: Tensor, k: Tensor) -> Tensor:
    T = q.size(-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    return scores.masked_fill(torch.ones(T, T, dtype=torch.bool).tril(-1), float("-inf"))


def _masked_scores_zero(q: Tensor, k: Tensor) -> Tensor:
    T = q.size(-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    return scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), 0.0)


def _scores_cases(rng):
    return [
        Case("one head, T=5, d_k=8", (torch.randn(5, 8), torch.randn(5, 8))),
        Case("batch 2 x 3 heads, T=4, d_k=16", (torch.randn(2, 3, 4, 16), torch.randn(2, 3, 4, 16))),
        Case("a single token", (torch.randn(1, 1, 4), torch.randn(1, 1, 4))),
        Case(f"T={(t := rng.randint(6, 9))}, d_k=64", (torch.randn(t, 64), torch.randn(t, 64))),
        Case(f"batch 3, T={(t2 := rng.randint(2, 7))}, d_k={(d := rng.choice([2, 5, 32]))}",
             (torch.randn(3, t2, d) * 2, torch.randn(3, t2, d) * 2)),
    ]


def _compare_masked(expected: Tensor, got: Tensor) -> None:
    """Compare the mask first (where the -inf are), then the scores it keeps, so that a wrong mask is
    reported as a wrong mask rather than as a 'nan' error."""
    if not isinstance(got, Tensor):
        compare(expected, got)  # reports None, the wrong type
    if tuple(got.shape) != tuple(expected.shape):
        raise CheckFailed(f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}")
    exp_hidden, got_hidden = expected == float("-inf"), got.detach().cpu() == float("-inf")
    if not torch.equal(exp_hidden, got_hidden):
        first = (exp_hidden != got_hidden).nonzero()[0].tolist()
        should = "be -inf (a future key)" if exp_hidden[tuple(first)] else "not be -inf (a key the query may see)"
        raise CheckFailed(f"the mask differs: {int(exp_hidden.sum())} scores should be -inf, yours has "
                          f"{int(got_hidden.sum())}; the first disagreement is at {first}, which should {should}")
    compare(expected, got.detach().cpu())


check_masked_scores = register(Exercise(
    "masked_scores", number="4.2", chapter=4, title="Scaled attention scores with the causal mask", level="medium", minutes=10,
    reference=_masked_scores, cases=_scores_cases, compare=_compare_masked,
    mistakes=[
        Mistake("you left out the scaling; divide Q K^T by math.sqrt(d_k), the size of the last dimension",
                _masked_scores_no_sqrt),
        Mistake("you divided by d_k; the formula divides by its square root, sqrt(d_k)", _masked_scores_by_dk),
        Mistake("the mask also hid the diagonal; a token may look at itself (tril with diagonal=0)",
                _masked_scores_diag),
        Mistake("the mask were upside down; hide the keys AFTER the query (above the diagonal), keep those "
                "before it", _masked_scores_upper),
        Mistake("the masked scores were 0; they must be -inf, since exp(0) = 1 would still give the future a "
                "weight", _masked_scores_zero),
    ],
))

# --- 4.3 splitting into heads ---------------------------------------------------------------------


def _split_heads(x: Tensor, n_head: int) -> Tensor:
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def _split_no_transpose(x: Tensor, n_head: int) -> Tensor:
    B, T, C = x.shape
    return x.reshape(B, n_head, T, C // n_head)


def _split_wrong_order(x: Tensor, n_head: int) -> Tensor:
    B, T, C = x.shape
    return x.reshape(B, T, C // n_head, n_head).permute(0, 3, 1, 2)


def _split_cases(rng):
    return [
        Case("B=2, T=5, C=12 into 3 heads", (torch.randn(2, 5, 12), 3)),
        Case("B=1, T=4, C=8 into 2 heads", (torch.randn(1, 4, 8), 2)),
        Case("one head (nothing to split)", (torch.randn(2, 3, 6), 1)),
        Case("B=3, T=7, C=64 into 4 heads", (torch.randn(3, 7, 64), 4)),
        Case(f"random sizes, {(h := rng.choice([2, 3, 6]))} heads",
             (torch.randn(rng.randint(1, 3), rng.randint(1, 6), h * rng.randint(1, 5)), h)),
    ]


check_split_heads = register(Exercise(
    "split_heads", number="4.3", chapter=4, title="Split (B, T, C) into heads (B, n_head, T, C / n_head)", level="medium", minutes=10,
    reference=_split_heads, cases=_split_cases,
    mistakes=[
        Mistake("you reshaped straight to (B, n_head, T, d), which mixes positions and heads; view as "
                "(B, T, n_head, d) first, then swap dimensions 1 and 2", _split_no_transpose),
        Mistake("you split the last dimension as (d, n_head); head h owns the contiguous channels "
                "h*d .. (h+1)*d - 1, so view it as (n_head, d)", _split_wrong_order),
    ],
))

# --- 4.4 the whole of multi-head causal self-attention ----------------------------------------------


def _mha(x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor, w_o: Tensor, n_head: int,
         *, scale: bool = True, causal: bool = True, merge_transpose: bool = True, dim: int = -1) -> Tensor:
    B, T, C = x.shape
    d = C // n_head
    q, k, v = (_split_heads(x @ w, n_head) for w in (w_q, w_k, w_v))
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(d)
    if causal:
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    weights = torch.softmax(scores, dim=dim)
    y = weights @ v
    y = y.transpose(1, 2).reshape(B, T, C) if merge_transpose else y.reshape(B, T, C)
    return y @ w_o


def _multi_head_attention(x, w_q, w_k, w_v, w_o, n_head):
    return _mha(x, w_q, w_k, w_v, w_o, n_head)


def _mha_no_sqrt(x, w_q, w_k, w_v, w_o, n_head):
    return _mha(x, w_q, w_k, w_v, w_o, n_head, scale=False)


def _mha_no_mask(x, w_q, w_k, w_v, w_o, n_head):
    return _mha(x, w_q, w_k, w_v, w_o, n_head, causal=False)


def _mha_merge_no_transpose(x, w_q, w_k, w_v, w_o, n_head):
    return _mha(x, w_q, w_k, w_v, w_o, n_head, merge_transpose=False)


def _mha_wrong_dim(x, w_q, w_k, w_v, w_o, n_head):
    return _mha(x, w_q, w_k, w_v, w_o, n_head, dim=-2)


def _mha_cases(rng):
    def case(name, B, T, C, h):
        s = 1 / math.sqrt(C)
        ws = tuple(torch.randn(C, C) * s for _ in range(4))
        return Case(name, (torch.randn(B, T, C), *ws, h))
    return [case("B=2, T=5, C=16, 4 heads", 2, 5, 16, 4), case("B=1, T=6, C=12, 3 heads", 1, 6, 12, 3),
            case("one head", 1, 4, 8, 1), case("a single token", 2, 1, 8, 2),
            case("random sizes", rng.randint(1, 3), rng.randint(2, 7), 4 * (h := rng.choice([1, 2, 4])), h)]


check_multi_head_attention = register(Exercise(
    "multi_head_attention", number="4.4", chapter=4, title="MultiHead(X) = Concat(head_1..head_h) W^O, causal", level="hard", minutes=20,
    reference=_multi_head_attention, cases=_mha_cases,
    mistakes=[
        Mistake("you left out the scaling by 1/sqrt(d_k), with d_k the size of ONE head (C / n_head)",
                _mha_no_sqrt),
        Mistake("there were no causal mask; a token must not see the tokens after it", _mha_no_mask),
        Mistake("you merged the heads without the transpose; (B, n_head, T, d) -> transpose(1, 2) -> (B, T, C)",
                _mha_merge_no_transpose),
        Mistake("you took the softmax over the queries (dim=-2); each query's weights over the keys (dim=-1) "
                "must sum to 1", _mha_wrong_dim),
    ],
))
