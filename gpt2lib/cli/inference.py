"""What ``sample`` and ``eval`` do with a checkpoint folder, after telling what kind of model it holds.

A folder may hold a plain language model (a ``train`` run, or the ``merged/`` model of a fine-tuning run),
a model fine-tuned to answer questions (its ``checkpoint.json`` says what it was fine-tuned from), a
classifier (a body and a head: it labels texts, it continues none), or a LoRA run's own folder (its
adapters beside frozen weights; ``merged/`` is the model to use). Each of the last two is named in one
line that says what to do, instead of a list of missing and unexpected weights.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from .commands import UsageError

__all__ = ["sample", "evaluate", "fine_tuned_on"]


def _weight_names(folder: Path, info: dict[str, Any]) -> list[str]:
    """The names in the checkpoint's weights file, read from its header (no tensor is loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(str(folder / info["weights"]), framework="pt") as f:
            return list(f.keys())
    except Exception:  # a damaged file: load_checkpoint says so in its own words
        return []


def _refuse_other_kinds(folder: Path, info: dict[str, Any], command: str) -> None:
    """One line for a folder whose model ``command`` cannot use: a classifier, or a LoRA run's own folder."""
    from ..training.checkpoint import has_checkpoint

    settings = info.get("finetune") if isinstance(info.get("finetune"), dict) else {}
    names = _weight_names(folder, info)
    task = settings.get("task")
    use = "sampled from" if command == "sample" else "evaluated as a language model"
    if any(n.startswith("head.") for n in names) and any(n.startswith("body.") for n in names):
        from .finetune import CLASSIFIES

        what = info.get("classifies") or CLASSIFIES.get(task) or "one of its classes for each text"
        named = f" for the task '{task}'" if task else ""
        raise UsageError(f"{folder} holds a classifier fine-tuned{named} (it tells {what}), not a language model: "
                         f"it labels a text instead of continuing it, so it cannot be {use}. Its test accuracy is "
                         f"in the report 'finetune' printed; 'python -m gpt2lib finetune --resume --out "
                         f"{shlex.quote(str(folder))}' prints it again")
    if settings.get("method") == "lora" or any(".base." in n for n in names):  # LoRALinear's frozen `base`
        merged = folder / "merged"
        if has_checkpoint(merged):
            raise UsageError(f"{folder} is a LoRA fine-tuning run's folder (adapters beside frozen weights); "
                             f"{command} reads the model it merged: --ckpt {shlex.quote(str(merged))}")
        raise UsageError(f"{folder} is a LoRA fine-tuning run's folder (adapters beside frozen weights), and it "
                         f"has not written its merged model yet; finish it with 'python -m gpt2lib finetune "
                         f"--resume --out {shlex.quote(str(folder))}', then use --ckpt {shlex.quote(str(merged))}")


def _load(folder: Path, device_name: str | None, command: str) -> tuple[Any, Any, dict[str, Any]]:
    from ..runtime import get_device
    from ..training.checkpoint import load_checkpoint, read_checkpoint_info

    device = get_device(device_name)
    _refuse_other_kinds(folder, read_checkpoint_info(folder), command)
    return load_checkpoint(folder, device=device)


def fine_tuned_on(info: dict[str, Any]) -> dict[str, Any] | None:
    """The fine-tuning settings of a checkpoint that loads as a plain GPT (``finetuned_from`` of a merged
    model, or ``finetune`` of a run that trained every weight), or None for a pre-trained model."""
    for key in ("finetuned_from", "finetune"):
        if isinstance(info.get(key), dict):
            return info[key]
    return None


def sample(args: argparse.Namespace) -> int:
    import torch

    from ..finetune import PROMPT, prompt_text

    model, tok, info = _load(args.ckpt, args.device, "sample")
    if tok is None:
        raise UsageError(f"{args.ckpt} holds no tokenizer.json; it cannot turn a prompt into ids")
    tuned = fine_tuned_on(info)
    prompt, temperature, notes = args.prompt, args.temperature, []
    if tuned is not None:
        # A model fine-tuned on questions answers what is asked in its format, and is scored greedily.
        task = tuned.get("task", "questions")
        if prompt is None or not prompt.strip():
            raise UsageError(f"{args.ckpt} was fine-tuned to answer questions (task '{task}'); ask one, e.g. "
                             f"--prompt 'What does str.upper() do?'")
        opening = PROMPT.split("{question}")[0].strip()
        if not prompt.lstrip().startswith(opening):
            prompt = prompt_text(prompt.strip())
            notes.append(f"the prompt is asked in its format ({prompt!r})")
        if temperature is None:
            temperature = 0.0
            notes.append("answered greedily (give --temperature to sample)")
        notes = [f"note: {args.ckpt} was fine-tuned on '{task}': {'; '.join(notes)}"] if notes else []
    prompt = "\n" if prompt is None else prompt
    temperature = 0.8 if temperature is None else temperature
    ids = tok.encode(prompt)
    if not ids:
        raise UsageError("the prompt is empty after encoding; give at least one character")
    block = model.config.block_size
    if args.max_new_tokens >= block:
        raise UsageError(f"--max-new-tokens {args.max_new_tokens} does not fit the context of {block} tokens; "
                         f"ask for at most {block - 1}")
    for note in notes:
        print(note, file=sys.stderr)
    if len(ids) + args.max_new_tokens > block:
        keep = block - args.max_new_tokens
        print(f"note: the prompt is {len(ids)} tokens and the context holds {block}, {args.max_new_tokens} of "
              f"them for new tokens; the model sees only the prompt's last {keep} tokens (its first "
              f"{len(ids) - keep} are dropped). Shorten the prompt or lower --max-new-tokens to keep it whole.",
              file=sys.stderr)
        ids = ids[-keep:]
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(args.seed)
    eos = tok.eos_token_id
    out = model.generate(torch.tensor([ids], device=device), args.max_new_tokens,
                         temperature=temperature or 1.0, do_sample=temperature > 0, top_k=args.top_k,
                         top_p=args.top_p, eos_token_id=eos, generator=gen)
    new = out[0, len(ids):].tolist()
    if eos in new:
        new = new[:new.index(eos)]  # the end of the text: where it stops, never printed
    print(tok.decode(ids + new))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from ..data import prepare
    from ..evaluation import evaluate

    model, tok, info = _load(args.ckpt, args.device, "eval")
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
