"""Byte-level BPE, written from scratch and identical to GPT-2's.

- :mod:`.bytes_map`: the byte-to-unicode map and GPT-2's pre-tokenization pattern;
- :mod:`.bpe`: :class:`BPETokenizer` (encode in O(n log n) per word, the simple reference encoder,
  decode, special tokens, per-word cache);
- :mod:`.encode`: the two encoders of one word (the reference, one scan per merge; the fast heap);
- :mod:`.merges`: ``merge_pair`` (the one "merge one pair" step), the fast incremental trainer and the
  naive reference it must agree with;
- :mod:`.files`: GPT-2's files (offline, hash-checked), Hugging Face's, and the book's own format, each
  checked on load (:class:`TokenizerFileError`).
"""
from __future__ import annotations

from .bpe import BPETokenizer
from .bytes_map import (BYTE_ORDER, GPT2_PATTERN, bytes_to_str, bytes_to_unicode, check_split_pattern, str_to_bytes,
                        unicode_to_bytes)
from .files import TokenizerFileError

__all__ = ["BPETokenizer", "BYTE_ORDER", "GPT2_PATTERN", "TokenizerFileError", "bytes_to_str", "bytes_to_unicode",
           "check_split_pattern", "str_to_bytes", "unicode_to_bytes"]
