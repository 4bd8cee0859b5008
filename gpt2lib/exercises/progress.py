"""Which exercises a reader has passed, kept in a local JSON file and never sent anywhere.

Where it lives, in order: wherever ``GPT2LIB_PROGRESS`` points; on Colab with Google Drive mounted,
``MyDrive/gpt2lib/progress.json`` (it outlives the runtime, and every chapter's runtime sees it);
otherwise ``progress.json`` in gpt2lib's cache folder (``gpt2lib.runtime.cache_dir()``). A Colab
runtime's own disk is erased when the runtime ends, and each chapter opens in a runtime of its own, so there
:func:`where` says so and :func:`export_progress` / :func:`import_progress` carry the record across.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..atomic import write_text_atomic

PROGRESS_ENV = "GPT2LIB_PROGRESS"
DRIVE = Path("/content/drive/MyDrive")  # where Colab mounts Google Drive


def _on_colab() -> bool:
    from ..runtime import on_colab

    return on_colab()


def progress_file() -> Path:
    """Where the record lives: ``$GPT2LIB_PROGRESS``; Google Drive when mounted on Colab; else the cache."""
    if os.environ.get(PROGRESS_ENV):
        return Path(os.environ[PROGRESS_ENV])
    if _on_colab() and DRIVE.is_dir():
        return DRIVE / "gpt2lib" / "progress.json"
    from ..runtime import cache_dir

    return cache_dir() / "progress.json"


def where() -> str:
    """One sentence for the reader: where the record is kept, and whether it will outlive this runtime."""
    if os.environ.get(PROGRESS_ENV):
        return ""  # set on purpose (the book build sets it): the reader asked for that place
    path = progress_file()
    shown = str(path).replace(str(Path.home()), "~", 1)
    if _on_colab() and not str(path).startswith(str(DRIVE)):
        return (f"Your record is in {shown}, on this Colab runtime's disk, which is erased when the runtime ends. "
                "To keep it, mount Google Drive (from google.colab import drive; drive.mount('/content/drive')) "
                "before checking exercises, or call export_progress() and later import_progress(file).")
    return f"Your record is kept in {shown}."


def export_progress(path: str | os.PathLike = "gpt2lib-progress.json") -> Path:
    """Write the record to ``path`` (for another machine or runtime: :func:`import_progress` reads it)."""
    out = Path(path)
    write_text_atomic(out, json.dumps(load(), indent=1, sort_keys=True))
    if _on_colab():
        try:
            from google.colab import files  # type: ignore[import-not-found]

            files.download(str(out))
        except Exception:  # noqa: BLE001 - the file is written either way; downloading is a convenience
            pass
    return out


def import_progress(path: str | os.PathLike) -> int:
    """Merge a record written by :func:`export_progress` into this one; return how many exercises it
    holds. A pass is never lost: passed is OR-ed, attempts and the last date take the larger value."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a progress record written by export_progress(): {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path} is not a progress record written by export_progress()")
    mine = load()
    for name, theirs in data.items():
        ours = mine.get(name) if isinstance(mine.get(name), dict) else {}
        attempts = [a for a in (ours.get("attempts"), theirs.get("attempts"))
                    if isinstance(a, int) and not isinstance(a, bool)]
        mine[name] = {"passed": bool(ours.get("passed")) or bool(theirs.get("passed")),
                      "attempts": max(attempts, default=0),
                      "last": max(str(ours.get("last", "")), str(theirs.get("last", "")))}
    write_text_atomic(progress_file(), json.dumps(mine, indent=1, sort_keys=True))
    return len(data)


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
