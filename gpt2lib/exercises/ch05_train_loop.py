"""Chapter 5's last training exercise, 5.11: the whole loop, equal step for step to ``gpt2lib.training.train``.

The checker builds a tiny GPT from a state dict for every call, so the reader's loop and the package's start
from the same weights, and seeds the global random state inside the call (restoring the caller's after), so
that dropout draws the same masks in both. It compares, step by step, the learning rate, the training loss
and the validation loss the loop logs, then the weights the model ends with. The fixed cases make each
classic loop bug change those numbers: a clipping threshold the gradients always exceed, weight decay strong
enough to move the LayerNorm gains, dropout with evaluations in the middle of the run.

``book_train`` is the book's answer with the exercise's signature, the package's loop underneath: chapter 5.3
trains with it when the reader has not written their own.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..data import TokenData
from ..model import GPT, GPTConfig
from ..training import TrainConfig, lr_at, param_groups, train
from ._core import Case, CheckFailed, Exercise, Mistake, compare, register

__all__ = ["book_train", "check_train_loop"]

_KEYS = ("step", "lr", "train_loss", "val_loss")


def _rows(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows reduced to what the exercise logs (the package adds the gradient norm and timings)."""
    return [{k: row[k] for k in _KEYS if k in row} for row in history]


def _package_train(model: nn.Module, data: TokenData, *, max_steps: int, batch_size: int, lr: float,
                   min_lr: float, warmup_steps: int, weight_decay: float = 0.1, grad_clip: float = 1.0,
                   eval_interval: int = 10, eval_batches: int = 4, seed: int = 1337,
                   progress: bool = False) -> list[dict[str, Any]]:
    device = next(model.parameters()).device
    config = TrainConfig(max_steps=max_steps, batch_size=batch_size, lr=lr, min_lr=min_lr,
                         warmup_steps=warmup_steps, weight_decay=weight_decay, grad_clip=grad_clip,
                         eval_interval=eval_interval, eval_batches=eval_batches, seed=seed, log_interval=1,
                         device=str(device))
    return _rows(train(model, data, config, progress=progress).history)


def book_train(model: nn.Module, data: TokenData, *, max_steps: int, batch_size: int, lr: float, min_lr: float,
               warmup_steps: int, weight_decay: float = 0.1, grad_clip: float = 1.0, eval_interval: int = 10,
               eval_batches: int = 4, seed: int = 1337) -> list[dict[str, Any]]:
    """The book's training loop with exercise 5.11's signature: ``gpt2lib.training.train`` on the model's
    device, logging every step, with a progress bar; returns one row per step (``step``, ``lr``,
    ``train_loss``, and ``val_loss`` where it was measured)."""
    return _package_train(model, data, max_steps=max_steps, batch_size=batch_size, lr=lr, min_lr=min_lr,
                          warmup_steps=warmup_steps, weight_decay=weight_decay, grad_clip=grad_clip,
                          eval_interval=eval_interval, eval_batches=eval_batches, seed=seed, progress=True)


# --- the mistakes: the by-hand loop with one thing done wrong ------------------------------------------


def _mean_loss(model: nn.Module, ids: np.ndarray, block: int, batch_size: int, max_batches: int,
               device: torch.device) -> float:
    starts = torch.arange(0, len(ids) - block, block)
    total, count = 0.0, 0
    with torch.no_grad():
        for i, first in enumerate(range(0, len(starts), batch_size)):
            if i == max_batches:
                break
            rows = np.stack([np.asarray(ids[int(s): int(s) + block + 1], dtype=np.int64)
                             for s in starts[first: first + batch_size]])
            chunk = torch.from_numpy(rows).to(device)
            x, y = chunk[:, :-1], chunk[:, 1:]
            total += float(model(x, y)[1]) * y.numel()
            count += y.numel()
    return total / count


