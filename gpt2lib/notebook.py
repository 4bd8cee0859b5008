"""What a chapter needs from the notebook it runs in.

:func:`glue` puts a computed number into the prose of the built book (MyST-NB's ``glue``), so a
sentence quotes what its cell measured on this run. Where MyST-NB is not installed (Colab, plain
Jupyter) there is no prose to fill in and nothing is displayed: each glued cell also prints its numbers.
Either way the text of every glued value is kept for :func:`glued`, so that a test running a chapter
where MyST-NB is missing can still read the prose the book would show.
"""
from __future__ import annotations

from typing import Any

__all__ = ["glue", "glued"]

_glued: dict[str, str] = {}


def glue(name: str, value: Any, display: bool = True) -> None:
    """``myst_nb.glue(name, value, display)`` when MyST-NB is installed; otherwise only recorded."""
    _glued[name] = _text(value)
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)


def _text(value: Any) -> str:
    """A string as it is; a Markdown object's source; anything else as its repr (the book's text/plain)."""
    if isinstance(value, str):
        return value
    data = getattr(value, "data", None)
    return data if hasattr(value, "_repr_markdown_") and isinstance(data, str) else repr(value)


def glued() -> dict[str, str]:
    """The text of every value glued in this kernel so far, by name."""
    return dict(_glued)
