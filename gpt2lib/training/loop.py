"""The training loop the package runs (chapter 5 builds the same loop step by step).

One optimizer step: draw the global batch's window starts from a seeded generator; each process
takes its share, split further into ``grad_accum`` micro-batches whose gradients add up; clip the
gradient norm; set the learning rate from the schedule; step AdamW. Every ``eval_interval`` steps
the validation loss is measured; every ``log_interval`` steps a row goes to ``metrics.jsonl``; every
``ckpt_interval`` steps (and at the end, before the final evaluation) a checkpoint is written.
Because the batch starts come from a generator whose state is checkpointed, a resumed run draws
exactly the batches the uninterrupted run would have drawn.

What a run must never do is lose work: both splits are checked against the context before the first
step; the output folder is held by one run at a time; a loss or gradient that is not finite stops the
run before the optimizer applies it, and weights that are not finite are never saved, so the last
good checkpoint stays.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..atomic import write_text_atomic
from ..data import TokenData, get_batch
from ..evaluation import evaluate_loss
from ..model import GPT
from ..runtime import InputError, UserError, autocast
from . import distributed
from .checkpoint import (TOKENIZER, CheckpointError, NonFiniteWeightsError, clean_folder, has_checkpoint,
                         hold_folder, load_training_state, save_checkpoint)
from .schedule import lr_at, make_optimizer

__all__ = ["TrainConfig", "TrainResult", "DivergedError", "train"]


MAX_LR = 1e30


class DivergedError(UserError, FloatingPointError):
    """The loss, the gradient or the weights stopped being finite; the run stopped before saving them."""


@dataclass
class TrainConfig:
    """Everything a run needs besides the model and the data. ``batch_size`` is the *global* batch in
    sequences per optimizer step: processes x micro-batch x ``grad_accum``."""

    max_steps: int = 600
    batch_size: int = 16
    grad_accum: int = 1
    block_size: int | None = None  # None: the model's context
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 30
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # 0 turns clipping off
    eval_interval: int = 100  # 0: only at the end
    eval_batches: int | None = None  # None: the whole validation split
    log_interval: int = 10
    ckpt_interval: int = 0  # 0: only at the end
    seed: int = 1337
    compile: bool = False
    device: str | None = None

    def __post_init__(self) -> None:
        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        for name in ("max_steps", "batch_size", "grad_accum", "log_interval"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise InputError(f"TrainConfig.{name} must be a positive int, got {value!r}")
        for name in ("warmup_steps", "eval_interval", "ckpt_interval"):
            value = getattr(self, name)
            if not is_int(value) or value < 0:
                raise InputError(f"TrainConfig.{name} must be an int >= 0, got {value!r}")
        for name in ("block_size", "eval_batches"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                raise InputError(f"TrainConfig.{name} must be None or a positive int, got {value!r}")
        for name in ("lr", "min_lr", "grad_clip", "weight_decay"):
            if not is_number(getattr(self, name)):
                raise InputError(f"TrainConfig.{name} must be a finite number, got {getattr(self, name)!r}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise InputError(f"need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr}, min_lr={self.min_lr}")
        if self.lr > MAX_LR:
            # Adam's step is lr / (1 - beta1**t) in float32: far larger rates overflow inside torch
            raise InputError(f"TrainConfig.lr must be at most {MAX_LR:g}, got {self.lr:g}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise InputError(f"grad_clip and weight_decay must be >= 0, got {self.grad_clip} and {self.weight_decay}")
        betas = tuple(self.betas) if isinstance(self.betas, (list, tuple)) else ()  # JSON gives lists back
        if len(betas) != 2 or not all(is_number(b) and 0 <= b < 1 for b in betas):
            raise InputError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = betas
        if not is_int(self.seed) or not 0 <= self.seed < 2**64:
            raise InputError(f"TrainConfig.seed must be an int in [0, 2**64), got {self.seed!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """A config from its ``dataclasses.asdict`` form (as ``checkpoint.json`` stores it); unknown keys
        are an error, not silently dropped."""
        if not isinstance(values, dict):
            raise InputError(f"a TrainConfig needs an object of settings, got {values!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise InputError(f"unknown TrainConfig key(s) {unknown}; the fields are {sorted(fields)}")
        return cls(**values)


@dataclass
class TrainResult:
    """What a run leaves: one row per logged step (the rows of ``metrics.jsonl``) and its timing."""

    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    tokens: int = 0
    out_dir: Path | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")

    @property
    def final_val_loss(self) -> float | None:
        vals = [r["val_loss"] for r in self.history if r.get("val_loss") is not None]
        return vals[-1] if vals else None


def _rng_state(gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {"data": gen.get_state(), "torch": torch.get_rng_state()}


def _metrics_file(out_dir: Path, resumed_step: int) -> Any:
    """Open ``metrics.jsonl`` for appending; on resume, drop rows a killed run wrote after its last
    checkpoint, since the resumed run logs those steps again."""
    path = out_dir / "metrics.jsonl"
    if path.exists():
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if row.get("step", 0) <= resumed_step:
                keep.append(line)
        write_text_atomic(path, "".join(k + "\n" for k in keep))
    return path.open("a", encoding="utf-8")


def train(model: nn.Module, data: TokenData, config: TrainConfig | None = None, *,
          out_dir: str | Path | None = None, resume: bool = False, tokenizer: Any = None,
          progress: bool = True, callback: Callable[[dict[str, Any]], None] | None = None,
          extra_info: dict[str, Any] | None = None) -> TrainResult:
    """Train ``model`` on ``data.train`` in place; return the logged history.

    With ``out_dir``, writes ``metrics.jsonl`` and checkpoints there. An ``out_dir`` that already holds
    a checkpoint is refused unless ``resume=True``, which continues that run exactly. Under ``torchrun``
    the same call trains with DistributedDataParallel. ``callback(row)`` is called after every step.
    """
    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(data, TokenData):
        raise TypeError(f"data must be a TokenData from gpt2lib.data.prepare(...), got {type(data).__name__}")
    raw: nn.Module = model
    mcfg = getattr(raw, "config", None)
    if mcfg is None:
        raise TypeError(f"model must be a gpt2lib GPT (with .config), got {type(model).__name__}")
    if data.vocab_size > mcfg.vocab_size:
        raise InputError(f"the data's tokenizer has {data.vocab_size} ids but the model only {mcfg.vocab_size}; "
                         f"build the model with vocab_size={data.vocab_size}")
    # The ids are checked here, once, so that every step's forward can skip reading them back from the device.
    top = max((int(np.asarray(ids).max()) for ids in (data.train, data.val) if len(ids)), default=0)
    if top >= mcfg.vocab_size:
        raise InputError(f"the data holds token id {top}, but the model has only {mcfg.vocab_size} ids; "
                         f"was it encoded with a tokenizer of a different vocabulary?")
    block = int(config.block_size or mcfg.block_size)
    if block > mcfg.block_size:
        raise InputError(f"block_size {block} is longer than the model's context {mcfg.block_size}")
    # Both splits must hold a window of block + 1 tokens, or the run would fail only at its end.
    short = [(name, len(ids)) for name, ids in (("training", data.train), ("validation", data.val))
             if len(ids) < block + 1]
    if short:
        fits = min(len(data.train), len(data.val)) - 1
        raise InputError(f"the {' and '.join(f'{name} split ({n} tokens)' for name, n in short)} cannot fill "
                         f"one window of block_size + 1 = {block + 1} tokens; "
                         + (f"use --block-size {fits} or less, or " if fits >= 1 else "")
                         + "give a longer corpus")

    dist = distributed.setup(config.device)
    per_step = dist.world_size * config.grad_accum
    if config.batch_size % per_step:
        raise InputError(f"batch_size {config.batch_size} must be divisible by processes x grad_accum = "
                         f"{dist.world_size} x {config.grad_accum}")
    micro = config.batch_size // per_step
    out = Path(out_dir) if out_dir is not None else None
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
        return _train(raw, data, config, dist, block, micro, out, resume, tokenizer, progress, callback,
                      extra_info)


def _train(raw: nn.Module, data: TokenData, config: TrainConfig, dist: distributed.DistInfo, block: int,
           micro: int, out: Path | None, resume: bool, tokenizer: Any, progress: bool,
           callback: Callable[[dict[str, Any]], None] | None, extra_info: dict[str, Any] | None) -> TrainResult:
    device = dist.device
    raw.to(device)
    raw.train()
    optimizer = make_optimizer(raw, lr=config.lr, weight_decay=config.weight_decay, betas=config.betas)
    gen = torch.Generator().manual_seed(config.seed)
    step = 0
    if resume and out is not None and has_checkpoint(out):
        info, rng = load_training_state(out, raw, optimizer)
        step = int(info["step"])
        if "data" in rng:
            gen.set_state(rng["data"])
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])

    fwd: nn.Module = raw
    if config.compile:
        fwd = torch.compile(raw)
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        fwd = DDP(fwd, device_ids=[device.index] if device.type == "cuda" else None)
    # train() checked the ids once at its edge: a gpt2lib GPT skips reading them back on every step
    checked = {"check_ids": False} if isinstance(raw, GPT) else {}

    metrics = None
    if out is not None and dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        metrics = _metrics_file(out, step)
    result = TrainResult(out_dir=out)
    bar = None
    if progress and dist.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.max_steps, initial=step, desc="training", unit="step")

    saved = {"step": step if resume and out is not None and has_checkpoint(out) else None}

    def diverged(what: str, at: int) -> DivergedError:
        kept = (f"the checkpoint of step {saved['step']} in {out} is kept" if saved["step"] is not None
                else "no checkpoint had been written yet")
        again = "resume from it" if saved["step"] is not None else "train again"
        return DivergedError(f"{what} at step {at} (peak learning rate {config.lr:g}); training stopped and "
                             f"{kept}. Lower the learning rate (--lr, e.g. {config.lr / 10:g}) and {again}")

    def checkpoint(at: int, probe: tuple[torch.Tensor, torch.Tensor]) -> None:
        if out is not None and dist.is_main:
            # Finite weights can still be ruined (a huge step leaves them near 1e30, and the next loss
            # is NaN): the weights about to be saved must give a finite loss on the batch just seen.
            raw.eval()  # no dropout: the probe must not draw from the random state training uses
            try:
                with torch.no_grad(), autocast(device):
                    probe_loss = raw(*probe)[1]
            finally:
                raw.train()
            if not bool(torch.isfinite(probe_loss)):
                raise diverged(f"the updated weights give a loss of {float(probe_loss)}", at)
            try:
                save_checkpoint(raw, out, optimizer=optimizer, step=at, train_config=config,
                                rng=_rng_state(gen), tokenizer=tokenizer,
                                extra={"data": {"name": data.name, "vocab_size": data.vocab_size},
                                       **(extra_info or {})})
            except NonFiniteWeightsError:
                raise diverged("the weights became NaN or infinite", at) from None
            saved["step"] = at

    n_train = len(data.train)
    params = [p for p in raw.parameters() if p.requires_grad]
    t_start = t_log = time.perf_counter()
    tokens_since_log = 0
    try:
        while step < config.max_steps:
            lr = lr_at(step, lr=config.lr, warmup_steps=config.warmup_steps, max_steps=config.max_steps,
                       min_lr=config.min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # Every process draws the same global batch and keeps its own rows of it.
            starts = torch.randint(n_train - block, (config.batch_size,), generator=gen)
            starts = starts.view(config.grad_accum, dist.world_size, micro)[:, dist.rank]
            loss_sum = torch.zeros((), device=device)
            for m in range(config.grad_accum):
                x, y = get_batch(data.train, micro, block, device=device, starts=starts[m])
                # Gradients are averaged across processes only at the last micro-batch.
                sync = contextlib.nullcontext() if (not dist.enabled or m == config.grad_accum - 1) else fwd.no_sync()
                with sync:
                    with autocast(device):
                        _, loss = fwd(x, y, **checked)
                    (loss / config.grad_accum).backward()
                loss_sum += loss.detach() / config.grad_accum
            # The norm is measured even without clipping (an infinite max_norm leaves the gradient as
            # it is): a non-finite loss or gradient stops the run before the optimizer applies it.
            norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip if config.grad_clip > 0 else math.inf)
            grad_norm = norm if config.grad_clip > 0 else None
            loss_mean = distributed.all_reduce_mean(loss_sum)
            if not bool(torch.isfinite(loss_mean) & torch.isfinite(norm)):
                what = (f"the loss became {float(loss_mean)}" if not math.isfinite(float(loss_mean))
                        else f"the gradient norm became {float(norm)}")
                raise diverged(what, step + 1)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_since_log += config.batch_size * block
            result.tokens += config.batch_size * block

            last = step == config.max_steps
            row: dict[str, Any] = {"step": step, "lr": lr}
            if step % config.log_interval == 0 or last:
                now = time.perf_counter()
                row["train_loss"] = float(loss_mean)
                if grad_norm is not None:
                    row["grad_norm"] = float(grad_norm)
                row["tokens_per_s"] = tokens_since_log / max(now - t_log, 1e-9)
                t_log, tokens_since_log = now, 0
            # The final checkpoint comes before the final evaluation: an evaluation that fails loses nothing.
            if (config.ckpt_interval and step % config.ckpt_interval == 0) or last:
                checkpoint(step, (x, y))
            if (config.eval_interval and step % config.eval_interval == 0) or last:
                row["val_loss"], _ = evaluate_loss(raw, data.val, block_size=block, batch_size=max(micro, 8),
                                                   max_batches=config.eval_batches, device=device)
            if len(row) > 2:
                row["time"] = time.perf_counter() - t_start
                result.history.append(row)
                if metrics is not None:
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                if bar is not None:
                    bar.set_postfix({k: f"{row[k]:.3f}" for k in ("train_loss", "val_loss") if k in row})
            if bar is not None:
                bar.update(1)
            if callback is not None:
                callback(row)
    finally:
        if bar is not None:
            bar.close()
        if metrics is not None:
            metrics.close()
    result.steps = step
    result.seconds = time.perf_counter() - t_start
    return result
