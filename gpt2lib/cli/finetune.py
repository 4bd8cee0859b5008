"""``python -m gpt2lib finetune``: a pre-trained model fine-tuned for one of the book's tasks, through the
same loop as ``train`` (atomic checkpoints, one run per folder, exact ``--resume``, divergence guards).

The folder records what the run fine-tuned (task, base, method, LoRA's rank and alpha, seed), so
``--resume`` rebuilds the same model before loading its state. A run on ``questions`` also writes
``merged/``: the fine-tuned GPT as a plain checkpoint (LoRA merged into its weights), which ``sample``
and ``eval`` read like any other.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from .commands import UsageError

__all__ = ["finetune", "TASKS", "METHODS", "DEFAULTS"]

TASKS = ("acceptability", "questions")
METHODS = ("full", "lora", "head")
# Per task: batch and steps; per method: the peak learning rate (LoRA's and a lone head's updates are
# small, so they take larger rates than the full model, whose pre-trained weights a large rate would wreck).
DEFAULTS: dict[str, Any] = {"acceptability": {"batch_size": 32, "max_steps": 150},
                            "questions": {"batch_size": 16, "max_steps": 300},
                            "lr": {"full": 3e-4, "lora": 3e-3, "head": 1e-2}}
SAVED = ("task", "base", "method", "rank", "alpha", "seed", "batch_size")


def _base(name: str, device: Any) -> tuple[Any, Any]:
    from ..book import book_model
    from ..training.checkpoint import load_checkpoint

    if name == "book":
        with contextlib.redirect_stdout(sys.stderr):  # its one line is not the command's JSON
            model, tok = book_model()
        return model.to(device), tok
    if name.startswith("gpt2"):
        from ..model import GPT
        from ..tokenizer import BPETokenizer

        return GPT.from_pretrained(name).to(device), BPETokenizer.gpt2()
    model, tok, _ = load_checkpoint(name, device=device)
    if tok is None:
        raise UsageError(f"{name} holds no tokenizer.json; fine-tuning needs the tokenizer the model was trained with")
    return model, tok


def _settings(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The run's settings: the flags, or on ``--resume`` the saved ones (a flag that differs is refused)."""
    given = {k: getattr(args, k) for k in SAVED}
    if not args.resume:
        if args.task is None:
            raise UsageError("give --task (acceptability or questions)")
        if args.task == "questions" and args.method == "head":
            raise UsageError("--method head trains a classification head; the questions task has none: "
                             "use --method lora or full")
        defaults = {"base": "book", "method": "lora", "rank": 8, "alpha": 16.0, "seed": 1337,
                    "batch_size": DEFAULTS[args.task]["batch_size"]}
        return {k: v if v is not None else defaults[k] for k, v in given.items()}
    from ..training.checkpoint import read_checkpoint_info

    saved = read_checkpoint_info(out).get("finetune")
    if not isinstance(saved, dict) or set(SAVED) - set(saved):
        raise UsageError(f"{out} holds no fine-tuning run (its checkpoint.json has no 'finetune' settings); "
                         f"resume it with 'python -m gpt2lib train --resume', or give another --out")
    differ = [f"--{k.replace('_', '-')} {v} (saved: {saved[k]})" for k, v in given.items()
              if v is not None and str(v) != str(saved[k])]
    if differ:
        raise UsageError(f"--resume continues the saved run with its own settings, and these differ from it: "
                         f"{', '.join(differ)}; drop them, or start a new run with another --out")
    return {k: saved[k] for k in SAVED}


def _build(s: dict[str, Any], device: Any) -> tuple[Any, Any, Any, Any]:
    """``(model, tokenizer, splits, data)`` for the settings: the base, its head or LoRA, the examples."""
    import torch

    from ..finetune import (Classifier, ExampleData, acceptability, add_lora, questions, set_trainable,
                            split_items)

    body, tok = _base(s["base"], device)
    block = body.config.block_size
    torch.manual_seed(s["seed"])  # the head's and LoRA's initial weights
    if s["task"] == "acceptability":
        splits = acceptability(seed=0)
        model = Classifier(body, 2, pad_id=tok.eos_token_id).to(device)
        data = ExampleData.for_classification(splits.train, splits.val, tok, block)
        head = ["head"]
    else:
        splits = split_items(questions(), seed=0)
        model, data, head = body, ExampleData.for_instructions(splits.train, splits.val, tok, block), []
    if s["method"] == "lora":
        add_lora(model, rank=s["rank"], alpha=s["alpha"], keep_training=head)
        model.to(device)
    elif s["method"] == "head":
        set_trainable(model, head)
    return model, tok, splits, data


def _score(s: dict[str, Any], model: Any, tok: Any, splits: Any, limit: int | None) -> dict[str, float]:
    from ..finetune import accuracy, answer_questions, exact_match, token_f1
    from ..finetune.batches import encode_classification

    test = splits.test[:limit]
    if s["task"] == "acceptability":
        return {"test_accuracy": accuracy(model, encode_classification(test, tok, model.config.block_size))}
    answers = answer_questions(model, tok, [ex.text for ex in test])
    refs = [ex.answer for ex in test]
    return {"test_exact_match": sum(map(exact_match, answers, refs)) / len(refs),
            "test_token_f1": sum(map(token_f1, answers, refs)) / len(refs)}


def finetune(args: argparse.Namespace) -> int:
    from ..finetune import count_parameters, merge_lora
    from ..runtime import get_device
    from ..training import TrainConfig, train
    from ..training.checkpoint import save_checkpoint
    from ..training.folder import check_new_run_folder

    out: Path = args.out
    check_new_run_folder(out, args.resume)
    device = get_device(args.device)
    s = _settings(args, out)
    model, tok, splits, data = _build(s, device)
    before = None if args.resume else _score(s, model, tok, splits, args.test_items)
    lr = args.lr or DEFAULTS["lr"][s["method"]]
    steps = args.max_steps or DEFAULTS[s["task"]]["max_steps"]
    config = TrainConfig(max_steps=steps, batch_size=s["batch_size"], lr=lr, min_lr=lr / 10,
                         warmup_steps=min(10, steps), weight_decay=0.0, eval_interval=args.eval_interval or 50,
                         ckpt_interval=args.ckpt_interval or 0, log_interval=10, seed=s["seed"],
                         device=device.type)
    if args.resume:
        from ..training.checkpoint import read_checkpoint_info

        saved = TrainConfig.from_dict(read_checkpoint_info(out)["train_config"])
        config = dataclasses.replace(config, lr=args.lr or saved.lr, min_lr=(args.lr or saved.lr) / 10,
                                     warmup_steps=saved.warmup_steps, max_steps=args.max_steps or saved.max_steps)
    result = train(model, data, config, folder=out, resume=args.resume, tokenizer=tok, progress=not args.quiet,
                   extra_info={"finetune": s, "corpus": "python-docs"})
    report = {"task": s["task"], "method": s["method"], "trainable_parameters": count_parameters(model),
              "steps": result.steps, "seconds": round(result.seconds, 2), "val_loss": result.final_val_loss,
              **({f"before_{k}": v for k, v in before.items()} if before else {}), **_score(s, model, tok, splits, args.test_items), "test_items": len(splits.test[:args.test_items]),
              "out": str(out)}
    if s["task"] == "questions":
        # A plain GPT checkpoint beside the run, for `sample` and `eval`.
        merged = merge_lora(model) if s["method"] == "lora" else model
        save_checkpoint(merged, out / "merged", step=result.steps, tokenizer=tok,
                        extra={"corpus": "python-docs", "finetuned_from": s})
        report["merged"] = str(out / "merged")
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(report))
    return 0