def _flawed(flaw: str) -> Callable[..., list[dict[str, Any]]]:
    """The by-hand loop of chapter 5.2 with the one bug ``flaw`` names."""

    def loop(model, data, *, max_steps, batch_size, lr, min_lr, warmup_steps, weight_decay=0.1, grad_clip=1.0,
             eval_interval=10, eval_batches=4, seed=1337):
        device = next(model.parameters()).device
        block = model.config.block_size
        groups = ([{"params": list(model.parameters()), "weight_decay": weight_decay}] if flaw == "decay_all"
                  else param_groups(model, weight_decay))
        opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)
        gen = torch.Generator().manual_seed(seed)
        model.train()
        history = []
        for step in range(max_steps):
            if flaw == "no_warmup":
                now = min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * step / max_steps))
            else:
                now = lr_at(step, lr=lr, warmup_steps=warmup_steps, max_steps=max_steps, min_lr=min_lr)
            if flaw != "lr_fixed":
                for group in opt.param_groups:
                    group["lr"] = now
            if flaw == "reseed":
                gen = torch.Generator().manual_seed(seed)
            if flaw == "global_rng":
                starts = torch.randint(len(data.train) - block, (batch_size,))
            else:
                starts = torch.randint(len(data.train) - block, (batch_size,), generator=gen)
            rows = np.stack([np.asarray(data.train[int(s): int(s) + block + 1], dtype=np.int64) for s in starts])
            chunk = torch.from_numpy(rows).to(device)
            _, loss = model(chunk[:, :-1], chunk[:, 1:])
            loss.backward()
            if flaw != "clip_after":
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            if flaw == "clip_after":
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            if flaw != "no_zero":
                opt.zero_grad(set_to_none=True)
            row = {"step": step + 1, "lr": now, "train_loss": loss.item()}
            if (step + 1) % eval_interval == 0 or step + 1 == max_steps:
                if flaw != "eval_dropout":
                    model.eval()
                split = data.train if flaw == "val_on_train" else data.val
                row["val_loss"] = _mean_loss(model, split, block, max(batch_size, 8), eval_batches, device)
                if flaw != "stay_eval":
                    model.train()
            history.append(row)
        return history

    loop.__name__ = f"loop_{flaw}"
    return loop


# --- the cases ----------------------------------------------------------------------------------------


def _tiny_data(V: int, n_train: int, n_val: int) -> TokenData:
    """Random ids with some structure (a token is often its predecessor plus one), so that a few steps move
    the loss visibly."""
    def ids(n: int) -> np.ndarray:
        x = torch.randint(0, V, (n,))
        follow = torch.rand(n) < 0.5
        x[1:][follow[1:]] = (x[:-1][follow[1:]] + 1) % V
        return x.numpy().astype(np.uint16)

    return TokenData(name="tiny", train=ids(n_train), val=ids(n_val), train_bytes=3 * n_train,
                     val_bytes=3 * n_val, vocab_size=V)


def _cases(rng):
    def case(name, *, V, n_embd, dropout, settings):
        config = GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=n_embd, dropout=dropout)
        state = {k: v.clone() for k, v in GPT(config).state_dict().items()}
        return Case(name, (state, config, _tiny_data(V, 300, 120), settings))

    # the first case exposes every listed mistake: dropout with evaluations mid-run (eval mode, and back to
    # train mode), a threshold below every gradient norm at initialisation (clipping acts on every step, by a
    # factor that changes from step to step), weight decay strong enough to move the LayerNorm gains in a few
    # steps, a warm-up, and more training windows than one generator seeded anew would ever draw
    first = dict(max_steps=6, batch_size=4, lr=1e-2, min_lr=1e-3, warmup_steps=3, weight_decay=0.5,
                 grad_clip=0.05, eval_interval=2, eval_batches=2, seed=rng.randrange(10_000))
    steps = rng.randint(4, 7)
    second = dict(max_steps=steps, batch_size=rng.choice([2, 3, 4]), lr=rng.choice([3e-3, 6e-3, 1e-2]),
                  min_lr=1e-4, warmup_steps=rng.randint(1, steps - 1), weight_decay=rng.choice([0.1, 0.3]),
                  grad_clip=rng.choice([0.1, 1.0]), eval_interval=rng.randint(2, steps),
                  eval_batches=rng.randint(1, 3), seed=rng.randrange(10_000))
    return [case("dropout 0.2, clip at 0.05, weight decay 0.5, evaluations every 2 steps", V=13, n_embd=16,
                 dropout=0.2, settings=first),
            case(f"no dropout, {steps} steps, {second['warmup_steps']} of warm-up", V=rng.choice([11, 17]),
                 n_embd=rng.choice([8, 16]), dropout=0.0, settings=second)]


