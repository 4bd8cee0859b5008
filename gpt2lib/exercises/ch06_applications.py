"""Chapter 6 exercises: drawing from a distribution, the top-k and top-p filters, a repetition metric,
and one step of generation with a KV cache."""
from __future__ import annotations

import math
import random

import torch

from ._core import Case, CheckFailed, Exercise, Mistake, compare, register


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
    "sample_index", chapter=6, title="Draw a token from a distribution", level="easy", minutes=8, int_required=True,
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
    "top_k_filter", chapter=6, title="The top-k filter", level="easy", minutes=8,
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
    "top_p_filter", chapter=6, title="The top-p (nucleus) filter", level="medium", minutes=12,
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
        Case("'the cat the cat the dog', n = 2", ("the cat the cat the dog".split(), 2)),
        Case("a loop of three tokens, n = 3", (loop, 3)),
        Case("40 random ids from 8, n = 2", (rand, 2)),
        Case("n = 1", ([1, 2, 2, 3, 1, 4], 1)),
        Case("shorter than n: no n-grams, ratio 0.0", ([1, 2], 3)),
    ]


check_distinct_n = register(Exercise(
    "distinct_n", chapter=6, title="Measure repetition: distinct n-gram ratio", level="easy", minutes=8,
    reference=_distinct_n, cases=_distinct_cases,
    mistakes=[
        Mistake("your numbers match dividing by the number of tokens: divide by the number of n-grams, len(tokens) - n + 1",
                _distinct_over_tokens),
        Mistake("your numbers match one n-gram too few or too many: a sequence of length L has L - n + 1, range(len(tokens) - n + 1)", _distinct_off_by_one),
        Mistake("your numbers match counting distinct tokens: count distinct n-GRAMS (tuples of n neighbouring tokens)", _distinct_unigrams),
    ],
))


# ------------------------------------------------------------------ 6.5 the KV-cache step
# The cache is a list with one (keys, values) pair per layer, each (B, n_head, T_past, head_dim); an empty
# list before the first step. A step takes the new ids (B, T), returns their logits (B, T, vocab) and the
# cache with their keys and values appended. The mistakes differ from the reference in one line each.
def _kv_step(model: torch.nn.Module, ids: torch.Tensor, past: list, *, offset: bool = True,
             append: str = "after", mask: str = "shifted", attend: str = "all") -> tuple[torch.Tensor, list]:
    B, T = ids.shape
    T_past = past[0][0].size(2) if past else 0
    start = T_past if offset else 0
    x = model.wte(ids) + model.wpe(torch.arange(start, start + T, device=ids.device))
    present = []
    for i, block in enumerate(model.blocks):
        q, k_new, v_new = block.attn.split_heads(block.ln_1(x))
        if past and append == "before":
            k, v = torch.cat([k_new, past[i][0]], dim=2), torch.cat([v_new, past[i][1]], dim=2)
        elif past:
            k, v = torch.cat([past[i][0], k_new], dim=2), torch.cat([past[i][1], v_new], dim=2)
        else:
            k, v = k_new, v_new
        if append == "none":
            if past:
                present.append(past[i])
        elif append == "replace":
            present.append((k_new, v_new))
        else:
            present.append((k, v))
        if attend == "new":
            k, v = k_new, v_new
        T_k = k.size(2)
        if mask == "shifted":
            keep = torch.ones(T, T_k, dtype=torch.bool, device=ids.device).tril(diagonal=T_k - T)
        elif mask == "top-left":
            keep = torch.ones(T, T_k, dtype=torch.bool, device=ids.device).tril()
        else:
            keep = torch.ones(T, T_k, dtype=torch.bool, device=ids.device)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        y = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1) @ v
        x = x + block.attn.w_o(y.transpose(1, 2).reshape(B, T, -1))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(model.ln_f(x)), present


def _kv_step_reference(model: torch.nn.Module, ids: torch.Tensor, past: list) -> tuple[torch.Tensor, list]:
    with torch.no_grad():
        return _kv_step(model, ids, past)


def _kv_mistake(**how: str | bool):
    def wrong(model: torch.nn.Module, ids: torch.Tensor, past: list) -> tuple[torch.Tensor, list]:
        with torch.no_grad():
            return _kv_step(model, ids, past, **how)
    return wrong


