"""The checking machinery every exercise shares.

An :class:`Exercise` knows a reference implementation, how to draw fresh inputs (random ones plus the
edge cases that matter), how to compare an answer with the reference, and a few plausible *wrong*
implementations. The wrong ones serve twice: when a reader's answer matches one of them, the checker
prints that mistake's hint (never the solution); and the test suite proves that each checker rejects
them, so no checker can pass everything.
"""
from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from . import progress

LEVELS = ("easy", "medium", "hard")


@dataclass
class Case:
    """One set of arguments for the reader's function, with a name the verdict can quote."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class Mistake:
    """A plausible wrong answer and the hint to print when a reader's output matches it."""

    hint: str
    fn: Callable[..., Any]


class CheckFailed(Exception):
    """Raised inside a comparison to explain why an answer differs."""


def _describe(value: Any, limit: int = 160) -> str:
    if isinstance(value, torch.Tensor):
        text = f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
        if value.numel() <= 8:
            text += f": {value.detach().cpu().tolist()}"
        return text
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compare(expected: Any, got: Any, *, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Default comparison: tensors by shape, dtype kind and value; floats approximately; the rest by ==.

    Raises :class:`CheckFailed` with a reader-facing explanation.
    """
    if got is None:
        raise CheckFailed("your function returned None: did you forget the `return` statement?")
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"expected a torch.Tensor, got {type(got).__name__}")
        if tuple(got.shape) != tuple(expected.shape):
            raise CheckFailed(f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}")
        if expected.is_floating_point() != got.is_floating_point():
            raise CheckFailed(f"expected dtype {expected.dtype}, got {got.dtype}")
        got_c, exp_c = got.detach().cpu(), expected.detach().cpu()
        if expected.is_floating_point():
            got_c, exp_c = got_c.double(), exp_c.double()
            if not torch.allclose(got_c, exp_c, atol=atol, rtol=rtol, equal_nan=True):
                diff = (got_c - exp_c).abs()
                diff[got_c == exp_c] = 0.0  # equal infinities are not an error (inf - inf is nan)
                err = diff.nan_to_num(nan=float("inf")).max().item()
                raise CheckFailed(f"values differ: largest absolute error {err:.3g} (tolerance {atol:g})")
        elif not torch.equal(got_c, exp_c):
            bad = int((got_c != exp_c).sum())
            raise CheckFailed(f"{bad} of {exp_c.numel()} entries differ")
        return
    if isinstance(expected, float) and not isinstance(expected, bool):
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            raise CheckFailed(f"expected a number, got {type(got).__name__}")
        if not math.isclose(float(got), expected, rel_tol=rtol, abs_tol=atol):
            raise CheckFailed(f"expected {expected:.6g}, got {float(got):.6g}")
        return
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)) and len(expected) == len(got):
        if all(isinstance(e, torch.Tensor) or isinstance(e, float) for e in expected):
            for i, (e, g) in enumerate(zip(expected, got)):
                try:
                    compare(e, g, atol=atol, rtol=rtol)
                except CheckFailed as exc:
                    raise CheckFailed(f"item {i}: {exc}") from None
            return
    if type(expected) is not type(got) and not (isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple))):
        raise CheckFailed(f"expected a {type(expected).__name__}, got a {type(got).__name__}")
    if expected != got:
        raise CheckFailed(f"expected {_describe(expected)}, got {_describe(got)}")


class Exercise:
    """One exercise: what to compute, how to draw cases, and how to judge an answer."""

    def __init__(
        self,
        name: str,
        *,
        chapter: int,
        title: str,
        level: str,
        minutes: int,
        reference: Callable[..., Any],
        cases: Callable[[random.Random], Iterable[Case]],
        mistakes: Iterable[Mistake] = (),
        compare: Callable[[Any, Any], None] = compare,
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        self.name, self.chapter, self.title = name, chapter, title
        self.level, self.minutes = level, minutes
        self.reference, self._cases = reference, cases
        self.mistakes = list(mistakes)
        self._compare = compare

    def __repr__(self) -> str:
        return f"<Exercise {self.name} (chapter {self.chapter}, {self.level}, ~{self.minutes} min)>"

    def _matching_mistake(self, case: Case, got: Any) -> str | None:
        for mistake in self.mistakes:
            try:
                wrong = mistake.fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
                self._compare(wrong, got)
            except Exception:
                continue
            return mistake.hint
        return None

    def check(self, fn: Callable[..., Any], *, record: bool = True, seed: int | None = None) -> bool:
        """Run ``fn`` on fresh cases against the reference; print one verdict; return True or False.

        A function that raises, returns None, or returns the wrong type or shape fails with a message;
        the checker itself never raises. ``record=False`` keeps the result out of the progress record
        (the book's solution cells use it, so running a solution does not count as solving).
        """
        label = f"check_{self.name}"
        if not callable(fn):
            print(f"✗ {label}: expected a function, got {type(fn).__name__}. Pass the function itself, without calling it.")
            return self._finish(False, record)
        seed = random.randrange(2**31) if seed is None else seed
        rng = random.Random(seed)
        torch_state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            cases = list(self._cases(rng))
        finally:
            torch.random.set_rng_state(torch_state)
        for case in cases:
            expected = self.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            try:
                got = fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            except NotImplementedError:
                # An untouched placeholder is not an attempt: nothing is recorded.
                print(f"… {label}: not done yet. Replace the `raise NotImplementedError` with your code, then run this cell again.")
                return False
            except Exception as exc:  # the reader's bug, reported rather than raised
                print(f"✗ {label}: on case '{case.name}' your function raised {type(exc).__name__}: {exc}")
                return self._finish(False, record)
            try:
                self._compare(expected, got)
            except CheckFailed as exc:
                print(f"✗ {label}: case '{case.name}' failed: {exc}.")
                hint = self._matching_mistake(case, got)
                if hint:
                    print(f"  hint: {hint}")
                print(f"  (cases drawn with seed={seed}; pass seed={seed} to replay them)")
                return self._finish(False, record)
            except Exception as exc:
                print(f"✗ {label}: case '{case.name}': could not compare your answer ({type(exc).__name__}: {exc}).")
                return self._finish(False, record)
        print(f"✓ {label}: passed all {len(cases)} cases.")
        return self._finish(True, record)

    def _finish(self, passed: bool, record: bool) -> bool:
        if record:
            progress.record(self.name, passed)
        return passed


REGISTRY: dict[str, Exercise] = {}
CHECKERS: dict[str, Callable[..., bool]] = {}


def register(exercise: Exercise) -> Callable[..., bool]:
    """Add ``exercise`` to the registry and return its ``check_<name>`` function."""
    if exercise.name in REGISTRY:
        raise ValueError(f"two exercises are named {exercise.name!r}")
    REGISTRY[exercise.name] = exercise

    def checker(fn: Callable[..., Any], *, record: bool = True, seed: int | None = None) -> bool:
        return exercise.check(fn, record=record, seed=seed)

    checker.__name__ = f"check_{exercise.name}"
    checker.__doc__ = f"Check your answer to '{exercise.title}' (chapter {exercise.chapter}, {exercise.level}, ~{exercise.minutes} min)."
    checker.exercise = exercise  # type: ignore[attr-defined]
    CHECKERS[exercise.name] = checker
    return checker
