"""Chapter 6's last exercise: one step of generation with a KV cache, written from the model's parts.

The cache is a list with one (keys, values) pair per layer, each (B, n_head, T_past, head_dim); an empty
list before the first step. A step takes the new ids (B, T), returns their logits (B, T, vocab) and the
cache with their keys and values appended. It reads only the parameters every GPT of the book names the
same way (``wte``, ``wpe``, ``blocks[i].ln_1``, ``.attn.w_qkv``, ``.attn.w_o``, ``.ln_2``, ``.mlp``, ``ln_f``,
``lm_head``) and ``model.config``, so it runs on ``gpt2lib.GPT`` and on the reader's own GPT of chapter 5,
which has no cache and no ``split_heads``; the cases hand it both kinds. Each mistake below differs from the
answer key in one line.
Several of them only show on some shapes (one layer's cache used for all layers needs two layers; heads
merged without their transpose needs two heads and two new tokens; batch and positions swapped needs two
rows), so the fixed cases use a model with two layers and two heads on a batch of two, always; a model
of drawn shape only adds to them.
"""
from __future__ import annotations

import math
import random

import torch
from torch import nn

from ._core import Case, CheckFailed, Exercise, Mistake, compare, register
from .ch05_modules import BookGPT


def _kv_step(model: torch.nn.Module, ids: torch.Tensor, past: list, *, offset: bool = True,
             append: str = "after", mask: str = "shifted", attend: str = "all", layer_cache: str = "own",
             merge: str = "transpose", scale: str = "head") -> tuple[torch.Tensor, list]:
    B, T = ids.shape
    T_past = past[0][0].size(2) if past else 0
    start = T_past if offset else 0
    x = model.wte(ids) + model.wpe(torch.arange(start, start + T, device=ids.device))
    C, H = model.config.n_embd, model.config.n_head
    present = []
    for i, block in enumerate(model.blocks):
        # w_qkv gives q, k and v side by side along the last dimension; each splits into H heads
        q, k_new, v_new = (t.view(B, T, H, C // H).transpose(1, 2)
                           for t in block.attn.w_qkv(block.ln_1(x)).split(C, dim=-1))
        old = (past[0] if layer_cache == "first" else past[i]) if past else None
        if old is not None and append == "before":
            k, v = torch.cat([k_new, old[0]], dim=2), torch.cat([v_new, old[1]], dim=2)
        elif old is not None:
            k, v = torch.cat([old[0], k_new], dim=2), torch.cat([old[1], v_new], dim=2)
        else:
            k, v = k_new, v_new
        if append == "none":
            if old is not None:
                present.append(old)
        elif append == "replace":
            present.append((k_new, v_new))
        else:
            present.append((k, v))
        if attend == "new":
            k, v = k_new, v_new
        T_k = k.size(2)
        if mask == "shifted":
            keep = torch.ones(T, T_k, dtype=torch.bool, device=ids.device).tril(diagonal=T_k - T)
        elif mask == "top-left":
            keep = torch.ones(T, T_k, dtype=torch.bool, device=ids.device).tril()
        else:
            keep = torch.ones(T, T_k, dtype=torch.bool, device=ids.device)
        width = q.size(-1) if scale == "head" else model.config.n_embd
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(width)
        y = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1) @ v
        if merge == "transpose":
            y = y.transpose(1, 2).reshape(B, T, -1)
        elif merge == "reshape":
            y = y.reshape(B, T, -1)
        else:  # "swap": (B, n_head, T, d) -> (T, B, n_head, d), read as (B, T, n_embd)
            y = y.permute(2, 0, 1, 3).reshape(B, T, -1)
        x = x + block.attn.w_o(y)
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(model.ln_f(x)), present


def _kv_step_reference(model: torch.nn.Module, ids: torch.Tensor, past: list) -> tuple[torch.Tensor, list]:
    with torch.no_grad():
        return _kv_step(model, ids, past)