def _tiny_model(rng: random.Random) -> torch.nn.Module:
    from ..model import GPT, GPTConfig

    n_head = rng.choice([1, 2, 4])
    config = GPTConfig(vocab_size=rng.randint(24, 64), block_size=32, n_layer=rng.choice([1, 2, 3]),
                       n_head=n_head, n_embd=n_head * rng.choice([4, 8]), dropout=0.0)
    model = GPT(config).eval()
    with torch.no_grad():
        # init-sized weights (std 0.02) make every position look alike and hide the mistakes
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1)
    return model


def _kv_cases(rng: random.Random) -> list[Case]:
    def past_of(model: torch.nn.Module, B: int, L: int) -> list:
        return _kv_step_reference(model, torch.randint(model.config.vocab_size, (B, L)), [])[1]

    def ids(model: torch.nn.Module, B: int, T: int) -> torch.Tensor:
        return torch.randint(model.config.vocab_size, (B, T))

    cases = []
    for m in (_tiny_model(rng), _tiny_model(rng)):
        c = m.config
        shape = f"{c.n_layer} layer(s), {c.n_head} head(s), n_embd {c.n_embd}"
        T0, L1, L2, T2 = rng.randint(2, 6), rng.randint(2, 12), rng.randint(1, 10), rng.randint(2, 5)
        B = rng.choice([1, 2])
        cases += [
            Case(f"{shape}: {T0} tokens, empty cache (the prompt)", (m, ids(m, B, T0), [])),
            Case(f"{shape}: one token after {L1} cached", (m, ids(m, B, 1), past_of(m, B, L1))),
            Case(f"{shape}: {T2} tokens after {L2} cached (a chunk of a prompt)",
                 (m, ids(m, B, T2), past_of(m, B, L2))),
        ]
    return cases


def _compare_kv_step(expected: tuple, got: object) -> None:
    if got is None:
        raise CheckFailed("your function returned None: did you forget the `return` statement?")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"return a pair (logits, cache), got a {type(got).__name__}")
    exp_logits, exp_cache = expected
    logits, cache = got
    try:
        compare(exp_logits, logits, atol=1e-4, rtol=1e-4)
    except CheckFailed as exc:
        raise CheckFailed(f"the logits: {exc}") from None
    if not isinstance(cache, (list, tuple)) or len(cache) != len(exp_cache):
        raise CheckFailed(f"the cache must be a list of {len(exp_cache)} (keys, values) pairs, one per layer, "
                          f"got a {type(cache).__name__} of length {len(cache) if hasattr(cache, '__len__') else '?'}")
    for layer, (pair_e, pair) in enumerate(zip(exp_cache, cache)):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise CheckFailed(f"cache[{layer}] must be a (keys, values) pair, got a {type(pair).__name__}")
        for what, e, g in (("keys", pair_e[0], pair[0]), ("values", pair_e[1], pair[1])):
            try:
                compare(e, g, atol=1e-4, rtol=1e-4)
            except CheckFailed as exc:
                raise CheckFailed(f"the cache's layer {layer} {what}: {exc}") from None


check_kv_cache_step = register(Exercise(
    "kv_cache_step", chapter=6, title="One step of generation with a KV cache", level="hard", minutes=25,
    reference=_kv_step_reference, cases=_kv_cases, compare=_compare_kv_step,
    mistakes=[
        Mistake("your numbers match what you would get if the new tokens' positions started at 0 again: "
                "after T_past cached tokens they are T_past, T_past + 1, ...", _kv_mistake(offset=False)),
        Mistake("your numbers match what you would get if the returned cache were the old one: append the new "
                "keys and values after the cached ones (torch.cat along dim=2)", _kv_mistake(append="none")),
        Mistake("your numbers match what you would get if the cache kept only the new tokens' keys and values: "
                "it must hold every position so far", _kv_mistake(append="replace")),
        Mistake("your numbers match what you would get if the new keys went BEFORE the cached ones: positions "
                "run in order, so the cached keys come first", _kv_mistake(append="before")),
        Mistake("your numbers match what you would get if the mask's triangle started in the top-left corner: "
                "new token i sits at position T_past + i and may see keys 0 .. T_past + i, so shift the triangle "
                "right by T_past (torch.tril's diagonal argument)", _kv_mistake(mask="top-left")),
        Mistake("your numbers match what you would get with no mask at all: with several new tokens, each must "
                "not see the new tokens after it", _kv_mistake(mask="none")),
        Mistake("your numbers match what you would get if the new tokens attended only to each other: attention "
                "runs over the cached keys and the new ones", _kv_mistake(attend="new")),
    ],
))
