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

import copy
import inspect
import math
import numbers
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import torch

from . import progress

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


class CheckFailed(Exception):
    """Raised inside a comparison to explain why an answer differs."""


def _text(value: Any) -> str:
    """``str(value)``, or a placeholder when even that fails (a reader's object may break ``__str__``)."""
    try:
        return str(value)
    except KeyboardInterrupt:
        raise
    except BaseException:
        return f"<a {type(value).__name__} that cannot be printed>"


def describe_exception(exc: BaseException) -> str:
    """``"ValueError: message"`` for any exception, including one whose ``__str__`` raises."""
    name = type(exc).__name__
    if isinstance(exc, SystemExit):
        return "SystemExit (your function called sys.exit() or exit(); return the answer instead)"
    message = _text(exc)
    return f"{name}: {message}" if message else name


def _describe(value: Any, limit: int = 160) -> str:
    try:
        if isinstance(value, torch.Tensor):
            text = f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
            if value.numel() <= 8:
                text += f": {value.detach().cpu().tolist()}"
            return text
        text = repr(value)
    except KeyboardInterrupt:
        raise
    except BaseException:
        text = f"<a {type(value).__name__} that cannot be printed>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if value.is_integer() and abs(value) < 1e16:
            return f"{value:.1f}"  # 123653376.0, not 1.23654e+08: a count must be readable to the last digit
        return f"{value:.6g}"
    return _describe(value)


def _two_numbers(expected: Any, got: Any) -> tuple[str, str]:
    """Both numbers, printed with as many digits as it takes to tell them apart."""
    e, g = _number(expected), _number(got)
    if e == g and isinstance(expected, numbers.Real) and isinstance(got, numbers.Real):
        e, g = repr(float(expected)), repr(float(got))
    return e, g


def _as_number(got: Any) -> numbers.Real | None:
    """A plain Python number for any real number a reader may return (numpy scalars, 0-d tensors)."""
    if isinstance(got, torch.Tensor):
        if got.numel() != 1 or got.dim() != 0 or got.is_complex():
            return None
        return got.item()
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        return None  # bool is an int in Python, but True is never the count or the rate asked for
    if isinstance(got, numbers.Integral):
        return int(got)
    return float(got)


def _is_integral_type(got: Any) -> bool:
    if isinstance(got, torch.Tensor):
        return not got.is_floating_point() and not got.is_complex() and got.dtype != torch.bool
    return isinstance(got, numbers.Integral) and not isinstance(got, bool)


def _compare_int(expected: int, got: Any, int_required: bool) -> None:
    value = _as_number(got)
    if value is None:
        raise CheckFailed(f"expected a whole number, got {_describe(got)} (a {type(got).__name__})")
    if isinstance(value, int):
        equal = value == expected
    elif not math.isfinite(value):
        equal = False
    elif abs(expected) <= 2**53:
        equal = float(value).is_integer() and int(value) == expected
    else:  # beyond 2**53 a float cannot hold every integer: equal up to the float's own rounding
        equal = math.isclose(value, expected, rel_tol=4 * 2**-52, abs_tol=0.0)
    if not equal:
        raise CheckFailed("expected {}, got {}".format(*_two_numbers(expected, value)))
    if int_required and not _is_integral_type(got):
        raise CheckFailed(f"right value, return an int: expected {expected}, got {_describe(got)} "
                          f"(a {type(got).__name__}; int(...) converts it)")


def _compare_float(expected: float, got: Any, atol: float, rtol: float) -> None:
    value = _as_number(got)
    if value is None:
        raise CheckFailed(f"expected a number, got {_describe(got)} (a {type(got).__name__})")
    value = float(value)
    if math.isnan(expected) and math.isnan(value):
        return
    if not math.isclose(value, expected, rel_tol=rtol, abs_tol=atol):
        raise CheckFailed("expected {}, got {}".format(*_two_numbers(expected, value)))


