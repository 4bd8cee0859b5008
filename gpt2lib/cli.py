"""``python -m gpt2lib train | sample | eval``: the package's loop, sampler and evaluation from a shell.

    python -m gpt2lib train --out runs/docs                      # the book's model, its full schedule
    python -m gpt2lib train --out runs/docs --max-steps 50 --resume
    torchrun --nproc_per_node=2 -m gpt2lib train --out runs/ddp  # the same, with DDP
    python -m gpt2lib sample --ckpt runs/docs --prompt "The if statement" --max-new-tokens 80 --seed 1
    python -m gpt2lib eval --ckpt runs/docs

Exit statuses follow one rule. 2: the user's input or environment is at fault (a bad value, a missing
corpus, an output folder holding another run, a damaged checkpoint, a device this machine lacks, a
full disk); one line says what to do, and a saved checkpoint is never lost. 1: a bug in gpt2lib; its
traceback is shown, since hiding it would hide the bug. Only the errors gpt2lib raises on purpose
(``gpt2lib.runtime.UserError`` and its subclasses) and the operating system's (a full disk, a
read-only folder) count as the user's.
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .runtime import UserError

__all__ = ["main", "build_parser"]


class UsageError(UserError):
    """A mistake in the command line: printed as one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _positive_int(text) if text.strip() != "0" else 0
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**64 - 1] (torch keeps 64 bits), got {value}")
    return value


def _unit_interval(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value


def _presets() -> list[str]:
    from .model import PRESETS

    return ["book", *PRESETS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpt2lib", description="Train, sample from and evaluate "
                                     "the GPT-2 models of the book 'GPT-2 from scratch'.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,eval}")

    t = sub.add_parser("train", help="train a model (add --resume to continue a run)",
                       description="Train a model and write checkpoints and metrics.jsonl into --out. "
                       "Under torchrun the same command trains with DistributedDataParallel.")
    t.add_argument("--preset", default="book", choices=_presets(),
                   help="model size: 'book' is the book's default small model (4 layers, 128 wide); the "
                        "others are gpt2lib.model presets (default: book)")
    t.add_argument("--data", default=None,
                   help="corpus: 'python-docs' (embedded, default), 'tiny-shakespeare' (downloaded once "
                        "when online), or a path to a text file or a folder of text files")
    t.add_argument("--out", required=True, type=Path, help="output folder for checkpoints and metrics.jsonl")
    t.add_argument("--max-steps", type=_positive_int, default=None,
                   help="optimizer steps; the learning-rate schedule is fitted to them (default: the preset's "
                        "full schedule, 600 steps for 'book')")
    t.add_argument("--resume", action="store_true",
                   help="continue the run whose checkpoint is in --out: its corpus, tokenizer and settings are "
                        "kept (giving others is refused); --max-steps, --lr, the intervals, --device and "
                        "--compile may change")
    t.add_argument("--batch-size", type=_positive_int, default=None,
                   help="global batch in sequences per step, across processes and accumulation (default 16)")
    t.add_argument("--grad-accum", type=_positive_int, default=None,
                   help="micro-batches accumulated per step (default 1)")
    t.add_argument("--block-size", type=_positive_int, default=None, help="context length (default: the preset's)")
    t.add_argument("--lr", type=_positive_float, default=None, help="peak learning rate (default 3e-3)")
    t.add_argument("--warmup-steps", type=_non_negative_int, default=None, help="linear warm-up steps (default 30)")
    t.add_argument("--vocab-size", type=_positive_int, default=None,
                   help="ids of the BPE tokenizer trained on the corpus (default 2048); ignored with --tokenizer gpt2")
    t.add_argument("--tokenizer", choices=["bpe", "gpt2"], default=None,
                   help="'bpe': trained on the corpus (default for small presets); 'gpt2': GPT-2's 50,257 ids "
                        "(default for the gpt2* presets)")
    t.add_argument("--eval-interval", type=_non_negative_int, default=None,
                   help="steps between validation losses; 0: only at the end (default 100)")
    t.add_argument("--ckpt-interval", type=_non_negative_int, default=None,
                   help="steps between checkpoints; 0: only at the end (default 0)")
    t.add_argument("--log-interval", type=_positive_int, default=None,
                   help="steps between rows of metrics.jsonl (default 10)")
    t.add_argument("--seed", type=_seed, default=None, help="seed of the initialisation and batches (default 1337)")
    t.add_argument("--device", choices=["cpu", "cuda", "mps"], default=None, help="default: the best available")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (GPUs: faster after warm-up)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="continue a prompt with a trained model",
                       description="Print the prompt continued by the model of a checkpoint folder.")
    s.add_argument("--ckpt", required=True, type=Path, help="checkpoint folder (the --out of a train run)")
    s.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    s.add_argument("--max-new-tokens", type=_positive_int, default=100, help="tokens to generate (default 100)")
    s.add_argument("--seed", type=_seed, default=1337, help="sampling seed: same seed, same text (default 1337)")
    s.add_argument("--temperature", type=_positive_float, default=0.8, help="softmax temperature (default 0.8)")
    s.add_argument("--top-k", type=_positive_int, default=None, help="sample among the k likeliest tokens")
    s.add_argument("--top-p", type=_unit_interval, default=None, help="nucleus sampling threshold in (0, 1]")
    s.add_argument("--device", choices=["cpu", "cuda", "mps"], default=None, help="default: the best available")

    e = sub.add_parser("eval", help="validation loss, perplexity and bits per byte beside the bigram baseline",
                       description="Print one JSON object: val_loss, perplexity, bits_per_byte and "
                       "bigram_bits_per_byte (a bigram fitted on the same training split).")
    e.add_argument("--ckpt", required=True, type=Path, help="checkpoint folder (the --out of a train run)")
    e.add_argument("--data", default=None, help="corpus to evaluate on (default: the one the run trained on)")
    e.add_argument("--batch-size", type=_positive_int, default=16, help="sequences per evaluation batch")
    e.add_argument("--max-batches", type=_positive_int, default=None, help="evaluate on at most this many batches")
    e.add_argument("--device", choices=["cpu", "cuda", "mps"], default=None, help="default: the best available")
    return parser


