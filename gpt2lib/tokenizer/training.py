"""Deprecated name of :mod:`gpt2lib.tokenizer.merges` (two modules were called ``training``); kept for one release."""
from __future__ import annotations

import warnings

from .merges import *  # noqa: F401,F403
from .merges import __all__  # noqa: F401

warnings.warn("gpt2lib.tokenizer.training is now gpt2lib.tokenizer.merges; import from there",
              DeprecationWarning, stacklevel=2)
