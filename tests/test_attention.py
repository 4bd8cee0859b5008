"""gpt2lib.attention: the formula, the mask, multi-head attention and its fast path, the KV cache."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2lib.attention import CausalSelfAttention, KVCache, attention, attention_weights, causal_mask


def test_causal_mask_is_the_lower_triangle():
    m = causal_mask(4)
    assert m.dtype == torch.bool
    assert m.tolist() == [[True, False, False, False],
                          [True, True, False, False],
                          [True, True, True, False],
                          [True, True, True, True]]


def test_causal_mask_with_cached_keys_is_shifted_to_the_last_rows():
    # 2 new queries after 3 cached keys: they sit at positions 3 and 4 of 5
    assert causal_mask(2, 5).tolist() == [[True, True, True, True, False],
                                          [True, True, True, True, True]]
    assert torch.equal(causal_mask(3, 7), causal_mask(7)[-3:])


def test_causal_mask_rejects_more_queries_than_keys():
    with pytest.raises(ValueError, match="T <= T_k"):
        causal_mask(5, 3)


@pytest.mark.parametrize("causal", [True, False])
def test_formula_matches_torch_sdpa(causal):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 7, 16), torch.randn(2, 3, 7, 16), torch.randn(2, 3, 7, 8)
    ours = attention(q, k, v, causal=causal)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert ours.shape == (2, 3, 7, 8)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


def test_formula_by_hand_on_a_small_example():
    # one query, two keys: the weights are softmax([q.k1, q.k2] / sqrt(2))
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[10.0], [20.0]])
    w = torch.softmax(torch.tensor([1.0, 0.0]) / math.sqrt(2), dim=0)
    out = attention(q, k, v, causal=False)
    torch.testing.assert_close(out, (w[0] * 10 + w[1] * 20).reshape(1, 1))


def test_weights_are_distributions_with_zeros_above_the_diagonal():
    torch.manual_seed(1)
    w = attention_weights(torch.randn(5, 6), torch.randn(5, 6))
    torch.testing.assert_close(w.sum(-1), torch.ones(5))
    assert torch.all(w.triu(diagonal=1) == 0)  # exactly zero: masked with -inf, not a large number
    assert torch.all(w[causal_mask(5)] > 0)


def test_extra_mask_is_combined_with_the_causal_one():
    torch.manual_seed(2)
    keep = torch.ones(4, 4, dtype=torch.bool)
    keep[:, 0] = False
    keep[0, 0] = True  # the first query must keep something
    w = attention_weights(torch.randn(4, 3), torch.randn(4, 3), mask=keep)
    assert torch.all(w[1:, 0] == 0) and torch.all(w.triu(diagonal=1) == 0)


def test_attention_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="d_k"):
        attention(torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 2))
    with pytest.raises(ValueError, match="positions"):
        attention(torch.randn(3, 4), torch.randn(3, 4), torch.randn(2, 2))


def test_head_count_must_divide_the_width():
    with pytest.raises(ValueError, match="divisible by n_head"):
        CausalSelfAttention(n_embd=10, n_head=3)


def _explicit_multihead(layer: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """MultiHead(X) = Concat(head_1..head_h) W^O, one head at a time with its own slices of W^Q, W^K, W^V."""
    C, h, d = layer.n_embd, layer.n_head, layer.head_dim
    W, b = layer.w_qkv.weight, layer.w_qkv.bias
    heads = []
    for i in range(h):
        rows = [slice(part * C + i * d, part * C + (i + 1) * d) for part in range(3)]
        q, k, v = (x @ W[r].T + b[r] for r in rows)
        heads.append(attention(q, k, v))
    return layer.w_o(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("n_embd,n_head", [(12, 3), (16, 1), (64, 8)])
def test_reshaping_into_heads_equals_one_head_at_a_time(n_embd, n_head):
    torch.manual_seed(3)
    layer = CausalSelfAttention(n_embd, n_head).eval()
    x = torch.randn(2, 9, n_embd)
    y, _ = layer(x)
    torch.testing.assert_close(y, _explicit_multihead(layer, x), atol=1e-6, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(n_head=st.integers(1, 5), head_dim=st.integers(1, 16), B=st.integers(1, 3), T=st.integers(1, 20))
def test_fast_path_equals_the_formula(n_head, head_dim, B, T):
    torch.manual_seed(n_head * 1000 + head_dim * 10 + T)
    layer = CausalSelfAttention(n_head * head_dim, n_head).eval()
    x = torch.randn(B, T, n_head * head_dim)
    layer.fast = True
    fast, none = layer(x)
    layer.fast = False
    slow, weights = layer(x)
    assert none is None and weights.shape == (B, n_head, T, T)
    assert (fast - slow).abs().max().item() <= 1e-6


def test_earlier_outputs_ignore_later_tokens():
    torch.manual_seed(4)
    layer = CausalSelfAttention(32, 4).eval()
    x = torch.randn(1, 10, 32)
    x2 = x.clone()
    x2[:, 6:] = torch.randn(1, 4, 32)
    torch.testing.assert_close(layer(x)[0][:, :6], layer(x2)[0][:, :6])
    assert not torch.allclose(layer(x)[0][:, 6:], layer(x2)[0][:, 6:])


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("chunks", [[1] * 8, [3, 1, 4], [5, 3]])
def test_cache_gives_the_full_sequence_result(fast, chunks):
    torch.manual_seed(5)
    layer = CausalSelfAttention(24, 3, fast=fast).eval()
    x = torch.randn(2, sum(chunks), 24)
    full, _ = layer(x)
    cache = KVCache(n_layer=1, batch_size=2, n_head=3, block_size=16, head_dim=8)
    parts, start = [], 0
    for n in chunks:
        y, _ = layer(x[:, start:start + n], cache=cache, layer=0)
        cache.advance(n)
        parts.append(y)
        start += n
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-6, rtol=1e-5)


def test_cache_refuses_to_overflow():
    cache = KVCache(n_layer=1, batch_size=1, n_head=1, block_size=4, head_dim=2)
    cache.update(0, torch.zeros(1, 1, 4, 2), torch.zeros(1, 1, 4, 2))
    cache.advance(4)
    with pytest.raises(ValueError, match="cache full"):
        cache.update(0, torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2))


def test_dropout_acts_only_in_training():
    torch.manual_seed(6)
    layer = CausalSelfAttention(16, 2, dropout=0.5)
    x = torch.randn(1, 6, 16)
    layer.train()
    assert not torch.equal(layer(x)[0], layer(x)[0])
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
