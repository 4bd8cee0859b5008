"""Files written whole or not at all, and the sha256 that checks them.

Every file gpt2lib writes that a later run reads (token arrays, checkpoints, tokenizers, the exercise
record) goes through :func:`write_atomic`: the bytes go to a uniquely named temporary file beside the
target, are flushed to disk, and only then renamed over the target. A crash, a full disk or a
``kill -9`` at any moment leaves either the old file or the new one, never half of one. The
temporary names share one pattern (``.NAME.*.tmp``) so that :func:`remove_stale_temporaries` can
sweep what an interrupted writer left behind.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["write_atomic", "write_bytes_atomic", "write_text_atomic", "remove_stale_temporaries", "file_sha256"]

TMP_SUFFIX = ".tmp"


def write_atomic(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file beside ``path``, fsync it, rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """``path.write_bytes(data)``, atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """``path.write_text(text)`` in UTF-8, atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files an interrupted :func:`write_atomic` left in ``folder``; return them.

    Call it only while holding the folder (one writer at a time), or a live writer loses its file."""
    removed = []
    for tmp in Path(folder).glob(f".*{TMP_SUFFIX}"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in chunks (``hashlib.file_digest`` where Python has it, 3.11+),
    so a large array or checkpoint is never held in memory twice."""
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):
            return hashlib.file_digest(f, "sha256").hexdigest()
        h = hashlib.sha256()  # Python 3.10
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        return h.hexdigest()