def _adapt(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A call of the loop on a fresh tiny GPT built from ``state``: (the history it returns, the final weights).

    Idempotent: the exercise adapts its reference and mistakes once, and the tests hand those to check() again."""
    if getattr(fn, "_adapted", False):
        return fn

    def run(state: dict[str, torch.Tensor], config: GPTConfig, data: TokenData, settings: dict[str, Any]):
        # building the model and dropout draw from the global random state: the same seed for every loop
        # run, and the caller's state kept
        with torch.random.fork_rng(devices=[]):
            model = GPT(config)
            model.load_state_dict(state)
            torch.manual_seed(20_000)
            history = fn(model, data, **settings)
        return history, {k: v.detach().clone() for k, v in model.state_dict().items()}

    run._adapted = True  # type: ignore[attr-defined]
    return run


def _compare_run(expected: tuple, got: tuple) -> None:
    (exp_rows, exp_weights), (rows, weights) = expected, got
    if rows is None:
        raise CheckFailed("your function returned None: return the history, a list with one dict per step")
    if not isinstance(rows, (list, tuple)):
        raise CheckFailed(f"expected a list of dicts, one per step; got a {type(rows).__name__}")
    if len(rows) != len(exp_rows):
        raise CheckFailed(f"expected {len(exp_rows)} rows (one per step), got {len(rows)}")
    for exp, row in zip(exp_rows, rows):
        where = f"at step {exp['step']}"
        if not isinstance(row, dict):
            raise CheckFailed(f"{where}: expected a dict, got a {type(row).__name__}")
        if sorted(row) != sorted(exp):
            raise CheckFailed(f"{where}: expected the keys {sorted(exp)}, got {sorted(row)} (val_loss only on the "
                              "steps that evaluate: every eval_interval steps and after the last)")
        for key in _KEYS:
            if key not in exp:
                continue
            try:
                if key == "step":
                    compare(exp[key], row[key], int_required=True)
                elif key == "lr":  # ~1e-3: the default absolute tolerance would be far too loose
                    compare(exp[key], row[key], atol=1e-12, rtol=1e-6)
                else:
                    compare(exp[key], row[key], atol=1e-5, rtol=1e-5)
            except CheckFailed as exc:
                raise CheckFailed(f"{where}, {key}: {exc}") from None
    for name, e in exp_weights.items():
        try:
            compare(e, weights[name], atol=1e-5, rtol=1e-4)
        except CheckFailed as exc:
            raise CheckFailed(f"the right numbers in the history, but the final weights differ: {name} {exc}") from None


check_train_loop = register(Exercise(
    "train_loop", number="5.11", chapter=5, title="The training loop, equal to gpt2lib.training.train",
    level="hard", minutes=25, reference=_package_train, cases=_cases, adapt=_adapt, compare=_compare_run,
    grad=True,
    mistakes=[
        Mistake("you clip after optimizer.step(): the step has already used the unclipped gradient; clip "
                "between backward() and step()", _flawed("clip_after")),
        Mistake("you never clear the gradients: backward() ADDS to .grad, so every step follows the sum of "
                "all the gradients so far; call optimizer.zero_grad() once per step", _flawed("no_zero")),
        Mistake("you evaluate with dropout on: call model.eval() before measuring the validation loss "
                "(and model.train() after)", _flawed("eval_dropout")),
        Mistake("you leave the model in eval mode after evaluating: the training steps after the first "
                "evaluation run without dropout; call model.train() when the evaluation is done",
                _flawed("stay_eval")),
        Mistake("you never set the optimizer's learning rate: the schedule's value must go into every "
                "param group (group['lr'] = ...) at the start of every step", _flawed("lr_fixed")),
        Mistake("your schedule has no warm-up: for the first warmup_steps steps the rate rises linearly, "
                "lr * (step + 1) / warmup_steps", _flawed("no_warmup")),
        Mistake("you decay every parameter: weight decay goes to the matrices only (dim >= 2), not to biases "
                "and LayerNorm gains; use two param groups (my_param_groups)", _flawed("decay_all")),
        Mistake("you measure the validation loss on the training split: use data.val", _flawed("val_on_train")),
        Mistake("you seed a new generator at every step, so every step draws the same windows: make "
                "torch.Generator().manual_seed(seed) once, before the loop", _flawed("reseed")),
        Mistake("you draw the windows from the global random state: draw them with a generator of the "
                "loop's own, torch.Generator().manual_seed(seed), made once before the loop",
                _flawed("global_rng")),
    ],
))
