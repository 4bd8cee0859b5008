"""Chapter 6, exercise 6.6: the sampling loop, written from the reader's pieces.

``generate(model, idx, max_new_tokens, *, temperature, top_k, top_p, generator, kv_step)`` continues ``idx``
``(B, T)`` and returns ``(B, T + max_new_tokens)``, drawing exactly as ``gpt2lib.generation.generate`` draws:
logits of the last position (in float32) divided by the temperature, then top-k, then top-p, softmax, one
``torch.multinomial(probs, 1, generator=generator)`` per step. Without ``kv_step`` each step runs the model
on the last ``block_size`` tokens; with it the prompt is fed once and then one token at a time, and once the
cache holds ``block_size`` positions each step starts it again from the last ``block_size`` tokens, as
``generate()`` does. Same seeded generator, same tokens.

The checker calls the answer with a generator seeded from the case and a ``kv_step`` of the book's (exercise
6.5's answer key) that records what it was fed, so it judges the tokens and the feeding both; it seeds torch's
global generator differently for the call (and restores it after), so an answer that forgets the generator
draws other tokens on every machine. The fixed cases (fixed weights, prompts and seeds, whatever the check's
seed) expose every listed mistake; a model shaped like the reader's (``ReaderShapedGPT``: a forward and
nothing else) makes sure the loop needs no more than the reader's GPT has.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from ._core import Case, CheckFailed, Exercise, Mistake, register
from .ch06_applications import _top_k, _top_p
from .ch06_kv_cache import ReaderShapedGPT, _kv_step_reference

__all__ = ["book_generate", "check_generate"]


def _step_logits(model: torch.nn.Module, seq: Tensor, past: list | None, kv_step: Callable | None,
                 *, feed: str = "last", carry: bool = True, crop: bool = True) -> tuple[Tensor, list | None]:
    """The logits of the last position, and the cache after this step (None without ``kv_step``)."""
    block_size = model.config.block_size
    window = seq[:, -block_size:] if crop else seq
    if kv_step is None:
        return model(window)[0][:, -1], None
    if past is None or (crop and past[0][0].size(2) >= block_size):
        # the prompt, or a full context: start the cache again from the last block_size tokens
        if feed == "skip-prompt" and past is None:
            window = seq[:, -1:]
        logits, past = kv_step(model, window, [])
        return logits[:, -1], past
    logits, present = kv_step(model, seq[:, -1:], past if carry else [])
    return logits[:, -1], present


def _generate(model: torch.nn.Module, idx: Tensor, max_new_tokens: int, *, temperature: float = 1.0,
              top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None,
              kv_step: Callable | None = None, order: str = "temperature first", draw: str = "probs",
              use_generator: bool = True, feed: str = "last", carry: bool = True, crop: bool = True,
              softmax_dim: int = -1) -> Tensor:
    seq, past = idx, None
    with torch.no_grad():
        if feed == "prompt twice" and kv_step is not None:
            # fill the cache with the whole prompt, then feed its last token again as if it were new
            _, past = kv_step(model, idx[:, -model.config.block_size:], [])
        for _ in range(max_new_tokens):
            logits, past = _step_logits(model, seq, past, kv_step, feed=feed, carry=carry, crop=crop)
            logits = logits.float()
            if order == "temperature first":
                logits = logits / temperature
            if draw != "unfiltered":
                if top_k is not None:
                    logits = _top_k(logits, top_k)
                if top_p is not None:
                    logits = _top_p(logits, top_p)
            if order == "temperature last":
                logits = logits / temperature
            elif order == "temperature times":
                logits = logits * temperature
            if draw == "greedy":
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = logits if draw == "logits" else torch.softmax(logits, dim=softmax_dim)
                nxt = torch.multinomial(probs, 1, generator=generator if use_generator else None)
            seq = torch.cat([seq, nxt], dim=1)
    return seq


def book_generate(model: torch.nn.Module, idx: Tensor, max_new_tokens: int, *, temperature: float = 1.0,
                  top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None,
                  kv_step: Callable[[torch.nn.Module, Tensor, list], tuple[Tensor, list]] | None = None) -> Tensor:
    """The book's answer to exercise 6.6, the fallback of ``use("generate", book=book_generate)``.

    Continues ``idx`` ``(B, T)`` by ``max_new_tokens`` tokens from ``model`` (anything with ``config`` and
    ``forward(idx) -> (logits, loss)``); with ``kv_step`` (exercise 6.5's ``(model, ids, past) -> (logits,
    present)``) it feeds the prompt once, then one token at a time. The tokens equal
    ``gpt2lib.generation.generate``'s for a generator seeded the same way."""
    return _generate(model, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                     generator=generator, kv_step=kv_step)


