"""The checking machinery every exercise shares.

An :class:`Exercise` knows a reference implementation, how to draw fresh inputs (random ones plus the
edge cases that matter), how to compare an answer with the reference, and a few plausible *wrong*
implementations. The wrong ones serve twice: when a reader's answer matches one of them exactly, the
checker names that mistake (never the solution); and the test suite proves that each checker rejects
them, so no checker can pass everything.

What a reader's function does is never trusted: it may raise anything (``sys.exit()`` included), return
anything, change its arguments, or raise an exception that cannot even be printed. The checker reports
each of these as a failed attempt and never raises itself; only Ctrl-C (KeyboardInterrupt) goes through,
so a reader can stop a function that never returns.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch

from . import progress, yours
from ._compare import CheckFailed, _text, compare, describe_exception, unchanged

__all__ = ["LEVELS", "Case", "Mistake", "Exercise", "REGISTRY", "CHECKERS", "register", "number_key",
           "CheckFailed", "compare", "describe_exception"]

LEVELS = ("easy", "medium", "hard")

# A mistake's hint is named only when the reader's answer is this close to what the mistake returns:
# the same numbers up to float rounding, not merely "also wrong by about as much".
_HINT_ATOL, _HINT_RTOL = 1e-12, 1e-6


@dataclass
class Case:
    """One set of arguments for the reader's function, with a name the verdict can quote."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class Mistake:
    """A plausible wrong answer and what it means when a reader's output matches it exactly.

    ``hint`` completes the sentence "your numbers match what you would get if ...", e.g.
    ``"you normalised along dim=0: each row (the last dimension) must sum to 1"``; a hint that is
    already a whole sentence starting "your numbers match" is printed as it is.
    """

    def sentence(self) -> str:
        """The hint as the checker prints it."""
        if self.hint.lower().startswith("your numbers match"):
            return self.hint
        return f"your numbers match what you would get if {self.hint}"

    hint: str
    fn: Callable[..., Any]


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
        compare: Callable[[Any, Any], None] | None = None,
        int_required: bool = False,
        number: str | None = None,
        grad: bool = False,
        outcome: Callable[[tuple, Any], Any] | None = None,
        adapt: Callable[[Any], Callable[..., Any]] | None = None,
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if number is not None and (number.split(".")[0] != str(chapter) or not number.split(".")[-1].isdigit()):
            raise ValueError(f"number must be '{chapter}.k' (as the chapter's heading numbers it), got {number!r}")
        self.name, self.chapter, self.title, self.number = name, chapter, title, number
        # the reference (or the cases) run backward(): the checker turns autograd on itself, so that a
        # check called under torch.no_grad() or inference_mode() still works
        self.grad = grad
        self.order = 0  # the registration order, which breaks ties in number_key
        # what is judged, from the arguments after the call and what it returned: by default the return
        # value; the training step's is its losses AND the model it trained (its last step shows only there)
        self.outcome = outcome
        self.level, self.minutes = level, minutes
        # a class exercise: ``adapt(cls)`` is the function the cases call (build it, load weights, run it);
        # the reference and the mistakes are given as classes too and adapted the same way
        self.adapt = adapt
        self.reference, self._cases = self._adapted(reference), cases
        self.mistakes = [Mistake(m.hint, self._adapted(m.fn)) for m in mistakes]
        self.int_required = int_required
        self._custom_compare = compare
        self._compare = compare if compare is not None else self._default_compare

    def _adapted(self, answer: Any) -> Callable[..., Any]:
        """What the cases call for ``answer``: ``adapt(answer)`` for a class exercise, once (the reference and
        the mistakes are adapted already, and a test may pass them back to :meth:`check`)."""
        if self.adapt is None or getattr(answer, "_gpt2lib_adapted", False):
            return answer
        fn = self.adapt(answer)
        try:
            fn._gpt2lib_adapted = True  # type: ignore[attr-defined]
        except AttributeError:
            pass  # a callable that takes no attributes: adapting it again is the adapter's business
        return fn

    def _default_compare(self, expected: Any, got: Any) -> None:
        compare(expected, got, int_required=self.int_required)

    def __repr__(self) -> str:
        return f"<Exercise {self.number or self.chapter} {self.name} ({self.level}, ~{self.minutes} min)>"

    @contextlib.contextmanager
    def _autograd(self) -> Iterator[None]:
        if not self.grad:
            yield
            return
        with torch.inference_mode(False), torch.enable_grad():
            yield

    def draw_cases(self, seed: int) -> list[Case]:
        """The cases ``check`` runs for ``seed`` (the global torch RNG is left as it was).

        Each case set starts with fixed cases that expose every listed mistake; the seed only adds to them
        (other sizes and values), so no seed lets a mistake through."""
        rng = random.Random(seed)
        torch_state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            with self._autograd():
                return list(self._cases(rng))
        finally:
            torch.random.set_rng_state(torch_state)

    def _expected(self, case: Case) -> Any:
        """The reference's answer for ``case``, computed on copies of its arguments."""
        return self._call(self.reference, case)

    def _call(self, fn: Callable[..., Any], case: Case) -> Any:
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        return self._judged(args, fn(*args, **kwargs))

    def _judged(self, args: tuple, returned: Any) -> Any:
        return returned if self.outcome is None else self.outcome(args, returned)

    def _argument_name(self, index: int | str) -> str:
        if isinstance(index, str):
            return f"`{index}`"
        try:
            params = list(inspect.signature(self.reference).parameters)
            return f"`{params[index]}` (argument {index + 1})"
        except (ValueError, TypeError, IndexError):
            return f"argument {index + 1}"

    def _changed_argument(self, case: Case, args: tuple, kwargs: dict) -> str | None:
        for i, (before, after) in enumerate(zip(case.args, args)):
            if not unchanged(before, after):
                return self._argument_name(i)
        for key, before in case.kwargs.items():
            if not unchanged(before, kwargs.get(key)):
                return self._argument_name(key)
        return None

    def _matching_mistake(self, answers: list[tuple[Case, Any]]) -> Mistake | None:
        """The listed mistake whose output equals the reader's on every case run so far, if any."""
        for mistake in self.mistakes:
            try:
                for case, got in answers:
                    wrong = self._call(mistake.fn, case)
                    compare(wrong, got, atol=_HINT_ATOL, rtol=_HINT_RTOL, loose=True)
            except Exception:
                continue
            return mistake
        return None

    def check(self, fn: Callable[..., Any], *, record: bool = True, seed: int | None = None) -> bool:
        """Run ``fn`` on fresh cases against the reference; print one verdict; return True or False.

        A function that raises (anything but Ctrl-C), returns None, returns the wrong type or shape, or
        changes its arguments fails with a message; the checker itself never raises. ``record=False``
        keeps the result out of the progress record (the book's solution cells use it, so running a
        solution does not count as solving).
        """
        if not callable(fn):
            print(f"✗ check_{self.name}: expected a function, got {type(fn).__name__}. Pass the function itself, "
                  "without calling it.")
            return self._finish(False, record)
        seed = random.randrange(2**31) if seed is None else seed
        with self._autograd():
            verdict = self._run(self._adapted(fn), seed)
        if verdict is None:  # the untouched placeholder: not an attempt, nothing is recorded
            return False
        return self._finish(verdict, record, fn)

    def _run(self, fn: Callable[..., Any], seed: int) -> bool | None:
        """Print the verdict; True or False, or None for an untouched placeholder."""
        label = f"check_{self.name}"
        cases = self.draw_cases(seed)
        replay = f"  (cases drawn with seed={seed}; pass seed={seed} to replay them)"
        answers: list[tuple[Case, Any]] = []
        for number, case in enumerate(cases):
            expected = self._expected(case)
            args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
            try:
                got = fn(*args, **kwargs)
            except KeyboardInterrupt:
                raise
            except NotImplementedError as exc:
                if number == 0:
                    # An untouched placeholder is not an attempt: nothing is recorded.
                    print(f"… {label}: not done yet. Replace the `raise NotImplementedError` with your code, "
                          "then run this cell again.")
                    return None
                # after earlier cases ran, it is the reader's code that gave up on this one
                print(f"✗ {label}: on case '{case.name}' your function raised {describe_exception(exc)} "
                      f"(it handled the {number} case(s) before this one)")
                print(replay)
                return False
            except BaseException as exc:  # the reader's bug, reported rather than raised (sys.exit included)
                print(f"✗ {label}: on case '{case.name}' your function raised {describe_exception(exc)}")
                print(replay)
                return False
            try:
                changed = self._changed_argument(case, args, kwargs)
            except Exception:
                changed = None
            if changed:
                print(f"✗ {label}: case '{case.name}': you changed your input {changed}. Leave the arguments "
                      "as they were and work on a copy (tensor.clone(), list(ids), dict(d)).")
                print(replay)
                return False
            try:
                got = self._judged(args, got)
                self._compare(expected, got)
            except CheckFailed as exc:
                print(f"✗ {label}: case '{case.name}' failed: {_text(exc)}.")
                try:
                    mistake = self._matching_mistake([*answers, (case, got)])
                except Exception:  # an answer object that breaks even the strict comparison: no hint
                    mistake = None
                if mistake is not None:
                    print(f"  hint: {mistake.sentence()}")
                print(replay)
                return False
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                print(f"✗ {label}: case '{case.name}': could not compare your answer ({describe_exception(exc)}).")
                print(replay)
                return False
            answers.append((case, got))
        print(f"✓ {label}: passed all {len(cases)} cases.")
        return True

    def _finish(self, passed: bool, record: bool, answer: Any = None) -> bool:
        if record:
            # what passed is yours: later cells and chapters use it (gpt2lib.exercises.yours)
            code = yours.keep(self.name, answer) if passed and answer is not None else None
            try:
                progress.record(self.name, passed, code=code)
            except Exception as exc:  # noqa: BLE001 - the record is a convenience; the verdict stands
                print(f"⚠ progress not recorded: {describe_exception(exc)}")
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
    exercise.order = len(REGISTRY)
    CHECKERS[exercise.name] = checker
    return checker


def number_key(exercise: Exercise) -> tuple[int, float, int]:
    """Sort key: the chapter, then the exercise's number within it (7.2 before 7.3, 5.10 after 5.9)."""
    minor = float(exercise.number.split(".")[-1]) if exercise.number else float("inf")
    return exercise.chapter, minor, exercise.order
