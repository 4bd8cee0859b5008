"""What a chapter needs from the notebook it runs in.

:func:`glue` puts a computed number into the prose of the built book (MyST-NB's ``glue``), so a
sentence quotes what its cell measured on this run. Where MyST-NB is not installed (Colab, plain
Jupyter) there is no prose to fill in, and it does nothing: each glued cell also prints its numbers.
"""
from __future__ import annotations

from typing import Any

__all__ = ["glue"]


def glue(name: str, value: Any, display: bool = True) -> None:
    """``myst_nb.glue(name, value, display)`` when MyST-NB is installed; otherwise nothing."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)
