"""The training loop the package runs (chapter 5 builds the same loop step by step).

One optimizer step: draw the global batch's window starts from a seeded generator; each process
takes its share, split further into ``grad_accum`` micro-batches whose gradients add up; clip the
gradient norm; set the learning rate from the schedule; step AdamW. Every ``eval_interval`` steps
the validation loss is measured; every ``log_interval`` steps a row goes to ``metrics.jsonl``; every
``ckpt_interval`` steps (and at the end, before the final evaluation) a checkpoint is written.
Because the batch starts come from a generator whose state is checkpointed, a resumed run draws
exactly the batches the uninterrupted run would have drawn. Ctrl-C saves the last finished step (never
half an update: :mod:`.interrupt`) and raises :class:`TrainingInterrupted`; a resumed run with no steps
left returns at once, with the final validation loss its folder logged.

What a run must never do is lose work: both splits are checked against the context before the first
step; the output folder is held by one run at a time; a loss or gradient that is not finite stops the
run before the optimizer applies it, and weights that are not finite are never saved, so the last
good checkpoint stays.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .._compat import renamed
from ..data import TokenData
from ..model import GPT
from ..runtime import InputError, UserError, autocast
from . import distributed
from .checkpoint import NonFiniteWeightsError, load_training_state, save_checkpoint
from .folder import (TOKENIZER, CheckpointError, clean_folder, has_checkpoint, hold_folder, logged_val_loss,
                     open_metrics)
from .config import MAX_LR, TrainConfig, TrainResult
from .interrupt import CtrlC, TrainingInterrupted
from .precision import Precision
from .schedule import lr_at, make_optimizer
from .sources import BatchSource, as_source

__all__ = ["TrainConfig", "TrainResult", "DivergedError", "TrainingInterrupted", "train", "MAX_LR"]


class DivergedError(UserError, FloatingPointError):
    """The loss, the gradient or the weights stopped being finite; the run stopped before saving them."""


def _rng_state(gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {"data": gen.get_state(), "torch": torch.get_rng_state()}


@renamed(out_dir="folder")
def train(model: nn.Module, data: TokenData | BatchSource, config: TrainConfig | None = None, *,
          folder: str | Path | None = None, resume: bool = False, tokenizer: Any = None,
          progress: bool = True, callback: Callable[[dict[str, Any]], None] | None = None,
          extra_info: dict[str, Any] | None = None) -> TrainResult:
    """Train ``model`` on ``data.train`` in place; return the logged history.

    ``data`` is a :class:`~gpt2lib.data.TokenData` (random windows of the training ids) or any
    :class:`~gpt2lib.training.sources.BatchSource` (fine-tuning examples: :mod:`gpt2lib.finetune`).

    With ``folder``, writes ``metrics.jsonl`` and checkpoints there. A ``folder`` that already holds
    a checkpoint is refused unless ``resume=True``, which continues that run exactly (a run already at
    ``max_steps`` returns at once, its history the final validation loss). Under ``torchrun`` the same
    call trains with DistributedDataParallel. ``callback(row)`` is called after every step.

    Ctrl-C (``KeyboardInterrupt``) saves the last finished step into ``folder`` (unless its checkpoint is
    already of that step) and raises :class:`TrainingInterrupted`.
    """
    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    source = as_source(data)
    raw: nn.Module = model
    mcfg = getattr(raw, "config", None)
    if mcfg is None:
        raise TypeError(f"model must be a gpt2lib GPT (with .config), got {type(model).__name__}")
    block = int(config.block_size or mcfg.block_size)
    if block > mcfg.block_size:
        raise InputError(f"block_size {block} is longer than the model's context {mcfg.block_size}")
    source.check(mcfg, block)

    dist = distributed.setup(config.device)
    per_step = dist.world_size * config.grad_accum
    if config.batch_size % per_step:
        raise InputError(f"batch_size {config.batch_size} must be divisible by processes x grad_accum = "
                         f"{dist.world_size} x {config.grad_accum}")
    micro = config.batch_size // per_step
    out = Path(folder) if folder is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise InputError(f"the output folder {out} is a file; give a folder")
    if out is not None and has_checkpoint(out) and not resume:  # every rank refuses, none waits for the others
        raise CheckpointError(f"{out} already holds a checkpoint; pass resume=True (--resume) to continue it, "
                              f"or choose another output folder")
    with contextlib.ExitStack() as held:
        if out is not None and dist.is_main:
            held.enter_context(hold_folder(out))  # from here until the end, this run alone writes into out
            if has_checkpoint(out) and not resume:
                raise CheckpointError(f"{out} already holds a checkpoint; pass resume=True (--resume) to "
                                      f"continue it, or choose another output folder")
            if not has_checkpoint(out):
                (out / TOKENIZER).unlink(missing_ok=True)  # an abandoned start's tokenizer is not ours
            clean_folder(out)
        run = _Run(raw, source, config, dist, block, micro, out, resume, tokenizer, extra_info)
        return run.until_done(progress, callback)


class _Run:
    """One run, as named steps: :meth:`optimizer_step` (schedule, batch, forward and backward over the
    micro-batches, clip, guard, step), :meth:`log_row`, :meth:`checkpoint`, :meth:`evaluate`."""

    def __init__(self, raw: nn.Module, source: BatchSource, config: TrainConfig, dist: distributed.DistInfo,
                 block: int, micro: int, out: Path | None, resume: bool, tokenizer: Any,
                 extra_info: dict[str, Any] | None) -> None:
        self.raw, self.source, self.config, self.dist = raw, source, config, dist
        self.block, self.micro, self.out, self.tokenizer, self.extra_info = block, micro, out, tokenizer, extra_info
        self.device = dist.device
        raw.to(self.device)
        raw.train()
        self.optimizer = make_optimizer(raw, lr=config.lr, weight_decay=config.weight_decay, betas=config.betas)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.saved_step: int | None = None  # the last checkpoint this run can fall back on
        self.precision = Precision(self.device)  # fp16's loss scaling; nothing in bf16 or fp32
        if resume and out is not None and has_checkpoint(out):
            info, rng = load_training_state(out, raw, self.optimizer)
            self.step = self.saved_step = int(info["step"])
            self.precision.load_state_dict(info.get("grad_scaler"))
            if "data" in rng:
                self.gen.set_state(rng["data"])
            if "torch" in rng:
                torch.set_rng_state(rng["torch"])
        # What a checkpoint of the last finished step holds besides the weights: the random states as that
        # step left them (a Ctrl-C mid-step has already drawn the next batch) and its batch, the probe.
        self.rng_done = _rng_state(self.gen)
        self.last_batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self.ctrl = CtrlC()
        self.fwd: nn.Module = torch.compile(raw) if config.compile else raw
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.fwd = DDP(self.fwd, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        # train() checked the ids once at its edge: a gpt2lib GPT skips reading them back on every step
        self.checked = {"check_ids": False} if isinstance(raw, GPT) else {}
        self.params = [p for p in raw.parameters() if p.requires_grad]

    def optimizer_step(self) -> tuple[float, torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor]]:
        """One step of AdamW on one global batch: (learning rate, mean loss, clipped norm or None, last micro-batch)."""
        config, dist = self.config, self.dist
        lr = lr_at(self.step, lr=config.lr, warmup_steps=config.warmup_steps, max_steps=config.max_steps,
                   min_lr=config.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # Every process draws the same global batch and keeps its own rows of it.
        picks = self.source.draw(self.gen, config.batch_size, self.block)
        picks = picks.view(config.grad_accum, dist.world_size, self.micro)[:, dist.rank]
        loss_sum = torch.zeros((), device=self.device)
        for m in range(config.grad_accum):
            x, y = self.source.batch(picks[m], self.block, self.device)
            # Gradients are averaged across processes only at the last micro-batch.
            last_micro = not dist.enabled or m == config.grad_accum - 1
            with contextlib.nullcontext() if last_micro else self.fwd.no_sync():
                with autocast(self.device):
                    _, loss = self.fwd(x, y, **self.checked)
                self.precision.backward(loss / config.grad_accum)
            loss_sum += loss.detach() / config.grad_accum
        # The norm is measured even without clipping (an infinite max_norm leaves the gradient as it is):
        # a non-finite loss or gradient stops the run before the optimizer applies it.
        self.precision.unscale(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.params, config.grad_clip if config.grad_clip > 0 else math.inf)
        loss_mean = distributed.all_reduce_mean(loss_sum)
        # In fp16 an overflowing gradient is expected now and then: the scaler skips that step and lowers its scale.
        if not bool(torch.isfinite(loss_mean) & (torch.isfinite(norm) | self.precision.enabled)):
            what = (f"the loss became {float(loss_mean)}" if not math.isfinite(float(loss_mean))
                    else f"the gradient norm became {float(norm)}")
            raise self.diverged(what, self.step + 1)
        with self.ctrl.deferred():  # the update and the step count change together, or not at all
            self.precision.step(self.optimizer)
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.rng_done, self.last_batch = _rng_state(self.gen), (x, y)
        return lr, loss_mean, (norm if config.grad_clip > 0 else None), (x, y)

    def diverged(self, what: str, at: int) -> DivergedError:
        kept = (f"the checkpoint of step {self.saved_step} in {self.out} is kept" if self.saved_step is not None
                else "no checkpoint had been written yet")
        again = "resume from it" if self.saved_step is not None else "train again"
        return DivergedError(f"{what} at step {at} (peak learning rate {self.config.lr:g}); training stopped and "
                             f"{kept}. Lower the learning rate (--lr, e.g. {self.config.lr / 10:g}) and {again}")

    def checkpoint(self, probe: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Save the run so far, once the weights are shown to give a finite loss on the batch just seen."""
        if self.out is None or not self.dist.is_main:
            return
        with self.ctrl.deferred():  # a Ctrl-C waits for the save to finish
            # Finite weights can still be ruined (a huge step leaves them near 1e30, and the next loss is NaN).
            self.raw.eval()  # no dropout: the probe must not draw from the random state training uses
            try:
                with torch.no_grad(), autocast(self.device):
                    probe_loss = self.raw(*probe)[1]
            finally:
                self.raw.train()
            if not bool(torch.isfinite(probe_loss)):
                raise self.diverged(f"the updated weights give a loss of {float(probe_loss)}", self.step)
            try:
                save_checkpoint(self.raw, self.out, optimizer=self.optimizer, step=self.step,
                                train_config=self.config, rng=self.rng_done, tokenizer=self.tokenizer,
                                extra={"data": self.source.describe(), **(self.extra_info or {}),
                                       **({"grad_scaler": self.precision.state_dict()} if self.precision.enabled else {})})
            except NonFiniteWeightsError:
                raise self.diverged("the weights became NaN or infinite", self.step) from None
            self.saved_step = self.step

    def interrupted(self, result: TrainResult) -> TrainingInterrupted:
        """After Ctrl-C: save the last finished step (unless its checkpoint is there already)."""
        if self.out is not None and self.last_batch is not None and self.saved_step != self.step:
            try:
                with self.ctrl.deferred():
                    self.checkpoint(self.last_batch)
            except KeyboardInterrupt:
                pass  # Ctrl-C again, during the save: it was held until the save had finished
        result.steps = self.step
        saved = self.out is not None and self.saved_step == self.step and self.step > 0
        return TrainingInterrupted(self.step, self.out, saved, result)

    def nothing_left(self, result: TrainResult) -> TrainResult:
        """A resumed run already at ``max_steps``: no step, and the history's one row is the final validation
        loss, as the folder's ``metrics.jsonl`` logged it (or measured now, and logged, where it did not)."""
        result.steps = self.step
        if self.out is None or not self.dist.is_main:
            return result
        val = logged_val_loss(self.out, self.step)
        if val is None:  # stopped during the final evaluation
            val = self.evaluate()
            with open_metrics(self.out, self.step) as metrics:
                metrics.write(json.dumps({"step": self.step, "val_loss": val}) + "\n")
        result.history.append({"step": self.step, "val_loss": val})
        return result

    def evaluate(self) -> float:
        """The validation loss (dropout off), over ``eval_batches`` batches or the whole split."""
        was_training = self.raw.training
        self.raw.eval()
        try:
            return self.source.val_loss(self.raw, block=self.block, batch_size=max(self.micro, 8),
                                        max_batches=self.config.eval_batches, device=self.device)
        finally:
            self.raw.train(was_training)

    def until_done(self, progress: bool, callback: Callable[[dict[str, Any]], None] | None) -> TrainResult:
        """Step until ``max_steps``: log, checkpoint and evaluate on their intervals; return the history."""
        config, out = self.config, self.out
        result = TrainResult(folder=out)
        if self.step >= config.max_steps:
            return self.nothing_left(result)
        metrics = None
        if out is not None and self.dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            metrics = open_metrics(out, self.step)
        bar = None
        if progress and self.dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=config.max_steps, initial=self.step, desc="training", unit="step")
        tokens_per_step = config.batch_size * self.block
        t_start = t_log = time.perf_counter()
        tokens_since_log = 0
        unwritten: dict[str, Any] | None = None  # a finished step's row, until it is logged

        def log(row: dict[str, Any]) -> None:
            row["time"] = time.perf_counter() - t_start
            result.history.append(row)
            if metrics is not None:
                metrics.write(json.dumps(row) + "\n")
                metrics.flush()

        try:
            with self.ctrl:
                try:
                    while self.step < config.max_steps:
                        lr, loss, grad_norm, batch = self.optimizer_step()
                        tokens_since_log += tokens_per_step
                        result.tokens += tokens_per_step
                        last = self.step == config.max_steps
                        row: dict[str, Any] = {"step": self.step, "lr": lr}
                        if self.step % config.log_interval == 0 or last:
                            now = time.perf_counter()
                            row["train_loss"] = float(loss)
                            if grad_norm is not None:
                                row["grad_norm"] = float(grad_norm)
                            row["tokens_per_s"] = tokens_since_log / max(now - t_log, 1e-9)
                            t_log, tokens_since_log = now, 0
                            unwritten = row
                        # The final checkpoint comes before the final evaluation: an evaluation that fails
                        # loses nothing.
                        if (config.ckpt_interval and self.step % config.ckpt_interval == 0) or last:
                            self.checkpoint(batch)
                        if (config.eval_interval and self.step % config.eval_interval == 0) or last:
                            row["val_loss"] = self.evaluate()
                        if len(row) > 2:
                            unwritten = None
                            log(row)
                            if bar is not None:
                                bar.set_postfix({k: f"{row[k]:.3f}" for k in ("train_loss", "val_loss") if k in row})
                        if bar is not None:
                            bar.update(1)
                        if callback is not None:
                            callback(row)
                except KeyboardInterrupt:
                    if unwritten is not None:  # stopped during its evaluation: its training numbers stay
                        log(unwritten)
                    result.seconds = time.perf_counter() - t_start
                    raise self.interrupted(result) from None
        finally:
            if bar is not None:
                bar.close()
            if metrics is not None:
                metrics.close()
        result.steps = self.step
        result.seconds = time.perf_counter() - t_start
        return result
