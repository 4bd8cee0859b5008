"""The book's default model: small enough to train on a laptop CPU in about a minute, real enough to
beat the bigram baseline clearly and to write text that reads like its corpus.

Chapters 5, 6, 7 and 9 each open in a fresh runtime and need a trained model. :func:`book_model`
trains it once (seeded, deterministic on a CPU) and caches the checkpoint under
``cache_dir("book-model", <key>)``; later calls load it in a second. The key hashes the corpus text
and both configurations, so a change to either trains a new model instead of loading a stale one.

The tokenizer is a byte-level BPE with 2,048 ids trained on the corpus's training split. GPT-2's
50,257-id vocabulary would make a model this small mostly embedding table (50,257 x 128 = 6.4M of its
parameters) and leave each id too few examples in a 0.4 MB corpus to learn from.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .data import TokenData, load_text, prepare, split_text
from .evaluation import evaluate
from .model import PRESETS, GPTConfig
from .runtime import cache_dir, seed_everything
from .training.checkpoint import has_checkpoint, load_checkpoint, read_checkpoint_info
from .training.loop import TrainConfig, train

__all__ = ["BOOK_CORPUS", "BOOK_VOCAB_SIZE", "BOOK_MODEL", "BOOK_TRAIN", "book_tokenizer", "book_data",
           "book_model", "book_model_info", "book_model_config"]

BOOK_CORPUS = "python-docs"
BOOK_VOCAB_SIZE = 2048
# The shape of the book's model is the "small" preset (vocab_size comes from the tokenizer).
BOOK_MODEL: dict[str, Any] = dict(PRESETS["small"], dropout=0.0)
BOOK_TRAIN = TrainConfig(max_steps=600, batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=30,
                         weight_decay=0.1, grad_clip=1.0, eval_interval=100, log_interval=10, seed=1337,
                         device="cpu")


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def book_tokenizer(corpus: str = BOOK_CORPUS, vocab_size: int = BOOK_VOCAB_SIZE, *, progress: bool = False):
    """The book's BPE tokenizer, trained on ``corpus``'s training split (cached after the first call)."""
    from .tokenizer import BPETokenizer

    train_text, _ = split_text(load_text(corpus))
    folder = cache_dir("book-model", "tokenizers")
    path = folder / f"{corpus}-{vocab_size}-{_key(train_text, vocab_size)}.json"
    if path.exists():
        return BPETokenizer.load(path)
    tok = BPETokenizer.train(train_text, vocab_size, progress=progress, name=f"{corpus}-{vocab_size}")
    tok.save(path)  # BPETokenizer.save writes to a temporary file and renames it
    return tok


def book_data(tokenizer: Any = None, corpus: str = BOOK_CORPUS) -> TokenData:
    """The corpus tokenized with the book's tokenizer, as memory-mapped train and validation ids."""
    return prepare(corpus, tokenizer if tokenizer is not None else book_tokenizer(corpus))


def book_model_config(vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, **BOOK_MODEL)


def book_model(progress: bool = True):
    """``(model, tokenizer)``: the book's trained default model (eval mode, CPU) and its tokenizer.

    Loaded from the cache when an earlier call trained it; otherwise trained now (about a minute on
    two CPU cores, seeded) and cached atomically: trained into a temporary folder that is renamed into
    place only when complete, so an interrupted run never leaves a half-written model to load.
    Its measured metrics (validation loss, bits per byte against the bigram's) are printed either way and
    returned by :func:`book_model_info`.
    """
    tok = book_tokenizer(progress=progress)
    final, root = _book_folder()
    with _exclusive(root / f"{final.name}.lock"):
        return _load_or_train(final, root, tok, progress)


def book_model_info(progress: bool = True) -> dict[str, Any]:
    """The book model's ``checkpoint.json``: its configs, step and, under ``"final"``, the metrics measured
    when it was trained (``val_loss``, ``perplexity``, ``bits_per_byte``, ``bigram_bits_per_byte``, ...)."""
    final, _ = _book_folder()
    if not has_checkpoint(final):
        book_model(progress=progress)
    return read_checkpoint_info(final)


def _book_folder() -> tuple[Path, Path]:
    key = _key(load_text(BOOK_CORPUS), BOOK_VOCAB_SIZE, BOOK_MODEL, dataclasses.asdict(BOOK_TRAIN))
    root = cache_dir("book-model")
    return root / f"{BOOK_CORPUS}-{key}", root


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One trainer at a time: chapters started together wait for the first one's model instead of
    each training their own copy on the same cores."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; the atomic rename still keeps the cache whole
        yield
        return
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print("book model: another process is training it; waiting for that one to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _summary(metrics: dict[str, Any]) -> str:
    return (f"val loss {metrics.get('val_loss', float('nan')):.3f}, "
            f"{metrics.get('bits_per_byte', float('nan')):.3f} bits per byte "
            f"(byte bigram {metrics.get('bigram_bits_per_byte', float('nan')):.3f})")


def _load_or_train(final: Path, root: Path, tok: Any, progress: bool):
    from .model import GPT

    if has_checkpoint(final):
        model, saved_tok, info = load_checkpoint(final)
        print(f"book model: loaded from the cache, step {info['step']}, {_summary(info.get('final', {}))}")
        return model, saved_tok or tok

    data = book_data(tok)
    seed_everything(BOOK_TRAIN.seed)
    model = GPT(book_model_config(tok.vocab_size))
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".training-"))
    try:
        result = train(model, data, BOOK_TRAIN, out_dir=tmp, tokenizer=tok, progress=progress)
        # Measured once here, so that chapters can quote them without re-evaluating.
        final_metrics = {**evaluate(model, data), "seconds": result.seconds, "tokens_per_s": result.tokens_per_s}
        info_path = tmp / "checkpoint.json"
        info = json.loads(info_path.read_text())
        info["final"] = final_metrics
        info_path.write_text(json.dumps(info, indent=1))
        try:
            os.replace(tmp, final)  # atomic; fails if another process finished first
        except OSError:
            if not has_checkpoint(final):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"book model: trained now in {result.seconds:.0f} s ({result.tokens_per_s:,.0f} tokens/s), "
          f"{_summary(final_metrics)}; cached")
    model, saved_tok, _ = load_checkpoint(final)
    return model, saved_tok or tok
