"""Chapter 5's training-step exercise: zero the gradients, forward, backward, clip, step, for each batch.

The checker hands the reader's function a tiny GPT and an optimizer (plain SGD, SGD with momentum, AdamW)
and compares the losses it returns and the weights the model ends with: the last step shows only in the
weights, and a difference in one step's direction shows there at once, where a loss may differ by less
than its tolerance. One case always starts from a model that still holds gradients from an earlier
backward pass, so that clearing the gradients at the wrong moment shows. The checker turns autograd on itself: it runs backward() even when called under
``torch.no_grad()``.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ..model import GPT, GPTConfig
from ._core import Case, CheckFailed, Exercise, Mistake, compare, register



def _training_step(model: nn.Module, optimizer: torch.optim.Optimizer, batches: list[tuple[Tensor, Tensor]],
                   max_norm: float) -> list[float]:
    losses = []
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        losses.append(loss.item())
    return losses


def _steps_in_order(*ops: str, before_loop: str = ""):
    """A training loop running ``ops`` (zero, forward, backward, clip, clip_each, step) in that order for
    each batch, after ``before_loop`` once: each mistake below is one such order."""
    def loop(model, optimizer, batches, max_norm):
        if before_loop == "zero":
            optimizer.zero_grad(set_to_none=True)
        losses = []
        for x, y in batches:
            for op in ops:
                if op == "zero":
                    optimizer.zero_grad(set_to_none=True)
                elif op == "forward":
                    _, loss = model(x, y)
                elif op == "backward":
                    loss.backward()
                elif op == "clip":
                    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
                elif op == "clip_each":  # one norm per tensor instead of one for all of them
                    for p in model.parameters():
                        torch.nn.utils.clip_grad_norm_([p], max_norm)
                elif op == "step":
                    optimizer.step()
            losses.append(loss.item())
        return losses
    return loop


class _GradKeepingGPT(GPT):
    """A GPT whose copies keep their ``.grad`` (``copy.deepcopy`` of a Parameter drops it), so that a case
    can hand the reader a model with gradients left over from an earlier backward pass."""

    def __deepcopy__(self, memo: dict) -> "_GradKeepingGPT":
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__dict__.update({k: copy.deepcopy(v, memo) for k, v in self.__dict__.items()})
        for old_p, new_p in zip(self.parameters(), new.parameters()):
            if old_p.grad is not None:
                new_p.grad = old_p.grad.clone()
        return new


def _step_cases(rng):
    def case(name, make_opt, max_norm, stale):
        torch.manual_seed(rng.randrange(2**31))
        V, T = rng.choice([11, 13, 17]), rng.randint(4, 6)
        model = _GradKeepingGPT(GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8))
        batches = []
        for _ in range(2):  # two: a gradient left on .grad by step 1 shows in step 2's weights
            x = torch.randint(0, V, (2, T))
            batches.append((x, torch.roll(x, -1, dims=1)))
        if stale:  # gradients left over from an earlier backward pass on another batch
            x = torch.randint(0, V, (2, T))
            model(x, torch.roll(x, -1, dims=1))[1].backward()
        return Case(name, (model, make_opt(model), batches, max_norm))

    # the stale case comes first: from a clean start, clearing the gradients once before the loop, at the end
    # of each step or never give the same first numbers, and only leftover gradients tell them apart; its
    # max_norm is small enough that the clipping always acts
    momentum, lr = rng.choice([0.0, 0.5, 0.9]), rng.choice([0.2, 0.3, 0.5])
    return [
        case(f"SGD (lr {lr}, momentum {momentum}), clip at 0.3, stale gradients",
             lambda m: torch.optim.SGD(m.parameters(), lr=lr, momentum=momentum), 0.3, stale=True),
        case(f"AdamW, lr 1e-2, clip at {0.05:g}", lambda m: torch.optim.AdamW(m.parameters(), lr=1e-2), 0.05, stale=False),
    ]


def _after_training(args: tuple, losses: object) -> tuple[object, dict[str, Tensor]]:
    """What is judged: the losses returned, and the weights of the model the function was handed."""
    return losses, {name: p.detach().clone() for name, p in args[0].named_parameters()}


def _compare_step(expected: tuple, got: tuple) -> None:
    (exp_losses, exp_weights), (losses, weights) = expected, got
    if losses is None:
        raise CheckFailed("your function returned None: did you forget the `return` statement?")
    try:
        compare(exp_losses, losses)
    except CheckFailed as exc:
        raise CheckFailed(f"the losses: {exc}") from None
    for name, e in exp_weights.items():
        try:
            compare(e, weights[name])
        except CheckFailed as exc:
            raise CheckFailed(f"the right losses, but after your loop the model's {name} {exc} (the steps "
                              "differ: is every step zero_grad, forward, backward, clip, step?)") from None


check_training_step = register(Exercise(
    "training_step", number="5.9", chapter=5, title="The training step: zero_grad, forward, backward, clip, step",
    level="medium", minutes=10, reference=_training_step, cases=_step_cases, grad=True,
    outcome=_after_training, compare=_compare_step,
    mistakes=[
        Mistake("your numbers match a loop that never clears the gradients: backward() ADDS to .grad, so the "
                "gradients of every earlier batch (and those the model held before) leak into each step; call "
                "optimizer.zero_grad() at the start of every step", _steps_in_order("forward", "backward", "clip", "step")),
        Mistake("your numbers match clearing the gradients once, before the loop: backward() ADDS to .grad, so "
                "from the second batch on the earlier batches' gradients leak in; clear them inside the loop, at "
                "the start of every step", _steps_in_order("forward", "backward", "clip", "step", before_loop="zero")),
        Mistake("your numbers match clearing the gradients at the end of each step: the first step then adds the "
                "gradients the model already held (here, left from an earlier backward pass); clear them at the "
                "start of every step, before the forward pass", _steps_in_order("forward", "backward", "clip", "step", "zero")),
        Mistake("your numbers match a step without gradient clipping, or with clipping after optimizer.step() "
                "(too late: the step is taken, and the next zero_grad() discards the clipped gradients): call "
                "clip_grad_norm_(model.parameters(), max_norm) between backward() and step()",
                _steps_in_order("zero", "forward", "backward", "step")),
        Mistake("your numbers match zeroing the gradients between backward() and step(): the step then has "
                "no gradient to follow; zero them before the forward pass",
                _steps_in_order("forward", "backward", "clip", "zero", "step")),
        Mistake("your numbers match clipping each tensor on its own: clip_grad_norm_ takes all parameters at "
                "once and scales them by one factor", _steps_in_order("zero", "forward", "backward", "clip_each", "step")),
    ],
))