# Files a run of ours leaves in --out before its first checkpoint: a folder holding only these was an
# abandoned start, and a new run may reuse it.
_LEFTOVERS = ("metrics.jsonl", "tokenizer.json", ".lock")


def _ours(path: Path) -> bool:
    from .training.checkpoint import WEIGHT_FILE

    return (path.name in _LEFTOVERS or bool(WEIGHT_FILE.match(path.name))
            or (path.name.startswith(".") and path.name.endswith(".tmp")))


def _check_out(out: Path, resume: bool) -> None:
    from .training.checkpoint import has_checkpoint

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    if resume and not has_checkpoint(out):
        raise UsageError(f"{out} holds no checkpoint to resume (no checkpoint.json there); check the folder's "
                         f"name, or drop --resume to start a new run in it")
    if has_checkpoint(out) and not resume:
        raise UsageError(f"{out} already holds a checkpoint; add --resume to continue it, or choose another --out")
    if not resume and out.is_dir() and not all(_ours(p) for p in out.iterdir()):
        raise UsageError(f"{out} is not empty and holds no checkpoint; choose an empty or new folder")


def _resume_settings(args: argparse.Namespace, out: Path) -> tuple[Any, Any, Any, str]:
    """``(train_config, model_config, tokenizer, corpus)`` of the run saved in ``out``, with the
    settings a resume may change applied, and a refusal naming any other setting given differently."""
    from .book import BOOK_MODEL
    from .model import GPTConfig
    from .training import TrainConfig
    from .training.checkpoint import CheckpointError, load_saved_tokenizer, model_config_of, read_checkpoint_info

    info = read_checkpoint_info(out)
    model_cfg = model_config_of(info, out / "checkpoint.json")
    try:
        if info["train_config"] is None:
            raise ValueError("it is null")
        config = TrainConfig.from_dict(info["train_config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{out / 'checkpoint.json'} holds no usable training settings ({exc}); it cannot "
                              f"be resumed, only sampled from or evaluated") from None
    corpus = info.get("corpus")
    if not isinstance(corpus, str):
        raise CheckpointError(f"{out / 'checkpoint.json'} does not say which corpus the run trained on; "
                              f"it cannot be resumed")
    tok = load_saved_tokenizer(out, info)
    if tok is None:
        raise CheckpointError(f"{out} holds no tokenizer.json; the run cannot be resumed")

    want = GPTConfig.preset(args.preset) if args.preset != "book" else GPTConfig(**BOOK_MODEL)
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
    if target <= step:
        said = f"--max-steps {args.max_steps} asks" if args.max_steps else f"its --max-steps ({target}) asks"
        raise UsageError(f"the run in {out} is already at step {step}; {said} for no more. Give --max-steps "
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


def _train(args: argparse.Namespace) -> int:
    from .book import BOOK_MODEL, BOOK_TRAIN, BOOK_VOCAB_SIZE, book_tokenizer
    from .data import load_text, prepare
    from .model import GPT, GPTConfig
    from .runtime import get_device, seed_everything
    from .training import TrainConfig, train
    from .training.distributed import teardown

    out: Path = args.out
    _check_out(out, args.resume)
    get_device(args.device)  # a device this machine lacks is refused before any work
    if args.resume:
        config, model_cfg, tok, corpus = _resume_settings(args, out)
        kind = None
    else:
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
        kind = args.tokenizer or ("gpt2" if args.preset.startswith("gpt2") else "bpe")
        if kind == "gpt2":
            from .tokenizer import BPETokenizer

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

    data = prepare(corpus, tok)
    seed_everything(config.seed)
    model = GPT(model_cfg)
    extra = {"corpus": str(corpus), **({"tokenizer_kind": kind} if kind else {})}
    if args.resume:
        from .training.checkpoint import read_checkpoint_info

        extra.update({k: v for k, v in read_checkpoint_info(out).items() if k == "tokenizer_kind"})
    try:
        # train() holds --out for the whole run: a second run into the same folder is refused there.
        result = train(model, data, config, out_dir=out, resume=args.resume, tokenizer=tok,
                       progress=not args.quiet, extra_info=extra)
    finally:
        teardown()
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps({"steps": result.steps, "seconds": round(result.seconds, 2),
                          "tokens_per_s": round(result.tokens_per_s), "val_loss": result.final_val_loss,
                          "out": str(out)}))
    return 0


def _sample(args: argparse.Namespace) -> int:
    import torch

    from .runtime import get_device
    from .training.checkpoint import load_checkpoint

    model, tok, _ = load_checkpoint(args.ckpt, device=get_device(args.device))
    if tok is None:
        raise UsageError(f"{args.ckpt} holds no tokenizer.json; it cannot turn a prompt into ids")
    ids = tok.encode(args.prompt)
    if not ids:
        raise UsageError("the prompt is empty after encoding; give at least one character")
    block = model.config.block_size
    if args.max_new_tokens >= block:
        raise UsageError(f"--max-new-tokens {args.max_new_tokens} does not fit the context of {block} tokens; "
                         f"ask for at most {block - 1}")
    if len(ids) + args.max_new_tokens > block:
        keep = block - args.max_new_tokens
        print(f"note: the prompt is {len(ids)} tokens and the context holds {block}, {args.max_new_tokens} of "
              f"them for new tokens; the model sees only the prompt's last {keep} tokens (its first "
              f"{len(ids) - keep} are dropped). Shorten the prompt or lower --max-new-tokens to keep it whole.",
              file=sys.stderr)
        ids = ids[-keep:]
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(args.seed)
    out = model.generate(torch.tensor([ids], device=device), args.max_new_tokens, temperature=args.temperature,
                         top_k=args.top_k, top_p=args.top_p, generator=gen)
    print(tok.decode(out[0].tolist()))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .data import prepare
    from .evaluation import evaluate
    from .runtime import get_device
    from .training.checkpoint import load_checkpoint

    model, tok, info = load_checkpoint(args.ckpt, device=get_device(args.device))
    if tok is None:
        raise UsageError(f"{args.ckpt} holds no tokenizer.json; it cannot tokenize a corpus")
    corpus = args.data or info.get("corpus") or "python-docs"
    if not isinstance(corpus, str):
        raise UsageError(f"{args.ckpt / 'checkpoint.json'} names the corpus {corpus!r}, not a name or a path; "
                         f"give the corpus with --data")
    data = prepare(corpus, tok)
    report = evaluate(model, data, batch_size=args.batch_size, max_batches=args.max_batches)
    report = {"corpus": str(corpus), "step": info["step"], **report}
    print(json.dumps(report))
    return 0


_OS_HINTS = {errno.ENOSPC: "free some disk space, or choose a folder on another disk; the last checkpoint is intact",
             errno.EDQUOT: "free some disk space (quota), or choose another folder; the last checkpoint is intact",
             errno.EROFS: "the file system is read-only; choose a writable folder",
             errno.EACCES: "choose a folder you may write to",
             errno.EPERM: "choose a folder you may write to"}


def _one_line(exc: BaseException) -> str | None:
    """The one line for an error the user can fix, or None for a bug (shown with its traceback)."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        where = f" ({exc.filename})" if exc.filename else ""
        hint = _OS_HINTS.get(exc.errno, "check the path and its permissions")
        return f"{exc.strerror or exc}{where}: {hint}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m gpt2lib`` and of the ``gpt2lib`` script; returns the exit status:
    0 done, 2 the user's input or environment (one line on stderr), 1 a bug (its traceback)."""
    args = build_parser().parse_args(argv)
    try:
        return {"train": _train, "sample": _sample, "eval": _eval}[args.command](args)
    except Exception as exc:
        line = _one_line(exc)
        if line is None:
            raise
        print(f"python -m gpt2lib {args.command}: error: {line}", file=sys.stderr)
        return 2
