"""Exercises that check themselves: one ``check_<name>(fn)`` per exercise, grouped by chapter.

    from gpt2lib.exercises import check_softmax, show_progress
    check_softmax(my_softmax)   # prints a verdict, returns True or False
    show_progress()             # which exercises you have passed, chapter by chapter

Chapter modules are named ``chNN_*.py``; each registers its exercises with
:func:`gpt2lib.exercises._core.register`. They are imported on first use, since some of them need torch
models and the tokenizer.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from ._core import CHECKERS, REGISTRY, Case, CheckFailed, Exercise, Mistake, compare, number_key, register
from .progress import export_progress, import_progress
from .progress import reset as reset_progress
from .yours import my_gpt2lib, use

__all__ = ["Case", "CheckFailed", "Exercise", "Mistake", "compare", "register", "all_exercises",
           "show_progress", "reset_progress", "export_progress", "import_progress", "use", "my_gpt2lib"]

_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("ch"):
            importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True


def all_exercises() -> list[Exercise]:
    """Every exercise of the book, in the order the chapters number them (7.2 before 7.3)."""
    _load_all()
    return sorted(REGISTRY.values(), key=number_key)


def show_progress(chapter: int | None = None) -> dict[str, bool]:
    """Print which exercises are passed (for one chapter, or the whole book); return name -> passed."""
    from . import progress

    done = progress.load()
    exercises = [e for e in all_exercises() if chapter is None or e.chapter == chapter]
    status = {e.name: bool(done.get(e.name, {}).get("passed")) for e in exercises}
    current = None
    for e in exercises:
        if e.chapter != current:
            current = e.chapter
            print(f"Chapter {current}")
        mark = "✓" if status[e.name] else "·"
        print(f"  {mark} {e.number or '':<4} {e.name:<26} {e.level:<6} ~{e.minutes:>2} min  {e.title}")
    passed = sum(status.values())
    print(f"{passed} of {len(status)} exercises passed" + (f" in chapter {chapter}" if chapter else ""))
    note = progress.where()
    if note:
        print(note)
    return status


def __getattr__(name: str) -> Any:
    if name.startswith("check_"):
        _load_all()
        checker = CHECKERS.get(name[len("check_"):])
        if checker is not None:
            return checker
    raise AttributeError(f"module 'gpt2lib.exercises' has no attribute {name!r}")

