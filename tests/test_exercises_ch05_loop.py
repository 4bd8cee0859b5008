"""Exercise 5.11, the whole training loop: the package's loop and loops written other right ways pass, each
listed mistake and further plausible wrong loops fail under every one of 50 seeds, a loop that raises is
reported, and the book's fallback (``book_train``) equals ``gpt2lib.training.train`` step for step."""
from __future__ import annotations

import contextlib
import io
from typing import Callable

import numpy as np
import pytest
import torch

from gpt2lib.data import get_batch
from gpt2lib.evaluation import evaluate_loss
from gpt2lib.exercises import all_exercises
from gpt2lib.exercises._core import REGISTRY, CheckFailed
from gpt2lib.exercises.ch05_train_loop import _flawed, book_train
from gpt2lib.model import GPT, GPTConfig
from gpt2lib.training import TrainConfig, lr_at, train
from test_exercises import SEEDS, drawn_once, one_thread  # noqa: F401 - fixtures

all_exercises()  # registers every chapter's exercises
EXERCISE = REGISTRY["train_loop"]


def _check(fn: Callable, seed: int) -> tuple[bool, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ok = EXERCISE.check(fn, record=False, seed=seed)
    return ok, buf.getvalue()


# --- right answers, written otherwise ------------------------------------------------------------------

def _loop_with_package_pieces(model, data, *, max_steps, batch_size, lr, min_lr, warmup_steps, weight_decay=0.1,
                              grad_clip=1.0, eval_interval=10, eval_batches=4, seed=1337):
    """get_batch, evaluate_loss (which switches modes itself), gradients zeroed (not freed) at the start."""
    device = next(model.parameters()).device
    block = model.config.block_size
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(seed)
    history = []
    for step in range(max_steps):
        opt.zero_grad(set_to_none=False)
        rate = lr_at(step, lr=lr, warmup_steps=warmup_steps, max_steps=max_steps, min_lr=min_lr)
        for group in opt.param_groups:
            group["lr"] = rate
        x, y = get_batch(data.train, batch_size, block, generator=gen, device=device)
        loss = model(x, y)[1]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), grad_clip)
        opt.step()
        history.append({"step": step + 1, "lr": rate, "train_loss": loss.item()})
        if (step + 1) % eval_interval == 0 or step + 1 == max_steps:
            history[-1]["val_loss"] = evaluate_loss(model, data.val, block_size=block, batch_size=max(batch_size, 8),
                                                    max_batches=eval_batches)[0]
    return history


