"""Chapter 3's exercises: the three moves of byte-level BPE.

In these exercises token ids are plain ints: 0-255 are the bytes themselves, and each merge makes a new
id from 256 up (GPT-2 orders its first 256 ids differently, which changes nothing here).

3.1 count the adjacent pairs of a sequence (the statistic training maximises);
3.2 apply one merge (replace a pair, left to right, without overlaps);
3.3 encode a word with a list of learnt merges (lowest rank first, until none applies).
"""
from __future__ import annotations

import random
from typing import Any

from ._core import Case, CheckFailed, Exercise, Mistake, compare, register

# --- 3.1 pair counts -----------------------------------------------------------------------------


def _count_pairs(ids: list[int]) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _count_pairs_no_overlap(ids):
    # steps two at a time: (a, b), (c, d), ... misses (b, c)
    counts: dict = {}
    for pair in zip(ids[::2], ids[1::2]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _count_pairs_drop_last(ids):
    counts: dict = {}
    for i in range(len(ids) - 2):
        pair = (ids[i], ids[i + 1])
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _count_pairs_presence(ids):
    return {pair: 1 for pair in zip(ids, ids[1:])}


def _compare_dicts(expected: Any, got: Any) -> None:
    if got is None:
        raise CheckFailed("your function returned None: did you forget the `return` statement?")
    if not isinstance(got, dict):  # a Counter or defaultdict is a dict, and fine
        raise CheckFailed(f"expected a dict mapping (left, right) pairs to counts, got a {type(got).__name__}")
    got = {k: v for k, v in got.items() if v != 0}  # a Counter may keep pairs counted down to 0
    compare(expected, got)  # names the first pair whose count differs


def _random_ids(rng: random.Random, n: int, alphabet: int) -> list[int]:
    return [rng.randrange(alphabet) for _ in range(n)]


def _pair_cases(rng: random.Random) -> list[Case]:
    return [
        Case("the bytes of 'aaabdaaabac'", (list(b"aaabdaaabac"),)),
        # written as text, "1 12" and "11 2" share their digits: a string-based count confuses them
        Case("ids whose digits run together (1, 12, 11, 2, ...)", ([1, 12, 11, 2, 1, 12, 112, 1, 12],)),
        Case("random ids up to 50,000", (_random_ids(rng, rng.randint(25, 45), 50_000),)),
        Case("a run of one byte (pairs overlap)", ([7] * rng.randint(3, 6),)),
        Case("random ids from a small alphabet", (_random_ids(rng, rng.randint(20, 40), 5),)),
        Case("random ids with merged tokens", (_random_ids(rng, 31, 300),)),
        Case("a single id (no pairs)", ([rng.randrange(256)],)),
        Case("an empty sequence", ([],)),
    ]


check_count_pairs = register(Exercise(
    "count_pairs", number="3.1", chapter=3, title="Count adjacent pairs", level="easy", minutes=5,
    reference=_count_pairs, cases=_pair_cases, compare=_compare_dicts,
    mistakes=[
        Mistake("you stepped two positions at a time; pairs overlap: in [a, b, c] both (a, b) and (b, c) count",
                _count_pairs_no_overlap),
        Mistake("you left out the last pair: n ids have n - 1 pairs, and zip(ids, ids[1:]) gets them all",
                _count_pairs_drop_last),
        Mistake("you recorded whether each pair occurs instead of how often", _count_pairs_presence),
    ],
))

# --- 3.2 one merge -------------------------------------------------------------------------------


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    # the answer key is the package's own function, so the two cannot drift apart
    from gpt2lib.tokenizer.merges import merge_pair

    return merge_pair(ids, pair, new_id)


def _merge_right_to_left(ids, pair, new_id):
    return _merge(ids[::-1], (pair[1], pair[0]), new_id)[::-1]


def _merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == tuple(pair):
            return ids[:i] + [new_id] + ids[i + 2:]
    return list(ids)


def _merge_loses_last(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids) - 1:
        if ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_big(rng: random.Random) -> list[int]:
    ids = _random_ids(rng, 40, 50_000)
    for where in sorted(rng.sample(range(40), 3), reverse=True):
        ids[where:where] = [40_001, 40_012]
    return ids


def _merge_cases(rng: random.Random) -> list[Case]:
    a, b = rng.sample(range(4), 2)
    ids = _random_ids(rng, 30, 4)
    return [
        Case("'aaabdaaabac', merging (a, a)", (list(b"aaabdaaabac"), (97, 97), 256)),
        Case("a run of three equal ids", ([5, 5, 5], (5, 5), 300)),
        Case("the pair twice in a row", ([a, b, a, b, 9], (a, b), 256)),
        Case("random ids, the pair twice", (ids[:10] + [a, b] + ids[10:20] + [a, b] + [9], (a, b), 256 + rng.randrange(50))),
        Case("the pair at the very end", ([1, 2, 3, a + 10, b + 10], (a + 10, b + 10), 260)),
        Case("a pair that does not occur", (list(range(8)), (7, 0), 270)),
        # as text, "11 2" contains "1 2": a string replace would merge across two ids
        Case("ids whose digits run together: merging (1, 2) in [11, 2, 3, 1, 2, 21, 2]",
             ([11, 2, 3, 1, 2, 21, 2], (1, 2), 256)),
        Case("random ids up to 50,000, the pair three times",
             (_merge_big(rng), (40_001, 40_012), 50_257 + rng.randrange(1000))),
        Case("an empty sequence", ([], (1, 2), 256)),
    ]


check_merge = register(Exercise(
    "merge", number="3.2", chapter=3, title="Apply one merge", level="easy", minutes=8,
    reference=_merge, cases=_merge_cases, int_required=True,  # ids index tables later: 256.0 will not do
    mistakes=[
        Mistake("you scanned from right to left; from the left, [x, x, x] merging (x, x) gives [new, x]",
                _merge_right_to_left),
        Mistake("you replaced only the first occurrence of the pair; replace every one", _merge_first_only),
        Mistake("the last id were dropped when no pair starts at it; copy it too", _merge_loses_last),
    ],
))

# --- 3.3 encode a word ---------------------------------------------------------------------------


def _encode_word(word: bytes, merges: dict[tuple[int, int], int]) -> list[int]:
    ids = list(word)
    while len(ids) > 1:
        pairs = [p for p in zip(ids, ids[1:]) if p in merges]
        if not pairs:
            break
        best = min(pairs, key=lambda p: merges[p])  # the merge learnt first (smallest new id)
        ids = _merge(ids, best, merges[best])
    return ids


def _encode_leftmost(word, merges):
    ids = list(word)
    while True:
        for i in range(len(ids) - 1):
            if (ids[i], ids[i + 1]) in merges:
                ids = _merge(ids, (ids[i], ids[i + 1]), merges[(ids[i], ids[i + 1])])
                break
        else:
            return ids


def _encode_latest_first(word, merges):
    ids = list(word)
    while len(ids) > 1:
        pairs = [p for p in zip(ids, ids[1:]) if p in merges]
        if not pairs:
            break
        best = max(pairs, key=lambda p: merges[p])
        ids = _merge(ids, best, merges[best])
    return ids


def _encode_one_pass(word, merges):
    ids = list(word)
    pairs = [p for p in zip(ids, ids[1:]) if p in merges]
    if pairs:
        best = min(pairs, key=lambda p: merges[p])
        ids = _merge(ids, best, merges[best])
    return ids


def _learn(text: bytes, n: int) -> dict[tuple[int, int], int]:
    # a few merges learnt the book's way, on the word's own alphabet, so the cases look like real BPE
    from collections import Counter

    from gpt2lib.tokenizer.merges import train_merges

    learnt = train_merges(Counter(text.split(b" ")), n, progress=False)
    ids: dict[bytes, int] = {bytes([b]): b for b in range(256)}
    merges: dict[tuple[int, int], int] = {}
    for a, b in learnt:
        ids[a + b] = 256 + len(merges)
        merges[(ids[a], ids[b])] = ids[a + b]
    return merges


def _shuffled(rng: random.Random, merges: dict[tuple[int, int], int]) -> dict[tuple[int, int], int]:
    # The rank is the new id, not the dict's order: a solution that relies on insertion order must fail.
    items = list(merges.items())
    while len(items) > 1 and items == sorted(items, key=lambda kv: kv[1]):
        rng.shuffle(items)
    return dict(items)


def _encode_cases(rng: random.Random) -> list[Case]:
    # hand-made: (b, c) learnt before (a, b); "abc" must become [a, bc], not [abc]
    # listed latest first, so that taking the dict's order for the rank merges (a, b) first
    handmade = {(257, 99): 258, (97, 98): 257, (98, 99): 256}
    words = ["".join(rng.choice("abcd") for _ in range(rng.randint(2, 7))) for _ in range(40)]
    corpus = " ".join(words).encode()
    merges = _learn(corpus, 12)
    picks = rng.sample(words, 4)
    return [
        # each of these fixed cases makes the order of the merges matter in its own way, whatever the seed
        # (in this order, so that the first case an answer fails tells its mistake from the others)
        Case("'abc' where (a, b) was learnt before (b, c)", (b"abc", {(98, 99): 257, (97, 98): 256})),
        Case("'abc' where (b, c) was learnt before (a, b)", (b"abc", handmade)),
        Case("'abcbc': (b, c) occurs twice but (a, b) was learnt first", (b"abcbc", {(98, 99): 257, (97, 98): 256})),
        Case("'aaaa' with merges aa then aaaa", (b"aaaa", {(256, 256): 257, (97, 97): 256})),
        Case("'aaa' with the merge aa: from the left", (b"aaa", {(97, 97): 256})),
        *[Case(f"{w!r} with 12 merges learnt on random words (the dict not in rank order)",
               (w.encode(), _shuffled(rng, merges))) for w in picks],
        Case("a word with no known pair", (b"xyz", {(97, 98): 256})),
        Case("a single byte", (b"a", handmade)),
        Case("UTF-8 bytes of '中文'", ("中文".encode(), {(228, 184): 256, (256, 173): 257, (230, 150): 258})),
    ]


check_encode_word = register(Exercise(
    "encode_word", number="3.3", chapter=3, title="Encode a word with learnt merges", level="medium", minutes=12,
    reference=_encode_word, cases=_encode_cases, int_required=True,
    mistakes=[
        Mistake("you merged the leftmost learnt pair; apply the merge learnt first (lowest new id) among the "
                "pairs present", _encode_leftmost),
        Mistake("you applied the latest merge (highest new id) first; rank is learning order, the earliest "
                "goes first", _encode_latest_first),
        Mistake("you stopped after one merge; keep merging until no pair of the word is a learnt merge",
                _encode_one_pass),
    ],
))

__all__ = ["check_count_pairs", "check_merge", "check_encode_word"]