def _kv_mistake(**how: str | bool):
    def wrong(model: torch.nn.Module, ids: torch.Tensor, past: list) -> tuple[torch.Tensor, list]:
        with torch.no_grad():
            return _kv_step(model, ids, past, **how)
    return wrong


class _Attention(nn.Module):
    """Chapter 4's module: ``w_qkv`` and ``w_o``, a tensor out, no cache, no ``split_heads``; its head count
    under a name of its own, so a step must read it from ``model.config``."""

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self._heads = n_head
        self.w_qkv = nn.Linear(n_embd, 3 * n_embd)
        self.w_o = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self._heads, C // self._heads).transpose(1, 2) for t in self.w_qkv(x).split(C, dim=-1))
        keep = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        scores = (q @ k.transpose(-2, -1) / math.sqrt(C // self._heads)).masked_fill(~keep, float("-inf"))
        return self.w_o((torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, C))


class ReaderShapedGPT(BookGPT):
    """A GPT with the interface of the reader's ``MyGPT`` (chapter 5): the book's answer to exercise 5.6, whose
    attention keeps its head count under a name of its own. The package's parameter names and
    ``forward(idx, targets=None) -> (logits, loss)``, and nothing more (no cache, no ``hidden_states``, no
    ``generate``). Checkers hand it to an answer that must work on the reader's model too."""

    def __init__(self, config) -> None:  # noqa: ANN001 - a GPTConfig
        super().__init__(config)
        for block in self.blocks:
            block.attn = _Attention(config.n_embd, config.n_head)

    @classmethod
    def like(cls, model: nn.Module) -> "ReaderShapedGPT":
        """The same weights as ``model`` (a ``gpt2lib.GPT``), in the reader's shape."""
        twin = cls(model.config)
        twin.load_state_dict(model.state_dict())
        return twin.eval()


def _tiny_model(rng: random.Random, n_layer: int, n_head: int, head_dim: int) -> torch.nn.Module:
    from ..model import GPT, GPTConfig

    config = GPTConfig(vocab_size=rng.randint(24, 64), block_size=32, n_layer=n_layer, n_head=n_head,
                       n_embd=n_head * head_dim, dropout=0.0)
    torch.manual_seed(rng.randrange(2**31))
    model = GPT(config).eval()
    with torch.no_grad():
        # init-sized weights (std 0.02) make every position look alike and hide the mistakes
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1)
    return model


def _kv_cases(rng: random.Random) -> list[Case]:
    def past_of(model: torch.nn.Module, B: int, L: int) -> list:
        return _kv_step_reference(model, torch.randint(model.config.vocab_size, (B, L)), [])[1]

    def ids(model: torch.nn.Module, B: int, T: int) -> torch.Tensor:
        return torch.randint(model.config.vocab_size, (B, T))

    def three(m: torch.nn.Module, B: int, T0: int, L1: int, L2: int, T2: int) -> list[Case]:
        c = m.config
        shape = f"{c.n_layer} layer(s), {c.n_head} head(s), n_embd {c.n_embd}, batch {B}"
        return [
            Case(f"{shape}: {T0} tokens, empty cache (the prompt)", (m, ids(m, B, T0), [])),
            Case(f"{shape}: one token after {L1} cached", (m, ids(m, B, 1), past_of(m, B, L1))),
            Case(f"{shape}: {T2} tokens after {L2} cached (a chunk of a prompt)", (m, ids(m, B, T2), past_of(m, B, L2))),
        ]

    # always: two layers, two heads, two rows, several new tokens after a cache
    fixed = _tiny_model(rng, n_layer=2, n_head=2, head_dim=4)
    drawn = _tiny_model(rng, n_layer=rng.choice([1, 2, 3]), n_head=rng.choice([1, 2, 4]), head_dim=rng.choice([4, 8]))
    # the same weights in a model shaped like the reader's (no split_heads, no cache): the step must read
    # only the parameters both kinds name alike, and model.config
    yours = ReaderShapedGPT.like(fixed)
    return [*three(fixed, 2, rng.randint(2, 6), rng.randint(3, 12), rng.randint(3, 10), rng.randint(2, 5)),
            *[Case(c.name.replace("layer(s)", "layer(s) (a GPT shaped like yours)"), (yours, *c.args[1:]))
              for c in three(fixed, 2, rng.randint(2, 6), rng.randint(3, 12), rng.randint(3, 10), rng.randint(2, 5))],
            *three(drawn, rng.choice([1, 2, 3]), rng.randint(2, 6), rng.randint(1, 12), rng.randint(1, 10),
                   rng.randint(2, 5))]


def _compare_kv_step(expected: tuple, got: object) -> None:
    if got is None:
        raise CheckFailed("your function returned None: did you forget the `return` statement?")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"return a pair (logits, cache), got a {type(got).__name__}")
    exp_logits, exp_cache = expected
    logits, cache = got
    try:
        compare(exp_logits, logits, atol=1e-4, rtol=1e-4)
    except CheckFailed as exc:
        raise CheckFailed(f"the logits: {exc}") from None
    if not isinstance(cache, (list, tuple)) or len(cache) != len(exp_cache):
        raise CheckFailed(f"the cache must be a list of {len(exp_cache)} (keys, values) pairs, one per layer, "
                          f"got a {type(cache).__name__} of length {len(cache) if hasattr(cache, '__len__') else '?'}")
    for layer, (pair_e, pair) in enumerate(zip(exp_cache, cache)):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise CheckFailed(f"cache[{layer}] must be a (keys, values) pair, got a {type(pair).__name__}")
        for what, e, g in (("keys", pair_e[0], pair[0]), ("values", pair_e[1], pair[1])):
            try:
                compare(e, g, atol=1e-4, rtol=1e-4)
            except CheckFailed as exc:
                raise CheckFailed(f"the cache's layer {layer} {what}: {exc}") from None


