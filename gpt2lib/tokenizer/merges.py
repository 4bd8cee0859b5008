"""Learning BPE merges from text: a fast incremental trainer and the naive reference it must match.

Both work on *words*: the pieces of GPT-2's pre-tokenization pattern, so that no merge ever crosses a
piece boundary (" dog" and "." stay apart). A corpus repeats its words many times, so both count
each distinct word once, weighted by how often it occurs.

The rule both follow, step by step:
  1. count every adjacent pair of tokens over all words (weighted by word frequency);
  2. take the most frequent pair; **ties go to the pair whose byte strings (left, right) sort
     smallest**, so that training is deterministic whatever the dictionary order;
     a pair whose concatenation is already a token is skipped (it would duplicate a vocabulary entry);
  3. replace that pair, left to right and without overlaps, by the new token in every word
     (:func:`merge_pair`, the one implementation of this step in the package).

The naive trainer recounts every pair at every step: each merge costs the size of the whole corpus.
The fast one keeps the counts and, for each merge, visits only the *occurrences* of the merged pair:
every word is a doubly linked list of tokens, an index maps each pair to the positions where it
starts, and a merge at one position changes only the two pairs that touch it (the left neighbour's
and the right neighbour's). A heap with lazy deletion finds the most frequent pair. So even one very
long word (a DNA string, a base64 blob) costs about n log n over the whole training, not n per merge.
"""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from typing import Iterable, TypeVar

from ..runtime import InputError
from .bytes_map import check_split_pattern

__all__ = ["merge_pair", "train_merges", "train_merges_naive", "count_words", "learn_merges"]

Pair = tuple[int, int]
T = TypeVar("T", bound=Hashable)


def merge_pair(seq: Sequence[T], pair: Sequence[T], new: T) -> list[T]:
    """``seq`` with every occurrence of ``pair`` replaced by ``new``, scanning left to right without
    overlaps (so [x, x, x] merging (x, x) gives [new, x]).

    Works on any tokens: ids during training and in the chapter's exercise, bytes in the reference
    encoder (:meth:`~gpt2lib.tokenizer.bpe.BPETokenizer.bpe_reference`).
    """
    a, b = pair
    out: list[T] = []
    i, n = 0, len(seq)
    while i < n:
        if i < n - 1 and seq[i] == a and seq[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


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
        seqs = [merge_pair(s, best, new_id) for s in seqs]
    return merges


def train_merges(words: Counter[bytes], n_merges: int, *, progress: bool = True,
                 desc: str = "BPE merges") -> list[tuple[bytes, bytes]]:
    """The fast trainer: same merges as :func:`train_merges_naive`, incremental counts.

    Returns the merges in the order learnt, as (left bytes, right bytes). Stops early (returning
    fewer merges) when no pair is left to merge.
    """
    seqs, freqs, vocab = _initial(words)
    known = set(vocab)
    # All words in one set of flat arrays, one slot per token. A word's slots are contiguous, so slot
    # order is left-to-right order inside a word: sorting positions gives the scan order merge_pair uses.
    # A merged-away slot gets tok = -1; nxt/prv = -1 mark the ends of a word.
    tok: list[int] = []
    nxt: list[int] = []
    prv: list[int] = []
    freq: list[int] = []
    counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, list[int]] = defaultdict(list)  # pair -> slots where it starts (some may be stale)
    for seq, f in zip(seqs, freqs):
        start, n = len(tok), len(seq)
        tok.extend(seq)
        nxt.extend(range(start + 1, start + n + 1))
        prv.extend(range(start - 1, start + n - 1))
        freq.extend([f] * n)
        if n:
            nxt[-1] = -1
            prv[start] = -1
        for k, pair in enumerate(zip(seq, seq[1:])):
            counts[pair] += f
            where[pair].append(start + k)

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
            a, b = pair
            touched: set[Pair] = set()
            # Left to right, like merge_pair: in a run x x x the first two merge and the third stays.
            for p in sorted(where.pop(pair)):
                q = nxt[p]
                if tok[p] != a or q < 0 or tok[q] != b:
                    continue  # stale: an earlier merge (possibly this one, overlapping) took a part
                f = freq[p]
                left_slot, right_slot = prv[p], nxt[q]
                if left_slot >= 0:  # (x, a) becomes (x, new)
                    x = tok[left_slot]
                    counts[(x, a)] -= f
                    counts[(x, new_id)] += f
                    where[(x, new_id)].append(left_slot)
                    touched.add((x, a))
                    touched.add((x, new_id))
                if right_slot >= 0:  # (b, y) becomes (new, y)
                    y = tok[right_slot]
                    counts[(b, y)] -= f
                    counts[(new_id, y)] += f
                    where[(new_id, y)].append(p)
                    touched.add((b, y))
                    touched.add((new_id, y))
                    prv[right_slot] = p
                nxt[p] = right_slot
                tok[p] = new_id
                tok[q] = -1
            counts.pop(pair, None)
            touched.discard(pair)
            for p in touched:
                c = counts.get(p, 0)
                if c > 0 and p not in banned:
                    heapq.heappush(heap, (-c, vocab[p[0]], vocab[p[1]], p))
                elif c <= 0:
                    counts.pop(p, None)
                    where.pop(p, None)
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


def learn_merges(text: str | Iterable[str], vocab_size: int, *, special_tokens: tuple[str, ...],
                 pattern: str, progress: bool = True) -> list[tuple[bytes, bytes]]:
    """The merges of a tokenizer of ``vocab_size`` ids (256 bytes + merges + special tokens), learnt from
    ``text`` split by ``pattern``: the checks, the word counts, then :func:`train_merges`."""
    split_re = check_split_pattern(pattern)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size < 256 + len(special_tokens):
        raise InputError(f"vocab_size must be at least {256 + len(special_tokens)} (256 byte tokens + "
                         f"{len(special_tokens)} special tokens), got {vocab_size}")
    texts = [text] if isinstance(text, str) else list(text)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("train() takes a str or a list of str")
    if not any(t.strip() for t in texts):
        raise InputError("cannot train a tokenizer on empty text: pass the corpus as a str")
    words = count_words(texts, split_re.findall, special_tokens)
    n_merges = vocab_size - 256 - len(special_tokens)
    merges = train_merges(words, n_merges, progress=progress)
    if len(merges) < n_merges:
        import warnings

        warnings.warn(f"the text ran out of pairs after {len(merges)} merges: the vocabulary has "
                      f"{256 + len(merges) + len(special_tokens)} ids, not {vocab_size}", stacklevel=3)
    return merges
