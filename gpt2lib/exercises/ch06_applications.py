"""Chapter 6 exercises: drawing from a distribution, the top-k and top-p filters, a repetition metric.
(The KV-cache step, 6.5, is in ``ch06_kv_cache``; the sampling loop, 6.6, in ``ch06_generate``.)"""
from __future__ import annotations

import random

import torch

from ._core import Case, Exercise, Mistake, register


# ------------------------------------------------------------------ 6.1 drawing one token
def _sample_index(weights: torch.Tensor, u: float) -> int:
    cdf = torch.cumsum(weights.double() / weights.double().sum(), dim=0)
    # the first index whose cumulative probability is strictly above u
    return int(min(int((cdf <= u).sum()), len(weights) - 1))


def _sample_greedy(weights: torch.Tensor, u: float) -> int:
    return int(weights.argmax())


def _sample_unnormalised(weights: torch.Tensor, u: float) -> int:
    cdf = torch.cumsum(weights.double(), dim=0)
    return int(min(int((cdf <= u).sum()), len(weights) - 1))


def _sample_ge(weights: torch.Tensor, u: float) -> int:
    cdf = torch.cumsum(weights.double() / weights.double().sum(), dim=0)
    return int(min(int((cdf < u).sum()), len(weights) - 1))


def _sample_cases(rng: random.Random) -> list[Case]:
    w = torch.rand(12) + 0.05
    return [
        Case("probabilities [0.25, 0.25, 0.5], u = 0.6", (torch.tensor([0.25, 0.25, 0.5]), 0.6)),
        Case("u exactly on a boundary: [0.25, 0.25, 0.5], u = 0.25", (torch.tensor([0.25, 0.25, 0.5]), 0.25)),
        Case("weights that do not sum to 1: [2, 6, 2], u = 0.3", (torch.tensor([2.0, 6.0, 2.0]), 0.3)),
        Case("u = 0 picks the first token with weight", (torch.tensor([0.0, 0.5, 0.5]), 0.0)),
        *[Case(f"12 random weights, u = {u:.3f}", (w, u)) for u in (rng.random(), rng.random(), rng.random())],
    ]


check_sample_index = register(Exercise(
    "sample_index", number="6.1", chapter=6, title="Draw a token from a distribution", level="easy", minutes=8, int_required=True,
    reference=_sample_index, cases=_sample_cases,
    mistakes=[
        Mistake("your numbers match an answer that ignores u: walk the cumulative sum and return the first index where it exceeds u "
                "(the argmax is greedy decoding, not sampling)", _sample_greedy),
        Mistake("your numbers match weights used without normalising: divide by their sum first, they need not add up to 1", _sample_unnormalised),
        Mistake("your numbers match closed intervals: the interval of token i is [cdf[i-1], cdf[i]), so when u equals cdf[i] exactly, the answer is "
                "the NEXT token (compare with <=, not <)", _sample_ge),
    ],
))


# ------------------------------------------------------------------ 6.2 top-k
def _top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def _top_k_zero(logits: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, 0.0)


