"""Prose that a chapter computes: sentences built from this run's numbers, rendered wherever it is read.

A sentence that quotes a measured number cannot live in a markdown cell: the number would be pasted, or
(with MyST-NB's ``{glue}`` roles) render only in the built book, while Colab and GitHub show the raw role.
So such a sentence is the output of a code cell: :func:`prose` displays it as Markdown, which the built
book, JupyterLab, Colab and GitHub all render. Tag the cell ``remove-input`` so the page shows only the
sentence. Every shown text is also kept for :func:`shown`, so a test can read the prose a run produced.
"""
from __future__ import annotations

__all__ = ["prose", "shown"]

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

