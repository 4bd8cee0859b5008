"""Property tests (hypothesis) for gpt2lib.tokenizer: round trips, determinism, agreement with tiktoken,
the fast encoder agreeing with the reference encoder, and the fast trainer agreeing with the naive
reference, on arbitrary small texts and on long, repetitive words."""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpt2lib.tokenizer import BPETokenizer
from gpt2lib.tokenizer.bytes_map import split
from gpt2lib.tokenizer.merges import count_words, train_merges, train_merges_naive

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that stresses the pattern: arbitrary unicode mixed with the characters GPT-2's pattern treats
# specially (apostrophes, spaces, newlines, digits).
tricky = st.text(alphabet=st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(list("'sStTdm \t\r\n0123 .,!é中😀"))),
                 max_size=80)


@pytest.fixture(scope="module")
def cold_gpt2() -> BPETokenizer:
    return BPETokenizer.gpt2()


@pytest.fixture(scope="module")
def small() -> BPETokenizer:
    text = "the theory of the thermal theme; 中文中文中文 数据数据; 1234 1234 don't won't " * 20
    return BPETokenizer.train(text, 290, progress=False)


@SETTINGS
@given(tricky)
def test_gpt2_round_trip(gpt2, s):
    assert gpt2.decode(gpt2.encode(s)) == s


@SETTINGS
@given(tricky)
def test_gpt2_agrees_with_tiktoken(gpt2, tiktoken_gpt2, s):
    assert gpt2.encode(s) == tiktoken_gpt2.encode(s, disallowed_special=())


@SETTINGS
@given(tricky)
def test_encoding_is_deterministic(gpt2, cold_gpt2, s):
    first = gpt2.encode(s)
    assert gpt2.encode(s) == first  # now from the cache
    cold_gpt2._cache.clear()  # an empty cache, without building 50,000 merges per example
    assert cold_gpt2.encode(s) == first


@SETTINGS
@given(tricky)
def test_trained_round_trip(small, s):
    ids = small.encode(s, allowed_special="all")
    assert all(0 <= i < small.vocab_size for i in ids)
    assert small.decode(ids) == s


@SETTINGS
@given(st.lists(st.sampled_from(["ab", "ba", "abc", " ab", "cab", "a", "bb", "中文", "!!", "\n"]), min_size=1,
                max_size=40))
def test_fast_and_naive_trainers_agree(pieces):
    words = count_words(["".join(pieces)], split)
    assert train_merges(words, 30, progress=False) == train_merges_naive(words, 30)


@SETTINGS
@given(st.lists(st.integers(min_value=0, max_value=50256), max_size=30))
def test_decode_any_ids(gpt2, ids):
    text = gpt2.decode(ids)  # never raises with the default errors="replace"
    assert isinstance(text, str)
    assert gpt2.decode_bytes(ids).decode("utf-8", errors="replace") == text


# Long words built to stress BPE: a short unit repeated (runs, "abab...", "0000...") or random draws
# from a tiny alphabet, where merges chain and overlap.
long_words = st.one_of(
    st.tuples(st.text(alphabet=st.sampled_from(list("ab0 é中😀")), min_size=1, max_size=3),
              st.integers(min_value=1, max_value=150)).map(lambda t: t[0] * t[1]),
    st.text(alphabet=st.sampled_from(list("abc01")), min_size=1, max_size=300),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60),
)


@SETTINGS
@given(long_words)
def test_fast_encoder_equals_reference(gpt2, small, word):
    data = word.encode("utf-8")
    assert gpt2.bpe(data) == gpt2.bpe_reference(data)
    assert small.bpe(data) == small.bpe_reference(data)


@SETTINGS
@given(st.lists(long_words, min_size=1, max_size=4), st.integers(min_value=1, max_value=60))
def test_fast_and_naive_trainers_agree_on_long_words(words, n_merges):
    counts = Counter()
    for k, w in enumerate(words):
        counts[w.encode("utf-8")] += k + 1
    assert train_merges(counts, n_merges, progress=False) == train_merges_naive(counts, n_merges)
