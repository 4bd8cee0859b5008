"""The book's default model: small enough to train on two CPU cores in about 75 seconds, real enough to
beat the bigram baseline clearly and to write text that reads like its corpus.

The trained model ships with the package, like the corpus it was trained on: a checkpoint folder under
``gpt2lib/models/`` (weights in safetensors, tokenizer and settings in JSON, about 4 MB) whose files
are checked against their ``SHA256SUMS`` on every load. Every reader, on any CPU or GPU, online or not,
loads the same bytes, so the chapters that use it print the same text everywhere. Training it is a
lesson (chapter 5.3 trains its own run) and a command: ``make book-model`` runs
:func:`train_book_model`, the seeded run that made the shipped files. Floating-point rounding differs
between processors, so a rebuild elsewhere gives other bytes but the same validation loss to about two
decimals; a test holds it to that.

The tokenizer is a byte-level BPE with 2,048 ids trained on the corpus's training split. GPT-2's
50,257-id vocabulary would make a model this small mostly embedding table (50,257 x 128 = 6.4M of its
parameters) and leave each id too few examples in a 0.4 MB corpus to learn from.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .atomic import file_sha256
from .data import TokenData, load_text, prepare, split_text
from .evaluation import evaluate
from .model import PRESETS, GPTConfig
from .runtime import UserError, cache_dir, get_device, seed_everything
from .training.checkpoint import load_checkpoint, load_saved_tokenizer, read_checkpoint_info, save_checkpoint
from .training import TrainConfig, train

if TYPE_CHECKING:
    from .model import GPT
    from .tokenizer import BPETokenizer

__all__ = ["BOOK_CORPUS", "BOOK_VOCAB_SIZE", "BOOK_MODEL", "BOOK_TRAIN", "BOOK_MODEL_DIR", "BookModelError",
           "book_tokenizer", "book_data", "book_model", "book_model_info", "book_model_config",
           "verify_book_model", "train_book_model", "write_book_model", "chapter_model", "fine_tuning_model", "ChapterModel", "OPENAI_NAME", "BOOK_NAME"]

BOOK_CORPUS = "python-docs"
BOOK_VOCAB_SIZE = 2048
# The shape of the book's model is the "small" preset (vocab_size comes from the tokenizer).
BOOK_MODEL: dict[str, Any] = dict(PRESETS["small"], dropout=0.0)
BOOK_TRAIN = TrainConfig(max_steps=600, batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=30,
                         weight_decay=0.1, grad_clip=1.0, eval_interval=100, log_interval=10, seed=1337,
                         device="cpu")
# The shipped checkpoint; `make book-model` rewrites it.
BOOK_MODEL_DIR = Path(__file__).resolve().parent / "models" / f"book-{BOOK_CORPUS}"
SUMS = "SHA256SUMS"


class BookModelError(UserError, RuntimeError):
    """The shipped book model is missing or its files are not the ones its SHA256SUMS names."""


def verify_book_model(folder: str | os.PathLike | None = None) -> Path:
    """Check every file of a book-model folder (default: the shipped one) against its ``SHA256SUMS``;
    return the folder.

    Raises :class:`BookModelError` (saying what to do) when a file is missing, altered, or not listed."""
    folder = Path(folder) if folder is not None else BOOK_MODEL_DIR
    fix = ("reinstall gpt2lib (pip install --force-reinstall gpt2lib), or in a checkout restore the folder "
           f"with 'git checkout -- {folder.name}' or rebuild it with 'make book-model'")
    sums = folder / SUMS
    if not sums.is_file():
        raise BookModelError(f"the book model is missing: {sums} does not exist; {fix}")
    listed = dict(reversed(line.split(None, 1)) for line in sums.read_text("utf-8").splitlines() if line.strip())
    present = {p.name for p in folder.iterdir() if p.is_file()} - {SUMS}
    if present != set(listed):
        raise BookModelError(f"the book model in {folder} holds {sorted(present)}, but {SUMS} lists "
                             f"{sorted(listed)}; {fix}")
    for name, digest in listed.items():
        actual = file_sha256(folder / name)
        if actual != digest:
            raise BookModelError(f"the book model's {name} has sha256 {actual[:12]}..., {SUMS} says "
                                 f"{digest[:12]}... (a damaged copy, or a Git LFS pointer); {fix}")
    return folder


def _train_tokenizer(corpus: str, vocab_size: int, progress: bool):
    from .tokenizer import BPETokenizer

    train_text, _ = split_text(load_text(corpus))
    key = hashlib.sha256(json.dumps([train_text, vocab_size]).encode()).hexdigest()[:12]
    path = cache_dir("book-model", "tokenizers") / f"{corpus}-{vocab_size}-{key}.json"
    if path.exists():
        return BPETokenizer.load(path)
    tok = BPETokenizer.train(train_text, vocab_size, progress=progress, name=f"{corpus}-{vocab_size}")
    tok.save(path)  # BPETokenizer.save writes to a temporary file and renames it
    return tok


def book_tokenizer(corpus: str | None = None, vocab_size: int | None = None, *,
                   progress: bool = False) -> BPETokenizer:
    """The book's BPE tokenizer: with no arguments, the one shipped with the book model; for another
    corpus or vocabulary size, trained on that corpus's training split (cached after the first call)."""
    if corpus in (None, BOOK_CORPUS) and vocab_size in (None, BOOK_VOCAB_SIZE):
        folder = verify_book_model()
        return load_saved_tokenizer(folder, read_checkpoint_info(folder))
    return _train_tokenizer(corpus or BOOK_CORPUS, vocab_size or BOOK_VOCAB_SIZE, progress)


