"""Which exercises a reader has passed, kept in a local JSON file and never sent anywhere.

The file lives in gpt2lib's cache folder (``~/.cache/gpt2lib/progress.json``), or wherever
``GPT2LIB_PROGRESS`` points.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..atomic import write_text_atomic

PROGRESS_ENV = "GPT2LIB_PROGRESS"


def progress_file() -> Path:
    """Where the record lives: ``$GPT2LIB_PROGRESS``, or ``progress.json`` in gpt2lib's cache folder."""
    if os.environ.get(PROGRESS_ENV):
        return Path(os.environ[PROGRESS_ENV])
    from gpt2lib.runtime import cache_dir

    return cache_dir() / "progress.json"


def load() -> dict[str, dict]:
    """Exercise name -> {"passed", "attempts", "last"}; an empty dict when there is no usable record."""
    path = progress_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # A damaged record must not stop a reader from checking exercises; start afresh.
        return {}
    return data if isinstance(data, dict) else {}


def record(name: str, passed: bool) -> None:
    """Remember the latest attempt; a pass is never forgotten by a later failed attempt."""
    data = load()
    entry = data.get(name)
    if not isinstance(entry, dict):  # absent, or a record edited by hand into something else
        entry = {"passed": False, "attempts": 0}
    attempts = entry.get("attempts", 0)
    entry["attempts"] = (attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 0) + 1
    entry["passed"] = bool(entry.get("passed")) or passed
    entry["last"] = time.strftime("%Y-%m-%d %H:%M:%S")
    data[name] = entry
    path = progress_file()
    try:
        write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only home must not break the exercise itself


def reset() -> None:
    """Forget every recorded attempt."""
    try:
        progress_file().unlink()
    except FileNotFoundError:
        pass
