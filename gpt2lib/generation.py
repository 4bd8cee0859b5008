"""From logits to text: the sampling filters, the generation loop with its KV cache, and streaming.

Each filter is a small function on a logits tensor ``(..., vocab)`` so that a chapter can apply it to one
vector and plot what it did. Filtering sets a logit to ``-inf`` (probability exactly 0) rather than
dropping the entry, so token ids keep their positions.

* temperature divides the logits: below 1 sharpens the distribution, above 1 flattens it;
* top-k keeps the k most likely tokens (Fan et al. 2018);
* top-p keeps the smallest set of tokens whose probabilities add up to p (nucleus sampling,
  Holtzman et al. 2019).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

import torch
from torch import Tensor

from ._compat import renamed

if TYPE_CHECKING:  # the model module imports this one lazily; no import cycle at run time
    from .model import GPT

__all__ = ["apply_temperature", "top_k_filter", "top_p_filter", "filter_logits", "sample_next",
           "generate", "stream"]


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}; for greedy decoding "
                         f"pass do_sample=False (or top_k=1)")
    return float(temperature)


def _check_top_k(top_k: int) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an int >= 1 (or None for no limit), got {top_k!r}")
    return top_k


def _check_top_p(top_p: float) -> float:
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (or None for no limit), got {top_p!r}; "
                         f"0.9 keeps the tokens that make up 90% of the probability")
    return float(top_p)


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """``logits / temperature``; softmax of the result is the tempered distribution."""
    return logits / _check_temperature(temperature)


@renamed(k="top_k")
def top_k_filter(logits: Tensor, top_k: int) -> Tensor:
    """Keep the ``top_k`` largest logits along the last dimension, set the rest to ``-inf``.

    Ties with the k-th value are kept too, so that the result does not depend on sort order.
    """
    k = min(_check_top_k(top_k), logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


@renamed(p="top_p")
def top_p_filter(logits: Tensor, top_p: float) -> Tensor:
    """Keep the smallest set of most likely tokens whose probability adds up to at least ``top_p``.

    The most likely token is always kept, so the result is never empty; ``p = 1`` keeps everything.
    """
    p = _check_top_p(top_p)
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above this one
    drop_sorted = mass_before >= p  # the set already reached p without this token
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> Tensor:
    """Temperature, then top-k, then top-p: the order Hugging Face applies them in."""
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return logits


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None,
                do_sample: bool = True) -> Tensor:
    """One token id per row of ``logits`` ``(B, vocab)``: the argmax if not ``do_sample``, else a draw
    from the filtered distribution (reproducible with a seeded ``generator``). Returns ``(B,)``."""
    if not do_sample:
        return logits.argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits.float(), temperature, top_k, top_p), dim=-1)
    if generator is not None and generator.device != probs.device:
        # a CPU generator with a GPU model: draw on the CPU so the seed still decides the tokens
        return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _token_steps(model: "GPT", idx: Tensor, max_new_tokens: int, temperature: float, top_k: int | None,
                 top_p: float | None, eos_token_id: int | None, use_cache: bool,
                 generator: torch.Generator | None, do_sample: bool) -> Iterator[Tensor]:
    """Yield the next ``(B,)`` token ids, one step at a time. All checks happen before the first step."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    _check_temperature(temperature)
    if top_k is not None:
        _check_top_k(top_k)
    if top_p is not None:
        _check_top_p(top_p)
    if eos_token_id is not None and (isinstance(eos_token_id, bool) or not isinstance(eos_token_id, int)
                                     or not 0 <= eos_token_id < model.config.vocab_size):
        raise ValueError(f"eos_token_id must be an int token id in [0, {model.config.vocab_size}), "
                         f"got {eos_token_id!r}")
    block_size = model.config.block_size
    model._check_ids(idx[:, -block_size:] if isinstance(idx, Tensor) and idx.dim() == 2 else idx)
    return _steps(model, idx, max_new_tokens, temperature, top_k, top_p, eos_token_id, use_cache,
                  generator, do_sample)


