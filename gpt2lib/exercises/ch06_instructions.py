"""Chapter 6.2's exercises: the targets of an instruction-tuned model, and a padded batch of them.

6.9 ``answer_targets(prompt_ids, answer_ids, eot_id) -> (inputs, targets)``: the inputs are prompt, answer
and end-of-text less its last token; the targets are the same sequence shifted left by one, with every
target that is still a prompt token set to -100, so the loss is the answer's (and the end-of-text's) alone.

6.10 ``pad_batch(pairs, pad_id) -> (x, y)``: ``(inputs, targets)`` pairs of different lengths as two
``(B, T)`` long tensors, ``T`` the longest input, padded on the right: inputs with ``pad_id``, targets with
-100, so no padded position counts in the loss and every real token keeps its position.

The fixed cases expose every listed mistake whatever the seed: prompts of one, two and several tokens,
answers of one and several, an end-of-text id that is not the largest id, and batches whose longest pair
is neither first nor last; random cases only add.
"""
from __future__ import annotations

import random
from typing import Any, Sequence

import torch
from torch import Tensor

from ..finetune.batches import IGNORE
from ._core import Case, Exercise, Mistake, register

__all__ = ["check_answer_targets", "check_pad_batch", "book_pad_batch"]


# ------------------------------------------------------------------ 6.9 answer_targets
def _targets(prompt_ids: Sequence[int], answer_ids: Sequence[int], eot_id: int, *, masked: int | None = None,
             eot: bool = True, shift: bool = True, fill: int = IGNORE) -> tuple[list[int], list[int]]:
    full = list(prompt_ids) + list(answer_ids) + ([eot_id] if eot else [])
    inputs, targets = full[:-1], full[1:] if shift else full[:-1]
    n = len(prompt_ids) - 1 if masked is None else masked(len(prompt_ids))
    n = max(0, min(n, len(targets)))
    return inputs, [fill] * n + targets[n:]


def _answer_targets(prompt_ids, answer_ids, eot_id):
    return _targets(prompt_ids, answer_ids, eot_id)


def _not_masked(prompt_ids, answer_ids, eot_id):
    return _targets(prompt_ids, answer_ids, eot_id, masked=lambda p: 0)


def _no_eot(prompt_ids, answer_ids, eot_id):
    return _targets(prompt_ids, answer_ids, eot_id, eot=False)


def _not_shifted(prompt_ids, answer_ids, eot_id):
    # the targets are the inputs themselves, prompt positions masked: each position "predicts" its own token
    return _targets(prompt_ids, answer_ids, eot_id, shift=False, masked=lambda p: p)


def _first_answer_masked(prompt_ids, answer_ids, eot_id):
    return _targets(prompt_ids, answer_ids, eot_id, masked=lambda p: p)


def _last_prompt_kept(prompt_ids, answer_ids, eot_id):
    return _targets(prompt_ids, answer_ids, eot_id, masked=lambda p: p - 2)


def _masked_with_zero(prompt_ids, answer_ids, eot_id):
    return _targets(prompt_ids, answer_ids, eot_id, fill=0)


def _as_lists(args: tuple, got: Any) -> Any:
    """Tensors are welcome where lists are asked for: the ids are judged, not their container."""
    if isinstance(got, tuple) and all(isinstance(t, Tensor) for t in got):
        return tuple(t.tolist() for t in got)
    return got


def _target_cases(rng: random.Random) -> list[Case]:
    cases = [
        Case("a prompt of 5 tokens, an answer of 3", ([11, 12, 13, 14, 15], [21, 22, 23], 2047)),
        Case("a prompt of 2 tokens, an answer of 1", ([7, 8], [9], 0)),
        Case("a prompt of 1 token, an answer of 4", ([300], [5, 6, 7, 8], 1)),
        Case("repeated ids, end-of-text 50256", ([4, 4, 9, 4], [9, 9], 50256)),
    ]
    for _ in range(3):
        prompt = [rng.randrange(3, 2047) for _ in range(rng.randint(2, 12))]
        answer = [rng.randrange(3, 2047) for _ in range(rng.randint(1, 8))]
        cases.append(Case(f"random prompt of {len(prompt)}, answer of {len(answer)}", (prompt, answer, 2)))
    return cases


