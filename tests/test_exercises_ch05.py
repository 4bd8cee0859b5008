"""Chapter 5's exercises whose arguments are models and optimizers (the training step):
equivalent correct answers pass, plausible wrong ones fail, on several seeds.

The generic tables in test_exercises.py pass plain tensors and numbers; this one hands the
reader's function a model and an optimizer, so their answers are written here.
"""
from __future__ import annotations

import contextlib
import io
from typing import Callable

import pytest
import torch

from gpt2lib.exercises import all_exercises
from gpt2lib.exercises._core import REGISTRY
from test_exercises import SEEDS, drawn_once, one_thread  # noqa: F401 - fixtures

all_exercises()  # registers every chapter's exercises


def _check(name: str, fn: Callable, seed: int) -> tuple[bool, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ok = REGISTRY[name].check(fn, record=False, seed=seed)
    return ok, buf.getvalue()


# --- the training step --------------------------------------------------------------------------------

def _step_zero_grad_not_none(model, optimizer, batches, max_norm):
    losses = []
    for x, y in batches:
        optimizer.zero_grad(set_to_none=False)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), max_norm)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def _step_loss_and_clip_by_hand(model, optimizer, batches, max_norm):
    losses = []
    for x, y in batches:
        model.zero_grad()
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)  # what clip_grad_norm_ multiplies by
        for g in grads:
            g.mul_(scale)
        optimizer.step()
        losses.append(loss.item())
    return losses


def _step_zero_after_step(model, optimizer, batches, max_norm):
    # right in a loop that starts clean, wrong when handed a model that holds stale gradients
    losses = []
    for x, y in batches:
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def _step_step_before_backward(model, optimizer, batches, max_norm):
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        _, loss = model(x, y)
        optimizer.step()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        losses.append(loss.item())
    return losses


def _step_no_backward(model, optimizer, batches, max_norm):
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        with torch.no_grad():
            _, loss = model(x, y)
        losses.append(loss.item())
    return losses


def _step_loss_after_update(model, optimizer, batches, max_norm):
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        with torch.no_grad():
            losses.append(model(x, y)[1].item())
    return losses


def _step_clip_value(model, optimizer, batches, max_norm):
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), max_norm)  # caps each entry, not the norm
        optimizer.step()
        losses.append(loss.item())
    return losses


def _loop(*ops: str):
    """A training loop running ``ops`` in this order for each batch (see ch05_training_step)."""
    from gpt2lib.exercises.ch05_training_step import _steps_in_order

    return _steps_in_order(*ops)


ALTERNATIVES = {
    "training_step": [_step_zero_grad_not_none, _step_loss_and_clip_by_hand,
                      _loop("forward", "zero", "backward", "clip", "step"),  # clearing after the forward pass is fine
                      _loop("zero", "forward", "backward", "clip", "clip", "step")],  # clipping twice changes nothing
}
WRONG = {
    "training_step": [_step_zero_after_step, _step_step_before_backward, _step_no_backward,
                      _step_loss_after_update, _step_clip_value,
                      _loop("forward", "backward", "step", "zero")],  # no clipping, gradients cleared after the step
}


@pytest.mark.usefixtures("drawn_once")
@pytest.mark.parametrize("name, fn", [(n, f) for n, fs in ALTERNATIVES.items() for f in fs],
                         ids=lambda v: getattr(v, "__name__", v))
def test_an_equivalent_correct_answer_passes(name, fn):
    for seed in SEEDS:
        ok, out = _check(name, fn, seed)
        assert ok, f"seed {seed}: {out}"


@pytest.mark.usefixtures("drawn_once")
@pytest.mark.parametrize("name, fn", [(n, f) for n, fs in WRONG.items() for f in fs],
                         ids=lambda v: getattr(v, "__name__", v))
def test_a_plausible_wrong_answer_fails_under_every_seed(name, fn):
    blind = [seed for seed in SEEDS if _check(name, fn, seed)[0]]
    assert not blind, f"{fn.__name__} passed with seeds {blind}"


def test_the_training_step_is_checked_on_stale_gradients_and_several_optimizers():
    cases = REGISTRY["training_step"].draw_cases(0)
    stale = [c for c in cases if any(p.grad is not None for p in c.args[0].parameters())]
    assert stale, "no case hands over a model with gradients left from an earlier backward pass"
    assert stale[0] is cases[0], "the stale case comes first: it tells the ways of clearing gradients apart"
    kinds = {type(c.args[1]).__name__ for c in cases}
    assert {"SGD", "AdamW"} <= kinds, kinds
    # the optimizer of each case steps the parameters of that case's model, also after the checker's deepcopy
    import copy

    model, opt, *_ = copy.deepcopy(cases[0].args)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in model.parameters()}
    # and the stale gradients survive the copy the checker hands to the reader
    copied = copy.deepcopy(stale[0].args)[0]
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(stale[0].args[0].parameters(), copied.parameters()))


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize("name", ["training_step", "next_token_loss"])
def test_a_checker_that_needs_autograd_turns_it_on_itself(name, mode):
    # a reader may run the check inside `with torch.no_grad():` (left from an evaluation cell)
    with mode():
        ok, out = _check(name, REGISTRY[name].reference, 0)
    assert ok, out
    with mode():
        ok, out = _check(name, REGISTRY[name].mistakes[0].fn, 0)
    assert not ok and "✗" in out and "does not require grad" not in out, out


def test_a_loss_cut_off_from_the_graph_is_named():
    def detached(logits, idx):
        return REGISTRY["next_token_loss"].reference(logits.detach(), idx)

    ok, out = _check("next_token_loss", detached, 0)
    assert not ok and "does not require grad" in out, out
    ok, out = _check("next_token_loss", lambda logits, idx: REGISTRY["next_token_loss"].reference(logits, idx).item(), 0)
    assert not ok and "expected a 0-d tensor" in out, out



def test_the_gelu_feedback_quotes_the_largest_error_not_the_tail():
    # the exact (erf) GELU differs from the tanh form by ~1e-6 far out and by ~5e-4 near |x| = 2
    from gpt2lib.exercises.ch05_model import _gelu_erf

    for seed in range(5):
        ok, out = _check("gelu", _gelu_erf, seed)
        x = REGISTRY["gelu"].draw_cases(seed)[0].args[0]  # the first case: a grid, where it fails
        where = int(out.split("the largest difference is at [")[1].split("]")[0])
        assert not ok and 1.0 < abs(float(x[where])) < 3.5, out
