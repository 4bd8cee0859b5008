"""Chapter 1 exercises: the bigram model from counts, its probabilities, its loss, and bits per byte."""
from __future__ import annotations

import math
import random

import torch

from ._core import Case, Exercise, Mistake, register


def _ids(rng: random.Random, n: int, vocab: int) -> torch.Tensor:
    return torch.tensor([rng.randrange(vocab) for _ in range(n)], dtype=torch.long)


# ------------------------------------------------------------------ 1.1 counting pairs
def _bigram_counts(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.long)
    for a, b in zip(ids[:-1].tolist(), ids[1:].tolist()):
        counts[a, b] += 1
    return counts


def _counts_transposed(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    return _bigram_counts(ids, vocab_size).T.contiguous()


def _counts_wrap_around(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    counts = _bigram_counts(ids, vocab_size)
    counts[int(ids[-1]), int(ids[0])] += 1  # zip(ids, torch.roll(ids, -1)) also pairs the last with the first
    return counts


def _counts_unigram(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.long)
    for a in ids.tolist():
        counts[a, a] += 1
    return counts


def _count_cases(rng: random.Random) -> list[Case]:
    v = rng.randint(5, 9)
    return [
        Case("a hand-sized sequence [0, 1, 0, 1, 2]", (torch.tensor([0, 1, 0, 1, 2]), 3)),
        Case(f"{(n := rng.randint(30, 60))} random ids, vocabulary {v}", (_ids(rng, n, v), v)),
        Case("a token never seen (vocabulary 8, ids < 4)", (_ids(rng, 30, 4), 8)),
        Case("a single id: no pairs at all", (torch.tensor([rng.randrange(4)]), 4)),
        Case("200 random ids, vocabulary 12", (_ids(rng, 200, 12), 12)),
    ]


check_bigram_counts = register(Exercise(
    "bigram_counts", number="1.1", chapter=1, title="Count the bigrams", level="easy", minutes=5,
    reference=_bigram_counts, cases=_count_cases,
    mistakes=[
        Mistake("you counted counts[next, current]: the row is the current token a, the column the token b "
                "after it", _counts_transposed),
        Mistake("you also paired the last token with the first (torch.roll wraps around); the last token has "
                "no successor", _counts_wrap_around),
        Mistake("you counted each token with itself; count each neighbour pair (ids[i], ids[i+1])", _counts_unigram),
    ],
))


# ------------------------------------------------------------------ 1.2 counts to probabilities
def _bigram_probs(counts: torch.Tensor, smoothing: float) -> torch.Tensor:
    c = counts.double() + smoothing
    return (c / c.sum(dim=1, keepdim=True)).float()


def _probs_columns(counts: torch.Tensor, smoothing: float) -> torch.Tensor:
    c = counts.double() + smoothing
    return (c / c.sum(dim=0, keepdim=True)).float()


def _probs_numerator_only(counts: torch.Tensor, smoothing: float) -> torch.Tensor:
    c = counts.double()
    return ((c + smoothing) / c.sum(dim=1, keepdim=True).clamp(min=1)).float()


def _probs_no_smoothing(counts: torch.Tensor, smoothing: float) -> torch.Tensor:
    c = counts.double()
    return (c / c.sum(dim=1, keepdim=True).clamp(min=1)).float()


def _probs_cases(rng: random.Random) -> list[Case]:
    def table(v: int, n: int) -> torch.Tensor:
        return _bigram_counts(_ids(rng, n, v), v)

    empty_row = table(6, 50)
    empty_row[3] = 0  # a token that was never followed by anything
    return [
        Case("counts of 60 random ids over 4 tokens, smoothing 1", (table(4, 60), 1.0)),
        Case("a row of zeros (token 3 never seen), smoothing 0.5", (empty_row, 0.5)),
        Case("counts over 9 tokens, smoothing 0.1", (table(9, 300), 0.1)),
        Case(f"counts over 5 tokens, smoothing {(s := round(rng.uniform(0.2, 3.0), 2))}", (table(5, 40), s)),
    ]


check_bigram_probs = register(Exercise(
    "bigram_probs", number="1.2", chapter=1, title="From counts to smoothed probabilities", level="easy", minutes=5,
    reference=_bigram_probs, cases=_probs_cases,
    mistakes=[
        Mistake("you normalised each column (dim=0); each ROW is a distribution over the next token, so "
                "divide by the row sums (dim=1)", _probs_columns),
        Mistake("you added the smoothing to the counts but not to the row sums, so the rows no longer sum to 1",
                _probs_numerator_only),
        Mistake("you left out the smoothing: an unseen pair then has probability 0 (and a row of zeros is "
                "not a distribution)", _probs_no_smoothing),
    ],
))


# ------------------------------------------------------------------ 1.3 the loss
def _mean_nll(probs: torch.Tensor, ids: torch.Tensor) -> float:
    p = probs[ids[:-1], ids[1:]].double()
    return float(-torch.log(p).mean())


def _nll_bits(probs: torch.Tensor, ids: torch.Tensor) -> float:
    return float(-torch.log2(probs[ids[:-1], ids[1:]].double()).mean())


def _nll_sum(probs: torch.Tensor, ids: torch.Tensor) -> float:
    return float(-torch.log(probs[ids[:-1], ids[1:]].double()).sum())


def _nll_transposed(probs: torch.Tensor, ids: torch.Tensor) -> float:
    return float(-torch.log(probs[ids[1:], ids[:-1]].double()).mean())


def _nll_cases(rng: random.Random) -> list[Case]:
    cases = []
    for v, n in ((4, 10), (7, 60), (12, 200), (rng.randint(3, 9), rng.randint(2, 40))):
        logits = torch.randn(v, v) * 2
        cases.append(Case(f"{v} tokens, {n} ids", (torch.softmax(logits, dim=1), _ids(rng, n, v))))
    return cases


check_mean_nll = register(Exercise(
    "mean_nll", number="1.3", chapter=1, title="The bigram model's loss", level="medium", minutes=8,
    reference=_mean_nll, cases=_nll_cases,
    mistakes=[
        Mistake("you used log2 (bits); the loss is in nats, with the natural log (torch.log)", _nll_bits),
        Mistake("you summed over the predicted tokens instead of taking the mean", _nll_sum),
        Mistake("you read probs[next, current]; p(next | current) is probs[current, next]", _nll_transposed),
    ],
))


# ------------------------------------------------------------------ 1.4 bits per byte
def _bits_per_byte(mean_nll: float, n_tokens: int, n_bytes: int) -> float:
    # the answer key is the package's own function, so the two cannot drift apart
    from gpt2lib.evaluation import bits_per_byte

    return bits_per_byte(mean_nll, n_tokens, n_bytes)


def _bpb_per_token(mean_nll: float, n_tokens: int, n_bytes: int) -> float:
    return mean_nll / math.log(2)


def _bpb_no_ln2(mean_nll: float, n_tokens: int, n_bytes: int) -> float:
    return mean_nll * n_tokens / n_bytes


def _bpb_inverted(mean_nll: float, n_tokens: int, n_bytes: int) -> float:
    return mean_nll * n_bytes / (n_tokens * math.log(2))


def _bpb_cases(rng: random.Random) -> list[Case]:
    return [
        Case("bytes as tokens: 1000 tokens, 1000 bytes", (2.35, 1000, 1000)),
        Case("BPE: 13,278 tokens for 48,000 bytes", (4.1, 13278, 48000)),
        Case("random", (rng.uniform(1, 6), rng.randrange(100, 5000), rng.randrange(5000, 20000))),
        Case("random, about 2 bytes per token", (rng.uniform(0.5, 3), (n := rng.randrange(500, 2000)),
                                                  2 * n + rng.randrange(-50, 50))),
    ]


check_bits_per_byte = register(Exercise(
    "bits_per_byte", number="1.4", chapter=1, title="Bits per byte, comparable across tokenizers", level="easy", minutes=5,
    reference=_bits_per_byte, cases=_bpb_cases,
    mistakes=[
        Mistake("you converted the loss per TOKEN to bits; spread the total (mean_nll * n_tokens) over the "
                "n_bytes bytes", _bpb_per_token),
        Mistake("you left the loss in nats; divide by ln 2 to get bits", _bpb_no_ln2),
        Mistake("you swapped n_tokens and n_bytes: the total is mean_nll * n_tokens, then divide by n_bytes",
                _bpb_inverted),
    ],
))