def _loop_with_the_chapters_pieces(model, data, *, max_steps, batch_size, lr, min_lr, warmup_steps,
                                   weight_decay=0.1, grad_clip=1.0, eval_interval=10, eval_batches=4, seed=1337):
    """The chapter's solutions put together: make_batch on a tensor of ids, the training step of 5.9, the
    schedule of 5.10, and an evaluation written with make_batch too."""
    from gpt2lib.exercises import ch05_practice as practice
    from gpt2lib.exercises import ch05_training_step as step_ex

    device = next(model.parameters()).device
    block = model.config.block_size
    train_ids = torch.from_numpy(data.train.astype(np.int64))
    val_ids = torch.from_numpy(data.val.astype(np.int64))
    decay = [p for _, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for _, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for step in range(max_steps):
        rate = practice._lr_at(step, lr, warmup_steps, max_steps, min_lr)
        for group in opt.param_groups:
            group["lr"] = rate
        starts = torch.randint(len(train_ids) - block, (batch_size,), generator=gen).tolist()
        x, y = practice._make_batch(train_ids, starts, block)
        (loss,) = step_ex._training_step(model, opt, [(x.to(device), y.to(device))], grad_clip)
        row = {"step": step + 1, "lr": rate, "train_loss": loss}
        if (step + 1) % eval_interval == 0 or step + 1 == max_steps:
            model.eval()
            starts = list(range(0, len(val_ids) - block, block))[: eval_batches * max(batch_size, 8)]
            total = count = 0
            with torch.no_grad():
                for first in range(0, len(starts), max(batch_size, 8)):
                    xv, yv = practice._make_batch(val_ids, starts[first: first + max(batch_size, 8)], block)
                    total += model(xv.to(device), yv.to(device))[1].item() * yv.numel()
                    count += yv.numel()
            model.train()
            row["val_loss"] = total / count
        history.append(row)
    return history


# --- wrong answers that are not listed mistakes --------------------------------------------------------

def _loss_tensors(model, data, **settings):
    rows = _loop_with_package_pieces(model, data, **settings)
    return [{**r, "train_loss": torch.tensor(r["train_loss"])} for r in rows]  # not .item(): graphs kept alive


def _evaluate_only_at_the_end(model, data, *, max_steps, eval_interval=10, **settings):
    rows = _loop_with_package_pieces(model, data, max_steps=max_steps, eval_interval=max_steps, **settings)
    return rows


def _steps_from_zero(model, data, **settings):
    return [{**r, "step": r["step"] - 1} for r in _loop_with_package_pieces(model, data, **settings)]


def _lr_of_the_next_step(model, data, *, lr, warmup_steps, max_steps, min_lr, **settings):
    rows = _loop_with_package_pieces(model, data, lr=lr, warmup_steps=warmup_steps, max_steps=max_steps,
                                     min_lr=min_lr, **settings)
    return [{**r, "lr": lr_at(r["step"], lr=lr, warmup_steps=warmup_steps, max_steps=max_steps, min_lr=min_lr)}
            for r in rows]


ALTERNATIVES = [_loop_with_package_pieces, _loop_with_the_chapters_pieces, _flawed("none"), book_train]
WRONG = [_loss_tensors, _evaluate_only_at_the_end, _steps_from_zero, _lr_of_the_next_step]


@pytest.mark.usefixtures("drawn_once")
@pytest.mark.parametrize("fn", ALTERNATIVES, ids=lambda f: f.__name__)
def test_a_loop_written_another_right_way_passes(fn):
    for seed in SEEDS:
        ok, out = _check(fn, seed)
        assert ok, f"seed {seed}: {out}"


@pytest.mark.usefixtures("drawn_once")
# (the listed mistakes run over the same seeds in test_exercises.py::test_a_listed_mistake_fails_under_every_seed)
@pytest.mark.parametrize("fn", WRONG, ids=lambda f: f.__name__)
def test_a_wrong_loop_fails_under_every_seed(fn):
    blind = [seed for seed in SEEDS if _check(fn, seed)[0]]
    assert not blind, f"passed with seeds {blind}"


def test_the_checker_knows_at_least_five_mistakes_and_names_each():
    assert len(EXERCISE.mistakes) >= 5
    for mistake in EXERCISE.mistakes:
        ok, out = _check(mistake.fn, 3)
        assert not ok and f"hint: {mistake.sentence()}" in out, out


def test_the_first_case_alone_exposes_every_mistake():
    # the fixed part of the case set does the work; the drawn second case only adds to it
    for seed in (0, 7):
        first = EXERCISE.draw_cases(seed)[0]
        expected = EXERCISE._call(EXERCISE.reference, first)
        for mistake in EXERCISE.mistakes:
            with pytest.raises(CheckFailed):
                EXERCISE._compare(expected, EXERCISE._call(mistake.fn, first))


def test_a_loop_that_raises_is_reported_not_raised():
    def crashes(model, data, **settings):
        raise ZeroDivisionError("oops")

    def crashes_later(model, data, *, max_steps, **settings):
        model(torch.zeros(1, 99, dtype=torch.long))  # longer than the context: the model raises
        return []

    for fn in (crashes, crashes_later):
        ok, out = _check(fn, 0)
        assert not ok and "your function raised" in out, out
    ok, out = _check(lambda model, data, **settings: None, 0)
    assert not ok and "returned None" in out

    def exits(model, data, **settings):
        raise SystemExit(1)

    ok, out = _check(exits, 0)
    assert not ok and "SystemExit" in out, out

    calls = []

    def gives_up_on_the_second_case(model, data, **settings):
        calls.append(1)
        if len(calls) > 1:
            raise NotImplementedError
        return book_train(model, data, **settings)

    ok, out = _check(gives_up_on_the_second_case, 0)
    assert not ok and "not done yet" not in out and "NotImplementedError" in out, out


def test_numbers_of_other_types_equal_in_value_pass():
    def as_numpy(model, data, **settings):
        rows = _loop_with_package_pieces(model, data, **settings)
        return [{k: (np.int64(v) if k == "step" else np.float64(v)) for k, v in r.items()} for r in rows]

    ok, out = _check(as_numpy, 0)
    assert ok, out


def test_the_checker_leaves_the_global_random_state_alone():
    before = torch.random.get_rng_state()
    _check(_flawed("global_rng"), 0)
    assert torch.equal(before, torch.random.get_rng_state())


def _tiny():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=16)
    case = EXERCISE.draw_cases(0)[1]
    return cfg, GPT(cfg).state_dict(), case.args[2]


def test_book_train_is_the_packages_train_logging_every_step(capsys):
    cfg, state, data = _tiny()
    settings = dict(max_steps=5, batch_size=4, lr=1e-2, min_lr=1e-3, warmup_steps=2, weight_decay=0.1,
                    grad_clip=1.0, eval_interval=2, eval_batches=2, seed=3)
    a, b = GPT(cfg), GPT(cfg)
    a.load_state_dict(state)
    b.load_state_dict(state)
    rows = book_train(a, data, **settings)
    package = train(b, data, TrainConfig(**settings, log_interval=1, device="cpu"), progress=False).history
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert [sorted(r) for r in rows] == [sorted(k for k in r if k in ("step", "lr", "train_loss", "val_loss"))
                                         for r in package]
    for mine, theirs in zip(rows, package):
        assert all(mine[k] == theirs[k] for k in mine), (mine, theirs)  # the same loop: equal, not merely close
    assert [r["step"] for r in rows if "val_loss" in r] == [2, 4, 5]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert "training" in capsys.readouterr().err  # its progress bar

