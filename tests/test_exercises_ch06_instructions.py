"""Exercises 6.9 (targets masked to the answer) and 6.10 (a padded batch): right answers written other ways
pass and the plausible wrong ones fail under every seed (run by test_exercises.py from ALTERNATIVES and WRONG
here, with the listed mistakes and their hints); the answer keys agree with gpt2lib.finetune."""
from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from gpt2lib.exercises import all_exercises
from gpt2lib.exercises._core import REGISTRY
from gpt2lib.exercises.ch06_instructions import book_pad_batch
from gpt2lib.finetune import ExampleData, answer_targets

all_exercises()


# --- 6.9 ----------------------------------------------------------------------------------------------
def _targets_by_loop(prompt_ids, answer_ids, eot_id):
    seq = [*prompt_ids, *answer_ids, eot_id]
    inputs, targets = [], []
    for i in range(len(seq) - 1):
        inputs.append(seq[i])
        targets.append(seq[i + 1] if i + 1 >= len(prompt_ids) else -100)
    return inputs, targets


def _targets_as_tensors(prompt_ids, answer_ids, eot_id):
    seq = torch.tensor([*prompt_ids, *answer_ids, eot_id])
    y = seq[1:].clone()
    y[: len(prompt_ids) - 1] = -100
    return seq[:-1], y


def _targets_tuple_of_tuples(prompt_ids, answer_ids, eot_id):
    x, y = answer_targets(prompt_ids, answer_ids, eot_id)
    return tuple(x), tuple(y)


def _eot_in_inputs(prompt_ids, answer_ids, eot_id):
    full = [*prompt_ids, *answer_ids, eot_id]
    return full, [-100] * (len(prompt_ids) - 1) + full[len(prompt_ids):] + [-100]


def _answer_only_targets(prompt_ids, answer_ids, eot_id):
    # the targets hold the answer and end-of-text but not aligned with the inputs
    return [*prompt_ids, *answer_ids], [*answer_ids, eot_id] + [-100] * (len(prompt_ids) - 1)


def _changes_arguments(prompt_ids, answer_ids, eot_id):
    prompt_ids.extend(answer_ids)
    prompt_ids.append(eot_id)
    n = len(prompt_ids) - len(answer_ids) - 2
    return prompt_ids[:-1], [-100] * n + prompt_ids[n + 1:]


# --- 6.10 ---------------------------------------------------------------------------------------------
def _pad_with_functional(pairs, pad_id):
    T = max(len(x) for x, _ in pairs)
    xs = torch.stack([F.pad(torch.tensor(x), (0, T - len(x)), value=pad_id) for x, _ in pairs])
    ys = torch.stack([F.pad(torch.tensor(y), (0, T - len(y)), value=-100) for _, y in pairs])
    return xs, ys


def _pad_with_full(pairs, pad_id):
    T = max(len(x) for x, _ in pairs)
    x = torch.full((len(pairs), T), pad_id, dtype=torch.long)
    y = torch.full((len(pairs), T), -100, dtype=torch.long)
    for i, (a, b) in enumerate(pairs):
        x[i, :len(a)], y[i, :len(b)] = torch.tensor(a), torch.tensor(b)
    return x, y


def _pad_to_first(pairs, pad_id):
    T = len(pairs[0][0])
    return book_pad_batch([(x[:T], y[:T]) for x, y in pairs], pad_id)


def _pad_one_short(pairs, pad_id):
    x, y = book_pad_batch(pairs, pad_id)
    return x[:, :-1], y[:, :-1]


def _pad_float(pairs, pad_id):
    x, y = book_pad_batch(pairs, pad_id)
    return x.float(), y.float()


def _pad_rows_swapped(pairs, pad_id):
    return book_pad_batch(pairs[::-1], pad_id)


ALTERNATIVES = {"answer_targets": [_targets_by_loop, _targets_as_tensors, _targets_tuple_of_tuples],
                "pad_batch": [_pad_with_functional, _pad_with_full]}
WRONG = {"answer_targets": [_eot_in_inputs, _answer_only_targets, _changes_arguments],
         "pad_batch": [_pad_to_first, _pad_one_short, _pad_float, _pad_rows_swapped]}


def test_the_issue_s_two_mistakes_are_listed():
    """Issue 22 names them: the loss not masked to the answer, and padding counted in the loss."""
    hints = [m.hint for m in REGISTRY["answer_targets"].mistakes + REGISTRY["pad_batch"].mistakes]
    assert any(h.startswith("the prompt's targets were kept") for h in hints)
    assert any(h.startswith("the targets were padded with pad_id") for h in hints)


def test_the_answer_keys_agree_with_gpt2lib_finetune():
    rng = random.Random(0)
    data = ExampleData([([1], [2])], [([1], [2])], pad_id=7, vocab_size=50)
    for _ in range(50):
        pairs = []
        for _ in range(rng.randint(1, 5)):
            prompt = [rng.randrange(50) for _ in range(rng.randint(1, 9))]
            answer = [rng.randrange(50) for _ in range(rng.randint(1, 6))]
            pairs.append(answer_targets(prompt, answer, 7))
            assert REGISTRY["answer_targets"].reference(prompt, answer, 7) == pairs[-1]
        mine, theirs = book_pad_batch(pairs, 7), data.collate(pairs)
        assert all(torch.equal(a, b) for a, b in zip(mine, theirs))


def test_a_tensor_answer_to_6_9_is_judged_by_its_ids():
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ok = REGISTRY["answer_targets"].check(_targets_as_tensors, record=False, seed=0)
        bad = REGISTRY["answer_targets"].check(lambda p, a, e: tuple(torch.tensor(t) for t in _no_mask(p, a, e)),
                                              record=False, seed=0)
    assert ok and not bad, buf.getvalue()


def _no_mask(prompt_ids, answer_ids, eot_id):
    full = [*prompt_ids, *answer_ids, eot_id]
    return full[:-1], full[1:]
