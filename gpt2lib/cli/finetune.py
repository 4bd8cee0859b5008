"""``python -m gpt2lib finetune``: a pre-trained model fine-tuned for one of the book's tasks, through the
same loop as ``train`` (atomic checkpoints, one run per folder, exact ``--resume``, divergence guards).

The folder records what the run fine-tuned (task, base, method, LoRA's rank and alpha, seed), so
``--resume`` rebuilds the same model before loading its state. A run on ``questions`` also writes
``merged/``: the fine-tuned GPT as a plain checkpoint (LoRA merged into its weights), which ``sample``
and ``eval`` read like any other.

The folder also keeps what was measured (the test scores before, and those of the checkpoint they were
measured on), so ``--resume`` on a finished run reports them at once instead of scoring for minutes again.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from .commands import UsageError, ckpt_interval, main_process, nothing_left

__all__ = ["finetune", "TASKS", "METHODS", "DEFAULTS", "CLASSIFIES"]

TASKS = ("topics", "acceptability", "questions")
METHODS = ("full", "lora", "head")
# Per task: batch and steps; per method: the peak learning rate (LoRA's and a lone head's updates are
# small, so they take larger rates than the full model, whose pre-trained weights a large rate would wreck).
DEFAULTS: dict[str, Any] = {"topics": {"batch_size": 32, "max_steps": 100},
                            "acceptability": {"batch_size": 32, "max_steps": 150},
                            # answers scored as chapter 6.2 scores them: at most 32 new tokens (the longest
                            # held-out answer is 31 of the book's model's tokens)
                            "questions": {"batch_size": 16, "max_steps": 150, "max_new_tokens": 32},
                            "lr": {"full": 3e-4, "lora": 3e-3, "head": 1e-2}}
SAVED = ("task", "base", "method", "rank", "alpha", "seed", "batch_size")
# What a classification task's classifier tells, for the line that says why `sample` cannot use it.
CLASSIFIES = {"topics": "which part of Python's reference a run of words comes from (statements, expressions, "
                       "objects and types)",
              "acceptability": "whether a run of words is the reference's own text or the same words shuffled"}
# A classification task's splits (chapter 6.1's) and its number of classes.
CLASSIFICATION = {"topics": 3, "acceptability": 2}


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
            raise UsageError("give --task (topics, acceptability or questions)")
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

    from ..finetune import Classifier, ExampleData, acceptability, add_lora, question_splits, set_trainable, topics

    body, tok = _base(s["base"], device)
    block = body.config.block_size
    torch.manual_seed(s["seed"])  # the head's and LoRA's initial weights
    if s["task"] in CLASSIFICATION:
        splits = topics(seed=0) if s["task"] == "topics" else acceptability(seed=0)
        model = Classifier(body, CLASSIFICATION[s["task"]], pad_id=tok.eos_token_id).to(device)
        data = ExampleData.for_classification(splits.train, splits.val, tok, block)
        head = ["head"]
    else:
        splits = question_splits()  # chapter 6.2's splits
        model, data, head = body, ExampleData.for_instructions(splits.train, splits.val, tok, block), []
    if s["method"] == "lora":
        add_lora(model, rank=s["rank"], alpha=s["alpha"], keep_training=head)
        model.to(device)
    elif s["method"] == "head":
        set_trainable(model, head)
    return model, tok, splits, data


def _score(s: dict[str, Any], model: Any, tok: Any, splits: Any, limit: int | None, progress: bool = False,
           desc: str = "scoring") -> dict[str, float]:
    from ..finetune import accuracy, answer_questions, exact_match, token_f1
    from ..finetune.batches import encode_classification

    test = splits.test[:limit]
    if s["task"] in CLASSIFICATION:
        return {"test_accuracy": accuracy(model, encode_classification(test, tok, model.config.block_size),
                                          progress=progress, desc=desc)}
    from ..finetune import question_kind

    answers = answer_questions(model, tok, [ex.text for ex in test], progress=progress, desc=desc,
                               max_new_tokens=DEFAULTS["questions"]["max_new_tokens"])
    scores = {}
    for kind in ("", "method", "section"):  # all the questions, then each kind apart (as the chapter scores them)
        pairs = [(a, ex.answer) for a, ex in zip(answers, test) if not kind or question_kind(ex) == kind]
        if pairs:
            suffix = f"_{kind}" if kind else ""
            scores[f"test_exact_match{suffix}"] = sum(exact_match(a, r) for a, r in pairs) / len(pairs)
            scores[f"test_token_f1{suffix}"] = sum(token_f1(a, r) for a, r in pairs) / len(pairs)
    return scores


def _config(args: argparse.Namespace, s: dict[str, Any], info: dict[str, Any], device: Any) -> Any:
    """The run's :class:`~gpt2lib.training.TrainConfig`: from the flags and :data:`DEFAULTS`, or on ``--resume``
    the saved one, changed only where a flag asks for a change a resume allows."""
    from ..training import TrainConfig
    from ..training.checkpoint import CheckpointError

    if not args.resume:
        lr = args.lr or DEFAULTS["lr"][s["method"]]
        steps = args.max_steps or DEFAULTS[s["task"]]["max_steps"]
        evals = 25 if args.eval_interval is None else args.eval_interval  # chapters 6.1 and 6.2 validate every 25
        return TrainConfig(max_steps=steps, batch_size=s["batch_size"], lr=lr, min_lr=lr / 10,
                           warmup_steps=min(10, steps), weight_decay=0.0, eval_interval=evals,
                           ckpt_interval=ckpt_interval(args.ckpt_interval, evals), log_interval=10,
                           seed=s["seed"], device=device.type)
    try:
        saved = TrainConfig.from_dict(info["train_config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{args.out / 'checkpoint.json'} holds no usable training settings ({exc}); the "
                              f"run cannot be resumed") from None
    if args.max_steps is not None and args.max_steps < info["step"]:
        raise UsageError(f"the run in {args.out} is already at step {info['step']}; --max-steps {args.max_steps} "
                         f"asks for fewer. Give --max-steps above {info['step']} to train further")
    changes = {"max_steps": args.max_steps, "eval_interval": args.eval_interval,
               "ckpt_interval": args.ckpt_interval, "device": device.type}
    if args.lr is not None:
        changes.update(lr=args.lr, min_lr=args.lr / 10)
    return dataclasses.replace(saved, **{k: v for k, v in changes.items() if v is not None})


def _saved(scores: Any, n_test: int) -> dict[str, float] | None:
    """Scores the folder saved, if they were measured on the same ``n_test`` test items."""
    if isinstance(scores, dict) and scores.get("test_items") == n_test:
        return {k: v for k, v in scores.items() if k != "test_items"}
    return None


def finetune(args: argparse.Namespace) -> int:
    from ..finetune import count_parameters, merge_lora
    from ..runtime import get_device
    from ..training import train
    from ..training.checkpoint import add_checkpoint_info, has_checkpoint, read_checkpoint_info, save_checkpoint
    from ..training.folder import check_new_run_folder

    out: Path = args.out
    check_new_run_folder(out, args.resume)
    device = get_device(args.device)
    s = _settings(args, out)
    info = read_checkpoint_info(out) if args.resume else {}
    config = _config(args, s, info, device)
    # --test-items, like every setting, is the saved run's unless given again.
    limit = args.test_items if args.test_items is not None or not args.resume else info.get("test_items")
    if args.resume and info["step"] >= config.max_steps:
        nothing_left(out, info["step"], "its validation loss and test scores follow")
    model, tok, splits, data = _build(s, device)
    n_test = len(splits.test[:limit])
    # Before training (and before a resume loads the run's weights) the model is the base model.
    before = _saved(info.get("scores_before"), n_test)
    if before is None:
        before = _score(s, model, tok, splits, limit, not args.quiet, "scoring before")
    extra = {"finetune": s, "corpus": "python-docs", "test_items": limit,
             "scores_before": {"test_items": n_test, **before}}
    result = train(model, data, config, folder=out, resume=args.resume, tokenizer=tok, progress=not args.quiet,
                   extra_info=extra)
    after = _saved(read_checkpoint_info(out).get("scores"), n_test)
    if after is None:
        after = _score(s, model, tok, splits, limit, not args.quiet, "scoring after")
        if main_process():
            add_checkpoint_info(out, result.steps, {"scores": {"test_items": n_test, **after}})
    report = {"task": s["task"], "method": s["method"], "trainable_parameters": count_parameters(model),
              "steps": result.steps, "seconds": round(result.seconds, 2), "val_loss": result.final_val_loss,
              **{f"before_{k}": v for k, v in before.items()}, **after, "test_items": n_test, "out": str(out)}
    if s["task"] == "questions":
        # A plain GPT checkpoint beside the run, for `sample` and `eval` (kept if it is of this step already).
        merged = out / "merged"
        if not has_checkpoint(merged) or read_checkpoint_info(merged)["step"] != result.steps:
            save_checkpoint(merge_lora(model) if s["method"] == "lora" else model, merged, step=result.steps,
                            tokenizer=tok, extra={"corpus": "python-docs", "finetuned_from": s})
        report["merged"] = str(merged)
    if main_process():
        print(json.dumps(report))
    return 0
