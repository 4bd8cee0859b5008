"""gpt2lib: the package that the book "GPT-2 from scratch" builds, one module per station of the
flow text -> bytes -> tokens -> batches -> embeddings -> attention + MLP blocks -> logits -> loss ->
next token -> text.

The public names are imported lazily, so that ``import gpt2lib`` stays fast and a chapter that only
needs the tokenizer does not pay for torch's import time twice.

The names a reader calls are functions and classes, never modules: ``from gpt2lib import generate, train``
gives the functions. Their modules are named after the concept (``gpt2lib.generation``,
``gpt2lib.training``, ``gpt2lib.evaluation``), so no module shadows a function of the same name.
"""
from __future__ import annotations

import importlib
from typing import Any

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
}

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
