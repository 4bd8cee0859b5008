"""Which exercises a reader has passed, kept in a local JSON file and never sent anywhere.

Where it lives, in order: wherever ``GPT2LIB_PROGRESS`` points; on Colab with Google Drive mounted,
``MyDrive/gpt2lib/progress.json`` (it outlives the runtime, and every chapter's runtime sees it);
otherwise ``progress.json`` in gpt2lib's cache folder (``gpt2lib.runtime.cache_dir()``). A Colab
runtime's own disk is erased when the runtime ends, and each chapter opens in a runtime of its own, so there
:func:`where` says so and :func:`export_progress` / :func:`import_progress` carry the record across.

The record is the reader's work, so it is never silently lost: every change is a read-modify-write under
a file lock (``filelock``; several kernels may check exercises at once), the file is replaced whole
(:mod:`gpt2lib.atomic`), a record that cannot be read (a half-synced Drive file) is moved aside under a
name the reader is told, and a place that cannot be written is reported in one line; none of these stops
the checker.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, SoftFileLock, Timeout

from ..atomic import write_text_atomic

PROGRESS_ENV = "GPT2LIB_PROGRESS"
DRIVE = Path("/content/drive/MyDrive")  # where Colab mounts Google Drive
LOCK_TIMEOUT_S = 20.0  # a writer holds the lock for milliseconds; longer means a stuck process
_reported: set[str] = set()
# called with the record after every write, under its lock (gpt2lib.exercises.yours adds the module writer)
after_write: list[Callable[[dict[str, Any]], None]] = []  # each problem is reported once per session, not after every check


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


def _report(key: str, line: str) -> None:
    if key not in _reported:
        _reported.add(key)
        print(line)


class _Damaged(Exception):
    """The record exists but is not one (cut short, not JSON, not a dict)."""


def _read(path: Path) -> dict[str, Any]:
    """The record at ``path``: {} when there is none; :class:`_Damaged` when there is one that cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as exc:
        raise _Damaged(f"not UTF-8 text: {exc.reason}") from None
    if not text.strip():
        return {}  # an empty file (created, never written) holds nothing to lose
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _Damaged(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _Damaged(f"a JSON {type(data).__name__}, not a record")
    return data


def _set_aside(path: Path, why: str) -> Path:
    """Rename a damaged record to a free name beside it and tell the reader; return the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.stem}.damaged-{stamp}{path.suffix}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.stem}.damaged-{stamp}-{n}{path.suffix}")
    os.replace(path, aside)
    print(f"⚠ your progress record {path} could not be read ({why}); it is kept as {aside}, and a new record "
          f"starts. Your earlier passes are in that file: once it is whole again, import_progress('{aside}') "
          "merges it back.")
    return aside


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Hold the record's lock, a file beside it, so that every kernel writing this record meets it."""
    name = str(path.with_name(path.name + ".lock"))
    lock: FileLock | SoftFileLock = FileLock(name, timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except NotImplementedError:  # older filelock on a mount without flock: the lock file's existence instead
        lock = SoftFileLock(name, timeout=LOCK_TIMEOUT_S)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _load_locked(path: Path) -> dict[str, Any]:
    try:
        return _read(path)
    except _Damaged as exc:
        _set_aside(path, str(exc))
        return {}


def _update(change: Callable[[dict[str, Any]], None]) -> bool:
    """Apply ``change`` to the record under its lock and write it back whole; False (after one line saying
    why) when the record's place cannot be locked or written."""
    path = progress_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock(path):
            data = _load_locked(path)
            change(data)
            write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))
            for hook in after_write:  # yours.write_module: my_gpt2lib.py, from the record, under the same lock
                hook(data)
        return True
    except Timeout:
        _report(f"busy:{path}", f"⚠ progress not recorded: another process has held {path}.lock for over "
                f"{LOCK_TIMEOUT_S:g} s (a stuck kernel? restart it, or delete that file if none is running).")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        _report(f"unwritable:{path}", f"⚠ progress not recorded: cannot write {path} ({reason}); set the "
                f"{PROGRESS_ENV} environment variable to a file in a folder you can write to.")
    return False


def load() -> dict[str, dict]:
    """Exercise name -> {"passed", "attempts", "last"}; an empty dict when there is no usable record.

    A damaged record is moved aside (and the reader told where), never read as empty and later written over."""
    path = progress_file()
    try:
        return _read(path)
    except _Damaged:
        pass
    except OSError as exc:
        _report(f"unreadable:{path}", f"⚠ cannot read your progress record {path} ({exc.strerror or exc}).")
        return {}
    try:
        with _lock(path):
            return _load_locked(path)  # read again under the lock: a writer may have just replaced it
    except (OSError, Timeout):
        _report(f"damaged:{path}", f"⚠ your progress record {path} could not be read; it is left as it is.")
        return {}


def record(name: str, passed: bool, code: dict[str, Any] | None = None) -> None:
    """Remember the latest attempt; a pass is never forgotten by a later failed attempt. ``code`` (the
    source that passed, from :func:`gpt2lib.exercises.yours.capture`) replaces what was kept before."""
    def change(data: dict[str, Any]) -> None:
        entry = data.get(name)
        if not isinstance(entry, dict):  # absent, or a record edited by hand into something else
            entry = {"passed": False, "attempts": 0}
        attempts = entry.get("attempts", 0)
        entry["attempts"] = (attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 0) + 1
        entry["passed"] = bool(entry.get("passed")) or passed
        entry["last"] = time.strftime("%Y-%m-%d %H:%M:%S")
        if code is not None:
            entry["code"] = code
        data[name] = entry

    _update(change)


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

    def merge(mine: dict[str, Any]) -> None:
        for name, theirs in data.items():
            ours = mine.get(name) if isinstance(mine.get(name), dict) else {}
            attempts = [a for a in (ours.get("attempts"), theirs.get("attempts"))
                        if isinstance(a, int) and not isinstance(a, bool)]
            merged = {"passed": bool(ours.get("passed")) or bool(theirs.get("passed")),
                      "attempts": max(attempts, default=0),
                      "last": max(str(ours.get("last", "")), str(theirs.get("last", "")))}
            # the code that passed: the more recently saved of the two
            codes = [c for c in (ours.get("code"), theirs.get("code")) if isinstance(c, dict)]
            if codes:
                merged["code"] = max(codes, key=lambda c: str(c.get("saved", "")))
            mine[name] = merged

    if not _update(merge):
        raise OSError(f"could not write the progress record {progress_file()}")
    return len(data)


def reset() -> None:
    """Forget every recorded attempt."""
    path = progress_file()
    try:
        with _lock(path):
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        pass  # no folder, so no record either
    except (OSError, Timeout) as exc:
        print(f"⚠ could not reset the progress record {path} ({getattr(exc, 'strerror', None) or exc})")
