"""gpt2lib: the package that the book "GPT-2 from scratch" builds, one module per station of the
flow text -> bytes -> tokens -> batches -> embeddings -> attention + MLP blocks -> logits -> loss ->
next token -> text.

The public names are imported lazily, so that ``import gpt2lib`` stays fast and a chapter that only
needs the tokenizer does not pay for torch's import time twice.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC = {
    "get_device": "runtime",
    "seed_everything": "runtime",
    "autocast_dtype": "runtime",
    "is_online": "runtime",
    "on_colab": "runtime",
    "cache_dir": "runtime",
    "describe_environment": "runtime",
    "BPETokenizer": "tokenizer",
    "GPT": "model",
    "GPTConfig": "model",
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
