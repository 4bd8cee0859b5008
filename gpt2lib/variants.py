"""What came after GPT-2, as swaps into its block: RMSNorm, rotary position embeddings (RoPE), the SwiGLU MLP and
grouped-query attention (GQA), each a few lines on top of :mod:`gpt2lib.model`.

- RMSNorm (Zhang and Sennrich, 2019) drops LayerNorm's centring and bias: ``x / rms(x) * g``.
- RoPE (Su et al., 2021) rotates each pair of a query's and a key's channels by an angle proportional to the
  position, so that their dot product depends on the positions only through their difference; the model needs no
  position table.
- SwiGLU (Shazeer, 2020) gates the MLP: ``w2(silu(w1 x) * w3 x)``; with a hidden width of about 2/3 of 4C its
  three matrices hold as many parameters as GPT-2's two. Its hidden units are products of two projections, so at
  GPT-2's initialisation (every matrix N(0, 0.02^2)) in a narrow model its output starts several times smaller
  than the GELU MLP's; ``Variant(mlp_init="fan_in")`` gives the MLP PaLM's "fan-in variance scaling" instead.
- GQA (Ainslie et al., 2023) lets groups of query heads share one key/value head: ``n_kv_head = n_head`` is
  multi-head attention, ``n_kv_head = 1`` multi-query attention (Shazeer, 2019); the KV cache shrinks by
  ``n_head / n_kv_head``.

:class:`VariantGPT` is GPT-2 with any of them switched on, for comparisons at equal parameter count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import MLP, GPTConfig

__all__ = ["RMSNorm", "rope", "SwiGLU", "swiglu_hidden", "GroupedQueryAttention", "MLP_INITS", "Variant",
           "VariantGPT", "equal_size"]


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * weight``: LayerNorm without the mean and the bias."""

    def __init__(self, ndim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


def rope(x: Tensor, positions: Tensor, base: float = 10000.0) -> Tensor:
    """Rotate ``x`` ``(..., T, d)`` (d even) by its positions ``(T,)``: channel pair ``(i, i + d/2)`` turns by
    ``position * base^(-2i/d)`` (the "rotate half" layout of GPT-NeoX and Llama)."""
    d = x.size(-1)
    if d % 2:
        raise ValueError(f"rotary embeddings need an even head size, got {d}")
    freqs = base ** (-torch.arange(0, d // 2, device=x.device, dtype=torch.float32) * 2 / d)
    angles = positions.to(torch.float32)[:, None] * freqs[None, :]  # (T, d/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    first, second = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


def swiglu_hidden(n_embd: int, multiple: int = 8) -> int:
    """The SwiGLU hidden width whose three matrices hold about GPT-2's two (``2/3 * 4 * n_embd``), rounded up."""
    return multiple * math.ceil(8 * n_embd / 3 / multiple)


class SwiGLU(nn.Module):
    """``w2(silu(w1 x) * w3 x)``, no biases (as in PaLM and Llama)."""

    def __init__(self, n_embd: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or swiglu_hidden(n_embd)
        self.w1 = nn.Linear(n_embd, hidden, bias=False)
        self.w3 = nn.Linear(n_embd, hidden, bias=False)
        self.w2 = nn.Linear(hidden, n_embd, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class GroupedQueryAttention(nn.Module):
    """Causal attention with ``n_head`` query heads sharing ``n_kv_head`` key/value heads, optionally rotary.

    ``w_q`` makes the queries, ``w_kv`` the keys and values of the ``n_kv_head`` heads, ``w_o`` mixes the heads."""

    def __init__(self, n_embd: int, n_head: int, n_kv_head: int | None = None, rotary: bool = False,
                 bias: bool = True) -> None:
        super().__init__()
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        if n_embd % n_head or n_head % n_kv_head:
            raise ValueError(f"n_embd ({n_embd}) must divide by n_head ({n_head}), and n_head by n_kv_head ({n_kv_head})")
        self.n_head, self.n_kv_head, self.head_dim, self.rotary = n_head, n_kv_head, n_embd // n_head, rotary
        self.w_q = nn.Linear(n_embd, n_embd, bias=bias)
        self.w_kv = nn.Linear(n_embd, 2 * n_kv_head * self.head_dim, bias=bias)
        self.w_o = nn.Linear(n_embd, n_embd, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        q = self.w_q(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k, v = (t.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
                for t in self.w_kv(x).split(self.n_kv_head * self.head_dim, dim=-1))
        if self.rotary:
            pos = torch.arange(T, device=x.device)
            q, k = rope(q, pos), rope(k, pos)
        group = self.n_head // self.n_kv_head  # each key/value head serves this many query heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.w_o(y.transpose(1, 2).reshape(B, T, C))


MLP_INITS = ("gpt2", "fan_in")


@dataclass(frozen=True)
class Variant:
    """Which post-GPT-2 changes are on. The default is GPT-2 itself."""

    rmsnorm: bool = False
    rope: bool = False
    swiglu: bool = False
    n_kv_head: int | None = None  # None: one key/value head per query head (multi-head attention)
    mlp_hidden: int | None = None  # None: 4 * n_embd for GPT-2's MLP, swiglu_hidden(n_embd) for SwiGLU
    # "gpt2": GPT-2's initialisation everywhere (N(0, 0.02^2), the residual projections 0.02 / sqrt(2 n_layer));
    # "fan_in": the MLP's matrices N(0, 1 / n_in) instead, n_in the matrix's input width (PaLM, Chowdhery et al.
    # 2022, section 5: "fan-in variance scaling"); everything outside the MLP keeps GPT-2's
    mlp_init: str = "gpt2"

    def __post_init__(self) -> None:
        if self.mlp_init not in MLP_INITS:
            raise ValueError(f"mlp_init must be one of {MLP_INITS}, got {self.mlp_init!r}")

    @property
    def name(self) -> str:
        parts = [n for n, on in (("RMSNorm", self.rmsnorm), ("RoPE", self.rope), ("SwiGLU", self.swiglu)) if on]
        if self.n_kv_head is not None:
            parts.append(f"GQA({self.n_kv_head})")
        name = " + ".join(parts) or "GPT-2"
        return name + (", fan-in init" if self.mlp_init == "fan_in" else "")


class _WidthMLP(MLP):
    """GPT-2's MLP (same parameter names) with a hidden width other than 4 * n_embd."""

    def __init__(self, config: GPTConfig, hidden: int) -> None:
        super().__init__(config)
        self.fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.proj = nn.Linear(hidden, config.n_embd, bias=config.bias)


class _Block(nn.Module):
    def __init__(self, config: GPTConfig, variant: Variant) -> None:
        super().__init__()
        norm = (lambda: RMSNorm(config.n_embd)) if variant.rmsnorm else (lambda: nn.LayerNorm(config.n_embd))
        self.ln_1, self.ln_2 = norm(), norm()
        self.attn = GroupedQueryAttention(config.n_embd, config.n_head, variant.n_kv_head, rotary=variant.rope)
        if variant.swiglu:
            self.mlp: nn.Module = SwiGLU(config.n_embd, variant.mlp_hidden)
        else:
            self.mlp = MLP(config) if variant.mlp_hidden is None else _WidthMLP(config, variant.mlp_hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class VariantGPT(nn.Module):
    """GPT-2 (tied head, GPT-2's initialisation, ``forward(idx, targets=None) -> (logits, loss)``) with the
    changes of ``variant``; with RoPE there is no position table."""

    def __init__(self, config: GPTConfig, variant: Variant = Variant()) -> None:
        super().__init__()
        self.config, self.variant = config, variant
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = None if variant.rope else nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(_Block(config, variant) for _ in range(config.n_layer))
        self.ln_f = RMSNorm(config.n_embd) if variant.rmsnorm else nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        for block in self.blocks:  # the projections that write into the residual stream
            for proj in (block.attn.w_o, block.mlp.w2 if variant.swiglu else block.mlp.proj):
                nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        if variant.mlp_init == "fan_in":  # after GPT-2's: the attention and the embeddings draw the same numbers
            for block in self.blocks:
                for linear in block.mlp.modules():
                    if isinstance(linear, nn.Linear):
                        nn.init.normal_(linear.weight, mean=0.0, std=linear.in_features ** -0.5)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than the context (block_size={self.config.block_size})")
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def equal_size(config: GPTConfig, variant: Variant, reference: Variant = Variant()) -> Variant:
    """``variant`` with the MLP's hidden width that brings its parameter count closest to ``reference``'s.

    Each swap frees or adds a few parameters (RoPE the position table, GQA the dropped key/value heads, RMSNorm
    the biases, SwiGLU its rounding); giving them back to the MLP compares the swaps at equal size, to within
    one hidden unit per layer."""
    if variant.mlp_hidden is not None:
        raise ValueError("equal_size chooses mlp_hidden itself: pass a variant with mlp_hidden=None")
    with torch.device("meta"):  # shapes only: nothing is allocated or initialised for real
        target = VariantGPT(config, reference).num_parameters()
        base = replace(variant, mlp_hidden=1)
        at_one = VariantGPT(config, base).num_parameters()
        per_unit = VariantGPT(config, replace(base, mlp_hidden=2)).num_parameters() - at_one
    hidden = max(1, 1 + round((target - at_one) / per_unit))
    return replace(variant, mlp_hidden=hidden)
