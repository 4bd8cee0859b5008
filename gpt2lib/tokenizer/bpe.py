"""``BPETokenizer``: GPT-2's byte-level BPE, encode and decode, with a per-word cache.

A tokenizer is fully described by its ordered list of merges (pairs of byte strings), its special
tokens and its split pattern. Ids follow GPT-2's layout: 0-255 are the single bytes in
:data:`~gpt2lib.tokenizer.bytes_map.BYTE_ORDER`, 256 + k is the token made by merge k, and the special
tokens come last. (GPT-2's own ``encoder.json`` has exactly this layout, which is why a tokenizer
trained here loads into tiktoken and Hugging Face and gives the same ids.)

Encoding a word applies the merges by *rank* (:mod:`.encode` holds the two encoders: the
reference, one scan per merge, and the fast one the tokenizer uses); each word's ids are cached.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal, Union

import regex

from .._compat import renamed
from ..runtime import InputError
from .bytes_map import BYTE_ORDER, GPT2_PATTERN, bytes_to_str, check_split_pattern
from .encode import bpe_ids, reference_steps

AllowedSpecial = Union[Literal["all"], Iterable[str]]

_CACHE_LIMIT = 200_000  # words; bounds memory on huge, diverse corpora


def _bad_merge(k: int, merge: object) -> None:
    """Raise the error that says what is wrong with merge ``k`` (called once it is known to be wrong)."""
    if (isinstance(merge, (str, bytes)) or not isinstance(merge, Sequence) or len(merge) != 2
            or not all(isinstance(t, bytes) and t for t in merge)):
        raise InputError(f"merge {k} is {merge!r}; each merge must be a pair (left, right) of non-empty bytes")
    a, b = merge
    raise InputError(f"merge {k} ({bytes_to_str(a)!r} {bytes_to_str(b)!r}) uses a token that no earlier merge made: "
                     "the merges file is corrupt or out of order")


class BPETokenizer:
    """Byte-level BPE, identical to GPT-2's on GPT-2's files.

    Build one with :meth:`gpt2` (the real vocabulary, offline), :meth:`train` (from your text),
    :meth:`load` / :meth:`from_pretrained` (from files), or directly from merges.
    """

    def __init__(self, merges: Sequence[tuple[bytes, bytes]], special_tokens: Iterable[str] = ("<|endoftext|>",),
                 pattern: str = GPT2_PATTERN, name: str = "bpe") -> None:
        if isinstance(special_tokens, (str, bytes)):
            raise TypeError(f"special_tokens must be a list of strings, got the {type(special_tokens).__name__} "
                            f"{special_tokens!r}; write [{special_tokens!r}]")
        self._split = check_split_pattern(pattern)
        self.pattern = pattern
        self.name = name
        self.merges: list[tuple[bytes, bytes]] = []
        self._ranks: dict[tuple[bytes, bytes], int] = {}
        self._decoder: list[bytes] = [bytes([b]) for b in BYTE_ORDER]
        self._encoder: dict[bytes, int] = {t: i for i, t in enumerate(self._decoder)}
        self._byte_ids: list[int] = [self._encoder[bytes([b])] for b in range(256)]
        self._id_ranks: dict[tuple[int, int], int] = {}  # (left id, right id) -> rank; the merged id is 256 + rank
        encoder, decoder = self._encoder, self._decoder
        for k, m in enumerate(merges):
            try:
                a, b = m
                ia, ib = encoder.get(a), encoder.get(b)
            except (TypeError, ValueError):  # not a pair, or an unhashable part
                ia = ib = None
            if ia is None or ib is None:
                _bad_merge(k, m)
            ab = a + b
            if ab in encoder:
                raise InputError(f"merge {k} ({bytes_to_str(a)!r} {bytes_to_str(b)!r}) makes a token that already "
                                 "exists: the merges file is corrupt")
            self.merges.append((a, b))
            self._ranks[(a, b)] = k
            self._id_ranks[(ia, ib)] = k
            encoder[ab] = len(decoder)
            decoder.append(ab)
        self.special_tokens: dict[str, int] = {}
        for s in special_tokens:
            if not isinstance(s, str) or not s:
                raise TypeError(f"special tokens must be non-empty strings, got {s!r}")
            if s not in self.special_tokens:
                self.special_tokens[s] = len(self._decoder)
                self._decoder.append(s.encode("utf-8"))
        self._special_by_id = {i: s for s, i in self.special_tokens.items()}
        self._cache: dict[str, list[int]] = {}
        self._special_re: dict[frozenset[str], regex.Pattern] = {}
        self._fingerprint: str | None = None

    # ----------------------------------------------------------------- facts
    @property
    def vocab_size(self) -> int:
        """Number of ids: 256 bytes + merges + special tokens (50257 for GPT-2)."""
        return len(self._decoder)

    @property
    def eos_token_id(self) -> int | None:
        """The id of ``<|endoftext|>`` (50256 for GPT-2), or None when this tokenizer has none."""
        return self.special_tokens.get("<|endoftext|>")

    @property
    def fingerprint(self) -> str:
        """A sha256 of everything that decides the ids (merges, special tokens, pattern): caches of token
        arrays are keyed by it, so a retrained tokenizer never reuses stale ids."""
        if self._fingerprint is None:
            h = hashlib.sha256(self.pattern.encode("utf-8"))
            for a, b in self.merges:
                h.update(len(a).to_bytes(2, "big") + a + len(b).to_bytes(2, "big") + b)
            for s, i in self.special_tokens.items():
                h.update(f"\x00{s}={i}".encode("utf-8"))
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def __repr__(self) -> str:
        return (f"BPETokenizer(name={self.name!r}, vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"special_tokens={list(self.special_tokens)})")

    def __len__(self) -> int:
        return self.vocab_size

    def token_bytes(self, token_id: int) -> bytes:
        """The raw bytes that ``token_id`` stands for."""
        self._check_ids([token_id])
        return self._decoder[token_id]

    def token_id(self, token: bytes | str) -> int:
        """The id of a token given as bytes (or as a str, encoded to UTF-8); KeyError if it is not one token."""
        if isinstance(token, str):
            if token in self.special_tokens:
                return self.special_tokens[token]
            token = token.encode("utf-8")
        return self._encoder[token]

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """Each id's text, for display (a token that cuts a UTF-8 character in two shows U+FFFD)."""
        ids = self._check_ids(ids)
        return [self._decoder[i].decode("utf-8", errors="replace") for i in ids]

    def split(self, text: str) -> list[str]:
        """The pre-tokenization step alone: the pieces BPE then encodes one by one."""
        return self._split.findall(text)

    # ---------------------------------------------------------------- encode
    def bpe(self, word: bytes) -> list[bytes]:
        """Apply the merges by rank to one word's bytes; return the resulting tokens as bytes.

        The same tokens as :meth:`bpe_reference`, in O(n log n) for a word of n bytes (see the module
        docstring)."""
        return [self._decoder[i] for i in self._bpe_ids(bytes(word))]

    def _bpe_ids(self, word: bytes) -> list[int]:
        return bpe_ids([self._byte_ids[b] for b in word], self._id_ranks)

    def bpe_reference(self, word: bytes) -> list[bytes]:
        """The teaching version of :meth:`bpe`: find the earliest-learnt pair present, merge it everywhere
        (:func:`~gpt2lib.tokenizer.merges.merge_pair`), repeat. Same tokens; one full scan of the word
        per merge, so quadratic on a long word."""
        parts: list[bytes] = []
        for parts in self._reference_steps(bytes(word)):  # noqa: B007 - the loop variable is the result
            pass  # keep only the last step: a long word has many
        return parts

    def _reference_steps(self, data: bytes) -> Iterator[list[bytes]]:
        return reference_steps(data, self._ranks)

    def merge_steps(self, word: str | bytes) -> list[list[bytes]]:
        """How one word is encoded, step by step: its bytes, then the parts after each merge (by rank)."""
        data = word.encode("utf-8") if isinstance(word, str) else bytes(word)
        steps = list(self._reference_steps(data))
        assert steps[-1] == self.bpe(data)  # the traced path ends where the fast encoder does
        return steps

    def _encode_ordinary(self, text: str) -> list[int]:
        cache, out = self._cache, []
        for word in self._split.findall(text):
            ids = cache.get(word)
            if ids is None:
                ids = self._bpe_ids(word.encode("utf-8"))
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[word] = ids
            out.extend(ids)
        return out

    def encode(self, text: str, allowed_special: AllowedSpecial = (), *, disallowed_special: AllowedSpecial = ()) -> list[int]:
        """Token ids of ``text``.

        Special-token text inside ``text`` (say a literal "<|endoftext|>") is encoded as *ordinary text*
        unless listed in ``allowed_special`` ("all" or a collection of special-token strings), in which
        case it becomes the special id. This default keeps user input from injecting control tokens.
        ``disallowed_special`` ("all" or a collection) makes such text an error instead, like tiktoken.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}"
                            + ("; decode bytes with .decode('utf-8') first" if isinstance(text, (bytes, bytearray)) else "")
                            + ("; use encode_batch() for several texts" if isinstance(text, (list, tuple)) else ""))
        allowed = self._special_set(allowed_special, "allowed_special")
        disallowed = self._special_set(disallowed_special, "disallowed_special") - allowed
        if disallowed:
            for s in disallowed:
                if s in text:
                    raise InputError(f"the text contains the special token {s!r}; pass allowed_special={{{s!r}}} to "
                                     "encode it as the special id, or leave it out of disallowed_special to encode it "
                                     "as ordinary text")
        try:
            return self._encode(text, allowed)
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start]
            raise InputError(f"the text contains {bad!r} (U+{ord(bad):04X}), a lone surrogate that UTF-8 cannot "
                             "encode; clean the text first, e.g. text.encode('utf-8', 'replace').decode('utf-8')") from None

    def _encode(self, text: str, allowed: frozenset[str]) -> list[int]:
        if not allowed:
            return self._encode_ordinary(text)
        pattern = self._special_re.get(allowed)
        if pattern is None:
            alternatives = "|".join(regex.escape(s) for s in sorted(allowed, key=len, reverse=True))
            pattern = self._special_re[allowed] = regex.compile(f"({alternatives})")
        out: list[int] = []
        for k, part in enumerate(pattern.split(text)):
            if k % 2:  # the captured separators are the special tokens
                out.append(self.special_tokens[part])
            elif part:
                out.extend(self._encode_ordinary(part))
        return out

    def encode_batch(self, texts: Iterable[str], allowed_special: AllowedSpecial = ()) -> list[list[int]]:
        """:meth:`encode` for each text."""
        if isinstance(texts, str):
            raise TypeError("encode_batch() takes a list of str; use encode() for a single text")
        return [self.encode(t, allowed_special) for t in texts]

    def _special_set(self, value: AllowedSpecial, name: str) -> frozenset[str]:
        if value == "all":
            return frozenset(self.special_tokens)
        if isinstance(value, str):
            raise TypeError(f"{name} must be 'all' or a collection of special-token strings, got the str {value!r}")
        chosen = frozenset(value)
        unknown = chosen - set(self.special_tokens)
        if unknown:
            raise InputError(f"{name} names {sorted(unknown)}, which are not special tokens of this tokenizer "
                             f"(it has {sorted(self.special_tokens)})")
        return chosen

    # ---------------------------------------------------------------- decode
    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        if hasattr(ids, "tolist"):  # a torch tensor or numpy array
            ids = ids.tolist()
        if isinstance(ids, int):
            raise TypeError("expected a sequence of ids, got a single int; wrap it in a list: [id]")
        if isinstance(ids, (str, bytes)):
            raise TypeError(f"expected a sequence of int ids, got {type(ids).__name__}")
        ids = list(ids)
        n = len(self._decoder)
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"token ids must be ints, got {i!r} ({type(i).__name__}); a batch? decode each row")
            if not 0 <= i < n:
                raise InputError(f"token id {i} is out of range for a vocabulary of {n} ids (0..{n - 1})")
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes of ``ids`` joined (may end in the middle of a UTF-8 character)."""
        ids = self._check_ids(ids)
        return b"".join(self._decoder[i] for i in ids)

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Text of ``ids``. Arbitrary ids can form invalid UTF-8: replaced by U+FFFD by default,
        a UnicodeDecodeError with ``errors="strict"``."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    # ----------------------------------------------------- construction, files
    @classmethod
    def train(cls, text: str | Iterable[str], vocab_size: int, *, special_tokens: Iterable[str] = ("<|endoftext|>",),
              progress: bool = True, pattern: str = GPT2_PATTERN, name: str = "trained") -> "BPETokenizer":
        """Learn a tokenizer of ``vocab_size`` ids (256 bytes + merges + special tokens) from ``text``.

        Deterministic: merges are chosen by frequency, ties going to the pair whose (left, right) byte
        strings sort smallest (see :mod:`gpt2lib.tokenizer.merges`). Stops early, with a warning,
        if the text runs out of pairs to merge.
        """
        from .merges import learn_merges

        if isinstance(special_tokens, (str, bytes)):
            raise TypeError(f"special_tokens must be a list of strings, got the {type(special_tokens).__name__} "
                            f"{special_tokens!r}; write [{special_tokens!r}]")
        special_tokens = tuple(dict.fromkeys(special_tokens))
        merges = learn_merges(text, vocab_size, special_tokens=special_tokens, pattern=pattern, progress=progress)
        return cls(merges, special_tokens, pattern, name=name)

    @classmethod
    def gpt2(cls) -> "BPETokenizer":
        """The real GPT-2 vocabulary (50257 ids), offline, hash-checked. See :mod:`.files`."""
        from .files import load_gpt2

        return load_gpt2(cls)

    @classmethod
    def from_pretrained(cls, dir_or_name: str) -> "BPETokenizer":
        """From a folder (encoder.json + vocab.bpe, or Hugging Face's vocab.json + merges.txt, or our own
        tokenizer.json), or a name: "gpt2" (offline), or a hub repository when online."""
        from .files import from_pretrained

        return from_pretrained(cls, dir_or_name)

    def save(self, path: str | os.PathLike) -> None:
        """Save in the book's own one-file JSON format (see :meth:`load`)."""
        from .files import save

        save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BPETokenizer":
        """Load a file written by :meth:`save`."""
        from .files import load

        return load(cls, path)

    @renamed(directory="folder")
    def save_gpt2_files(self, folder: str | os.PathLike) -> None:
        """Write encoder.json + vocab.bpe (GPT-2, tiktoken) and vocab.json + merges.txt (Hugging Face)."""
        from .files import save_gpt2_files

        save_gpt2_files(self, folder)
