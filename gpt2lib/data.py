"""Corpora and token arrays: the station between the tokenizer and the model (batches: :mod:`gpt2lib.batches`).

A corpus is named (``python-docs``, ``tiny-shakespeare``) or is a path to a text file or a folder of
text files. Its text is cut once into a training part and a validation part (the last ~10% of the
text, at a line boundary, so that no line is shared), each part is tokenized once, and the ids are
stored as ``uint16`` arrays on disk and memory-mapped: a 1 GB corpus then costs 2 bytes per token of
disk and nothing of RAM until a batch touches it.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import file_sha256, write_bytes_atomic
from .batches import get_batch, sequential_batches  # re-exported: chapters import them from here
from .runtime import InputError, MissingFileError, OfflineError, UserError, cache_dir, is_online

__all__ = [
    "CORPORA", "TINY_SHAKESPEARE_URL", "TINY_SHAKESPEARE_SHA256", "load_text", "python_docs_text",
    "split_text", "TokenData", "prepare", "get_batch", "sequential_batches", "CorpusError",
]

CORPORA = ("python-docs", "tiny-shakespeare")
TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
# The shipped snapshot of Python 3.11's pydoc topics (466,195 bytes, 465,048 characters).
PYTHON_DOCS_SHA256 = "2a95af4ac93f5b719944030ce3769070ddf827d847cba42192afa8da989e5dc4"
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
# Files read when a corpus is a folder: plain text and the source formats a reader is likely to have.
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".py")
ARRAYS = ("train.bin", "val.bin")


class CorpusError(UserError, ValueError):
    """A corpus that cannot be had as asked: not shipped with this Python, or changed upstream."""


# ---------------------------------------------------------------------------------------- text
def python_docs_text() -> str:
    """The reference pages of Python's own documentation (about 0.46 MB of English prose and code).

    The text is the ``pydoc_data.topics`` of Python 3.11 (the pages behind ``help("if")``), joined in
    sorted order and shipped with gpt2lib as ``corpora/python-docs.txt.gz`` under the Python Software
    Foundation's licence (``corpora/LICENSE-python-docs.txt``). Shipping a snapshot, rather than
    reading the running Python's copy, gives every Python version and platform the same bytes, so a
    reader anywhere gets the book's numbers. Its sha256 is checked on every load.
    """
    raw = gzip.decompress((resources.files("gpt2lib") / "corpora" / "python-docs.txt.gz").read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != PYTHON_DOCS_SHA256:
        raise CorpusError(f"gpt2lib's python-docs corpus has sha256 {digest}, expected {PYTHON_DOCS_SHA256}: "
                          "the installed package is damaged; reinstall gpt2lib")
    return raw.decode("utf-8")


def _tiny_shakespeare_text() -> str:
    """Downloaded once (pooch: progress bar, sha256 check, cached), then read from the cache."""
    folder = cache_dir("corpora")
    path = folder / "tiny-shakespeare.txt"
    cached = path.is_file() and file_sha256(path) == TINY_SHAKESPEARE_SHA256
    if not cached and not is_online():
        raise OfflineError("tiny-shakespeare is not cached and this machine is offline; use the embedded "
                           "corpus 'python-docs' or a path to a local text file")
    if not cached:
        import pooch

        path.unlink(missing_ok=True)  # a damaged copy is replaced, never read
        try:
            pooch.retrieve(TINY_SHAKESPEARE_URL, known_hash=f"sha256:{TINY_SHAKESPEARE_SHA256}",
                           fname=path.name, path=folder, progressbar=True)
        except ValueError as exc:  # pooch's hash mismatch; it has already removed the download
            raise CorpusError(f"the downloaded tiny-shakespeare does not match its sha256 ({exc}); the file "
                              f"changed upstream or the download was cut: run again") from None
    return path.read_text(encoding="utf-8")


def load_text(corpus: str | os.PathLike) -> str:
    """The text of a corpus: ``"python-docs"`` (embedded), ``"tiny-shakespeare"`` (downloaded once when
    online, then cached), a text file, or a folder (its ``.txt/.md/.rst/.py`` files, sorted by path,
    joined by blank lines)."""
    if not isinstance(corpus, (str, os.PathLike)):
        raise TypeError(f"corpus must be a name or a path, got {type(corpus).__name__}")
    if corpus == "python-docs":
        text = python_docs_text()
    elif corpus == "tiny-shakespeare":
        text = _tiny_shakespeare_text()
    else:
        path = Path(corpus).expanduser()
        if not path.exists():
            raise MissingFileError(f"corpus {str(corpus)!r} is neither a known name ({', '.join(CORPORA)}) "
                                   f"nor an existing file or folder")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
            if not files:
                raise InputError(f"folder {path} holds no text files ({', '.join(TEXT_SUFFIXES)})")
            text = "\n\n".join(_read_utf8(p) for p in files)
        else:
            text = _read_utf8(path)
    if not text.strip():
        raise InputError(f"corpus {str(corpus)!r} is empty: there is nothing to train on")
    return text


def _read_utf8(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it first, "
                         f"e.g. iconv -t utf-8") from None


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """``(train, val)``: the validation part is the last ``val_fraction`` of the text, starting at a
    line boundary. A fixed cut (not a random one) keeps the split identical across runs and readers,
    and a contiguous tail means no sentence is half in training and half in validation."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not 0.0 < float(val_fraction) < 1.0:
        raise InputError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    cut = int(len(text) * (1.0 - val_fraction))
    newline = text.rfind("\n", 0, cut)
    # Prefer a line boundary, unless the text has no line break near the cut (one very long line).
    if newline > 0 and cut - newline < max(1, len(text) // 20):
        cut = newline + 1
    train, val = text[:cut], text[cut:]
    if not train.strip() or not val.strip():
        raise InputError(f"the text ({len(text)} characters) is too short to split into training and "
                         f"validation parts; give a longer corpus")
    return train, val


# ------------------------------------------------------------------------------------- token arrays
def _encode(tokenizer: Any, text: str) -> np.ndarray:
    # Special-token text inside a corpus (e.g. a document quoting "<|endoftext|>") is ordinary text.
    try:
        ids = tokenizer.encode(text, allowed_special=set())
    except TypeError:
        ids = tokenizer.encode(text)
    vocab = int(tokenizer.vocab_size)
    if vocab > 2**16:
        raise InputError(f"vocabulary of {vocab} ids does not fit in uint16 token arrays (at most 65,536)")
    return np.asarray(ids, dtype=np.uint16)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A short hash that changes whenever the tokenizer would produce different ids.

    Saving the tokenizer and hashing its files covers every tokenizer with ``save``; the cache of token
    arrays is keyed by it, so a retrained tokenizer never reuses stale ids.
    """
    fp = getattr(tokenizer, "fingerprint", None)
    if isinstance(fp, str):  # BPETokenizer.fingerprint: its merges, pattern and special tokens
        return fp[:16]
    h = hashlib.sha256(f"{type(tokenizer).__name__}:{tokenizer.vocab_size}".encode())
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "tok"
        tokenizer.save(target)
        files = sorted(p for p in Path(tmp).rglob("*") if p.is_file())
        for p in files:
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class TokenData:
    """A corpus tokenized once: ``train`` and ``val`` id arrays (``uint16``, memory-mapped when cached)
    and how many UTF-8 bytes each part came from (bits per byte needs them)."""

    name: str
    train: np.ndarray
    val: np.ndarray
    train_bytes: int
    val_bytes: int
    vocab_size: int
    folder: Path | None = None

    def __repr__(self) -> str:
        return (f"TokenData({self.name!r}: {len(self.train):,} train / {len(self.val):,} val tokens, "
                f"{self.train_bytes / max(1, len(self.train)):.2f} bytes per token, vocab {self.vocab_size})")

    def split(self, name: str) -> np.ndarray:
        if name not in ("train", "val"):
            raise InputError(f"split must be 'train' or 'val', got {name!r}")
        return self.train if name == "train" else self.val


def _file_record(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def _cached(folder: Path) -> dict[str, Any] | None:
    """``meta.json`` of a cache folder whose arrays are exactly the ones written (size and sha256 as
    recorded), else None: a truncated, edited or half-copied array is rebuilt, never read."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        records = meta["files"]
        for name in ARRAYS:
            path = folder / name
            if not path.is_file() or path.stat().st_size != records[name]["size"]:
                return None
            if _file_record(path)["sha256"] != records[name]["sha256"]:
                return None
        int(meta["train_bytes"]), int(meta["val_bytes"]), int(meta["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta


def prepare(corpus: str | os.PathLike, tokenizer: Any, *, val_fraction: float = 0.1,
            cache: bool = True) -> TokenData:
    """Load, split and tokenize ``corpus``; with ``cache`` the ids are written once under
    ``cache_dir("data", ...)`` (keyed by the text's and the tokenizer's hashes) and memory-mapped
    afterwards. Each array's size and sha256 are recorded when it is written and checked when it is
    read; a cache that does not match is rebuilt."""
    text = load_text(corpus)
    name = corpus if isinstance(corpus, str) and corpus in CORPORA else Path(corpus).name
    key = hashlib.sha256(f"{val_fraction!r}\0{text}".encode()).hexdigest()[:16]
    folder = cache_dir("data", f"{name}-{key}-{tokenizer_fingerprint(tokenizer)}") if cache else None
    if folder is not None:
        meta = _cached(folder)
        if meta is not None:
            return TokenData(name, np.memmap(folder / "train.bin", dtype=np.uint16, mode="r"),
                             np.memmap(folder / "val.bin", dtype=np.uint16, mode="r"),
                             meta["train_bytes"], meta["val_bytes"], meta["vocab_size"], folder)
    train_text, val_text = split_text(text, val_fraction)
    train, val = _encode(tokenizer, train_text), _encode(tokenizer, val_text)
    meta = {"corpus": str(corpus), "train_tokens": int(len(train)), "val_tokens": int(len(val)),
            "train_bytes": len(train_text.encode("utf-8")), "val_bytes": len(val_text.encode("utf-8")),
            "vocab_size": int(tokenizer.vocab_size)}
    if folder is None:
        return TokenData(name, train, val, meta["train_bytes"], meta["val_bytes"], meta["vocab_size"])
    (folder / "meta.json").unlink(missing_ok=True)  # until rewritten, the folder claims nothing
    for fname, ids in zip(ARRAYS, (train, val)):
        write_bytes_atomic(folder / fname, ids.tobytes())
    meta["files"] = {fname: _file_record(folder / fname) for fname in ARRAYS}
    # meta.json last: its presence, with matching sizes and hashes, is what says the arrays are complete.
    write_bytes_atomic(folder / "meta.json", json.dumps(meta, indent=1).encode())
    return TokenData(name, np.memmap(folder / "train.bin", dtype=np.uint16, mode="r"),
                     np.memmap(folder / "val.bin", dtype=np.uint16, mode="r"),
                     meta["train_bytes"], meta["val_bytes"], meta["vocab_size"], folder)
