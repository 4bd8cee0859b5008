"""The bigram baseline: counts, probabilities, loss and sampling agree with the formula they implement."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2lib.bigram import BigramModel


def test_counts_match_a_hand_count():
    ids = [0, 1, 0, 1, 2, 0]
    m = BigramModel.fit(ids, vocab_size=3)
    expected = torch.tensor([[0, 2, 0], [1, 0, 1], [1, 0, 0]])
    assert torch.equal(m.counts(), expected)
    assert m.count(0, 1) == 2 and m.count(2, 2) == 0
    assert m.n_pairs == 5 and m.n_distinct_pairs == 4
    assert m.top_pairs(1) == [(0, 1, 2)]


def test_probabilities_are_smoothed_counts():
    ids = [0, 1, 0, 1, 2, 0]
    m = BigramModel.fit(ids, vocab_size=3, smoothing=0.5)
    p = m.probabilities()
    torch.testing.assert_close(p.sum(dim=1), torch.ones(3))
    assert p[0, 1].item() == pytest.approx((2 + 0.5) / (2 + 1.5))
    assert p[2, 2].item() == pytest.approx(0.5 / (1 + 1.5))
    for a in range(3):
        torch.testing.assert_close(m.next_token_probs(a), p[a])


def test_nll_is_mean_negative_log_probability():
    ids = [0, 1, 0, 1, 2, 0]
    m = BigramModel.fit(ids, vocab_size=3)
    p = m.probabilities().double()
    test = [1, 2, 2, 0, 1]
    expected = -sum(math.log(p[a, b]) for a, b in zip(test, test[1:])) / 4
    assert m.nll(test) == pytest.approx(expected)
    assert m.perplexity(test) == pytest.approx(math.exp(expected))


def test_unseen_context_is_uniform():
    m = BigramModel.fit([0, 1, 0, 1], vocab_size=5)
    torch.testing.assert_close(m.next_token_probs(4), torch.full((5,), 0.2))
    assert m.nll([4, 3]) == pytest.approx(math.log(5))


def test_large_vocabulary_stays_sparse():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50257, size=5000)
    m = BigramModel.fit(ids, vocab_size=50257)
    assert m.n_pairs == 4999
    assert math.isfinite(m.nll(ids[:100]))
    assert abs(m.next_token_probs(int(ids[0])).sum().item() - 1) < 1e-4
    with pytest.raises(ValueError, match="too large"):
        m.counts()


def test_fit_beats_uniform_on_structured_text():
    text = ("the cat sat on the mat. " * 50).encode()
    m = BigramModel.fit(list(text), vocab_size=256)
    assert m.nll(list(text[:200])) < 0.5 * math.log(256)


def test_sampling_follows_the_table():
    # token 0 is always followed by 1 in training; with tiny smoothing samples must follow suit
    ids = [0, 1, 2] * 200
    m = BigramModel.fit(ids, vocab_size=3, smoothing=1e-6)
    out = m.sample(300, generator=torch.Generator().manual_seed(1), start=0)
    assert out[:6] == [1, 2, 0, 1, 2, 0]
    assert len(out) == 300


def test_sampling_frequencies_match_probabilities():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 4, size=400).tolist()
    m = BigramModel.fit(ids, vocab_size=4, smoothing=2.0)
    g = torch.Generator().manual_seed(0)
    draws = [m.sample(1, generator=g, start=2)[0] for _ in range(4000)]
    freq = torch.bincount(torch.tensor(draws), minlength=4).double() / 4000
    torch.testing.assert_close(freq, m.next_token_probs(2).double(), atol=0.03, rtol=0)


def test_sampling_is_reproducible_with_a_generator():
    m = BigramModel.fit(list(b"hello world, hello there"), vocab_size=256)
    a = m.sample(50, generator=torch.Generator().manual_seed(3))
    b = m.sample(50, generator=torch.Generator().manual_seed(3))
    assert a == b


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=2, max_size=60), st.floats(0.05, 5.0))
def test_rows_always_sum_to_one(ids, smoothing):
    m = BigramModel.fit(ids, vocab_size=7, smoothing=smoothing)
    torch.testing.assert_close(m.probabilities().sum(dim=1), torch.ones(7))
    assert m.nll(ids) > 0


@pytest.mark.parametrize("bad, match", [
    (dict(ids=[0, 1], vocab_size=0), "vocab_size"),
    (dict(ids=[0, 5], vocab_size=3), "outside"),
    (dict(ids=[0, 1], vocab_size=3, smoothing=0), "smoothing"),
    (dict(ids=[1], vocab_size=3), "two ids"),
])
def test_bad_input_raises_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        BigramModel.fit(bad.pop("ids"), **bad)


def test_text_and_floats_raise_type_error():
    with pytest.raises(TypeError, match="encode the text"):
        BigramModel.fit("hello", vocab_size=256)
    with pytest.raises(TypeError, match="integer"):
        BigramModel.fit(torch.tensor([0.5, 1.0]), vocab_size=3)
