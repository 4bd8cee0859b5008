"""How an answer is compared with the reference, and how a difference is put into words.

Numbers compare by value, in any Python or numpy type (``numpy.int64(3)``, ``3.0`` and ``3`` are equal;
``int_required`` insists on an integer type). A tensor is not a number here: where an exercise asks for a
Python number the text says so, and a tensor (which keeps its autograd graph alive, and prints as
``tensor(...)``) fails with a message saying how to convert it; the reverse holds for a 0-d tensor, such
as a loss that is back-propagated next. Tensors compare by shape, kind of dtype and value, naming the
entry that is furthest off; dicts key by key; lists and tuples item by item.

``loose=True`` drops the type rules and keeps the values: it decides whether an answer gives the same
numbers as a listed mistake, whatever types it returns them in.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping

import torch


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


def _not_a_tensor(got: Any, loose: bool) -> None:
    """A number was asked for; a tensor of the right value fails, told how to convert it."""
    if isinstance(got, torch.Tensor) and not loose:
        raise CheckFailed(f"right value, but a tensor ({_describe(got)}); return a Python number: .item() "
                          "converts a one-element tensor")


def _compare_int(expected: int, got: Any, int_required: bool, loose: bool) -> None:
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
    _not_a_tensor(got, loose)
    if int_required and not loose and not _is_integral_type(got):
        raise CheckFailed(f"right value, return an int: expected {expected}, got {_describe(got)} "
                          f"(a {type(got).__name__}; int(...) converts it)")


def _compare_float(expected: float, got: Any, atol: float, rtol: float, loose: bool) -> None:
    value = _as_number(got)
    if value is None:
        raise CheckFailed(f"expected a number, got {_describe(got)} (a {type(got).__name__})")
    value = float(value)
    if not (math.isnan(expected) and math.isnan(value)) and not math.isclose(value, expected, rel_tol=rtol,
                                                                               abs_tol=atol):
        raise CheckFailed("expected {}, got {}".format(*_two_numbers(expected, value)))
    _not_a_tensor(got, loose)


def _worst_entry(exp_c: torch.Tensor, got_c: torch.Tensor, bad: torch.Tensor, atol: float, rtol: float) -> list:
    """The differing entry furthest outside the tolerance (a wrong infinity or NaN first): the one that shows
    the mistake, where the first in memory order may be a near miss in a flat tail."""
    e, g = exp_c[bad], got_c[bad]
    excess = (g - e).abs() / (atol + rtol * e.abs())
    excess = torch.where(torch.isfinite(excess), excess, torch.full_like(excess, math.inf))
    return bad.nonzero()[int(excess.argmax())].tolist()


def _compare_tensors(expected: torch.Tensor, got: Any, atol: float, rtol: float, loose: bool) -> None:
    if not isinstance(got, torch.Tensor):
        value = _as_number(got)
        if expected.dim() == 0 and value is not None:
            if not loose:
                raise CheckFailed(f"expected a 0-d tensor, got a {type(got).__name__} ({_describe(got)}); return "
                                  "the tensor itself, not .item() or float(...), so that .backward() can run through it")
            return compare(expected.item(), value, atol=atol, rtol=rtol, loose=True)
        raise CheckFailed(f"expected a torch.Tensor, got a {type(got).__name__}")
    if tuple(got.shape) != tuple(expected.shape):
        raise CheckFailed(f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}")
    kind = lambda t: "bool" if t.dtype == torch.bool else ("float" if t.is_floating_point() else "int")  # noqa: E731
    if kind(expected) != kind(got) and not loose:
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
    floating = expected.is_floating_point()
    if floating or got_c.dtype != exp_c.dtype:
        got_c, exp_c = got_c.double(), exp_c.double()
        # isclose treats equal infinities as equal and any infinity against a finite number as different
        same = torch.isclose(got_c, exp_c, atol=atol, rtol=rtol, equal_nan=True)
    else:
        same = got_c == exp_c
    if bool(same.all()):
        return
    bad = ~same
    count = int(bad.sum())
    if floating and count > 1:
        where = _worst_entry(exp_c, got_c, bad, atol, rtol)
        at = f"the largest difference is at {where}" if where else "the value differs"
    else:
        where = bad.nonzero()[0].tolist()
        at = f"at {where}" if where else "the value differs"
    e, g = exp_c[tuple(where)].item(), got_c[tuple(where)].item()
    note = f" ({count} of {same.numel()} entries differ" + (f", tolerance {atol:g} + {rtol:g} x |expected|)"
                                                            if floating else ")")
    raise CheckFailed("{}: expected {}, got {}{}".format(at, *_two_numbers(e, g), note))


def _compare_mapping(expected: Mapping, got: Any, **how: Any) -> None:
    if not isinstance(got, Mapping):  # a Counter or defaultdict is a dict, and fine
        raise CheckFailed(f"expected a dict, got a {type(got).__name__}")
    for key, value in expected.items():
        if key not in got:
            raise CheckFailed(f"key {_describe(key)} is missing (expected {_describe(value)})")
        try:
            compare(value, got[key], **how)
        except CheckFailed as exc:
            raise CheckFailed(f"key {_describe(key)}: {exc}") from None
    for key in got:
        if key not in expected:
            raise CheckFailed(f"key {_describe(key)} should not be there (your value: {_describe(got[key])})")


def _compare_sequence(expected: list | tuple, got: Any, **how: Any) -> None:
    if not isinstance(got, (list, tuple)):
        raise CheckFailed(f"expected a {type(expected).__name__}, got a {type(got).__name__}")
    if len(got) != len(expected):
        raise CheckFailed(f"expected {len(expected)} items, got {len(got)}: expected {_describe(expected)}, "
                          f"got {_describe(got)}")
    for i, (e, g) in enumerate(zip(expected, got)):
        try:
            compare(e, g, **how)
        except CheckFailed as exc:
            raise CheckFailed(f"item {i}: {exc}") from None


def compare(expected: Any, got: Any, *, atol: float = 1e-5, rtol: float = 1e-4, int_required: bool = False,
            loose: bool = False) -> None:
    """Default comparison; raises :class:`CheckFailed` with a reader-facing explanation.

    Numbers compare by value (``numpy.int64(3)``, ``3.0`` and ``3`` all equal ``3``; with ``int_required``
    a float of the right value fails with "right value, return an int"; a tensor where a number is
    expected, or a number where a 0-d tensor is, fails with how to convert it); floats within
    ``atol + rtol * |expected|``; tensors by shape, kind of dtype and value, naming the entry furthest
    off; dicts key by key, naming the first key that differs; lists and tuples item by item (either kind
    for either); anything else by type and ``==``. ``loose`` compares values only (see the module's text).
    """
    if got is None and expected is not None:
        raise CheckFailed("your function returned None: did you forget the `return` statement?")
    if isinstance(expected, torch.Tensor):
        return _compare_tensors(expected, got, atol, rtol, loose)
    if isinstance(expected, bool):
        if not isinstance(got, bool) and type(got).__name__ != "bool_":
            raise CheckFailed(f"expected True or False, got a {type(got).__name__}")
        if bool(got) != expected:
            raise CheckFailed(f"expected {expected}, got {bool(got)}")
        return
    if isinstance(expected, numbers.Integral):
        return _compare_int(int(expected), got, int_required, loose)
    if isinstance(expected, numbers.Real):
        return _compare_float(float(expected), got, atol, rtol, loose)
    how = dict(atol=atol, rtol=rtol, int_required=int_required, loose=loose)
    if isinstance(expected, Mapping):
        return _compare_mapping(expected, got, **how)
    if isinstance(expected, (list, tuple)):
        return _compare_sequence(expected, got, **how)
    if not isinstance(got, type(expected)):
        raise CheckFailed(f"expected a {type(expected).__name__}, got a {type(got).__name__}")
    if expected != got:
        raise CheckFailed(f"expected {_describe(expected)}, got {_describe(got)}")


def unchanged(before: Any, after: Any) -> bool:
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
                and all(unchanged(before[k], after[k]) for k in before))
    if isinstance(before, (list, tuple)):
        return (type(before) is type(after) and len(before) == len(after)
                and all(unchanged(b, a) for b, a in zip(before, after)))
    if type(before).__eq__ is object.__eq__:
        # `==` is identity here (a module, an optimizer), and the reader got a copy: cannot tell
        return True
    try:
        return bool(before == after)
    except Exception:
        return True  # cannot tell (an object without a usable ==): do not accuse the reader
