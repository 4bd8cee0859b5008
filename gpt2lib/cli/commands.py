"""What ``train`` does with the parsed flags (a resume keeps every saved setting but those it may change),
and what ``train`` and ``finetune`` share: the default checkpoint interval, the note for a run with nothing
left to train."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..runtime import UserError

__all__ = ["UsageError", "train", "ckpt_interval", "nothing_left", "main_process"]


class UsageError(UserError):
    """A mistake in the command line: printed as one line, exit status 2."""


def main_process() -> bool:
    """Whether this process prints and tidies (one process alone, or rank 0 under torchrun)."""
    return os.environ.get("RANK", "0") == "0"


def ckpt_interval(given: int | None, eval_interval: int) -> int:
    """``--ckpt-interval``, or by default at each validation (every 100 steps when there is none before the end)."""
    if given is not None:
        return given
    return eval_interval or 100


def nothing_left(out: Path, step: int, what: str) -> None:
    """The one line a resumed run with no steps left prints before its report."""
    print(f"note: nothing left to train: the run in {out} finished at step {step}; {what} (give --max-steps "
          f"above {step} to train further)", file=sys.stderr)


def _resume_settings(args: argparse.Namespace, out: Path) -> tuple[Any, Any, Any, str]:
    """``(train_config, model_config, tokenizer, corpus)`` of the run saved in ``out``, with the
    settings a resume may change applied, and a refusal naming any other setting given differently."""
    from ..book import BOOK_MODEL
    from ..model import GPTConfig
    from ..training import TrainConfig
    from ..training.checkpoint import (INFO, CheckpointError, load_saved_tokenizer, model_config_of,
                                      read_checkpoint_info)

    info = read_checkpoint_info(out)
    if "finetune" in info:
        raise UsageError(f"{out} holds a fine-tuning run; continue it with 'python -m gpt2lib finetune --resume "
                         f"--out {out}'")
    model_cfg = model_config_of(info, out / INFO)
    try:
        if info["train_config"] is None:
            raise ValueError("it is null")
        config = TrainConfig.from_dict(info["train_config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{out / INFO} holds no usable training settings ({exc}); it cannot "
                              f"be resumed, only sampled from or evaluated") from None
    corpus = info.get("corpus")
    if not isinstance(corpus, str):
        raise CheckpointError(f"{out / INFO} does not say which corpus the run trained on; "
                              f"it cannot be resumed")
    tok = load_saved_tokenizer(out, info)
    if tok is None:
        raise CheckpointError(f"{out} holds no tokenizer.json; the run cannot be resumed")

    want = model_cfg if args.preset is None else (
        GPTConfig.preset(args.preset) if args.preset != "book" else GPTConfig(**BOOK_MODEL))
    shape = ("n_layer", "n_head", "n_embd")
    if any(getattr(want, k) != getattr(model_cfg, k) for k in shape):
        raise UsageError(f"{out} holds a checkpoint of another shape "
                         f"({', '.join(f'{k}={getattr(model_cfg, k)}' for k in shape)}) than --preset "
                         f"{args.preset}; use its preset to resume it, or another --out")
    kind = info.get("tokenizer_kind")
    given = {"--data": (args.data, corpus), "--batch-size": (args.batch_size, config.batch_size),
             "--grad-accum": (args.grad_accum, config.grad_accum),
             "--warmup-steps": (args.warmup_steps, config.warmup_steps), "--seed": (args.seed, config.seed),
             "--block-size": (args.block_size, config.block_size or model_cfg.block_size),
             "--vocab-size": (args.vocab_size, tok.vocab_size) if kind != "gpt2" else (None, None),
             "--tokenizer": (args.tokenizer, kind) if kind else (None, None)}
    if args.data is not None and Path(args.data).exists() and Path(corpus).exists() \
            and Path(args.data).resolve() == Path(corpus).resolve():
        given.pop("--data")  # the same file, spelled differently
    differ = [f"{flag} {new} (saved: {old})" for flag, (new, old) in given.items()
              if new is not None and str(new) != str(old)]
    if differ:
        raise UsageError(f"--resume continues the saved run with its own settings, and these differ from it: "
                         f"{', '.join(differ)}; drop them, or start a new run with another --out")
    step = int(info["step"])
    target = args.max_steps or config.max_steps
    if target < step:
        said = f"--max-steps {args.max_steps} asks" if args.max_steps else f"its --max-steps ({target}) asks"
        raise UsageError(f"the run in {out} is already at step {step}; {said} for fewer. Give --max-steps "
                         f"above {step} to train further")
    changes = {"max_steps": target, "eval_interval": args.eval_interval, "ckpt_interval": args.ckpt_interval,
               "log_interval": args.log_interval, "device": args.device, "compile": args.compile or None}
    if args.lr is not None and args.lr != config.lr:
        # The one setting a resume may lower on purpose: the cure for a run that diverged.
        print(f"note: --lr {args.lr:g} replaces the saved run's {config.lr:g} from step {step} on (and its minimum "
              f"becomes {args.lr / 10:g}); the steps already taken keep theirs", file=sys.stderr)
        changes.update(lr=args.lr, min_lr=args.lr / 10)
    config = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
    return config, model_cfg, tok, corpus


def train(args: argparse.Namespace) -> int:
    from ..book import BOOK_MODEL, BOOK_TRAIN, BOOK_VOCAB_SIZE, book_tokenizer
    from ..data import load_text, prepare
    from ..model import GPT, GPTConfig
    from ..runtime import get_device, seed_everything
    from ..training import TrainConfig, train
    from ..training.checkpoint import read_checkpoint_info
    from ..training.distributed import teardown

    out: Path = args.out
    from ..training.folder import check_new_run_folder

    check_new_run_folder(out, args.resume)
    get_device(args.device)  # a device this machine lacks is refused before any work
    if args.resume:
        config, model_cfg, tok, corpus = _resume_settings(args, out)
        kind = None
    else:
        args.preset = args.preset or "book"
        corpus = args.data or "python-docs"
        load_text(corpus)  # a missing or empty corpus fails here, before anything is written
        base = BOOK_TRAIN if args.preset == "book" else TrainConfig()
        overrides = {"max_steps": args.max_steps, "batch_size": args.batch_size, "grad_accum": args.grad_accum,
                     "lr": args.lr, "warmup_steps": args.warmup_steps, "eval_interval": args.eval_interval,
                     "ckpt_interval": args.ckpt_interval, "log_interval": args.log_interval, "seed": args.seed}
        changes = {k: v for k, v in overrides.items() if v is not None}
        if "lr" in changes:
            changes["min_lr"] = changes["lr"] / 10
        changes["device"] = args.device
        changes["compile"] = args.compile
        config = dataclasses.replace(base, **changes)
        config = dataclasses.replace(config, ckpt_interval=ckpt_interval(args.ckpt_interval, config.eval_interval))
        kind = args.tokenizer or ("gpt2" if args.preset.startswith("gpt2") else "bpe")
        if kind == "gpt2":
            from ..tokenizer import BPETokenizer

            tok = BPETokenizer.gpt2()
        else:
            tok = book_tokenizer(corpus, args.vocab_size or BOOK_VOCAB_SIZE, progress=not args.quiet)
        shape = dict(BOOK_MODEL) if args.preset == "book" else {}
        if args.block_size:
            shape["block_size"] = args.block_size
        if args.preset == "book":
            model_cfg = GPTConfig(vocab_size=tok.vocab_size, **shape)
        else:
            model_cfg = GPTConfig.preset(args.preset, vocab_size=tok.vocab_size, **shape)

    if args.resume and read_checkpoint_info(out)["step"] >= config.max_steps:
        nothing_left(out, config.max_steps, "its final validation loss follows")
    data = prepare(corpus, tok)
    seed_everything(config.seed)
    model = GPT(model_cfg)
    extra = {"corpus": str(corpus), **({"tokenizer_kind": kind} if kind else {})}
    if args.resume:
        extra.update({k: v for k, v in read_checkpoint_info(out).items() if k == "tokenizer_kind"})
    try:
        # train() holds --out for the whole run: a second run into the same folder is refused there.
        result = train(model, data, config, folder=out, resume=args.resume, tokenizer=tok,
                       progress=not args.quiet, extra_info=extra)
    finally:
        teardown()
    if main_process():
        print(json.dumps({"steps": result.steps, "seconds": round(result.seconds, 2),
                          "tokens_per_s": round(result.tokens_per_s) if result.tokens else None,
                          "val_loss": result.final_val_loss, "out": str(out)}))
    return 0
