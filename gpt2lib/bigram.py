"""The count-based bigram model: the baseline every neural model in the book has to beat.

A bigram model predicts the next token from the current one only, with probabilities read off a table
of counts: how often token ``b`` followed token ``a`` in the training text. Add-``s`` smoothing keeps
every probability above zero, so the loss on unseen text stays finite:

    p(b | a) = (count(a, b) + s) / (count(a) + s * V)

The counts are stored sparsely (one entry per pair actually seen), so the same class works over 256
bytes and over GPT-2's 50,257 tokens, where a dense V x V table would need 10 GB.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch

__all__ = ["BigramModel"]


def _as_ids(ids: Iterable[int] | torch.Tensor, vocab_size: int, name: str = "ids") -> torch.Tensor:
    """A 1-D int64 tensor of token ids, checked against the vocabulary."""
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"{name} must be token ids (a list, array or tensor of ints), not {type(ids).__name__}; "
                        "encode the text first, e.g. list(text.encode('utf-8')) for bytes")
    try:
        if isinstance(ids, torch.Tensor):
            t = ids.detach().cpu()
        elif hasattr(ids, "__array__"):  # numpy arrays and memmaps, including uint16 token files
            import numpy as np

            arr = np.asarray(ids)
            if arr.dtype.kind not in "iu":
                raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
            t = torch.from_numpy(arr.astype(np.int64, copy=False).reshape(-1))
        else:
            t = torch.as_tensor(list(ids))
    except (ValueError, RuntimeError) as exc:
        raise TypeError(f"{name} must be a sequence of ints: {exc}") from None
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {t.dtype}")
    t = t.reshape(-1).long()
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= vocab_size):
        raise ValueError(f"{name} holds ids outside [0, {vocab_size}): min {int(t.min())}, max {int(t.max())}; "
                         "is vocab_size the size of the tokenizer that produced them?")
    return t


class BigramModel:
    """Next-token probabilities from pair counts, with add-``smoothing`` (Laplace) smoothing.

    Build one with :meth:`fit`. ``nll`` is the mean negative log-likelihood in nats per predicted token,
    the same quantity a GPT's cross-entropy loss reports, so the two compare directly.
    """

    def __init__(self, vocab_size: int, keys: torch.Tensor, pair_counts: torch.Tensor,
                 row_counts: torch.Tensor, smoothing: float) -> None:
        self.vocab_size = int(vocab_size)
        self.smoothing = float(smoothing)
        self._keys = keys              # sorted a * V + b for every pair seen, int64
        self._pair_counts = pair_counts  # how often each of those pairs occurred, int64
        self.row_counts = row_counts   # count(a): how often a was followed by anything, shape (V,)

    # ------------------------------------------------------------------ building
    @classmethod
    def fit(cls, ids: Iterable[int] | torch.Tensor, vocab_size: int, smoothing: float = 1.0) -> "BigramModel":
        """Count every adjacent pair (ids[i], ids[i+1]) of ``ids``; ``vocab_size`` fixes V."""
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 1:
            raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
        if not isinstance(smoothing, (int, float)) or isinstance(smoothing, bool) or not smoothing > 0:
            raise ValueError(f"smoothing must be a number > 0 (1.0 is Laplace smoothing), got {smoothing!r}; "
                             "with 0 an unseen pair has probability 0 and the loss is infinite")
        t = _as_ids(ids, vocab_size)
        if t.numel() < 2:
            raise ValueError("need at least two ids to count a pair")
        pairs = t[:-1] * vocab_size + t[1:]
        keys, counts = torch.unique(pairs, sorted=True, return_counts=True)
        rows = torch.bincount(t[:-1], minlength=vocab_size)
        return cls(vocab_size, keys, counts, rows, float(smoothing))

    # ------------------------------------------------------------------ reading the table
    @property
    def n_pairs(self) -> int:
        """How many pairs were counted (len(ids) - 1)."""
        return int(self.row_counts.sum())

    @property
    def n_distinct_pairs(self) -> int:
        """How many different pairs occurred at least once."""
        return int(self._keys.numel())

    def count(self, a: int, b: int) -> int:
        """How often token ``b`` followed token ``a``."""
        key = torch.tensor([int(a) * self.vocab_size + int(b)])
        return int(self._lookup(key)[0])

    def _lookup(self, keys: torch.Tensor) -> torch.Tensor:
        if self._keys.numel() == 0:
            return torch.zeros_like(keys)
        pos = torch.searchsorted(self._keys, keys).clamp(max=self._keys.numel() - 1)
        found = self._keys[pos] == keys
        return torch.where(found, self._pair_counts[pos], torch.zeros_like(keys))

    def counts(self) -> torch.Tensor:
        """The dense V x V count table (row = current token, column = next). Only for small vocabularies."""
        if self.vocab_size > 8192:
            raise ValueError(f"a dense {self.vocab_size} x {self.vocab_size} table is too large; "
                             "use count(a, b), next_token_probs(a) or top_pairs() instead")
        table = torch.zeros(self.vocab_size * self.vocab_size, dtype=torch.long)
        table[self._keys] = self._pair_counts
        return table.view(self.vocab_size, self.vocab_size)

    def probabilities(self) -> torch.Tensor:
        """The dense V x V matrix of p(next | current); every row sums to 1. Only for small vocabularies."""
        c = self.counts().double() + self.smoothing
        return (c / c.sum(dim=1, keepdim=True)).float()

    def next_token_probs(self, a: int) -> torch.Tensor:
        """p(. | a) as a vector of length V (sums to 1)."""
        if not 0 <= int(a) < self.vocab_size:
            raise ValueError(f"token {a} is outside [0, {self.vocab_size})")
        lo = int(a) * self.vocab_size
        left = int(torch.searchsorted(self._keys, torch.tensor(lo)))
        right = int(torch.searchsorted(self._keys, torch.tensor(lo + self.vocab_size)))
        row = torch.full((self.vocab_size,), self.smoothing, dtype=torch.float64)
        row[self._keys[left:right] - lo] += self._pair_counts[left:right].double()
        return (row / row.sum()).float()

    def top_pairs(self, k: int = 10) -> list[tuple[int, int, int]]:
        """The ``k`` most frequent pairs as (a, b, count), most frequent first."""
        k = min(int(k), self._keys.numel())
        counts, order = torch.topk(self._pair_counts, k)
        keys = self._keys[order]
        return [(int(x // self.vocab_size), int(x % self.vocab_size), int(c)) for x, c in zip(keys, counts)]

    # ------------------------------------------------------------------ loss and sampling
    def log_probs(self, ids: Iterable[int] | torch.Tensor) -> torch.Tensor:
        """log p(ids[i+1] | ids[i]) for every adjacent pair, in nats, shape (len(ids) - 1,)."""
        t = _as_ids(ids, self.vocab_size)
        if t.numel() < 2:
            raise ValueError("need at least two ids: the first one is only context")
        c = self._lookup(t[:-1] * self.vocab_size + t[1:]).double()
        n = self.row_counts[t[:-1]].double()
        return torch.log(c + self.smoothing) - torch.log(n + self.smoothing * self.vocab_size)

    def nll(self, ids: Iterable[int] | torch.Tensor) -> float:
        """Mean negative log-likelihood in nats per predicted token (the first id is only context)."""
        return float(-self.log_probs(ids).mean())

    def perplexity(self, ids: Iterable[int] | torch.Tensor) -> float:
        """exp(nll): the number of equally likely choices the model is, on average, hesitating between."""
        return math.exp(self.nll(ids))

    def sample(self, n: int, generator: torch.Generator | None = None, start: int | None = None) -> list[int]:
        """Draw ``n`` tokens, each from p(. | previous). ``start`` is the first context token (not
        returned); without it the first context is drawn from how often each token starts a pair.

        Uses the exact mixture behind the smoothed formula: with probability count(a)/(count(a)+sV)
        the next token is one seen after ``a`` (in proportion to its count), otherwise uniform.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        g = generator
        V, s = self.vocab_size, self.smoothing
        if start is None:
            prev = int(torch.multinomial(self.row_counts.double() + s, 1, generator=g))
        else:
            if not 0 <= int(start) < V:
                raise ValueError(f"start token {start} is outside [0, {V})")
            prev = int(start)
        out: list[int] = []
        for _ in range(n):
            lo = prev * V
            left = int(torch.searchsorted(self._keys, torch.tensor(lo)))
            right = int(torch.searchsorted(self._keys, torch.tensor(lo + V)))
            seen = int(self.row_counts[prev])
            u = float(torch.rand((), generator=g, dtype=torch.float64))
            if seen > 0 and u < seen / (seen + s * V):
                j = int(torch.multinomial(self._pair_counts[left:right].double(), 1, generator=g))
                prev = int(self._keys[left + j] - lo)
            else:
                prev = int(torch.randint(V, (), generator=g))
            out.append(prev)
        return out

    def __repr__(self) -> str:
        return (f"BigramModel(vocab_size={self.vocab_size}, pairs={self.n_pairs:,}, "
                f"distinct={self.n_distinct_pairs:,}, smoothing={self.smoothing:g})")