check_kv_cache_step = register(Exercise(
    "kv_cache_step", number="6.5", chapter=6, title="One step of generation with a KV cache", level="hard", minutes=25,
    reference=_kv_step_reference, cases=_kv_cases, compare=_compare_kv_step,
    mistakes=[
        Mistake("the new tokens' positions started at 0 again: after T_past cached tokens they are T_past, "
                "T_past + 1, ...", _kv_mistake(offset=False)),
        Mistake("the returned cache were the old one: append the new keys and values after the cached ones "
                "(torch.cat along dim=2)", _kv_mistake(append="none")),
        Mistake("the cache kept only the new tokens' keys and values: it must hold every position so far",
                _kv_mistake(append="replace")),
        Mistake("the new keys went BEFORE the cached ones: positions run in order, so the cached keys come first",
                _kv_mistake(append="before")),
        Mistake("the mask's triangle started in the top-left corner: new token i sits at position T_past + i and "
                "may see keys 0 .. T_past + i, so shift the triangle right by T_past (torch.tril's diagonal "
                "argument)", _kv_mistake(mask="top-left")),
        Mistake("there were no mask at all: with several new tokens, each must not see the new tokens after it",
                _kv_mistake(mask="none")),
        Mistake("the new tokens attended only to each other: attention runs over the cached keys and the new ones",
                _kv_mistake(attend="new")),
        Mistake("every layer read layer 0's cache: block i extends past[i], its own keys and values",
                _kv_mistake(layer_cache="first")),
        Mistake("the heads were merged without moving them back: y is (B, n_head, T, head_dim), so "
                "transpose(1, 2) to (B, T, n_head, head_dim) before reshaping to (B, T, n_embd)",
                _kv_mistake(merge="reshape")),
        Mistake("the scores were divided by sqrt(n_embd): divide by sqrt(head_dim), the size of one head's "
                "vectors (q.size(-1))", _kv_mistake(scale="embd")),
    ],
))
