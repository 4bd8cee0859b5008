"""gpt2lib: the package that the book "GPT-2 from scratch" builds, one module per station of the
flow text -> bytes -> tokens -> batches -> embeddings -> attention + MLP blocks -> logits -> loss ->
next token -> text.

The public names are imported lazily, so that ``import gpt2lib`` stays fast and a chapter that only
needs the tokenizer does not pay for torch's import time twice.

The names a reader calls are functions and classes, never modules: ``from gpt2lib import generate, train``
gives the functions. Their modules are named after the concept (``gpt2lib.generation``,
``gpt2lib.training``, ``gpt2lib.evaluation``), so no module shadows a function of the same name. (The
modules ``attention``, ``model``, ``data``, ... are modules: the attention function a chapter teaches is
``gpt2lib.attention.attention``.)
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it
_PUBLIC = {
    "get_device": "runtime",
    "seed_everything": "runtime",
    "autocast_dtype": "runtime",
    "is_online": "runtime",
    "on_colab": "runtime",
    "cache_dir": "runtime",
    "describe_environment": "runtime",
    "autocast": "runtime",
    "OfflineError": "runtime",
    "UserError": "runtime",
    "BPETokenizer": "tokenizer",
    "get_batch": "batches",
    "KVCache": "attention",
    "GPT": "model",
    "GPTConfig": "model",
    "generate": "generation",
    "stream": "generation",
    "train": "training",
    "TrainConfig": "training",
    "TrainResult": "training",
    "save_checkpoint": "training",
    "load_checkpoint": "training",
    "evaluate": "evaluation",
    "load_hf": "hf",
    "save_hf": "hf",
    "book_model": "book",
    "book_tokenizer": "book",
    "book_data": "book",
    "chapter_model": "book",
}

if TYPE_CHECKING:  # what editors and type checkers see; at run time __getattr__ imports on first use
    from .attention import KVCache
    from .book import book_data, book_model, book_tokenizer, chapter_model
    from .batches import get_batch
    from .evaluation import evaluate
    from .generation import generate, stream
    from .hf import load_hf, save_hf
    from .model import GPT, GPTConfig
    from .runtime import (OfflineError, UserError, autocast, autocast_dtype, cache_dir, describe_environment,
                          get_device, is_online, on_colab, seed_everything)
    from .tokenizer import BPETokenizer
    from .training import TrainConfig, TrainResult, load_checkpoint, save_checkpoint, train

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'gpt2lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gpt2lib.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