def book_data(tokenizer: Any = None, corpus: str | None = None) -> TokenData:
    """The corpus tokenized with the book's tokenizer, as memory-mapped train and validation ids."""
    corpus = BOOK_CORPUS if corpus is None else corpus
    return prepare(corpus, tokenizer if tokenizer is not None else book_tokenizer(corpus))


def book_model_config(vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, **BOOK_MODEL)


def _summary(metrics: dict[str, Any]) -> str:
    return (f"val loss {metrics.get('val_loss', float('nan')):.3f}, "
            f"{metrics.get('bits_per_byte', float('nan')):.3f} bits per byte "
            f"(a bigram over the same tokens: {metrics.get('bigram_bits_per_byte', float('nan')):.3f})")


def book_model() -> tuple[GPT, BPETokenizer]:
    """``(model, tokenizer)``: the book's trained model, as shipped with gpt2lib (eval mode, on the CPU;
    move it with ``.to(device)``), after checking its files. One line says what it is and how it scored
    when it was trained; :func:`book_model_info` returns those metrics."""
    folder = verify_book_model()
    model, tok, info = load_checkpoint(folder)
    print(f"book model: shipped with gpt2lib, step {info['step']}, {_summary(info.get('final', {}))}")
    return model, tok


def book_model_info() -> dict[str, Any]:
    """The shipped book model's ``checkpoint.json``: its configs, step and, under ``"final"``, the metrics
    measured when it was trained (``val_loss``, ``perplexity``, ``bits_per_byte``, ``bigram_bits_per_byte``,
    the training's ``seconds`` and ``device``, ...)."""
    return read_checkpoint_info(verify_book_model())


OPENAI_NAME = "OpenAI's GPT-2 124M"
BOOK_NAME = "the book's small model"


class ChapterModel(NamedTuple):
    """What :func:`chapter_model` returns; unpacks as ``model, tok, name, openai = chapter_model()``."""

    model: Any
    tokenizer: Any
    name: str       # OPENAI_NAME or BOOK_NAME, for the prose
    openai: bool    # True when the model is OpenAI's GPT-2


