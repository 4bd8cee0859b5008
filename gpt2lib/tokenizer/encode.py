"""Encoding one word with learnt merges, two ways that give the same tokens.

Encoding a word applies the merges by *rank*: among the adjacent pairs present, the one learnt
earliest is merged first, everywhere in the word, and so on until no learnt pair is left.
:meth:`BPETokenizer.bpe_reference` does exactly that, one full scan of the word per merge: clear, but
quadratic in the word's length (a 100,000-letter base64 blob would take minutes). :meth:`BPETokenizer.bpe`
gives the same tokens in O(n log n): the word is a doubly linked list of parts and a heap holds
(rank, position) for every adjacent pair; popping the smallest merges the leftmost occurrence of the
earliest-learnt pair, and only its two neighbours' pairs change, so only those are pushed. (A pair made
by a merge always has a higher rank than that merge, since its token did not exist before, so the heap
visits ranks in the same order as the reference, and positions left to right within a rank.) Words
recur constantly in real text, so each word's ids are cached after the first time.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator

from .merges import merge_pair

__all__ = ["bpe_ids", "reference_steps"]


def bpe_ids(ids: list[int], id_ranks: dict[tuple[int, int], int]) -> list[int]:
    """The fast encoder: a word's byte ids merged by rank (merge k makes id 256 + k), in O(n log n)."""
    n = len(ids)
    if n < 2:
        return ids
    get = id_ranks.get
    # Node i holds the part that starts at byte i; tok[i] = -1 once it was merged into its left part.
    # A heap entry is rank * n + i, one int ordered like the pair (rank, i) but cheaper to compare.
    tok = ids
    nxt = list(range(1, n + 1))  # n marks the end of the word
    prv = list(range(-1, n - 1))  # -1 marks its start
    heap = [r * n + i for i, p in enumerate(zip(ids, ids[1:])) if (r := get(p)) is not None]
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        rank, i = divmod(pop(heap), n)
        j = nxt[i] if tok[i] >= 0 else n
        if j == n or get((tok[i], tok[j])) != rank:
            continue  # stale: one of the two parts has changed since this entry was pushed
        tok[i] = new = 256 + rank
        tok[j] = -1
        k = nxt[i] = nxt[j]
        if k < n:
            prv[k] = i
            r = get((new, tok[k]))
            if r is not None:
                push(heap, r * n + i)
        h = prv[i]
        if h >= 0:
            r = get((tok[h], new))
            if r is not None:
                push(heap, r * n + h)
    out, i = [], 0
    while i < n:
        out.append(tok[i])
        i = nxt[i]
    return out


def reference_steps(data: bytes, ranks: dict[tuple[bytes, bytes], int]) -> Iterator[list[bytes]]:
    """The teaching encoder, step by step: the word's bytes, then the parts after each merge, taking the
    earliest-learnt pair present each time (one full scan of the word per merge)."""
    parts = [bytes([b]) for b in data]
    yield parts
    while len(parts) > 1:
        present = [p for p in zip(parts, parts[1:]) if p in ranks]
        if not present:
            break
        a, b = min(present, key=ranks.__getitem__)
        parts = merge_pair(parts, (a, b), a + b)
        yield parts
