"""Learning BPE merges from text: a fast incremental trainer and the naive reference it must match.

Both work on *words*: the pieces of GPT-2's pre-tokenization pattern, so that no merge ever crosses a
piece boundary (" dog" and "." stay apart). A corpus repeats its words many times, so both count
each distinct word once, weighted by how often it occurs.

The rule both follow, step by step:
  1. count every adjacent pair of tokens over all words (weighted by word frequency);
  2. take the most frequent pair; **ties go to the pair whose byte strings (left, right) sort
     smallest**, so that training is deterministic whatever the dictionary order;
     a pair whose concatenation is already a token is skipped (it would duplicate a vocabulary entry);
  3. replace that pair, left to right and without overlaps, by the new token in every word.

The naive trainer recounts every pair at every step. The fast one keeps the counts and, for each
merge, revisits only the words that contain the merged pair, adjusting the counts of the pairs those
words lose and gain; a heap with lazy deletion finds the most frequent pair.
"""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from typing import Iterable

Pair = tuple[int, int]


def _merge_word(word: tuple[int, ...], pair: Pair, new_id: int) -> tuple[int, ...]:
    """``word`` with every non-overlapping occurrence of ``pair`` (scanned left to right) replaced."""
    out: list[int] = []
    i, n = 0, len(word)
    a, b = pair
    while i < n:
        if i < n - 1 and word[i] == a and word[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


merge_pair = _merge_word  # the public name, for the chapter


def _initial(words: Counter[bytes]) -> tuple[list[tuple[int, ...]], list[int], list[bytes]]:
    # Ids during training are just byte values; the caller renumbers them into GPT-2's layout.
    seqs = [tuple(w) for w in words]
    freqs = list(words.values())
    vocab = [bytes([b]) for b in range(256)]
    return seqs, freqs, vocab


def train_merges_naive(words: Counter[bytes], n_merges: int) -> list[tuple[bytes, bytes]]:
    """The reference: recount all pairs at every step. Clear, and far too slow for real corpora."""
    seqs, freqs, vocab = _initial(words)
    known = set(vocab)
    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < n_merges:
        counts: Counter[Pair] = Counter()
        for seq, f in zip(seqs, freqs):
            for pair in zip(seq, seq[1:]):
                counts[pair] += f
        candidates = [(c, p) for p, c in counts.items() if vocab[p[0]] + vocab[p[1]] not in known]
        if not candidates:
            break
        # highest count first; among equals, smallest (left bytes, right bytes)
        best_count = max(c for c, _ in candidates)
        best = min((p for c, p in candidates if c == best_count), key=lambda p: (vocab[p[0]], vocab[p[1]]))
        new_id = len(vocab)
        vocab.append(vocab[best[0]] + vocab[best[1]])
        known.add(vocab[-1])
        merges.append((vocab[best[0]], vocab[best[1]]))
        seqs = [_merge_word(s, best, new_id) for s in seqs]
    return merges


def train_merges(words: Counter[bytes], n_merges: int, *, progress: bool = True,
                 desc: str = "BPE merges") -> list[tuple[bytes, bytes]]:
    """The fast trainer: same merges as :func:`train_merges_naive`, incremental counts.

    Returns the merges in the order learnt, as (left bytes, right bytes). Stops early (returning
    fewer merges) when no pair is left to merge.
    """
    seqs, freqs, vocab = _initial(words)
    known = set(vocab)
    counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)  # pair -> indices of words that (may) contain it
    for i, (seq, f) in enumerate(zip(seqs, freqs)):
        for pair in zip(seq, seq[1:]):
            counts[pair] += f
            where[pair].add(i)

    # Heap entries are (-count, left bytes, right bytes, pair): the smallest entry is the most frequent
    # pair, ties broken by bytes. Entries go stale when a count changes; a fresh one is pushed then, and
    # a popped entry whose count no longer matches is simply dropped.
    heap = [(-c, vocab[p[0]], vocab[p[1]], p) for p, c in counts.items()]
    heapq.heapify(heap)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_merges, desc=desc, unit="merge")
    merges: list[tuple[bytes, bytes]] = []
    banned: set[Pair] = set()
    try:
        while len(merges) < n_merges and heap:
            neg, left, right, pair = heapq.heappop(heap)
            if counts.get(pair, 0) != -neg or pair in banned:
                continue  # stale entry
            if left + right in known:
                banned.add(pair)  # never merge into a duplicate token (see the module docstring)
                continue
            new_id = len(vocab)
            vocab.append(left + right)
            known.add(vocab[-1])
            merges.append((left, right))
            touched: set[Pair] = set()
            for i in where.pop(pair):
                seq = seqs[i]
                merged = _merge_word(seq, pair, new_id)
                if merged == seq:
                    continue  # the index was stale: this word lost the pair earlier
                f = freqs[i]
                for p in zip(seq, seq[1:]):
                    counts[p] -= f
                    touched.add(p)
                for p in zip(merged, merged[1:]):
                    counts[p] += f
                    where[p].add(i)
                    touched.add(p)
                seqs[i] = merged
            counts.pop(pair, None)
            for p in touched:
                c = counts.get(p, 0)
                if c > 0 and p not in banned:
                    heapq.heappush(heap, (-c, vocab[p[0]], vocab[p[1]], p))
                elif c <= 0:
                    counts.pop(p, None)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return merges


def count_words(texts: Iterable[str], split, specials: Iterable[str] = ()) -> Counter[bytes]:
    """Distinct pre-tokenized words (as UTF-8 bytes) and how often each occurs.

    Special-token strings are cut out first, so that they never take part in merges.
    """
    import regex

    specials = [s for s in specials if s]
    cutter = regex.compile("|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))) if specials else None
    counts: Counter[str] = Counter()
    for text in texts:
        parts = cutter.split(text) if cutter else [text]
        for part in parts:
            counts.update(split(part))
    return Counter({w.encode("utf-8"): c for w, c in counts.items()})