def chapter_model(download: bool = True) -> ChapterModel:
    """OpenAI's GPT-2 124M where it can be had (Hugging Face's local cache, or the hub when online and
    ``download``), with GPT-2's own tokenizer; otherwise the book's model (:func:`book_model`). Either way
    on the CPU, in eval mode, with one line saying which it is and why."""
    from .hf import find_gpt2, load_hf

    folder = find_gpt2(download=download)
    if folder is not None:
        from .tokenizer import BPETokenizer

        print(f"{OPENAI_NAME}, from Hugging Face's cache (OpenAI's weights; GPT-2's tokenizer from gpt2lib)")
        return ChapterModel(load_hf(folder), BPETokenizer.gpt2(), OPENAI_NAME, True)
    print("OpenAI's GPT-2 is not in Hugging Face's local cache and the hub cannot be reached: "
          "the book's small model stands in")
    model, tok = book_model()
    return ChapterModel(model, tok, BOOK_NAME, False)


# ------------------------------------------------------------------------------------ rebuilding it


def fine_tuning_model() -> ChapterModel:
    """The model chapters 6.1 and 6.2 fine-tune: OpenAI's GPT-2 124M where a CUDA GPU runs it and it can be had
    (:func:`chapter_model`), else the book's model, since fine-tuning GPT-2 on a CPU several times takes far
    longer than a section's budget. On the CPU, in eval mode, with one line saying which and why."""
    if get_device().type == "cuda":
        return chapter_model()
    print("no CUDA GPU here: fine-tuning the book's model (GPT-2 124M would take far too long on a CPU)")
    model, tok = book_model()
    return ChapterModel(model, tok, BOOK_NAME, False)

def train_book_model(out: str | os.PathLike, *, progress: bool = True, device: str | None = None) -> dict[str, Any]:
    """Train the book model as the shipped one was trained (seeded; the CPU unless ``device``) and write it,
    with its ``SHA256SUMS``, into the folder ``out``, replacing what was there only once it is complete.
    Returns the measured metrics. ``make book-model`` calls this with :data:`BOOK_MODEL_DIR`."""
    from .model import GPT

    out = Path(out)
    tok = _train_tokenizer(BOOK_CORPUS, BOOK_VOCAB_SIZE, progress)
    data = prepare(BOOK_CORPUS, tok)
    config = dataclasses.replace(BOOK_TRAIN, device=str(get_device(device or BOOK_TRAIN.device)))
    seed_everything(config.seed)
    model = GPT(book_model_config(tok.vocab_size))
    work = Path(tempfile.mkdtemp(prefix="gpt2lib-book-model-"))
    try:
        result = train(model, data, config, folder=work / "run", tokenizer=tok, progress=progress)
        final = {**evaluate(model, data), "seconds": round(result.seconds, 1),
                 "tokens_per_s": round(result.tokens_per_s), "device": config.device}
        write_book_model(model, tok, step=result.steps, train_config=config, final=final, out=out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def write_book_model(model: Any, tok: Any, *, step: int, train_config: TrainConfig, final: dict[str, Any],
                     out: str | os.PathLike) -> Path:
    """Write a book-model folder (weights, tokenizer, settings, ``SHA256SUMS``; no optimizer state) to ``out``,
    replacing what was there only once the new one is complete and verified."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        built = work / "model"
        save_checkpoint(model, built, step=step, train_config=train_config, tokenizer=tok,
                        extra={"corpus": BOOK_CORPUS, "final": final})
        (built / ".lock").unlink(missing_ok=True)
        files = sorted(p for p in built.iterdir() if p.is_file())
        (built / SUMS).write_text("".join(f"{file_sha256(p)}  {p.name}\n" for p in files), encoding="utf-8")
        for p in built.iterdir():
            p.chmod(0o644)  # the atomic writer's temporary files are private; these are package data
        verify_book_model(built)
        if out.exists():
            os.replace(out, work / "old")
        os.replace(built, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