check_answer_targets = register(Exercise(
    "answer_targets", number="6.9", chapter=6, title="Targets masked to the answer", level="easy", minutes=10,
    reference=_answer_targets, cases=_target_cases, outcome=_as_lists, int_required=True,
    mistakes=[
        Mistake("the prompt's targets were kept: the model would also be trained to write questions; set every "
                "target that is still a prompt token to -100", _not_masked),
        Mistake("no end-of-text was appended: the model never sees where an answer stops, so it would never "
                "learn to stop", _no_eot),
        Mistake("the targets are not shifted: target i must be token i + 1 (the next token), not token i",
                _not_shifted),
        Mistake("one target too many was masked: the first answer token (the target of the LAST prompt "
                "position) must count; mask len(prompt_ids) - 1 targets", _first_answer_masked),
        Mistake("one target too few was masked: the target of the second-to-last prompt position is the last "
                "prompt token, still part of the prompt; mask len(prompt_ids) - 1 targets", _last_prompt_kept),
        Mistake("the prompt's targets were set to 0, a real token id; the loss skips only -100 (ignore_index)",
                _masked_with_zero),
    ],
))


# ------------------------------------------------------------------ 6.10 pad_batch
def _pad(pairs, pad_id, *, target_fill: int | None = IGNORE, left: bool = False, width: int | None = None,
         input_fill: int | None = None) -> tuple[Tensor, Tensor]:
    width = width or max(len(x) for x, _ in pairs)
    xs, ys = [], []
    for x, y in pairs:
        gap = width - len(x)
        xf = [pad_id if input_fill is None else input_fill] * gap
        yf = [pad_id if target_fill is None else target_fill] * gap
        xs.append(xf + list(x) if left else list(x) + xf)
        ys.append(yf + list(y) if left else list(y) + yf)
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)


def book_pad_batch(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int) -> tuple[Tensor, Tensor]:
    """The book's answer to exercise 6.10: ``(inputs, targets)`` pairs padded on the right to the longest,
    inputs with ``pad_id`` and targets with -100, as two ``(B, T)`` long tensors."""
    return _pad(pairs, pad_id)


def _targets_with_pad(pairs, pad_id):
    return _pad(pairs, pad_id, target_fill=None)


def _left(pairs, pad_id):
    return _pad(pairs, pad_id, left=True)


def _fixed_block(pairs, pad_id):
    return _pad(pairs, pad_id, width=max(128, max(len(x) for x, _ in pairs)))


def _inputs_with_ignore(pairs, pad_id):
    return _pad(pairs, pad_id, input_fill=IGNORE)


def _pad_cases(rng: random.Random) -> list[Case]:
    a = ([5, 6, 7], [IGNORE, 7, 8])
    b = ([15, 16, 17, 18, 19, 20], [IGNORE, IGNORE, IGNORE, 19, 20, 2])
    c = ([30, 31], [IGNORE, 1])
    cases = [
        Case("the longest in the middle, end-of-text 2047", ([a, b, c], 2047)),
        Case("the longest last, padding id 0", ([c, a, b], 0)),
        Case("one pair, nothing to pad", ([b], 50256)),
        Case("lengths 1 and 4", ([([9], [4]), ([1, 2, 3, 4], [IGNORE, 3, 4, 5])], 1)),
    ]
    for _ in range(2):
        pairs = []
        for _ in range(rng.randint(2, 5)):
            n, p = rng.randint(1, 10), rng.randint(0, 4)
            ids = [rng.randrange(3, 2047) for _ in range(n + 1)]
            pairs.append((ids[:-1], [IGNORE] * min(p, n - 1) + ids[1 + min(p, n - 1):]))
        cases.append(Case(f"random batch of {len(pairs)}", (pairs, 2)))
    return cases


check_pad_batch = register(Exercise(
    "pad_batch", number="6.10", chapter=6, title="A batch padded on the right, padding out of the loss",
    level="easy", minutes=10, reference=book_pad_batch, cases=_pad_cases,
    mistakes=[
        Mistake("the targets were padded with pad_id: end-of-text is a real token, so the loss would count "
                "every padded position (train the model to emit end-of-text after end-of-text); pad targets "
                "with -100", _targets_with_pad),
        Mistake("the rows were padded on the left: a short row's tokens move to later positions than the ones "
                "they had in pre-training (GPT-2's positions are learned); pad on the right", _left),
        Mistake("every row was padded to a fixed block of 128: pad to the longest input of this batch, which "
                "costs less and gives the same loss", _fixed_block),
        Mistake("the inputs were padded with -100: that is the loss's ignore value, not a token id (the "
                "embedding cannot look it up); pad inputs with pad_id", _inputs_with_ignore),
    ],
))
