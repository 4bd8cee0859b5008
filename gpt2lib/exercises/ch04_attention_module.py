"""Chapter 4's last exercise: multi-head causal self-attention as a module, the piece chapter 5's block uses.

:class:`BookCausalSelfAttention` is the book's version, the one later chapters fall back on when the reader
has not passed the exercise (``use("attention_module", book=BookCausalSelfAttention)``). Its parameters
carry the package's names (``w_qkv``, ``w_o``), so a state dict moves between it, the reader's module and
``gpt2lib.attention.CausalSelfAttention`` unchanged; unlike the package's layer it returns the output
tensor alone, as the reader's does.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class BookCausalSelfAttention(nn.Module):
    """``Concat(head_1..head_h) W^O`` with a causal mask, written from chapter 4's formula."""

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.w_qkv = nn.Linear(n_embd, 3 * n_embd)
        self.w_o = nn.Linear(n_embd, n_embd)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        d = C // self.n_head
        q, k, v = (t.view(B, T, self.n_head, d).transpose(1, 2) for t in self.w_qkv(x).split(C, dim=-1))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=x.device).tril(), float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v
        return self.w_o(y.transpose(1, 2).reshape(B, T, C))
