"""Prose that a chapter computes: sentences built from this run's numbers, rendered wherever it is read.

A sentence that quotes a measured number cannot live in a markdown cell: the number would be pasted, or
(with MyST-NB's ``{glue}`` roles) render only in the built book, while Colab and GitHub show the raw role.
So such a sentence is the output of a code cell: :func:`prose` displays it as Markdown, which the built
book, JupyterLab, Colab and GitHub all render. Tag the cell ``remove-input`` so the page shows only the
sentence. Every shown text is also kept for :func:`shown`, so a test can read the prose a run produced.
"""
from __future__ import annotations

from typing import Any

__all__ = ["prose", "shown", "glue", "glued"]

_shown: list[str] = []


def prose(text: str) -> None:
    """Display ``text`` (Markdown; ``$...$`` maths allowed) as the cell's output, and keep it for :func:`shown`."""
    if not isinstance(text, str):
        raise TypeError(f"prose() takes the Markdown text as a str, not {type(text).__name__}: build it with an f-string")
    _shown.append(text)
    from IPython.display import Markdown, display

    display(Markdown(text))


def shown() -> list[str]:
    """Every text :func:`prose` displayed in this kernel so far, in order."""
    return list(_shown)


# MyST-NB glue, on its way out (issue 20): removed once no chapter uses a {glue} role.
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