def _mistake(**how: Any) -> Callable[..., Tensor]:
    def wrong(model, idx, max_new_tokens, *, temperature=1.0, top_k=None, top_p=None, generator=None, kv_step=None):
        return _generate(model, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                         generator=generator, kv_step=kv_step, **how)
    return wrong


# ------------------------------------------------------------------ how the checker calls an answer
_GLOBAL_SEED = 271828  # torch's global generator during a call: never the seed a case gives its generator


@dataclass(frozen=True)
class _Seeded:
    """A case's generator: the call gets a fresh ``torch.Generator`` seeded with ``seed``."""

    seed: int

    def __repr__(self) -> str:
        return f"torch.Generator().manual_seed({self.seed})"


@dataclass(frozen=True)
class _BookStep:
    """A case's ``kv_step``: exercise 6.5's answer key, recording what it is fed."""

    def __repr__(self) -> str:
        return "kv_cache_step"


def _recording_step(fed: list) -> Callable[[torch.nn.Module, Tensor, list], tuple[Tensor, list]]:
    def kv_step(model: torch.nn.Module, ids: Tensor, past: list) -> tuple[Tensor, list]:
        cached, block_size = (past[0][0].size(2) if past else 0), model.config.block_size
        fed.append((cached, ids.size(1)))
        if cached + ids.size(1) > block_size:  # said here, rather than as an IndexError from inside wpe
            raise ValueError(f"kv_step was fed {ids.size(1)} token(s) after {cached} cached, past the model's "
                             f"block_size of {block_size}: once the cache is full, start it again (an empty "
                             f"cache) from the last block_size tokens")
        return _kv_step_reference(model, ids, past)
    return kv_step


def _adapt(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function the cases call. With a case's arguments (a ``_Seeded`` generator) it returns
    ``(what fn returned, what fn fed the cache step)``, a ``(calls, 2)`` tensor of (cached, new) counts;
    called as the reader's function is (a real generator, by a wrapper around the answer key), it is fn."""
    def run(model, idx, max_new_tokens, *, generator=None, kv_step=None, **settings):
        if not isinstance(generator, _Seeded):
            return fn(model, idx, max_new_tokens, generator=generator, kv_step=kv_step, **settings)
        fed: list = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_GLOBAL_SEED)
            got = fn(model, idx, max_new_tokens, generator=torch.Generator().manual_seed(generator.seed),
                     kv_step=_recording_step(fed) if isinstance(kv_step, _BookStep) else None, **settings)
        return got, torch.tensor(fed, dtype=torch.long).view(-1, 2)
    return run


def _compare(expected: tuple, got: tuple) -> None:
    (exp_ids, exp_fed), (ids, fed) = expected, got
    if ids is None:
        raise CheckFailed("your function returned None: did you forget the `return` statement?")
    if not isinstance(ids, Tensor):
        raise CheckFailed(f"return a tensor of token ids (B, T + max_new_tokens), got a {type(ids).__name__}")
    if ids.shape != exp_ids.shape:
        raise CheckFailed(f"expected ids of shape {tuple(exp_ids.shape)} (the prompt, then the new tokens), "
                          f"got {tuple(ids.shape)}")
    if ids.dtype != exp_ids.dtype:
        raise CheckFailed(f"expected token ids of dtype {exp_ids.dtype}, got {ids.dtype}")
    wrong = (ids != exp_ids).nonzero()
    if len(wrong):
        row, col = (int(v) for v in wrong[0])
        raise CheckFailed(f"row {row}, position {col}: expected token {int(exp_ids[row, col])}, got "
                          f"{int(ids[row, col])} ({len(wrong)} of {ids.numel()} ids differ)")
    if not torch.equal(fed, exp_fed):
        def say(steps: Tensor) -> str:
            steps = steps.tolist()
            return ", ".join(f"{t} after {p}" for p, t in steps[:6]) + (", ..." if len(steps) > 6 else "") or "nothing"
        raise CheckFailed(f"the right tokens, but kv_step was fed (new tokens after cached ones) {say(fed)}; "
                          f"expected {say(exp_fed)}: the prompt once (its last block_size tokens), then one "
                          f"token at a time, starting again from the last block_size tokens when the cache is full")


