"""Attention, from the formula to the layer GPT-2 uses.

Three pieces, in the order the book builds them:

* :func:`attention` is ``softmax(Q K^T / sqrt(d_k)) V`` written out, with the causal mask that keeps a
  token from looking at the tokens after it (Vaswani et al. 2017, eq. 1).
* :func:`causal_mask` is that mask on its own, so that it can be printed and plotted.
* :class:`CausalSelfAttention` is multi-head attention as GPT-2 computes it: one linear map makes Q, K
  and V for all heads at once, a reshape splits them into heads, each head attends, the heads are
  concatenated and mixed by W^O. Its fast path calls ``F.scaled_dot_product_attention`` (a fused kernel,
  flash attention on recent GPUs); the slow path calls :func:`attention` and can return the weights.

:class:`KVCache` keeps the keys and values of the tokens already seen, so that generating one more token
costs one token's work instead of the whole sequence's.

From the rest of gpt2lib it imports only ``_compat`` (an old keyword name kept for one release).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._compat import renamed

__all__ = ["attention", "attention_weights", "causal_mask", "CausalSelfAttention", "KVCache"]


def causal_mask(T: int, T_k: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """A boolean ``(T, T_k)`` mask, True where query ``i`` may look at key ``j``.

    With ``T_k == T`` (the default) it is the lower triangle: token ``i`` sees tokens ``0..i``. With a
    cache, the ``T`` queries are the *last* ``T`` of ``T_k`` positions, so the triangle is shifted right
    by ``T_k - T``: query ``i`` sits at position ``T_k - T + i`` and sees every key up to that position.
    """
    T_k = T if T_k is None else T_k
    if T < 1 or T_k < T:
        raise ValueError(f"causal_mask needs 1 <= T <= T_k, got T={T}, T_k={T_k}")
    return torch.ones(T, T_k, dtype=torch.bool, device=device).tril(diagonal=T_k - T)


def attention_weights(q: Tensor, k: Tensor, causal: bool = True, mask: Tensor | None = None) -> Tensor:
    """``softmax(Q K^T / sqrt(d_k))``, shape ``(..., T_q, T_k)``: how much each query looks at each key.

    Dividing by sqrt(d_k) keeps the scores' variance near 1 whatever the head size, so the softmax does
    not saturate into a one-hot vector with vanishing gradients. ``mask`` (boolean, True = keep) is
    combined with the causal mask when both are given.
    """
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    keep = causal_mask(q.size(-2), k.size(-2), device=q.device) if causal else None
    if mask is not None:
        keep = mask if keep is None else keep & mask
    if keep is not None:
        # -inf, not a large negative number: exp(-inf) is exactly 0, so a masked key gets no weight at all.
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1)


def attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = True, mask: Tensor | None = None) -> Tensor:
    """Scaled dot-product attention, ``softmax(Q K^T / sqrt(d_k)) V``, written as the formula.

    ``q`` is ``(..., T_q, d_k)``, ``k`` is ``(..., T_k, d_k)``, ``v`` is ``(..., T_k, d_v)``; any leading
    dimensions (batch, heads) are carried along. Returns ``(..., T_q, d_v)``.
    """
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k need the same last dimension d_k, got {q.size(-1)} and {k.size(-1)}")
    if k.size(-2) != v.size(-2):
        raise ValueError(f"k and v need the same number of positions, got {k.size(-2)} and {v.size(-2)}")
    return attention_weights(q, k, causal=causal, mask=mask) @ v


class KVCache:
    """Keys and values of every layer for the positions already processed, preallocated.

    Preallocating ``(n_layer, B, n_head, block_size, head_dim)`` once means a new token writes into a slice
    instead of concatenating (and copying) the whole history at every step. The model advances
    :attr:`length` after all its layers have written the new positions.
    """

    @renamed(batch="batch_size")
    def __init__(self, n_layer: int, batch_size: int, n_head: int, block_size: int, head_dim: int,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        self.shape = (n_layer, batch_size, n_head, block_size, head_dim)
        self.k = torch.zeros(self.shape, device=device, dtype=dtype)
        self.v = torch.zeros(self.shape, device=device, dtype=dtype)
        self.block_size = block_size
        self.length = 0

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``k``/``v`` (``(B, n_head, T, head_dim)``) after the cached positions; return all keys
        and values of this layer so far."""
        start, end = self.length, self.length + k.size(2)
        if end > self.block_size:
            raise ValueError(f"KV cache full: {end} positions needed, room for {self.block_size}")
        if k.dtype != self.k.dtype or k.device != self.k.device:
            # under autocast the keys come out in bf16: keep them so, or attention would mix dtypes
            if self.length:
                raise ValueError(f"KV cache holds {self.k.dtype} on {self.k.device}, got {k.dtype} on "
                                 f"{k.device}: use one autocast setting for a whole generation")
            self.k = torch.zeros(self.shape, device=k.device, dtype=k.dtype)
            self.v = torch.zeros(self.shape, device=k.device, dtype=k.dtype)
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, T: int) -> None:
        self.length += T

    def reset(self) -> None:
        self.length = 0


class CausalSelfAttention(nn.Module):
    """Masked multi-head self-attention: ``MultiHead(X) = Concat(head_1..head_h) W^O`` with
    ``head_i = Attention(X W_i^Q, X W_i^K, X W_i^V)``.

    ``w_qkv`` holds W^Q, W^K and W^V of all heads side by side (one matmul instead of 3 * n_head small
    ones); a reshape to ``(B, n_head, T, head_dim)`` is what splits them into heads. ``w_o`` is W^O.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True,
                 fast: bool = True) -> None:
        super().__init__()
        if n_head < 1 or n_embd % n_head != 0:
            raise ValueError(
                f"n_embd ({n_embd}) must be divisible by n_head ({n_head}): each head gets n_embd / n_head "
                f"dimensions; pick e.g. n_head={_divisor_hint(n_embd, n_head)}"
            )
        self.n_embd, self.n_head, self.head_dim = n_embd, n_head, n_embd // n_head
        self.w_qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.w_o = nn.Linear(n_embd, n_embd, bias=bias)
        self.dropout = dropout
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        self.fast = fast  # False: use the written-out formula (slower, returns the same numbers)

    def split_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(B, T, n_embd)`` -> q, k, v each ``(B, n_head, T, head_dim)``."""
        B, T, _ = x.shape
        q, k, v = self.w_qkv(x).split(self.n_embd, dim=2)
        return tuple(t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))  # type: ignore[return-value]

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Returns ``(y, weights)``; ``weights`` is ``(B, n_head, T, T_k)`` when ``need_weights``, else None."""
        B, T, C = x.shape
        q, k, v = self.split_heads(x)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        T_k = k.size(2)
        weights = None
        if need_weights or not self.fast:
            weights = attention_weights(q, k, causal=True)
            y = self.attn_dropout(weights) @ v
        else:
            p = self.dropout if self.training else 0.0
            if T == T_k:
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            elif T == 1:
                # one new token after the cache: it may see every key, so no mask at all
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            else:
                # several new tokens after a cache: is_causal would align the triangle top-left, wrong here
                mask = causal_mask(T, T_k, device=x.device)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        # concatenate the heads back into (B, T, n_embd), then mix them with W^O
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.w_o(y)), weights


def _divisor_hint(n_embd: int, n_head: int) -> int:
    """The divisor of ``n_embd`` closest to ``n_head``, for the error message."""
    divisors = [d for d in range(1, n_embd + 1) if n_embd % d == 0] or [1]
    return min(divisors, key=lambda d: (abs(d - n_head), d))
