"""Ctrl-C while training: stop at once, but never in the middle of an update or a save.

A run stopped by Ctrl-C (SIGINT, or a notebook's "interrupt") should keep the steps it finished. Most of
a step can be abandoned at any moment: drawing the batch, the forward and backward passes, the
evaluation change nothing a checkpoint holds. Two stretches cannot: the optimizer's update of the weights
and moments (half of the tensors updated is a state no run ever had) and a save. :class:`CtrlC` lets the
signal through at once everywhere else, and inside those stretches (:meth:`CtrlC.deferred`) holds it
until the stretch ends, so the run stops on a state it can save whole.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from .config import TrainResult

__all__ = ["CtrlC", "TrainingInterrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run. ``step``: the last finished step; ``saved``: whether the folder's checkpoint
    is of that step (False without a folder, or before the first step); ``result``: the history so far.
    A :class:`KeyboardInterrupt`, so whatever stops on Ctrl-C (a notebook cell, a script) still stops."""

    def __init__(self, step: int, folder: Path | None, saved: bool, result: TrainResult) -> None:
        where = f"; checkpoint saved in {folder}" if saved else ""
        super().__init__(f"stopped at step {step}{where}")
        self.step, self.folder, self.saved, self.result = step, folder, saved, result


class CtrlC:
    """A SIGINT handler for the duration of a ``with`` block (in the main thread; elsewhere, where Python
    allows no handler, the default one stays): it raises :class:`KeyboardInterrupt` at once, except
    inside :meth:`deferred`, where it raises it when the outermost deferred block ends. A process that
    ignores SIGINT (started with it ignored) keeps ignoring it."""

    def __init__(self) -> None:
        self.pending = False
        self._depth = 0
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self._depth:
            self.pending = True
        else:
            raise KeyboardInterrupt

    def __enter__(self) -> "CtrlC":
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN:
                self._previous = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a Ctrl-C that arrives inside the block until the block has finished."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self.pending:
            self.pending = False
            raise KeyboardInterrupt
