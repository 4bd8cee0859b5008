"""Exercise 4.5, attention as an nn.Module: the checker builds the reader's class, loads known weights into it
and compares outputs. Right answers written in other ways pass and plausible wrong ones fail, each under
every one of 50 seeds (the fixed cases, drawn first, expose every one of them); the package's layer, which
returns a tuple, and classes that cannot even be built are failed with a message that says why.
"""
from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gpt2lib.attention import CausalSelfAttention as PackageAttention
from gpt2lib.exercises import check_attention_module, use
from gpt2lib.exercises.ch04_attention_module import (BookCausalSelfAttention, _KQV, _MaskDiagonal,
                                                      _MergeNoTranspose, _NoMask, _NoScale, _NoWO,
                                                      _ReshapeBothWays, _ScaleByDk, _ScaleByEmbd, _SoftmaxQueries,
                                                      _SplitDFirst, _SplitNoTranspose)

EXERCISE = check_attention_module.exercise
SEEDS = range(50)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The cases are tiny: torch's thread pool costs more than it saves on them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


pytestmark = pytest.mark.usefixtures("private_progress")  # conftest.py


def _check(cls: Any, seed: int = 0) -> tuple[bool, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ok = check_attention_module(cls, record=False, seed=seed)
    return ok, buf.getvalue()


class _Base(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.w_qkv = nn.Linear(n_embd, 3 * n_embd)
        self.w_o = nn.Linear(n_embd, n_embd)


# --- right, written other ways ------------------------------------------------------------------------

def _softmax(z):
    z = z - z.max(dim=-1, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=-1, keepdim=True)


def _split_heads(M, n_head):
    B, T, C = M.shape
    return M.view(B, T, n_head, C // n_head).transpose(1, 2)


class ChapterPieces(_Base):
    """The chapter's own softmax and split_heads, the masked scores of exercise 4.2."""

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (_split_heads(t, self.n_head) for t in self.w_qkv(x).split(C, dim=-1))
        scores = q @ k.transpose(-2, -1) / math.sqrt(C // self.n_head)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        return self.w_o((_softmax(scores) @ v).transpose(1, 2).reshape(B, T, C))


class Fused(_Base):
    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.w_qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.w_o(y.permute(0, 2, 1, 3).flatten(2))


class MaskBuffer(_Base):
    """nanoGPT's mask buffer, kept out of the state dict (persistent=False), and chunk instead of split."""

    def __init__(self, n_embd, n_head, block_size=64):
        super().__init__(n_embd, n_head)
        self.register_buffer("mask", torch.ones(block_size, block_size).tril().view(1, 1, block_size, block_size),
                             persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.reshape(B, T, self.n_head, -1).transpose(1, 2) for t in self.w_qkv(x).chunk(3, dim=2))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.w_o(y.transpose(1, 2).contiguous().view(B, T, C))


class WrapsThePackage(nn.Module):
    """gpt2lib's layer underneath, its tuple unpacked."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        self.inner = PackageAttention(n_embd, n_head)
        self.w_qkv, self.w_o = self.inner.w_qkv, self.inner.w_o
        del self.inner.w_qkv, self.inner.w_o  # one name per weight, as the state dict needs

    def forward(self, x):
        self.inner.w_qkv, self.inner.w_o = self.w_qkv, self.w_o
        try:
            return self.inner(x)[0]
        finally:
            del self.inner.w_qkv, self.inner.w_o


class HeadLoop(_Base):
    """One head at a time, concatenated: slow but right."""

    def forward(self, x):
        B, T, C = x.shape
        d = C // self.n_head
        q, k, v = self.w_qkv(x).split(C, dim=-1)
        keep = torch.ones(T, T, dtype=torch.bool).tril()
        heads = []
        for i in range(self.n_head):
            cols = slice(i * d, (i + 1) * d)
            s = (q[..., cols] @ k[..., cols].transpose(-2, -1) / math.sqrt(d)).masked_fill(~keep, float("-inf"))
            heads.append(torch.softmax(s, dim=-1) @ v[..., cols])
        return self.w_o(torch.cat(heads, dim=-1))


ALTERNATIVES = [BookCausalSelfAttention, ChapterPieces, Fused, MaskBuffer, WrapsThePackage, HeadLoop]


# --- wrong in ways the listed mistakes do not name ------------------------------------------------------

class _Switch(_Base):
    upper = ahead = zero_mask = no_bias = scale_after = interleaved = first_head = first_row = False

    def forward(self, x):
        B, T, C = x.shape
        h, d = self.n_head, C // self.n_head
        qkv = F.linear(x, self.w_qkv.weight) if self.no_bias else self.w_qkv(x)
        parts = qkv.view(B, T, C, 3).unbind(-1) if self.interleaved else qkv.split(C, dim=-1)
        q, k, v = (t.view(B, T, h, d).transpose(1, 2) for t in parts)
        scores = q @ k.transpose(-2, -1)
        if not self.scale_after:
            scores = scores / math.sqrt(d)
        tri = torch.ones(T, T, dtype=torch.bool)
        hide = tri.tril(-1) if self.upper else ~tri.tril(1 if self.ahead else 0)
        scores = scores.masked_fill(hide, 0.0 if self.zero_mask else float("-inf"))
        w = torch.softmax(scores, dim=-1)
        if self.scale_after:
            w = w / math.sqrt(d)
        y = w @ v
        if self.first_head:  # every head given head 0's weights
            y = torch.softmax(scores[:, :1], dim=-1) @ v
        y = y.transpose(1, 2).reshape(B, T, C)
        if self.first_row:  # every row given row 0's result
            y = y[:1].expand(B, T, C)
        return self.w_o(y)


def _wrong(name: str, **switches: bool) -> type:
    return type(name, (_Switch,), dict(switches))


class ReturnsTuple(ChapterPieces):
    def forward(self, x):
        return super().forward(x), None


WRONG = [
    _wrong("MaskUpsideDown", upper=True),
    _wrong("MaskedWithZero", zero_mask=True),
    _wrong("BiasLeftOut", no_bias=True),
    _wrong("ScaledAfterSoftmax", scale_after=True),
    _wrong("InterleavedQKV", interleaved=True),
    _wrong("OneHeadsWeightsForAll", first_head=True),
    _wrong("FirstRowOnly", first_row=True),
    ReturnsTuple,
    _wrong("SeesOneTokenAhead", ahead=True),
    PackageAttention,
]


def test_the_reference_passes_under_every_seed():
    failed = [seed for seed in SEEDS if not _check(BookCausalSelfAttention, seed)[0]]
    assert not failed, f"the book's module fails with seeds {failed}"


@pytest.mark.parametrize("cls", ALTERNATIVES, ids=lambda c: c.__name__)
def test_an_equivalent_correct_module_passes(cls):
    for seed in SEEDS:
        ok, out = _check(cls, seed)
        assert ok, f"seed {seed}: {out}"


@pytest.mark.parametrize("cls", WRONG, ids=lambda c: c.__name__)
def test_a_plausible_wrong_module_fails_under_every_seed(cls):
    blind = [seed for seed in SEEDS if _check(cls, seed)[0]]
    assert not blind, f"{cls.__name__} passed with seeds {blind}"


# the checker's listed mistakes, in its order: each is the book's module with one step wrong
MISTAKES = [_NoMask, _NoScale, _ScaleByEmbd, _ScaleByDk, _MergeNoTranspose, _SplitNoTranspose, _ReshapeBothWays,
            _SplitDFirst, _KQV, _SoftmaxQueries, _NoWO, _MaskDiagonal]


def test_the_mistakes_named_here_are_the_checkers():
    assert len(MISTAKES) == len(EXERCISE.mistakes)
    x = torch.randn(2, 5, 24)
    for cls, mistake in zip(MISTAKES, EXERCISE.mistakes):
        state = cls(24, 4).state_dict()
        torch.testing.assert_close(mistake.fn(24, 4, state, x), _run_with(cls, state, x), equal_nan=True)


def _run_with(cls: type, state: dict, x: torch.Tensor) -> torch.Tensor:
    module = cls(x.shape[-1], 4)
    module.load_state_dict(state)
    with torch.no_grad():
        return module.eval()(x)


@pytest.mark.parametrize("i", range(len(MISTAKES)), ids=lambda i: MISTAKES[i].__name__)
def test_every_listed_mistake_fails_with_its_own_hint_under_every_seed(i):
    cls, mistake = MISTAKES[i], EXERCISE.mistakes[i]
    for seed in SEEDS:
        ok, out = _check(cls, seed)
        assert not ok, f"{cls.__name__} passed with seed {seed}"
        assert out.count("hint:") == 1 and f"hint: {mistake.sentence()}" in out, f"seed {seed}:\n{out}"


def test_at_least_six_mistakes_are_listed_and_the_first_case_exposes_each():
    assert len(EXERCISE.mistakes) >= 6
    for seed in (0, 1):
        first = EXERCISE.draw_cases(seed)[0]
        _, n_head, _, x = first.args
        assert n_head > 1 and x.shape[0] > 1 and x.shape[1] > 1
        expected = EXERCISE.reference(*first.args)
        for mistake in EXERCISE.mistakes:
            got = mistake.fn(*first.args)
            assert not torch.allclose(got, expected, atol=1e-3, rtol=1e-3, equal_nan=True), mistake.hint


def test_the_fixed_cases_come_first_and_the_last_varies():
    a, b = EXERCISE.draw_cases(0), EXERCISE.draw_cases(1)
    names = [c.name for c in a]
    assert any("T=1," in n for n in names) and any("n_head=1)" in n for n in names)
    assert names[:4] == [c.name for c in b][:4]
    assert any(not torch.equal(x.args[3], y.args[3]) for x, y in zip(a, b))


def test_the_package_layer_is_told_to_return_the_tensor_alone():
    ok, out = _check(PackageAttention)
    assert not ok
    assert "returned a tuple of 2 items" in out and "return the output tensor alone" in out, out


class _RaisesInInit(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        raise ValueError("n_head must divide n_embd, it says")

    def forward(self, x):
        return x


class _Placeholder(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        raise NotImplementedError  # your code here

    def forward(self, x):
        raise NotImplementedError  # your code here


class _CAttnNames(nn.Module):
    """GPT-2's own names (c_attn, c_proj), not the package's."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        return x


class _PersistentMask(MaskBuffer):
    def __init__(self, n_embd, n_head):
        super().__init__(n_embd, n_head)
        self.register_buffer("mask", torch.ones(8, 8).tril())


def test_a_class_that_raises_in_init_is_reported_not_raised():
    ok, out = _check(_RaisesInInit)
    assert not ok and "✗" in out and "ValueError: n_head must divide n_embd" in out, out


def test_the_untouched_placeholder_is_not_done_yet():
    ok, out = _check(_Placeholder)
    assert not ok and "not done yet" in out, out


@pytest.mark.parametrize("cls, words", [
    (_CAttnNames, ["c_attn.weight", "w_qkv.weight", "Missing"]),
    (_PersistentMask, ["'mask'", "persistent=False"]),
])
def test_weights_under_other_names_are_named(cls, words):
    ok, out = _check(cls)
    assert not ok
    assert all(w in out for w in words), out


def test_an_instance_or_a_notebook_function_is_told_to_pass_the_class():
    ok, out = _check(BookCausalSelfAttention(8, 2))
    assert not ok and "pass the class itself" in out, out

    def attention(x):
        return x

    attention.__module__ = "__main__"  # as if typed into a notebook cell
    ok, out = _check(attention)
    assert not ok and "asks for a class" in out, out


def test_what_passes_is_what_use_returns():
    fallback = object()
    assert use("attention_module", book=fallback) is fallback
    assert check_attention_module(ChapterPieces)
    assert use("attention_module", book=fallback) is ChapterPieces


def test_the_book_module_agrees_with_the_package_layer_on_its_weights():
    torch.manual_seed(0)
    package = PackageAttention(32, 4).eval()
    book = BookCausalSelfAttention(32, 4).eval()
    book.load_state_dict(package.state_dict())
    x = torch.randn(3, 7, 32)
    with torch.no_grad():
        torch.testing.assert_close(book(x), package(x)[0], atol=1e-6, rtol=1e-5)