def _compare_tensors(expected: torch.Tensor, got: Any, atol: float, rtol: float) -> None:
    if expected.dim() == 0 and _as_number(got) is not None and not isinstance(got, torch.Tensor):
        # a 0-d tensor (a loss) answered with loss.item(): the same number
        value = expected.item()
        if isinstance(value, bool):
            return compare(value, got)
        return (_compare_int(value, got, False) if isinstance(value, int)
                else _compare_float(value, got, atol, rtol))
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"expected a torch.Tensor, got a {type(got).__name__}")
    if tuple(got.shape) != tuple(expected.shape):
        raise CheckFailed(f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}")
    kind = lambda t: "bool" if t.dtype == torch.bool else ("float" if t.is_floating_point() else "int")  # noqa: E731
    if kind(expected) != kind(got):
        article = "an" if kind(expected) == "int" else "a"
        message = f"expected {article} {kind(expected)} tensor (dtype {expected.dtype}), got dtype {got.dtype}"
        try:
            same_values = bool(torch.isclose(got.detach().cpu().double(), expected.detach().cpu().double(),
                                             atol=atol, rtol=rtol, equal_nan=True).all())
        except (RuntimeError, TypeError):
            same_values = False
        if same_values:
            convert = {"int": ".long()", "float": ".float()", "bool": ".bool()"}[kind(expected)]
            message = f"right values, but {message}: convert with {convert}"
        raise CheckFailed(message)
    got_c, exp_c = got.detach().cpu(), expected.detach().cpu()
    if expected.is_floating_point():
        got_c, exp_c = got_c.double(), exp_c.double()
        # isclose treats equal infinities as equal and any infinity against a finite number as different
        same = torch.isclose(got_c, exp_c, atol=atol, rtol=rtol, equal_nan=True)
    else:
        same = got_c == exp_c
    if bool(same.all()):
        return
    bad = (~same).nonzero()
    first = bad[0].tolist()
    where = f"at {first}" if first else "the value differs"
    e, g = exp_c[tuple(first)].item(), got_c[tuple(first)].item()
    count = f" ({len(bad)} of {same.numel()} entries differ" + (f", tolerance {atol:g} + {rtol:g} x |expected|)"
                                                                 if expected.is_floating_point() else ")")
    raise CheckFailed("{}: expected {}, got {}{}".format(where, *_two_numbers(e, g), count))


def _compare_mapping(expected: Mapping, got: Any, atol: float, rtol: float, int_required: bool) -> None:
    if not isinstance(got, Mapping):  # a Counter or defaultdict is a dict, and fine
        raise CheckFailed(f"expected a dict, got a {type(got).__name__}")
    for key, value in expected.items():
        if key not in got:
            raise CheckFailed(f"key {_describe(key)} is missing (expected {_describe(value)})")
        try:
            compare(value, got[key], atol=atol, rtol=rtol, int_required=int_required)
        except CheckFailed as exc:
            raise CheckFailed(f"key {_describe(key)}: {exc}") from None
    for key in got:
        if key not in expected:
            raise CheckFailed(f"key {_describe(key)} should not be there (your value: {_describe(got[key])})")


def _compare_sequence(expected: list | tuple, got: Any, atol: float, rtol: float, int_required: bool) -> None:
    if not isinstance(got, (list, tuple)):
        raise CheckFailed(f"expected a {type(expected).__name__}, got a {type(got).__name__}")
    if len(got) != len(expected):
        raise CheckFailed(f"expected {len(expected)} items, got {len(got)}: expected {_describe(expected)}, "
                          f"got {_describe(got)}")
    for i, (e, g) in enumerate(zip(expected, got)):
        try:
            compare(e, g, atol=atol, rtol=rtol, int_required=int_required)
        except CheckFailed as exc:
            raise CheckFailed(f"item {i}: {exc}") from None


def compare(expected: Any, got: Any, *, atol: float = 1e-5, rtol: float = 1e-4, int_required: bool = False) -> None:
    """Default comparison; raises :class:`CheckFailed` with a reader-facing explanation.

    Numbers compare by value (``numpy.int64(3)``, ``3.0`` and a 0-d tensor all equal ``3``; with
    ``int_required`` a float of the right value fails with "right value, return an int"); floats within
    ``atol + rtol * |expected|``; tensors by shape, kind of dtype and value, naming the first entry that
    differs; dicts key by key, naming the first key that differs; lists and tuples item by item (either
    kind for either); anything else by type and ``==``.
    """
    if got is None and expected is not None:
        raise CheckFailed("your function returned None: did you forget the `return` statement?")
    if isinstance(expected, torch.Tensor):
        return _compare_tensors(expected, got, atol, rtol)
    if isinstance(expected, bool):
        if not isinstance(got, bool) and type(got).__name__ != "bool_":
            raise CheckFailed(f"expected True or False, got a {type(got).__name__}")
        if bool(got) != expected:
            raise CheckFailed(f"expected {expected}, got {bool(got)}")
        return
    if isinstance(expected, numbers.Integral):
        return _compare_int(int(expected), got, int_required)
    if isinstance(expected, numbers.Real):
        return _compare_float(float(expected), got, atol, rtol)
    if isinstance(expected, Mapping):
        return _compare_mapping(expected, got, atol, rtol, int_required)
    if isinstance(expected, (list, tuple)):
        return _compare_sequence(expected, got, atol, rtol, int_required)
    if not isinstance(got, type(expected)):
        raise CheckFailed(f"expected a {type(expected).__name__}, got a {type(got).__name__}")
    if expected != got:
        raise CheckFailed(f"expected {_describe(expected)}, got {_describe(got)}")


