"""The command line's grammar: every flag, its type and its range, checked before anything runs."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

__all__ = ["build_parser"]


def _checked(convert: Callable[[str], Any], ok: Callable[[Any], bool], wanted: str) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, then refuse a value ``ok`` rejects, saying what was ``wanted``."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _checked(float, lambda v: v > 0, "a number > 0")
_seed = _checked(int, lambda v: 0 <= v < 2**64, "an integer in [0, 2**64 - 1] (torch keeps 64 bits)")
_unit_interval = _checked(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
_temperature = _checked(float, lambda v: 0 <= v < float("inf"), "a number >= 0 (0: greedy)")
_CKPT_HELP = ("steps between checkpoints; 0: only at the end (default: at each validation, every --eval-interval "
              "steps, or every 100 when that is 0). Ctrl-C always saves the last finished step and prints the "
              "command that resumes the run")


def _presets() -> list[str]:
    from ..model import PRESETS

    return ["book", *PRESETS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpt2lib", description="Train, sample from and evaluate "
                                     "the GPT-2 models of the book 'GPT-2 from scratch'.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,finetune,sample,eval}")

    t = sub.add_parser("train", help="train a model (add --resume to continue a run)",
                       description="Train a model and write checkpoints and metrics.jsonl into --out. "
                       "Under torchrun the same command trains with DistributedDataParallel.")
    t.add_argument("--preset", default=None, choices=_presets(),
                   help="model size: 'book' is the book's default small model (4 layers, 128 wide); the "
                        "others are gpt2lib.model presets (default: book; on --resume, the saved run's)")
    t.add_argument("--data", default=None,
                   help="corpus: 'python-docs' (embedded, default), 'tiny-shakespeare' (downloaded once "
                        "when online), or a path to a text file or a folder of text files")
    t.add_argument("--out", required=True, type=Path, help="output folder for checkpoints and metrics.jsonl")
    t.add_argument("--max-steps", type=_positive_int, default=None,
                   help="optimizer steps; the learning-rate schedule is fitted to them (default: the preset's "
                        "full schedule, 600 steps for 'book')")
    t.add_argument("--resume", action="store_true",
                   help="continue the run whose checkpoint is in --out (after Ctrl-C, say): its corpus, "
                        "tokenizer and every setting are kept (giving others is refused); --max-steps, --lr, the "
                        "intervals, --device and --compile may change. A run with no steps left prints its "
                        "final validation loss")
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
    t.add_argument("--ckpt-interval", type=_non_negative_int, default=None, help=_CKPT_HELP)
    t.add_argument("--log-interval", type=_positive_int, default=None,
                   help="steps between rows of metrics.jsonl (default 10)")
    t.add_argument("--seed", type=_seed, default=None, help="seed of the initialisation and batches (default 1337)")
    t.add_argument("--device", choices=["cpu", "cuda", "mps"], default=None, help="default: the best available")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (GPUs: faster after warm-up)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    f = sub.add_parser("finetune", help="fine-tune a pre-trained model for one of the book's tasks",
                       description="Fine-tune a pre-trained model (the book's, a train run's folder, or OpenAI's "
                       "GPT-2 where it can be had) on a task built from the book's corpus, through the same loop as "
                       "train (checkpoints, --resume). Prints one JSON object: the test scores before and after. "
                       "A questions run also writes OUT/merged, a checkpoint that sample and eval read. Ctrl-C "
                       "saves the last finished step; --resume continues the run, and on a finished run prints its "
                       "scores again.")
    f.add_argument("--task", choices=["topics", "acceptability", "questions"], default=None,
                   help="topics: which part of the reference a run of words is from (classification, chapter "
                        "6.1); acceptability: the reference's own words or shuffled (classification); questions: "
                        "what a method does, which section a passage is from (answers generated, chapter 6.2)")
    f.add_argument("--out", required=True, type=Path, help="output folder for checkpoints and metrics.jsonl")
    f.add_argument("--base", default=None,
                   help="the pre-trained model: 'book' (default, shipped), a checkpoint folder (a train run's "
                        "--out), or 'gpt2' (OpenAI's, from Hugging Face's cache or hub)")
    f.add_argument("--method", choices=["full", "lora", "head"], default=None,
                   help="what trains: every weight, LoRA adapters on the attention (default), or a classifier's "
                        "head alone")
    f.add_argument("--rank", type=_positive_int, default=None, help="LoRA's rank r (default 8)")
    f.add_argument("--alpha", type=_positive_float, default=None, help="LoRA's alpha; the update is scaled by "
                   "alpha / r (default 16)")
    f.add_argument("--max-steps", type=_positive_int, default=None,
                   help="optimizer steps (default: 100 for topics, 150 for acceptability and questions)")
    f.add_argument("--resume", action="store_true",
                   help="continue the run in --out with every saved setting; --max-steps, --lr, the intervals, "
                        "--test-items and --device may change. A finished run prints its scores")
    f.add_argument("--batch-size", type=_positive_int, default=None, help="examples per step (default 32 / 16)")
    f.add_argument("--lr", type=_positive_float, default=None,
                   help="peak learning rate (default: 3e-4 full, 3e-3 LoRA, 1e-2 head)")
    f.add_argument("--eval-interval", type=_non_negative_int, default=None,
                   help="steps between validation losses; 0: only at the end (default 25)")
    f.add_argument("--ckpt-interval", type=_non_negative_int, default=None, help=_CKPT_HELP)
    f.add_argument("--test-items", type=_positive_int, default=None,
                   help="score on the first N test items only (default: all; answering questions takes longest)")
    f.add_argument("--seed", type=_seed, default=None, help="seed of the head, LoRA and batches (default 1337)")
    f.add_argument("--device", choices=["cpu", "cuda", "mps"], default=None, help="default: the best available")
    f.add_argument("--quiet", action="store_true", help="no progress bars (training, and scoring before and after)")

    s = sub.add_parser("sample", help="continue a prompt with a trained model",
                       description="Print the prompt continued by the model of a checkpoint folder, up to "
                       "--max-new-tokens or end-of-text (never printed). A model fine-tuned on questions (the "
                       "merged/ folder of 'finetune --task questions') answers greedily, and a bare question is "
                       "asked in its prompt format.")
    s.add_argument("--ckpt", required=True, type=Path, help="checkpoint folder (the --out of a train run)")
    s.add_argument("--prompt", default=None,
                   help="text to continue (default: a newline); for a model fine-tuned on questions, a question")
    s.add_argument("--max-new-tokens", type=_positive_int, default=100, help="tokens to generate (default 100)")
    s.add_argument("--seed", type=_seed, default=1337, help="sampling seed: same seed, same text (default 1337)")
    s.add_argument("--temperature", type=_temperature, default=None,
                   help="softmax temperature; 0: greedy, always the likeliest token (default 0.8; 0 for a model "
                        "fine-tuned on questions)")
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