def _steps(model: "GPT", idx: Tensor, max_new_tokens: int, temperature: float, top_k: int | None,
           top_p: float | None, eos_token_id: int | None, use_cache: bool,
           generator: torch.Generator | None, do_sample: bool) -> Iterator[Tensor]:
    block_size = model.config.block_size
    B = idx.size(0)
    seq = idx
    cache = model.make_cache(B, idx.size(1) + max_new_tokens) if use_cache else None
    finished = torch.zeros(B, dtype=torch.bool, device=idx.device)
    was_training = model.training
    model.eval()
    try:
        for step in range(max_new_tokens):
            # inference_mode per step, not around the loop: a ``with`` held across ``yield`` would leak
            # into the caller's code between tokens.
            with torch.inference_mode():
                if cache is None or step == 0 or cache.length >= cache.block_size:
                    # no cache, the prompt, or a full context: (re)compute the last block_size tokens.
                    # Past the context this recomputes every step, like a model without cache would.
                    if cache is not None:
                        cache.reset()
                    h = model.hidden_states(seq[:, -block_size:], cache)
                else:
                    h = model.hidden_states(seq[:, -1:], cache)
                # only the last position's logits are needed: skip the (T x vocab) head for the rest
                logits = model.lm_head(h[:, -1, :])
                nxt = sample_next(logits, temperature, top_k, top_p, generator, do_sample)
                if eos_token_id is not None:
                    nxt = nxt.masked_fill(finished, eos_token_id)  # finished rows keep emitting eos
                    finished = finished | (nxt == eos_token_id)
                seq = torch.cat([seq, nxt[:, None]], dim=1)
            yield nxt
            if eos_token_id is not None and bool(finished.all()):
                return
    finally:
        model.train(was_training)


def generate(model: "GPT", idx: Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, eos_token_id: int | None = None,
             use_cache: bool = True, generator: torch.Generator | None = None, do_sample: bool = True,
             callback: Callable[[Tensor], None] | None = None) -> Tensor:
    """Continue the ids ``idx`` ``(B, T)`` by up to ``max_new_tokens`` tokens; returns ``(B, T + n)``.

    ``do_sample=False`` is greedy decoding (always the most likely token). Generation stops early once
    every row has produced ``eos_token_id`` (rows that finish first are padded with it). ``callback``
    receives each step's ``(B,)`` new ids as they are chosen. Past ``block_size`` tokens, the model sees
    the last ``block_size`` ones. The cache changes the speed, never the tokens.
    """
    out = [idx]
    for nxt in _token_steps(model, idx, max_new_tokens, temperature, top_k, top_p, eos_token_id,
                            use_cache, generator, do_sample):
        out.append(nxt[:, None])
        if callback is not None:
            callback(nxt)
    return torch.cat(out, dim=1)


def stream(model: "GPT", idx: Tensor, max_new_tokens: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, eos_token_id: int | None = None,
           use_cache: bool = True, generator: torch.Generator | None = None,
           do_sample: bool = True) -> Iterator[int]:
    """Yield new token ids one at a time, for one sequence (``(T,)`` or ``(1, T)``), as they are chosen:
    ``for t in stream(model, ids, 50): print(tok.decode([t]), end="")``. Stops after ``eos_token_id``."""
    if isinstance(idx, Tensor) and idx.dim() == 1:
        idx = idx[None]
    if isinstance(idx, Tensor) and idx.dim() == 2 and idx.size(0) != 1:
        raise ValueError(f"stream takes one sequence, got a batch of {idx.size(0)}; use generate() for batches")
    steps = _token_steps(model, idx, max_new_tokens, temperature, top_k, top_p, eos_token_id, use_cache,
                         generator, do_sample)
    return (int(nxt[0]) for nxt in steps)