def _fixed_model() -> torch.nn.Module:
    """Always the same tiny GPT (its own generator): weights larger than GPT-2's init, so that the
    next-token distributions are neither flat nor one-hot and every mistake below changes the tokens."""
    from ..model import GPT, GPTConfig

    config = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(6)
        model = GPT(config).eval()
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() >= 2:
                    p.normal_(0.0, 0.25)
                elif name.endswith("bias"):
                    p.normal_(0.0, 0.1)
    return model


def _cases(rng: random.Random) -> list[Case]:
    fixed = _fixed_model()
    yours = ReaderShapedGPT.like(fixed)
    prompt = torch.tensor([[3, 14, 15, 9, 2, 6], [5, 35, 8, 9, 7, 9]])
    long = torch.tensor([[(7 * i + 3) % 40 for i in range(11)], [(11 * i + 5) % 40 for i in range(11)]])

    def case(name: str, model: torch.nn.Module, idx: Tensor, n: int, seed: int, cached: bool, **settings: Any) -> Case:
        shape = "a GPT shaped like yours" if isinstance(model, ReaderShapedGPT) else "a tiny gpt2lib.GPT"
        how = ", ".join(f"{k}={v}" for k, v in settings.items()) or "no filters"
        return Case(f"{shape}, batch {idx.size(0)}, prompt of {idx.size(1)}, {n} new tokens, {how}, "
                    f"{'with kv_step' if cached else 'kv_step=None'}, generator seeded {seed}",
                    (model, idx, n), dict(settings, generator=_Seeded(seed), kv_step=_BookStep() if cached else None))

    fixed_cases = [
        case("plain sampling", fixed, prompt, 8, 0, False),
        case("temperature and top-p", fixed, prompt, 8, 1, False, temperature=0.6, top_p=0.7),
        case("cached, top-k", fixed, prompt, 8, 2, True, temperature=1.3, top_k=6),
        # prompt + new tokens > block_size (16): the context must be cropped (and the cache restarted)
        case("past the context", fixed, long, 9, 3, False, top_k=10),
        case("past the context, cached", fixed, long, 9, 4, True, temperature=0.8),
        case("your shape, cached", yours, prompt, 6, 5, True, temperature=1.5, top_p=0.9),
        case("your shape", yours, long, 7, 6, False),
    ]
    V = fixed.config.vocab_size
    B, T = rng.randint(1, 3), rng.randint(1, 12)
    drawn = torch.randint(V, (B, T))
    settings = rng.choice([{}, {"temperature": round(rng.uniform(0.5, 1.5), 2)}, {"top_k": rng.randint(1, 12)},
                           {"top_p": round(rng.uniform(0.5, 0.95), 2)},
                           {"temperature": round(rng.uniform(0.5, 1.5), 2), "top_k": rng.randint(2, 12),
                            "top_p": round(rng.uniform(0.5, 0.95), 2)}])
    n = rng.randint(1, 10)
    return [*fixed_cases,
            case("drawn", fixed, drawn, n, rng.randrange(2**31), rng.random() < 0.5, **settings),
            case("drawn", yours, drawn, n, rng.randrange(2**31), True, **settings)]


check_generate = register(Exercise(
    "generate", number="6.6", chapter=6, title="The sampling loop, with and without your cache", level="medium",
    minutes=20, reference=book_generate, cases=_cases, compare=_compare, adapt=_adapt,
    mistakes=[
        Mistake("the temperature divided the logits after the filters: divide first, then filter (top-p keeps "
                "another set of tokens from the tempered distribution)", _mistake(order="temperature last")),
        Mistake("the logits were multiplied by the temperature: divide them by it", _mistake(order="temperature times")),
        Mistake("you took the most likely token (argmax): that is greedy decoding; draw from the probabilities "
                "with torch.multinomial", _mistake(draw="greedy")),
        Mistake("the filters' output was left unused: sample from softmax of the filtered logits",
                _mistake(draw="unfiltered")),
        Mistake("softmax ran along dim 0, across the batch: each row's distribution is along the last dimension",
                _mistake(softmax_dim=0)),
        Mistake("torch.multinomial drew without the generator: pass generator=generator, or the seed decides "
                "nothing", _mistake(use_generator=False)),
        Mistake("the cache was not carried from one step to the next: each new token went in with an empty "
                "cache, so at position 0 with nothing before it; pass the cache the last step returned",
                _mistake(carry=False)),
        Mistake("the prompt never went through the cache step: only its last token was fed, so the model saw "
                "one token of it; feed the whole prompt first", _mistake(feed="skip-prompt")),
        Mistake("the prompt's last token was fed twice: after feeding the prompt, feed each NEW token, the one "
                "just drawn", _mistake(feed="prompt twice")),
    ],
))
