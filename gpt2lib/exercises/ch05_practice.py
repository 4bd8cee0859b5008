"""Chapter 5's training exercises: the pieces every training loop rests on.

Inputs and targets are the same token windows shifted by one; the loss is the cross-entropy of each
position's logits against the NEXT token; a step zeroes the gradients, runs forward and backward, clips
the gradient norm and steps the optimizer, in that order; the learning rate warms up linearly and decays
along half a cosine. Each checker knows the classic mistakes: no shift or a shift the wrong way,
probabilities where log-probabilities belong, a sum where the mean belongs, a loss cut off from the
graph, a cosine without its one-half. (The model's exercises are in ``ch05_model``; the training step,
5.9, in ``ch05_training_step``; the whole loop, 5.11, in ``ch05_train_loop``.)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._core import Case, CheckFailed, Exercise, Mistake, compare, register

# --- 5.7 windows into (input, target) pairs ------------------------------------------------------


def _make_batch(data: Tensor, starts: list[int], block_size: int) -> tuple[Tensor, Tensor]:
    x = torch.stack([data[s: s + block_size] for s in starts])
    y = torch.stack([data[s + 1: s + 1 + block_size] for s in starts])
    return x, y


def _batch_unshifted(data, starts, block_size):
    x = torch.stack([data[s: s + block_size] for s in starts])
    return x, x.clone()


def _batch_swapped(data, starts, block_size):
    x, y = _make_batch(data, starts, block_size)
    return y, x


def _batch_short(data, starts, block_size):
    x = torch.stack([data[s: s + block_size - 1] for s in starts])
    y = torch.stack([data[s + 1: s + block_size] for s in starts])
    return x, y


def _batch_cases(rng):
    data = torch.randint(0, 50257, (200,))
    return [
        Case("3 windows of 8 tokens", (data, [0, 17, 120], 8)),
        Case("random windows of 16 tokens", (data, [rng.randrange(0, 200 - 17) for _ in range(4)], 16)),
        Case("a window that ends at the last token", (torch.arange(10), [0, 4], 5)),
    ]


check_make_batch = register(Exercise(
    "make_batch", number="5.7", chapter=5, title="Input and target windows for next-token prediction", level="easy", minutes=5,
    reference=_make_batch, cases=_batch_cases,
    mistakes=[
        Mistake("your numbers match targets that are not shifted: y[t] is the token after x[t], data[s + 1 : s + 1 + block_size]", _batch_unshifted),
        Mistake("your numbers match (y, x) returned in the wrong order: the input window starts at s, the target window at s + 1", _batch_swapped),
        Mistake("your numbers match windows one token short or long: each holds block_size tokens, data[s : s + block_size]", _batch_short),
    ],
))

# --- 5.8 the next-token loss -------------------------------------------------------------------------


def _next_token_loss(logits: Tensor, idx: Tensor) -> Tensor:
    V = logits.size(-1)
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), idx[:, 1:].reshape(-1))


def _loss_no_shift(logits, idx):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), idx.reshape(-1))


def _loss_shift_wrong_way(logits, idx):
    V = logits.size(-1)
    return F.cross_entropy(logits[:, 1:].reshape(-1, V), idx[:, :-1].reshape(-1))


def _loss_sum(logits, idx):
    V = logits.size(-1)
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), idx[:, 1:].reshape(-1), reduction="sum")


def _loss_probs(logits, idx):
    V = logits.size(-1)
    probs = torch.softmax(logits[:, :-1], dim=-1).reshape(-1, V)
    return F.nll_loss(probs, idx[:, 1:].reshape(-1))


def _loss_cases(rng):
    def case(name, B, T, V, scale=2.0):
        # logits that require grad, as the model's do: a loss cut off from them (.item(), torch.tensor(...))
        # has the right value and no way back to the model
        logits = (torch.randn(B, T, V) * scale).requires_grad_()
        return Case(name, (logits, torch.randint(0, V, (B, T))))
    return [case("B=2, T=6, V=11", 2, 6, 11), case("B=4, T=9, V=50", 4, 9, 50),
            case("confident logits", 1, 5, 7, 10.0),
            case(f"B={(b := rng.randint(2, 5))}, T={(t := rng.randint(2, 12))}, V={(v := rng.randint(5, 90))}", b, t, v)]


def _compare_loss(expected: Tensor, got: object) -> None:
    compare(expected, got)
    if expected.requires_grad and not got.requires_grad:  # compare() made sure it is a 0-d tensor
        raise CheckFailed("right value, but your loss does not require grad: it is cut off from the logits, so "
                          "loss.backward() cannot reach the model; compute it with tensor operations on the "
                          "logits, without .item(), float() or torch.tensor(...) on the way")


check_next_token_loss = register(Exercise(
    "next_token_loss", number="5.8", chapter=5, title="The mean cross-entropy of each position against the next token", level="medium", minutes=10,
    reference=_next_token_loss, cases=_loss_cases, compare=_compare_loss, grad=True,
    mistakes=[
        Mistake("your numbers match a loss with no shift: the logits at position t predict token t + 1, so pair logits[:, :-1] with idx[:, 1:]", _loss_no_shift),
        Mistake("your numbers match a shift the wrong way round: logits[:, :-1] (all but the last position) go with idx[:, 1:] (all but the first token)", _loss_shift_wrong_way),
        Mistake("your numbers match the SUM over the predicted positions: the loss is their mean", _loss_sum),
        Mistake("your numbers match cross-entropy taken on probabilities: use F.cross_entropy on the raw logits (or log_softmax), not softmax", _loss_probs),
    ],
))

# --- 5.10 the learning-rate schedule ------------------------------------------------------------------


def _lr_at(step: int, lr: float, warmup_steps: int, max_steps: int, min_lr: float) -> float:
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def _lr_no_half(step, lr, warmup_steps, max_steps, min_lr):
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + (lr - min_lr) * math.cos(math.pi * progress)


def _lr_to_zero(step, lr, warmup_steps, max_steps, min_lr):
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return 0.0
    progress = (step - warmup_steps) / (max_steps - warmup_steps)
    return 0.5 * lr * (1.0 + math.cos(math.pi * progress))


def _lr_warmup_from_zero(step, lr, warmup_steps, max_steps, min_lr):
    if step < warmup_steps:
        return lr * step / warmup_steps
    return _lr_at(step, lr, warmup_steps, max_steps, min_lr)


def _lr_no_warmup(step, lr, warmup_steps, max_steps, min_lr):
    if step >= max_steps:
        return min_lr
    progress = step / max_steps
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def _lr_cases(rng):
    cfg = dict(lr=6e-4, warmup_steps=10, max_steps=100, min_lr=6e-5)
    steps = [0, 4, 9, 10, 37, 55, 99, 100, 250, rng.randrange(11, 99)]
    cases = [Case(f"step {s} of 100 (10 warm-up)", (s,), dict(cfg)) for s in steps]
    # a second, drawn configuration: a solution that hard-codes one of the numbers above fails here
    warm, total = rng.randint(3, 40), rng.randint(120, 900)
    lr = rng.choice([1e-3, 3e-3, 6e-4]) * rng.uniform(0.5, 2.0)
    other = dict(lr=lr, warmup_steps=warm, max_steps=total, min_lr=lr * rng.uniform(0.05, 0.5))
    for s in (0, warm - 1, warm, rng.randrange(warm + 1, total), total - 1, total + rng.randint(0, 50)):
        cases.append(Case(f"step {s} of {total} ({warm} warm-up)", (s,), dict(other)))
    return cases


def _lr_reference(step, *, lr, warmup_steps, max_steps, min_lr):
    return float(_lr_at(step, lr, warmup_steps, max_steps, min_lr))


check_lr_at = register(Exercise(
    "lr_at", number="5.10", chapter=5, title="Linear warm-up, then cosine decay to min_lr", level="medium", minutes=10,
    reference=_lr_reference, cases=_lr_cases,
    # learning rates are ~1e-4: the default absolute tolerance (1e-5) would be far too loose
    compare=lambda expected, got: compare(expected, got, atol=1e-12, rtol=1e-6),
    mistakes=[
        Mistake("your numbers match a cosine without its one-half: min_lr + 0.5 * (lr - min_lr) * (1 + cos(pi * progress))", _lr_no_half),
        Mistake("your numbers match a schedule that decays to zero: it decays to min_lr, and stays there after max_steps", _lr_to_zero),
        Mistake("your numbers match a warm-up that starts at 0: step 0 already trains, with lr * (step + 1) / warmup_steps", _lr_warmup_from_zero),
        Mistake("your numbers match a schedule without its warm-up: for step < warmup_steps the rate rises linearly; the cosine starts at warmup_steps", _lr_no_warmup),
    ],
))