def _unchanged(before: Any, after: Any) -> bool:
    """Whether an argument is as it was before the reader's function saw it (deep, tensors by value)."""
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or before.shape != after.shape or before.dtype != after.dtype:
            return False
        same = before == after
        if before.is_floating_point():
            same |= before.isnan() & after.isnan()
        return bool(same.all())
    if isinstance(before, Mapping):
        return (isinstance(after, Mapping) and list(before) == list(after)
                and all(_unchanged(before[k], after[k]) for k in before))
    if isinstance(before, (list, tuple)):
        return (type(before) is type(after) and len(before) == len(after)
                and all(_unchanged(b, a) for b, a in zip(before, after)))
    if type(before).__eq__ is object.__eq__:
        # `==` is identity here (a module, an optimizer), and the reader got a copy: cannot tell
        return True
    try:
        return bool(before == after)
    except Exception:
        return True  # cannot tell (an object without a usable ==): do not accuse the reader


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
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        self.name, self.chapter, self.title = name, chapter, title
        self.level, self.minutes = level, minutes
        self.reference, self._cases = reference, cases
        self.mistakes = list(mistakes)
        self.int_required = int_required
        self._custom_compare = compare
        self._compare = compare if compare is not None else self._default_compare

    def _default_compare(self, expected: Any, got: Any) -> None:
        compare(expected, got, int_required=self.int_required)

    def __repr__(self) -> str:
        return f"<Exercise {self.name} (chapter {self.chapter}, {self.level}, ~{self.minutes} min)>"

    def draw_cases(self, seed: int) -> list[Case]:
        """The cases ``check`` runs for ``seed`` (the global torch RNG is left as it was)."""
        rng = random.Random(seed)
        torch_state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            return list(self._cases(rng))
        finally:
            torch.random.set_rng_state(torch_state)

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
            if not _unchanged(before, after):
                return self._argument_name(i)
        for key, before in case.kwargs.items():
            if not _unchanged(before, kwargs.get(key)):
                return self._argument_name(key)
        return None

    def _matching_mistake(self, answers: list[tuple[Case, Any]]) -> Mistake | None:
        """The listed mistake whose output equals the reader's on every case run so far, if any."""
        for mistake in self.mistakes:
            try:
                for case, got in answers:
                    wrong = mistake.fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
                    compare(wrong, got, atol=_HINT_ATOL, rtol=_HINT_RTOL, int_required=self.int_required)
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
        label = f"check_{self.name}"
        if not callable(fn):
            print(f"✗ {label}: expected a function, got {type(fn).__name__}. Pass the function itself, without calling it.")
            return self._finish(False, record)
        seed = random.randrange(2**31) if seed is None else seed
        cases = self.draw_cases(seed)
        replay = f"  (cases drawn with seed={seed}; pass seed={seed} to replay them)"
        answers: list[tuple[Case, Any]] = []
        for number, case in enumerate(cases):
            expected = self.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
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
                    return False
                # after earlier cases ran, it is the reader's code that gave up on this one
                print(f"✗ {label}: on case '{case.name}' your function raised {describe_exception(exc)} "
                      f"(it handled the {number} case(s) before this one)")
                print(replay)
                return self._finish(False, record)
            except BaseException as exc:  # the reader's bug, reported rather than raised (sys.exit included)
                print(f"✗ {label}: on case '{case.name}' your function raised {describe_exception(exc)}")
                print(replay)
                return self._finish(False, record)
            try:
                changed = self._changed_argument(case, args, kwargs)
            except Exception:
                changed = None
            if changed:
                print(f"✗ {label}: case '{case.name}': you changed your input {changed}. Leave the arguments "
                      "as they were and work on a copy (tensor.clone(), list(ids), dict(d)).")
                print(replay)
                return self._finish(False, record)
            try:
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
                return self._finish(False, record)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                print(f"✗ {label}: case '{case.name}': could not compare your answer ({describe_exception(exc)}).")
                print(replay)
                return self._finish(False, record)
            answers.append((case, got))
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