def _top_k_off_by_one(logits: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k + 1, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def _top_k_smallest(logits: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1, largest=False).values[..., -1:]
    return logits.masked_fill(logits > kth, float("-inf"))


def _top_k_cases(rng: random.Random) -> list[Case]:
    return [
        Case("one vector of 10 logits, k = 3", (torch.randn(10), 3)),
        Case("k = 1 (greedy)", (torch.randn(20) * 3, 1)),
        Case("a batch (4, 50), k = 5: filter along the last dimension", (torch.randn(4, 50), 5)),
        Case("k larger than the vocabulary keeps everything", (torch.randn(6), 10)),
    ]


check_top_k_filter = register(Exercise(
    "top_k_filter", number="6.2", chapter=6, title="The top-k filter", level="easy", minutes=8,
    reference=_top_k, cases=_top_k_cases,
    mistakes=[
        Mistake("your numbers match dropped logits set to 0: set them to -inf, since exp(0) = 1 still gives them probability", _top_k_zero),
        Mistake("your numbers match keeping one token too many or too few: the k-th largest value is topk(...).values[..., k - 1]", _top_k_off_by_one),
        Mistake("your numbers match keeping the SMALLEST k logits: keep the largest", _top_k_smallest),
    ],
))


# ------------------------------------------------------------------ 6.3 top-p
def _top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs
    drop = (before >= p).scatter(-1, order, before >= p)
    return logits.masked_fill(drop, float("-inf"))


def _top_p_strict(logits: torch.Tensor, p: float) -> torch.Tensor:
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    drop = (cum > p).scatter(-1, order, cum > p)  # drops the token that crosses p (can drop them all)
    return logits.masked_fill(drop, float("-inf"))


def _top_p_unsorted(logits: torch.Tensor, p: float) -> torch.Tensor:
    probs = torch.softmax(logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs
    return logits.masked_fill(before >= p, float("-inf"))


def _top_p_no_scatter(logits: torch.Tensor, p: float) -> torch.Tensor:
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs
    return logits.masked_fill(before >= p, float("-inf"))  # mask in sorted order applied to vocab order


def _top_p_cases(rng: random.Random) -> list[Case]:
    return [
        Case("logits log([0.1, 0.5, 0.15, 0.25]), p = 0.7", (torch.log(torch.tensor([0.1, 0.5, 0.15, 0.25])), 0.7)),
        Case("one very likely token, p = 0.5", (torch.tensor([0.0, 5.0, 1.0, 0.5]), 0.5)),
        Case("30 random logits, p = 0.9", (torch.randn(30) * 2, 0.9)),
        Case("a batch (3, 40), p = 0.8", (torch.randn(3, 40) * 2, 0.8)),
    ]


check_top_p_filter = register(Exercise(
    "top_p_filter", number="6.3", chapter=6, title="The top-p (nucleus) filter", level="medium", minutes=12,
    reference=_top_p, cases=_top_p_cases,
    mistakes=[
        Mistake("your numbers match dropping the token that makes the total reach p: drop a token only if the tokens ranked above it "
                "already add up to p", _top_p_strict),
        Mistake("your numbers match a cumulative sum taken without sorting: sort by probability (descending) first", _top_p_unsorted),
        Mistake("your numbers match a mask left in sorted order: map it back to vocabulary order "
                "(scatter with the sort indices) before applying it", _top_p_no_scatter),
    ],
))


# ------------------------------------------------------------------ 6.4 repetition
def _distinct_n(tokens: list, n: int) -> float:
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _distinct_over_tokens(tokens: list, n: int) -> float:
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(tokens) if grams else 0.0


def _distinct_off_by_one(tokens: list, n: int) -> float:
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _distinct_unigrams(tokens: list, n: int) -> float:
    return len(set(tokens)) / len(tokens) if len(tokens) >= n else 0.0


def _distinct_cases(rng: random.Random) -> list[Case]:
    loop = [5, 6, 7] * 6
    rand = [rng.randrange(8) for _ in range(40)]
    return [
        # written without a separator, (1, 12) and (11, 2) are both "112": n-grams keyed as text collide (and
        # first, since each listed mistake gives its own number here)
        Case("ids of one, two and three digits, n = 2", ([1, 12, 11, 2, 1, 12, 112, 1, 12, 11], 2)),
        Case("'the cat the cat the dog', n = 2", ("the cat the cat the dog".split(), 2)),
        Case("a loop of three tokens, n = 3", (loop, 3)),
        Case("(3, 7) and (7, 3) are different bigrams", ([3, 7, 3, 7, 7, 3], 2)),
        Case("40 random ids from 8, n = 2", (rand, 2)),
        Case(f"30 random GPT-2 ids, n = {(n := rng.randint(1, 3))}", ([rng.randrange(50257) for _ in range(30)], n)),
        Case("n = 1", ([1, 2, 2, 3, 1, 4], 1)),
        Case("shorter than n: no n-grams, ratio 0.0", ([1, 2], 3)),
    ]


check_distinct_n = register(Exercise(
    "distinct_n", number="6.4", chapter=6, title="Measure repetition: distinct n-gram ratio", level="easy", minutes=8,
    reference=_distinct_n, cases=_distinct_cases,
    mistakes=[
        Mistake("your numbers match dividing by the number of tokens: divide by the number of n-grams, len(tokens) - n + 1",
                _distinct_over_tokens),
        Mistake("your numbers match one n-gram too few or too many: a sequence of length L has L - n + 1, range(len(tokens) - n + 1)", _distinct_off_by_one),
        Mistake("your numbers match counting distinct tokens: count distinct n-GRAMS (tuples of n neighbouring tokens)", _distinct_unigrams),
    ],
))
