"""The exercise system: the checker's own behaviour, then every registered exercise of the book.

For every exercise the reference passes, each listed mistake fails with its own hint, answers written in
other correct ways pass, and further plausible wrong answers (string-based, order-dependent, one-sided,
input-mutating, right only for one head, one layer or one row) fail, each under every one of 50 seeds: the
fixed part of a case set exposes every mistake, and the random part only adds to it. A checker that
cannot fail is a defect, and so is one that fails a right answer.
The last section checks that every answer key that mirrors a package function agrees with it.
"""
from __future__ import annotations

import bisect
import json
import math
import random
import re
import struct
import sys
from collections import Counter, defaultdict
from typing import Any, Callable
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt2lib.exercises import Case, Exercise, Mistake, all_exercises, progress, show_progress
from gpt2lib.exercises._core import CHECKERS, REGISTRY, compare, register

import test_exercises_ch04_module as ch04_module  # exercise 4.5 takes classes: its right and wrong ones live there


def _softmax(x):
    return torch.softmax(x, dim=-1)


def _softmax_wrong_dim(x):
    return torch.softmax(x, dim=0)


def _softmax_no_normalise(x):
    return torch.exp(x)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The cases are tiny: on a busy machine torch's thread pool costs far more than it saves (a tiny GPT's
    backward pass took 90 ms with two threads, 2 ms with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "progress.json"))


@pytest.fixture()
def demo():
    ex = Exercise(
        "demo_softmax", chapter=0, title="demo", level="easy", minutes=1, reference=_softmax,
        cases=lambda rng: [Case(f"random {rng.randint(2, 5)}x4", (torch.randn(3, 4),)),
                           Case("large values", (torch.tensor([[1000.0, 1001.0]]),))],
        mistakes=[Mistake("you normalised along dim=0", _softmax_wrong_dim),
                  Mistake("you left out the division by the sum", _softmax_no_normalise)],
    )
    yield ex
    REGISTRY.pop("demo_softmax", None)
    CHECKERS.pop("demo_softmax", None)


def _exercise(reference, cases, **kwargs) -> Exercise:
    return Exercise("demo", chapter=0, title="demo", level="easy", minutes=1, reference=reference,
                    cases=lambda rng: cases, **kwargs)


# ------------------------------------------------------------------------------ the checker itself
def test_reference_passes_and_says_so(demo, capsys):
    assert demo.check(_softmax) is True
    assert "passed all 2 cases" in capsys.readouterr().out


def test_wrong_answer_fails_with_case_and_hint(demo, capsys):
    assert demo.check(_softmax_wrong_dim) is False
    out = capsys.readouterr().out
    assert "failed" in out and "seed=" in out
    assert "hint: your numbers match what you would get if you normalised along dim=0" in out


def test_unknown_mistake_fails_without_a_hint(demo, capsys):
    assert demo.check(lambda x: _softmax(x) + 0.1) is False
    out = capsys.readouterr().out
    assert "the largest difference is at [" in out and "hint" not in out


def test_a_hint_written_as_a_whole_sentence_is_printed_as_it_is():
    assert Mistake("you forgot the sum", abs).sentence() == "your numbers match what you would get if you forgot the sum"
    whole = "your numbers match RMSNorm: subtract the mean first"
    assert Mistake(whole, abs).sentence() == whole


def test_a_hint_needs_an_exact_match_not_a_near_one(demo, capsys):
    # close to the dim=0 mistake (well within the checker's own tolerance), but not the same numbers
    assert demo.check(lambda x: _softmax_wrong_dim(x) * (1 + 1e-4)) is False
    assert "hint" not in capsys.readouterr().out


def test_a_hint_needs_the_mistake_to_match_every_case_run():
    # The mistake is wrong on the first case; an answer that passed that case and fails the second one
    # in the mistake's way on that case alone is not making the listed mistake.
    def reference(x):
        return 2 * x

    def mistake(x):
        return 3 * x

    def answer(x):
        return 2 * x if x == 1 else 3 * x

    ex = _exercise(reference, [Case("one", (1,)), Case("five", (5,))], mistakes=[Mistake("you tripled", mistake)])
    out = _run(ex, answer)
    assert "case 'five' failed" in out and "hint" not in out
    ex = _exercise(reference, [Case("five", (5,))], mistakes=[Mistake("you tripled", mistake)])
    assert "hint: your numbers match what you would get if you tripled" in _run(ex, answer)


def _run(exercise: Exercise, fn: Callable, **kwargs) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exercise.check(fn, record=False, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("answer, message", [
    (lambda x: None, "returned None"),
    (lambda x: x.tolist(), "expected a torch.Tensor"),
    (lambda x: x[..., :1], "expected shape"),
    (lambda x: 1 / 0, "raised ZeroDivisionError"),
    (lambda x: x.long(), "expected a float tensor"),
])
def test_bad_answers_are_failed_checks_not_crashes(demo, capsys, answer, message):
    assert demo.check(answer) is False
    assert message in capsys.readouterr().out


def test_placeholder_is_not_done_yet(demo, capsys):
    def placeholder(x):
        raise NotImplementedError  # your code here

    assert demo.check(placeholder) is False
    assert "not done yet" in capsys.readouterr().out
    assert "demo_softmax" not in progress.load(), "an untouched placeholder is not an attempt"


def test_not_implemented_on_a_later_case_is_a_failed_attempt(demo, capsys):
    def partial(x):
        if x.abs().max() > 100:
            raise NotImplementedError("large values")
        return _softmax(x)

    assert demo.check(partial) is False
    out = capsys.readouterr().out
    assert "not done yet" not in out and "✗" in out and "NotImplementedError: large values" in out
    assert progress.load()["demo_softmax"]["attempts"] == 1


def test_sys_exit_does_not_stop_the_checker(demo, capsys):
    def quits(x):
        sys.exit("bye")

    def exits_zero(x):
        raise SystemExit(0)

    for fn in (quits, exits_zero):
        assert demo.check(fn) is False
        out = capsys.readouterr().out
        assert "✗" in out and "SystemExit" in out and "sys.exit()" in out


def test_an_exception_that_cannot_be_printed_is_reported(demo, capsys):
    class Nasty(Exception):
        def __str__(self):
            raise RuntimeError("no text for you")

    class NastyBase(BaseException):
        def __str__(self):
            raise Nasty()

    for exc in (Nasty, NastyBase):
        def raises(x, exc=exc):
            raise exc()

        assert demo.check(raises) is False
        out = capsys.readouterr().out
        assert "✗" in out and exc.__name__ in out and "cannot be printed" in out


def test_an_answer_that_cannot_be_compared_is_reported():
    class Broken:
        def __eq__(self, other):
            raise ValueError("no")

        def __repr__(self):
            raise ValueError("no repr either")

    ex = _exercise(lambda: Broken(), [Case("one", ())])
    assert "✗" in _run(ex, lambda: Broken())


def test_ctrl_c_still_stops_a_check(demo):
    def interrupted(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demo.check(interrupted)


def test_not_a_function(demo, capsys):
    assert demo.check(_softmax(torch.ones(2))) is False
    assert "expected a function" in capsys.readouterr().out


@pytest.mark.parametrize("mutate", [
    lambda x: x.zero_(),
    lambda x: x.sub_(x.max(dim=-1, keepdim=True).values),  # an in-place "stable" softmax: right answer, changed input
    lambda x: x.__setitem__((0, 0), 0.0),
])
def test_a_function_that_changes_its_input_fails(demo, capsys, mutate):
    def mutating(x):
        answer = _softmax(x)
        mutate(x)
        return answer

    assert demo.check(mutating) is False
    assert "you changed your input `x` (argument 1)" in capsys.readouterr().out


def test_changed_lists_and_dicts_are_caught():
    def reference(ids, table):
        return len(ids) + len(table)

    cases = [Case("a list and a dict", ([1, 2, 3], {"a": 1}))]
    ex = _exercise(reference, cases)
    assert "you changed your input `ids`" in _run(ex, lambda ids, table: (ids.append(4), 4)[1])
    assert "you changed your input `ids`" in _run(ex, lambda ids, table: (ids.sort(reverse=True), 4)[1])
    assert "you changed your input `table`" in _run(ex, lambda ids, table: (table.update(b=2), 4)[1])
    assert "you changed your input `table`" in _run(ex, lambda ids, table: (table.update(a=5), 4)[1])
    assert "✓" in _run(ex, lambda ids, table: len(list(ids) + [0]) - 1 + len(dict(table, b=2)) - 1)


def test_seed_replays_the_same_cases(demo):
    seen = []
    demo.check(lambda x: seen.append(x.clone()) or _softmax(x), seed=3)
    demo.check(lambda x: seen.append(x.clone()) or _softmax(x), seed=3)
    assert torch.equal(seen[0], seen[2])


# ------------------------------------------------------------------------------ comparing answers
@pytest.mark.parametrize("got", [3, np.int64(3), np.int32(3), 3.0, np.float64(3.0)])
def test_an_int_answer_passes_in_any_type_of_equal_value(got):
    compare(3, got)


@pytest.mark.parametrize("got", [3.0, np.float64(3.0), np.float32(3.0)])
def test_where_an_int_is_required_the_right_value_is_named(got):
    with pytest.raises(Exception, match="right value, return an int"):
        compare(3, got, int_required=True)
    compare(3, np.int64(3), int_required=True)


@pytest.mark.parametrize("got", [0.1 + 0.2, np.float32(0.3)])
def test_a_float_answer_passes_in_any_type_of_equal_value(got):
    compare(0.3, got)


@pytest.mark.parametrize("expected, got", [(3, torch.tensor(3)), (0.3, torch.tensor(0.3)),
                                           (0.3, torch.tensor(0.3, dtype=torch.float64)), (3, torch.tensor(3.0))])
def test_a_tensor_where_the_text_asks_for_a_number_is_told_to_convert(expected, got):
    # every exercise that answers with a number asks for a Python one (a tensor keeps its graph alive)
    with pytest.raises(Exception, match=r"right value, but a tensor .*\.item\(\)"):
        compare(expected, got)
    compare(expected, got, loose=True)  # the same numbers, for matching a listed mistake


def test_a_loss_tensor_may_not_be_answered_with_its_item():
    # exercise 5.8 asks for the 0-d tensor that the next exercise back-propagates
    compare(torch.tensor(2.5), torch.tensor(2.5))
    with pytest.raises(Exception, match=r"expected a 0-d tensor, got a float .*not \.item\(\)"):
        compare(torch.tensor(2.5), 2.5)
    compare(torch.tensor(2.5), 2.5, loose=True)
    with pytest.raises(Exception, match="expected 2.5, got 2.6"):
        compare(torch.tensor(2.5), 2.6, loose=True)


def test_lists_compare_item_by_item_in_any_number_type():
    compare([1, 2, 3], (np.int64(1), 2.0, 3))
    with pytest.raises(Exception, match="item 1: expected 2, got 5"):
        compare([1, 2, 3], [1, 5, 3])
    with pytest.raises(Exception, match="expected 3 items, got 2"):
        compare([1, 2, 3], [1, 2])
    with pytest.raises(Exception, match="item 2: right value, but a tensor"):
        compare([1, 2, 3], [1, 2, torch.tensor(3)])


def test_tensor_feedback_names_the_first_difference_and_both_values():
    expected = torch.zeros(2, 5)
    expected[1, 3] = float("-inf")
    got = expected.clone()
    got[1, 3] = 0.42
    with pytest.raises(Exception) as info:
        compare(expected, got)
    message = str(info.value)
    assert "at [1, 3]: expected -inf, got 0.42" in message and "1 of 10 entries differ" in message
    assert "e+308" not in message and "nan" not in message
    got[1, 3] = float("inf")
    with pytest.raises(Exception, match=r"at \[1, 3\]: expected -inf, got inf"):
        compare(expected, got)
    compare(expected, expected.clone())  # equal infinities are equal
    with pytest.raises(Exception, match=r"at \[0\]: expected 1, got 2"):
        compare(torch.tensor([1, 2]), torch.tensor([2, 2]))


def test_tensor_feedback_quotes_the_entry_furthest_off_not_the_first():
    # GELU's exact and tanh forms differ by 1e-6 in the tail and by 5e-4 near |x| = 2: quote the latter
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    exact = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    tanh = F.gelu(x, approximate="tanh")
    with pytest.raises(Exception) as info:
        compare(tanh, exact, atol=2e-6, rtol=1e-5)
    message = str(info.value)
    worst = int(((exact - tanh).abs() / (2e-6 + 1e-5 * tanh.abs())).argmax())
    assert f"the largest difference is at [{worst}]" in message and abs(float(x[worst])) > 1, message
    nan = torch.zeros(4)
    nan[3] = float("nan")
    with pytest.raises(Exception, match=r"the largest difference is at \[3\]: expected 0.0, got nan"):
        compare(torch.zeros(4), nan + torch.tensor([0.1, 0.0, 0.0, 0.0]))


def test_a_tensor_of_the_wrong_kind_with_the_right_values_is_told_how_to_convert():
    with pytest.raises(Exception, match=r"right values, but expected an int tensor .*convert with \.long\(\)"):
        compare(torch.tensor([[1, 0], [2, 3]]), torch.tensor([[1.0, 0.0], [2.0, 3.0]]))
    with pytest.raises(Exception) as info:
        compare(torch.tensor([[1, 0], [2, 3]]), torch.tensor([[1.5, 0.0], [2.0, 3.0]]))
    assert "right values" not in str(info.value) and "expected an int tensor" in str(info.value)


def test_dict_feedback_names_the_first_differing_key():
    expected = {"a": 1, "b": 2, "c": 3}
    with pytest.raises(Exception, match="key 'b': expected 2, got 5"):
        compare(expected, {"c": 3, "b": 5, "a": 1})
    with pytest.raises(Exception, match="key 'c' is missing"):
        compare(expected, {"a": 1, "b": 2})
    with pytest.raises(Exception, match="key 'd' should not be there"):
        compare(expected, {"a": 1, "b": 2, "c": 3, "d": 4})
    compare(expected, Counter({"c": 3, "a": 1, "b": 2}))  # order and dict subclass do not matter


def test_progress_is_recorded_locally(demo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "p.json"))
    demo.check(_softmax_wrong_dim)
    assert json.loads((tmp_path / "p.json").read_text())["demo_softmax"]["passed"] is False
    demo.check(_softmax)
    demo.check(_softmax_wrong_dim)  # a later failure does not erase a pass
    assert progress.load()["demo_softmax"] == {**progress.load()["demo_softmax"], "passed": True, "attempts": 3}
    demo.check(_softmax, record=False)
    assert progress.load()["demo_softmax"]["attempts"] == 3
    (tmp_path / "p.json").write_text("{not json")
    assert progress.load() == {}  # a damaged record does not break the checker
    (tmp_path / "p.json").write_text(json.dumps({"demo_softmax": [1, 2], "other": {"attempts": "many"}}))
    assert demo.check(_softmax) is True
    progress.record("other", False)
    assert progress.load()["demo_softmax"]["attempts"] == 1 and progress.load()["other"]["attempts"] == 1


def test_show_progress_lists_a_chapter(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "p.json"))
    first = all_exercises()[0]
    status = show_progress(chapter=first.chapter)
    assert status and all(v is False for v in status.values())
    assert f"Chapter {first.chapter}" in capsys.readouterr().out


def _numbers_in_the_chapters() -> dict[str, str]:
    """check_<name> -> "N.k", from each exercise cell and the "### Exercise N.k" heading above it."""
    import re
    from pathlib import Path

    numbers: dict[str, str] = {}
    for path in sorted(Path(__file__).parent.parent.glob("chapters/*.ipynb")):
        heading = None
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            text = "".join(cell["source"])
            found = re.search(r"### Exercise (\d+\.\d+)", text)
            heading = found.group(1) if found else heading
            if "exercise" in cell.get("metadata", {}).get("tags", []):
                numbers[re.search(r"check_(\w+)\(", text).group(1)] = heading
    return numbers


def test_exercises_carry_the_numbers_the_chapters_give_them_and_are_listed_in_that_order(capsys):
    assert {e.name: e.number for e in all_exercises()} == _numbers_in_the_chapters()
    keys = [tuple(int(p) for p in e.number.split(".")) for e in all_exercises()]
    assert keys == sorted(keys)
    show_progress(chapter=7)
    out = capsys.readouterr().out
    assert out.index("7.1 ") < out.index("7.2 ") < out.index("7.3 "), out
    assert out.index("convert_hf_state_dict") < out.index("read_safetensors_header"), out


def test_a_number_must_belong_to_its_chapter():
    with pytest.raises(ValueError, match="number"):
        Exercise("x", chapter=2, title="x", level="easy", minutes=1, reference=abs, cases=lambda rng: [], number="3.1")


def test_duplicate_names_are_refused(demo):
    register(demo)
    with pytest.raises(ValueError, match="two exercises"):
        register(demo)


def test_levels_are_checked():
    with pytest.raises(ValueError, match="level"):
        Exercise("x", chapter=1, title="x", level="trivial", minutes=1, reference=abs, cases=lambda rng: [])


def test_progress_command(tmp_path, monkeypatch, capsys):
    from gpt2lib.exercises.__main__ import main

    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "p.json"))
    progress.record("anything", True)
    assert main([]) == 0
    assert "exercises passed" in capsys.readouterr().out
    assert main(["--reset"]) == 0 and progress.load() == {}
    with pytest.raises(SystemExit):
        main(["12"])


# ------------------------------------------------------------------------------ every exercise
EXERCISES = all_exercises()
IDS = [e.name for e in EXERCISES]


def _quiet_check(exercise: Exercise, fn: Callable, seed: int = 0) -> tuple[bool, str]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ok = exercise.check(fn, record=False, seed=seed)
    return ok, buf.getvalue()


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_every_exercise_accepts_its_reference_and_rejects_its_mistakes(exercise, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "p.json"))
    assert exercise.level in ("easy", "medium", "hard") and exercise.minutes > 0
    assert len(exercise.mistakes) >= 2, f"{exercise.name}: give at least two plausible wrong solutions"
    for seed in (0, 1):
        assert exercise.check(exercise.reference, seed=seed), capsys.readouterr().out
    for mistake in exercise.mistakes:
        assert not exercise.check(mistake.fn, seed=0), f"{exercise.name}: the mistake '{mistake.hint}' passed"
        out = capsys.readouterr().out
        assert "✗" in out
        # the mistake's own numbers always earn a hint (this one's, or one that gives the same numbers);
        # a mistake that crashes on the cases (a length read big-endian) has no numbers to match
        if "your function raised" not in out:
            assert "hint: your numbers match " in out, f"{exercise.name}: no hint for {mistake.hint!r}:\n{out}"
            assert out.count("your numbers match") == 1, out

    def placeholder(*args, **kwargs):
        raise NotImplementedError

    assert not exercise.check(placeholder)
    assert "not done yet" in capsys.readouterr().out
    assert not exercise.check(lambda *a, **k: None)


def _mutable_args(case: Case) -> list[Any]:
    return [a for a in (*case.args, *case.kwargs.values())
            if isinstance(a, (list, dict)) or (isinstance(a, torch.Tensor) and a.numel() > 0)]


def _mutate(value: Any) -> None:
    if isinstance(value, torch.Tensor):
        with torch.no_grad():
            value.view(-1)[0] = value.view(-1)[0] + 1 if value.dtype != torch.bool else ~value.view(-1)[0]
    elif isinstance(value, list):
        value.append(value[0] if value else 0)
    elif isinstance(value, dict):
        value["__added_by_the_answer__"] = 0


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_every_exercise_fails_an_answer_that_changes_its_input(exercise):
    if exercise.adapt is not None:
        pytest.skip(f"{exercise.name}: the reader's answer is adapted before the cases call it (its own tests cover this)")
    cases = exercise.draw_cases(0)
    target = next((i for i, c in enumerate(cases) if _mutable_args(c)), None)
    if target is None:
        pytest.skip(f"{exercise.name} takes no list, dict or tensor")
    calls = []

    def right_but_mutating(*args, **kwargs):
        answer = exercise.reference(*args, **kwargs)
        if len(calls) == target:
            probe = Case("", args, kwargs)
            _mutate(_mutable_args(probe)[0])
        calls.append(1)
        return answer

    ok, out = _quiet_check(exercise, right_but_mutating)
    assert not ok and "you changed your input" in out, out


def _renumber(value: Any, *, ints_as_floats: bool) -> Any:
    """The same answer in other number types: numpy scalars, 0-d tensors, floats for ints."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value) if ints_as_floats else np.int64(value)
    if isinstance(value, float):
        return np.float64(value)
    if isinstance(value, tuple):
        return tuple(_renumber(v, ints_as_floats=ints_as_floats) for v in value)
    if isinstance(value, list):
        return [_renumber(v, ints_as_floats=ints_as_floats) for v in value]
    if isinstance(value, dict):
        return {k: _renumber(v, ints_as_floats=ints_as_floats) for k, v in value.items()}
    return value


def _has_numbers(value: Any, kinds: tuple[type, ...] = (int, float)) -> bool:
    if isinstance(value, kinds) and not isinstance(value, bool):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_numbers(v, kinds) for v in value)
    if isinstance(value, dict):
        return any(_has_numbers(v, kinds) for v in value.values())
    return False


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_every_exercise_accepts_numbers_equal_in_value(exercise):
    if exercise.adapt is not None:
        pytest.skip(f"{exercise.name}: the reader's answer is adapted before the cases call it (its own tests cover this)")
    case = exercise.draw_cases(0)[0]
    answer = exercise.reference(*case.args, **case.kwargs)
    if not _has_numbers(answer):
        pytest.skip(f"{exercise.name} answers with no plain numbers (tensors, text)")
    as_numpy = lambda *a, **k: _renumber(exercise.reference(*a, **k), ints_as_floats=False)  # noqa: E731
    ok, out = _quiet_check(exercise, as_numpy)
    assert ok, out
    if not _has_numbers(answer, (int,)):
        return
    as_floats = lambda *a, **k: _renumber(exercise.reference(*a, **k), ints_as_floats=True)  # noqa: E731
    ok, out = _quiet_check(exercise, as_floats)
    if exercise.int_required:
        assert not ok and "right value, return an int" in out, out
    else:
        assert ok, out


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_every_exercise_survives_a_crashing_answer(exercise):
    if exercise.adapt is not None:
        pytest.skip(f"{exercise.name}: the reader's answer is adapted before the cases call it (its own tests cover this)")
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError

    def exits(*args, **kwargs):
        sys.exit(1)

    def unprintable(*args, **kwargs):
        raise Unprintable

    for fn in (exits, unprintable):
        ok, out = _quiet_check(exercise, fn)
        assert not ok and "✗" in out, out

    calls = []

    def gives_up_later(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise NotImplementedError
        return exercise.reference(*args, **kwargs)

    ok, out = _quiet_check(exercise, gives_up_later)
    assert not ok and "not done yet" not in out and "NotImplementedError" in out, out


# ------------------------------------------------------------------------------ other ways to be right, and wrong
def _get_batch(*args, **kwargs):
    from gpt2lib.data import get_batch

    return get_batch(*args, **kwargs)


def _count_pairs_defaultdict(ids):
    counts = defaultdict(int)
    for i in range(len(ids) - 1):
        counts[ids[i], ids[i + 1]] += 1
    return counts


def _merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_recursive(ids, pair, new_id):
    if len(ids) < 2:
        return list(ids)
    if (ids[0], ids[1]) == tuple(pair):
        return [new_id] + _merge_recursive(ids[2:], pair, new_id)
    return [ids[0]] + _merge_recursive(ids[1:], pair, new_id)


def _merge_skip_flag(ids, pair, new_id):
    out, skip = [], False
    for i, x in enumerate(ids):
        if skip:
            skip = False
            continue
        if i + 1 < len(ids) and x == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            skip = True
        else:
            out.append(x)
    return tuple(out)  # a tuple is as good as a list


def _merge_as_text(ids, pair, new_id):
    # a common shortcut: ids as text; "11 2" contains "1 2", so ids merge across their boundaries
    text = " ".join(map(str, ids)).replace(f"{pair[0]} {pair[1]}", str(new_id))
    return [int(t) for t in text.split()] if text else []


def _merge_as_padded_text(ids, pair, new_id):
    # padded with spaces to respect boundaries; str.replace does not see a match that shares a space
    text = (" " + " ".join(map(str, ids)) + " ").replace(f" {pair[0]} {pair[1]} ", f" {new_id} ")
    return [int(t) for t in text.split()]


def _merge_in_place(ids, pair, new_id):
    i = 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == tuple(pair):
            ids[i:i + 2] = [new_id]
        i += 1
    return ids


def _encode_in_rank_order(word, merges):
    ids = list(word)
    for pair, new in sorted(merges.items(), key=lambda kv: kv[1]):
        ids = _merge(ids, pair, new)
    return ids


def _encode_in_dict_order(word, merges):
    ids = list(word)
    for pair, new in merges.items():  # trusts the dict to be in rank order
        ids = _merge(ids, pair, new)
    return ids


def _encode_rank_by_position(word, merges):
    rank = {pair: i for i, pair in enumerate(merges)}  # position in the dict taken as the rank
    ids = list(word)
    while True:
        pairs = [p for p in zip(ids, ids[1:]) if p in merges]
        if not pairs:
            return ids
        best = min(pairs, key=rank.__getitem__)
        ids = _merge(ids, best, merges[best])


def _encode_by_rank_table(word, merges):
    ranked = sorted(merges, key=merges.get)  # the pairs in learning order
    ids = list(word)
    for pair in ranked:
        ids = _merge(ids, pair, merges[pair])
    return ids


def _encode_with(choose: Callable[[list, dict], tuple]):
    def encode(word, merges):
        ids = list(word)
        while True:
            pairs = [p for p in zip(ids, ids[1:]) if p in merges]
            if not pairs:
                return ids
            best = choose(pairs, merges)
            ids = _merge(ids, best, merges[best])
    return encode


_encode_rightmost_first = _encode_with(lambda pairs, merges: pairs[-1])
_encode_most_frequent_first = _encode_with(lambda pairs, merges: Counter(pairs).most_common(1)[0][0])
_encode_by_pair_order = _encode_with(lambda pairs, merges: min(pairs))  # sorts the pairs, not their ranks


def _encode_merging_from_the_right(word, merges):
    ids = list(word)
    while True:
        pairs = [p for p in zip(ids, ids[1:]) if p in merges]
        if not pairs:
            return ids
        best = min(pairs, key=merges.get)
        ids = _merge(ids[::-1], best[::-1], merges[best])[::-1]


def _first_difference_numpy(a, b):
    n = min(len(a), len(b))
    diff = np.nonzero(np.asarray(a[:n]) != np.asarray(b[:n]))[0]
    if len(diff):
        return diff[0]  # numpy.int64 is an int
    return -1 if len(a) == len(b) else n


def _first_difference_one_sided(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    if len(b) < len(a):  # handles only a longer first list
        return len(b)
    return -1


def _first_difference_as_text(a, b):
    # compares the printed lists; the common prefix of "[1, 2, 3]" and "[1, 2]" is "[1, 2"
    import os

    if a == b:
        return -1
    return os.path.commonprefix([str(a), str(b)]).count(",")


def _first_difference_float(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return float(i)
    return -1.0 if len(a) == len(b) else float(min(len(a), len(b)))


def _lr_package(step, *, lr, warmup_steps, max_steps, min_lr):
    from gpt2lib.training.schedule import lr_at

    return lr_at(step, lr=lr, warmup_steps=warmup_steps, max_steps=max_steps, min_lr=min_lr)


def _lr_with(decay: Callable[[float, float, float], float]):
    def lr(step, *, lr, warmup_steps, max_steps, min_lr):
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        if step >= max_steps:
            return min_lr
        progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
        return decay(progress, lr, min_lr)
    return lr


def _mha_loop(x, w_q, w_k, w_v, w_o, n_head):
    B, T, C = x.shape
    d = C // n_head
    heads = []
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for h in range(n_head):
        cols = slice(h * d, (h + 1) * d)
        q, k, v = x @ w_q[:, cols], x @ w_k[:, cols], x @ w_v[:, cols]
        s = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(~mask, float("-inf"))
        heads.append(torch.softmax(s, dim=-1) @ v)
    return torch.cat(heads, dim=-1) @ w_o


def _mha_package(x, w_q, w_k, w_v, w_o, n_head):
    from gpt2lib.attention import attention

    B, T, C = x.shape
    split = lambda t: t.view(B, T, n_head, C // n_head).transpose(1, 2)  # noqa: E731
    y = attention(split(x @ w_q), split(x @ w_k), split(x @ w_v), causal=True)
    return y.transpose(1, 2).reshape(B, T, C) @ w_o


def _mha_scaled_by_width(x, w_q, w_k, w_v, w_o, n_head):
    B, T, C = x.shape
    split = lambda t: t.view(B, T, n_head, C // n_head).transpose(1, 2)  # noqa: E731
    q, k, v = split(x @ w_q), split(x @ w_k), split(x @ w_v)
    s = (q @ k.transpose(-2, -1) / math.sqrt(C)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, C) @ w_o


def _kv_step_with(mask_for: Callable[[int, int], torch.Tensor], *, rows: str = "", layers: str = "own",
                  heads: str = "transposed"):
    """The KV step written with the package's attention; the keywords make mistakes that show only with
    several rows (batch and positions swapped), several layers (layer 0's cache for all) or several heads
    (heads merged without their transpose)."""
    def step(model, ids, past):
        from gpt2lib.attention import attention

        with torch.no_grad():
            B, T = ids.shape
            T_past = past[0][0].size(2) if past else 0
            x = model.wte(ids) + model.wpe(torch.arange(T_past, T_past + T))
            present = []
            for i, block in enumerate(model.blocks):
                C, H = model.config.n_embd, model.config.n_head
                q, k, v = (t.unflatten(-1, (H, C // H)).transpose(1, 2)
                           for t in block.attn.w_qkv(block.ln_1(x)).chunk(3, dim=-1))
                if past:
                    old = past[0] if layers == "first" else past[i]
                    k, v = torch.cat([old[0], k], dim=2), torch.cat([old[1], v], dim=2)
                present.append((k, v))
                y = attention(q, k, v, causal=False, mask=mask_for(T, T_past + T))
                if rows == "swapped":  # (B, h, T, d) -> (T, B, h, d): right only for one row
                    y = y.permute(2, 0, 1, 3).reshape(B, T, -1)
                elif heads == "reshaped":
                    y = y.reshape(B, T, -1)
                else:
                    y = y.transpose(1, 2).reshape(B, T, -1)
                x = x + block.attn.w_o(y)
                x = x + block.mlp(block.ln_2(x))
            return model.lm_head(model.ln_f(x)), present
    return step


def _generate_sample_next(model, idx, max_new_tokens, *, temperature=1.0, top_k=None, top_p=None, generator=None,
                          kv_step=None):
    """Exercise 6.6 drawing with the package's sample_next (more ways in test_exercises_ch06_generate.py)."""
    from gpt2lib.generation import sample_next

    n, seq, past = model.config.block_size, idx, None
    with torch.no_grad():
        for _ in range(max_new_tokens):
            if kv_step is None:
                logits = model(seq[:, -n:])[0]
            elif past is None or past[0][0].size(2) == n:
                logits, past = kv_step(model, seq[:, -n:], [])
            else:
                logits, past = kv_step(model, seq[:, -1:], past)
            seq = torch.cat([seq, sample_next(logits[:, -1], temperature, top_k, top_p, generator)[:, None]], dim=1)
    return seq


def _generate_package(model, idx, max_new_tokens, *, kv_step=None, **settings):
    from gpt2lib.generation import generate

    return generate(model, idx, max_new_tokens, **settings)  # needs a cache the reader's GPT does not have


def _train_loop_book(model, data, **settings):
    from gpt2lib.exercises.ch05_train_loop import book_train

    return book_train(model, data, **settings)


def _train_loop_last_step_dropped(model, data, **settings):
    return _train_loop_book(model, data, **settings)[:-1]  # range(1, max_steps): one step short


def _training_step_manual_loss(model, optimizer, batches, max_norm):
    losses = []
    for x, y in batches:
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def _training_step_clip_after(model, optimizer, batches, max_norm):
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # too late: the step has been taken
        losses.append(loss.item())
    return losses


def _read_header_by_hand(data):
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    return {k: [v["dtype"], list(v["shape"])] for k, v in header.items()}  # lists are as good as tuples


def _read_header_safetensors(data):
    import os
    import tempfile

    from safetensors import safe_open

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "x.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        (n,) = struct.unpack("<I", data[:4])  # the low half of the 8-byte length: fine for any real header
        header = json.loads(data[8:8 + n])
        with safe_open(path, "pt") as f:
            return {k: (header[k]["dtype"], tuple(f.get_slice(k).get_shape())) for k in f.keys()}


def _convert_regex(sd):
    import re

    names = {"attn.c_attn": "attn.w_qkv", "attn.c_proj": "attn.w_o", "mlp.c_fc": "mlp.fc", "mlp.c_proj": "mlp.proj"}
    out = {}
    for name, t in sd.items():
        m = re.fullmatch(r"transformer\.h\.(\d+)\.(\w+\.\w+|ln_[12])\.(weight|bias)", name)
        if m:
            layer, module, param = m.groups()
            new = f"blocks.{layer}.{names.get(module, module)}.{param}"
            out[new] = t.t().clone() if module in names and param == "weight" else t.clone()
        else:
            out[name.removeprefix("transformer.")] = t.clone()
    return out


def _convert_in_place(sd):
    for name in list(sd):
        if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            sd[name] = sd[name].t()  # replaces the caller's entries
    return _convert_regex({k: (v.t() if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else v)
                           for k, v in sd.items()})


def _fit_polyfit(n, losses):
    slope, intercept = np.polyfit(np.log(n.numpy()), np.log(losses.numpy()), 1)
    return np.exp(intercept), -slope  # numpy floats are floats


def _fit_log10(n, losses):
    x, y = torch.log10(n.double()), torch.log10(losses.double())
    A = torch.stack([x, torch.ones_like(x)], dim=1)
    slope, intercept = torch.linalg.lstsq(A, y.unsqueeze(1)).solution.squeeze(1)
    return [10 ** intercept, -slope]  # 0-d tensors, in a list


def _fit_log_losses_only(n, losses):
    x, y = n.double(), torch.log(losses.double())
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    return float(torch.exp(y.mean() - slope * x.mean())), float(-slope)


def _sample_bisect(weights, u):
    total, cdf = float(weights.sum()), []
    for w in weights.tolist():
        cdf.append((cdf[-1] if cdf else 0.0) + w / total)
    return min(bisect.bisect_right(cdf, u), len(cdf) - 1)


def _sample_searchsorted(weights, u):
    cdf = np.cumsum(weights.double().numpy()) / float(weights.double().sum())
    return min(int(np.searchsorted(cdf, u, side="right")), len(cdf) - 1)


def _sample_ignoring_u(weights, u):
    return int(torch.multinomial(weights.double(), 1))  # draws its own random number instead of using u


def _top_p_package(logits, p):
    from gpt2lib.generation import top_p_filter

    return top_p_filter(logits, p)


def _distinct_zip(tokens, n):
    grams = list(zip(*(tokens[i:] for i in range(n))))
    return len(set(grams)) / len(grams) if grams else 0.0


def _distinct_joined_with_spaces(tokens, n):
    grams = [" ".join(map(str, tokens[i:i + n])) for i in range(len(tokens) - n + 1)]  # a separator keeps ids apart
    return len(set(grams)) / len(grams) if grams else 0.0


def _distinct_keyed_as_text(tokens, n):
    grams = ["".join(map(str, tokens[i:i + n])) for i in range(len(tokens) - n + 1)]  # (1, 12) == (11, 2)
    return len(set(grams)) / len(grams) if grams else 0.0


def _distinct_order_blind(tokens, n):
    grams = [frozenset(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]  # (3, 7) == (7, 3)
    return len(set(grams)) / len(grams) if grams else 0.0


def _distinct_counts_once_only(tokens, n):
    grams = Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))  # n-grams seen exactly once
    total = sum(grams.values())
    return sum(1 for c in grams.values() if c == 1) / total if total else 0.0


def _distinct_text(tokens, n):
    text = " ".join(map(str, tokens))  # n-grams of characters, not of tokens
    grams = [text[i:i + n] for i in range(len(text) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


ALTERNATIVES: dict[str, list[Callable]] = {
    "bigram_counts": [
        lambda ids, V: torch.bincount(ids[:-1] * V + ids[1:], minlength=V * V).view(V, V),
        lambda ids, V: torch.zeros(V, V, dtype=torch.long).index_put_(
            (ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=torch.long), accumulate=True),
    ],
    "bigram_probs": [
        lambda c, s: (c + s) / (c + s).sum(dim=1, keepdim=True),
        lambda c, s: F.normalize(c.double() + s, p=1, dim=-1),
    ],
    "mean_nll": [
        lambda p, ids: -torch.log(p[ids[:-1], ids[1:]]).mean().item(),
        lambda p, ids: F.nll_loss(torch.log(p[ids[:-1]]), ids[1:]).item(),
    ],
    "bits_per_byte": [
        lambda nll, t, b: nll / math.log(2) * t / b,
        lambda nll, t, b: np.float32(nll * t / b / np.log(2)),
    ],
    "count_parameters": [
        lambda V, T, L, C: V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C,
        lambda V, T, L, C: np.int64((V + T) * C + L * (12 * C * C + 13 * C) + 2 * C),
    ],
    "model_shapes": [
        lambda B, T, C, H, V: {"embeddings": [B, T, C], "qkv": [B, T, 3 * C], "q_heads": torch.Size([B, H, T, C // H]),
                               "scores": (B, H, T, T), "mlp_hidden": (B, T, 4 * C), "block_output": (B, T, C),
                               "logits": (np.int64(B), T, V)},
    ],
    "attention_scores": [
        lambda B, T, L, H: B * L * H * sum(range(1, T + 1)),
        lambda B, T, L, H: B * L * H * T * (T + 1) / 2,
    ],
    "count_pairs": [
        lambda ids: Counter(zip(ids, ids[1:])),
        _count_pairs_defaultdict,
        lambda ids: {p: sum(1 for q in zip(ids, ids[1:]) if q == p) for p in reversed(list(zip(ids, ids[1:])))},
    ],
    "merge": [_merge_recursive, _merge_skip_flag],
    "encode_word": [_encode_in_rank_order, _encode_by_rank_table],
    "softmax": [
        lambda x: torch.softmax(x, dim=-1),
        lambda x: torch.exp(x - torch.logsumexp(x, dim=-1, keepdim=True)),
    ],
    "masked_scores": [
        lambda q, k: q @ k.transpose(-2, -1) / q.size(-1) ** 0.5
        + torch.full((q.size(-2), q.size(-2)), float("-inf")).triu(1),
        lambda q, k: torch.where(torch.ones(q.size(-2), q.size(-2), dtype=torch.bool).tril(),
                                 torch.einsum("...id,...jd->...ij", q, k) / math.sqrt(q.size(-1)), float("-inf")),
    ],
    "split_heads": [
        lambda x, h: x.reshape(x.size(0), x.size(1), h, -1).permute(0, 2, 1, 3),
        lambda x, h: torch.stack(x.chunk(h, dim=-1), dim=1),
    ],
    "multi_head_attention": [_mha_loop, _mha_package],
    "attention_module": ch04_module.ALTERNATIVES,
    "make_batch": [
        lambda data, starts, T: (lambda w: (w[:, :-1], w[:, 1:]))(data.unfold(0, T + 1, 1)[list(starts)]),
        lambda data, starts, T: _get_batch(data, len(starts), T, starts=torch.tensor(starts)),
    ],
    "next_token_loss": [
        lambda logits, idx: F.cross_entropy(logits[:, :-1].transpose(1, 2), idx[:, 1:]),
        lambda logits, idx: -torch.log_softmax(logits[:, :-1], -1).gather(-1, idx[:, 1:, None]).mean(),
    ],
    "lr_at": [_lr_package],
    "sample_index": [_sample_bisect, _sample_searchsorted],
    "top_k_filter": [
        lambda logits, k: torch.where(logits >= torch.topk(logits, min(k, logits.size(-1))).values[..., -1:], logits,
                                      torch.tensor(float("-inf"))),
    ],
    "top_p_filter": [_top_p_package],
    "distinct_n": [_distinct_zip, _distinct_joined_with_spaces],
    "first_difference": [_first_difference_numpy],
    "read_safetensors_header": [_read_header_by_hand, _read_header_safetensors],
    "convert_hf_state_dict": [_convert_regex],
    "training_flops_6nd": [lambda n, d: 6 * n * d],
    "adam_memory_bytes": [lambda n: 16 * n, lambda n: np.int64(4 * n) * 4],
    "gpu_hours": [lambda n, d, peak, mfu: 6 * n * d / 3600 / peak / mfu],
    "fit_power_law": [_fit_polyfit, lambda n, losses: [float(v) for v in _fit_log10(n, losses)]],
    "rms_norm": [lambda x, w, eps=1e-5: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w,
                 lambda x, w, eps=1e-5: w * x / (x.norm(dim=-1, keepdim=True) ** 2 / x.size(-1) + eps).sqrt()],
    "bytes_per_token": [lambda text, enc: len(bytes(text, "utf-8")) / len(enc(text))],
    "webtext_links": [
        lambda posts: list(dict.fromkeys(
            u for u, k in posts if k > 2 and not re.fullmatch(r"(.+\.)?wikipedia\.org", urlsplit(u).hostname or ""))),
        lambda posts: [u for i, (u, k) in enumerate(posts) if k >= 3
                       and (urlsplit(u).hostname or "").rsplit(".", 2)[-2:] != ["wikipedia", "org"]
                       and not any(v == u and j >= 3 for v, j in posts[:i])],
    ],
    "inference_bytes": [lambda P, L, C, T, B, b: (P + 2 * L * B * T * C) * b],
    "layer_norm": [
        lambda x, w, b, eps=1e-5: F.layer_norm(x, (x.size(-1),), w, b, eps),
        lambda x, w, b, eps=1e-5: (x - x.mean(-1, keepdim=True)) * torch.rsqrt(x.var(-1, unbiased=False, keepdim=True) + eps) * w + b,
    ],
    "gelu": [lambda x: F.gelu(x, approximate="tanh")],
    "kv_cache_step": [_kv_step_with(lambda T, T_k: torch.ones(T, T_k, dtype=torch.bool).tril(T_k - T))],
    "training_step": [_training_step_manual_loss],
    "generate": [_generate_sample_next],
    "train_loop": [_train_loop_book],  # more in test_exercises_ch05_loop.py
}
# chapter 5's module exercises (MLP, block, init, GPT): their answers are classes, written in their own file
from test_exercises_ch05_modules import ALTERNATIVES as _MODULE_ALTERNATIVES  # noqa: E402
from test_exercises_ch05_modules import WRONG as _MODULE_WRONG  # noqa: E402

from test_exercises_ch06_finetune import ALTERNATIVES as _FINETUNE_ALTERNATIVES  # noqa: E402
from test_exercises_ch06_finetune import WRONG as _FINETUNE_WRONG  # noqa: E402

ALTERNATIVES.update(_MODULE_ALTERNATIVES)
ALTERNATIVES.update(_FINETUNE_ALTERNATIVES)
# chapter 6.2's instruction-tuning exercises (targets masked to the answer, a padded batch)
from test_exercises_ch06_instructions import ALTERNATIVES as _INSTRUCTION_ALTERNATIVES  # noqa: E402
from test_exercises_ch06_instructions import WRONG as _INSTRUCTION_WRONG  # noqa: E402

ALTERNATIVES.update(_INSTRUCTION_ALTERNATIVES)

WRONG: dict[str, list[Callable]] = {
    "bigram_counts": [
        # advanced-index += does not add up repeated pairs
        lambda ids, V: torch.zeros(V, V, dtype=torch.long).index_put_((ids[:-1], ids[1:]), torch.tensor(1)),
        lambda ids, V: torch.bincount(ids[:-1] * V + ids[1:], minlength=V * V).view(V, V).float(),
    ],
    "bigram_probs": [
        lambda c, s: c.add_(s) / c.sum(dim=1, keepdim=True),  # right numbers, but smooths the caller's table
        lambda c, s: (c + s) / (c.sum(dim=1, keepdim=True) + s),
    ],
    "mean_nll": [
        lambda p, ids: float(-torch.log(p[ids[:-1]]).mean()),
        lambda p, ids: float(-torch.log(p[ids[:-1], ids[1:]]).sum() / len(ids)),
        lambda p, ids: -torch.log(p[ids[:-1], ids[1:]]).mean(),  # a 0-d tensor where the text asks for a float
    ],
    "bits_per_byte": [lambda nll, t, b: nll * t / b / math.log(10), lambda nll, t, b: nll / b / math.log(2)],
    "count_parameters": [
        lambda V, T, L, C: V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C + V,  # an output bias GPT-2 lacks
        lambda V, T, L, C: V * C + T * C + L * (12 * C * C + 9 * C) + 2 * C,
        lambda V, T, L, C: float((V + T) * C + L * (12 * C * C + 13 * C) + 2 * C),  # the text asks for an int
    ],
    "model_shapes": [
        lambda B, T, C, H, V: {"embeddings": (B, T, C), "qkv": (B, T, C), "q_heads": (B, H, T, C // H),
                               "scores": (B, H, T, T), "mlp_hidden": (B, T, 4 * C), "block_output": (B, T, C),
                               "logits": (B, T, V)},
    ],
    "attention_scores": [lambda B, T, L, H: B * L * H * T * T // 2, lambda B, T, L, H: L * H * T * (T + 1) // 2],
    "count_pairs": [
        lambda ids: Counter(zip(bytes(ids), bytes(ids)[1:])),  # ids as bytes: only works below 256
        lambda ids: Counter(zip("".join(map(str, ids)), "".join(map(str, ids))[1:])),
    ],
    "merge": [_merge_as_text, _merge_as_padded_text, _merge_in_place],
    "encode_word": [_encode_in_dict_order, _encode_rank_by_position, _encode_rightmost_first,
                    _encode_most_frequent_first, _encode_by_pair_order, _encode_merging_from_the_right],
    "softmax": [
        lambda x: F.softmax(x, dim=1),
        lambda x: (lambda e: e / e.sum(-1, keepdim=True))(x.sub_(x.max(-1, keepdim=True).values).exp()),
    ],
    "masked_scores": [
        lambda q, k: (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(
            ~torch.ones(q.size(-2), q.size(-2), dtype=torch.bool).tril(), -1e9),
        lambda q, k: (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))) * torch.ones(q.size(-2), q.size(-2)).tril(),
    ],
    "split_heads": [
        lambda x, h: x.view(x.size(0), h, x.size(1), -1),
        lambda x, h: x.transpose(1, 2).reshape(x.size(0), h, x.size(1), -1),
    ],
    "multi_head_attention": [_mha_scaled_by_width],
    "attention_module": ch04_module.WRONG,
    "make_batch": [
        lambda data, starts, T: (torch.stack([data[s:s + T] for s in starts]), torch.stack([data[s + 1:s + T + 1] for s in starts]).flip(0)),
        lambda data, starts, T: [data[s:s + T] for s in starts],
    ],
    "next_token_loss": [
        lambda logits, idx: F.cross_entropy(logits[:, 1:].reshape(-1, logits.size(-1)), idx[:, 1:].reshape(-1)),
        lambda logits, idx: F.cross_entropy(logits.reshape(-1, logits.size(-1)), idx.roll(-1, 1).reshape(-1)),
        # the right number, but a float, or a new tensor cut off from the logits: nothing to back-propagate
        lambda logits, idx: F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), idx[:, 1:].reshape(-1)).item(),
        lambda logits, idx: torch.tensor(F.cross_entropy(logits[:, :-1].transpose(1, 2), idx[:, 1:]).item()),
        lambda logits, idx: F.cross_entropy(logits[:, :-1].detach().transpose(1, 2), idx[:, 1:]),
        # the mean over sequences of each sequence's summed loss
        lambda logits, idx: F.cross_entropy(logits[:, :-1].transpose(1, 2), idx[:, 1:], reduction="sum") / idx.size(0),
    ],
    "lr_at": [
        _lr_with(lambda p, hi, lo: lo + 0.5 * hi * (1 + math.cos(math.pi * p))),  # amplitude ignores min_lr
        _lr_with(lambda p, hi, lo: max(lo, 0.5 * hi * (1 + math.cos(math.pi * p)))),  # min_lr only as a floor
        _lr_with(lambda p, hi, lo: 0.5 * hi * (1 + math.cos(math.pi * p))),  # min_lr ignored in the decay
    ],
    "sample_index": [_sample_ignoring_u, lambda w, u: w.tolist().index(max(w.tolist()))],
    "top_k_filter": [
        lambda logits, k: logits.masked_fill(logits <= torch.topk(logits, min(k, logits.size(-1))).values[..., -1:], float("-inf")),
        lambda logits, k: logits.masked_fill(logits < torch.topk(logits.view(-1), k).values[-1], float("-inf")),
    ],
    "top_p_filter": [
        lambda logits, p: logits.masked_fill(torch.softmax(logits, -1) < (1 - p), float("-inf")),
    ],
    "distinct_n": [_distinct_text, lambda tokens, n: len(set(tokens)) / max(1, len(tokens) - n + 1),
                   _distinct_keyed_as_text, _distinct_order_blind, _distinct_counts_once_only],
    "first_difference": [_first_difference_one_sided, _first_difference_as_text, _first_difference_float],
    "read_safetensors_header": [
        lambda data: {k: (v["dtype"], tuple(v["shape"])) for k, v in json.loads(data[8:8 + data[0]]).items()
                      if k != "__metadata__"},  # only the lowest byte of the length
    ],
    "convert_hf_state_dict": [_convert_in_place],
    "training_flops_6nd": [lambda n, d: 6 * n + d],
    "adam_memory_bytes": [lambda n: 20 * n, lambda n: 16.0 * n],  # the text asks for an int
    "gpu_hours": [lambda n, d, peak, mfu: 6 * n * d / (peak * mfu) / 86400],
    "fit_power_law": [_fit_log_losses_only, _fit_log10],  # _fit_log10 answers with tensors, not floats
    "rms_norm": [
        lambda x, w, eps=1e-5: x / torch.sqrt(x.var(-1, keepdim=True) + eps) * w,          # the variance: centred
        lambda x, w, eps=1e-5: x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-5) * w,  # eps ignored
        lambda x, w, eps=1e-5: x / x.norm(dim=-1, keepdim=True) * w,                        # norm, not RMS
        lambda x, w, eps=1e-5: x / torch.sqrt((x ** 2).mean() + eps) * w,                   # one RMS for all
        lambda x, w, eps=1e-5: x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps) + w,   # gain added
    ],
    "bytes_per_token": [lambda text, enc: len(text.encode("utf-16-le")) / len(enc(text))],
    "webtext_links": [
        lambda posts: [u for u, k in posts if k >= 3],                                         # Wikipedia kept
        lambda posts: list(dict.fromkeys(u for u, k in posts if k >= 3 and "wiki" not in (urlsplit(u).hostname or ""))),
        lambda posts: list(dict.fromkeys(u for u, k in posts if k >= 3 and not (urlsplit(u).hostname or "")
                                         .startswith(("en.", "de.", "www.wikipedia"))))[::-1],  # reversed
        lambda posts: list(dict.fromkeys(u.lower() for u, k in posts if k >= 3
                                         and not (urlsplit(u).hostname or "").endswith("wikipedia.org"))),
    ],
    "inference_bytes": [lambda P, L, C, T, B, b: P * 4 + 2 * L * B * T * C * b,
                        lambda P, L, C, T, B, b: (P + 2 * L * B * T * C) * b / 1.0],  # the text asks for an int
    "layer_norm": [lambda x, w, b, eps=1e-5: (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps) * w + b],
    "gelu": [lambda x: F.gelu(x), lambda x: F.relu(x)],
    # the causal triangle anchored top-left, as if the new tokens came first
    "kv_cache_step": [_kv_step_with(lambda T, T_k: torch.ones(T, T_k, dtype=torch.bool).tril()),
                      _kv_step_with(lambda T, T_k: torch.ones(T, T_k, dtype=torch.bool).tril(T_k - T), rows="swapped"),
                      _kv_step_with(lambda T, T_k: torch.ones(T, T_k, dtype=torch.bool).tril(T_k - T), layers="first"),
                      _kv_step_with(lambda T, T_k: torch.ones(T, T_k, dtype=torch.bool).tril(T_k - T), heads="reshaped")],
    "training_step": [_training_step_clip_after],
    "generate": [_generate_package],
    "train_loop": [_train_loop_last_step_dropped],  # more in test_exercises_ch05_loop.py
}
WRONG.update(_MODULE_WRONG)
WRONG.update(_FINETUNE_WRONG)
WRONG.update(_INSTRUCTION_WRONG)

# Every checker is run over SEEDS against each mistake (the listed ones and the WRONG ones): the fixed part of
# each case set must expose every one of them whatever the seed, and the right answers must pass every seed.
SEEDS = range(50)
_DRAWN: dict[tuple[str, int], list[Case]] = {}
_EXPECTED: dict[int, tuple[Case, Any]] = {}
_draw_cases, _expected = Exercise.draw_cases, Exercise._expected


@pytest.fixture()
def drawn_once(monkeypatch):
    """Each registered exercise's cases for a seed are drawn, and their answer-key values computed, once
    per session (models take time to build and train); check() hands deep copies of the arguments to the
    answers, so sharing the cases is safe. Hints are left out here (they run every mistake again on a
    failure); test_a_listed_mistake_fails_under_every_seed_with_its_own_hint checks them."""
    def draw(self: Exercise, seed: int) -> list[Case]:
        if REGISTRY.get(self.name) is not self:
            return _draw_cases(self, seed)
        key = (self.name, seed)
        if key not in _DRAWN:
            _DRAWN[key] = _draw_cases(self, seed)
        return _DRAWN[key]

    def expected(self: Exercise, case: Case) -> Any:
        kept = _EXPECTED.get(id(case))
        if kept is None or kept[0] is not case:
            kept = _EXPECTED[id(case)] = (case, _expected(self, case))
        return kept[1]

    monkeypatch.setattr(Exercise, "draw_cases", draw)
    monkeypatch.setattr(Exercise, "_expected", expected)
    monkeypatch.setattr(Exercise, "_matching_mistake", lambda self, answers: None)


def _blind_seeds(exercise: Exercise, fn: Callable) -> list[int]:
    return [seed for seed in SEEDS if _quiet_check(exercise, fn, seed=seed)[0]]


def test_every_exercise_has_alternative_and_wrong_answers_here():
    missing = [e.name for e in EXERCISES if e.name not in ALTERNATIVES or e.name not in WRONG]
    assert not missing, f"write correct alternatives and plausible wrong answers for: {missing}"


def _pairs(table: dict[str, list[Callable]]) -> list[tuple[str, int]]:
    return [(name, i) for name, fns in table.items() for i in range(len(fns)) if name in REGISTRY]


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_the_reference_passes_under_every_seed(exercise, drawn_once):
    failed = [seed for seed in SEEDS if not _quiet_check(exercise, exercise.reference, seed=seed)[0]]
    assert not failed, f"{exercise.name}: the answer key fails with seeds {failed}"


@pytest.mark.parametrize("name, i", _pairs(ALTERNATIVES), ids=lambda v: str(v))
def test_an_equivalent_correct_answer_passes(name, i, drawn_once):
    for seed in SEEDS:
        ok, out = _quiet_check(REGISTRY[name], ALTERNATIVES[name][i], seed=seed)
        assert ok, f"seed {seed}: {out}"


@pytest.mark.parametrize("name, i", _pairs(WRONG), ids=lambda v: str(v))
def test_a_plausible_wrong_answer_fails_under_every_seed(name, i, drawn_once):
    blind = _blind_seeds(REGISTRY[name], WRONG[name][i])
    assert not blind, f"{name}: wrong answer {i} passed with seeds {blind}"


@pytest.mark.parametrize("name, i", [(e.name, i) for e in EXERCISES for i in range(len(e.mistakes))],
                         ids=lambda v: str(v))
def test_a_listed_mistake_fails_under_every_seed(name, i, drawn_once):
    mistake = REGISTRY[name].mistakes[i]
    blind = _blind_seeds(REGISTRY[name], mistake.fn)
    assert not blind, f"{name}: the mistake {mistake.hint!r} passed with seeds {blind}"


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_each_listed_mistake_earns_its_own_hint(exercise):
    # the hint names the bug the answer has, not another one that happens to match first
    for mistake in exercise.mistakes:
        for seed in (0, 1):
            out = _quiet_check(exercise, mistake.fn, seed=seed)[1]
            if "your function raised" in out:
                continue  # a mistake that crashes on the cases (a length read big-endian) has no numbers to match
            assert f"hint: {mistake.sentence()}" in out, f"{exercise.name}, seed {seed}: wrong hint:\n{out}"


def test_cases_vary_with_the_seed():
    # Fixed cases let an answer be tuned to them; every exercise draws at least one case anew per seed.
    def fingerprint(case: Case) -> str:
        def one(v):
            if isinstance(v, torch.Tensor):
                return f"T{tuple(v.shape)}{v.double().sum().item() if v.numel() else 0:.6g}"
            if isinstance(v, torch.nn.Module):
                return "M" + ",".join(f"{p.double().sum().item():.6g}" for p in v.parameters())
            return repr(v)[:2000]
        return "|".join(one(v) for v in (*case.args, *case.kwargs.values()))

    fixed = [e.name for e in EXERCISES
             if [fingerprint(c) for c in e.draw_cases(0)] == [fingerprint(c) for c in e.draw_cases(1)]]
    assert not fixed, f"these exercises draw the same cases whatever the seed: {fixed}"


# ------------------------------------------------------------------------------ answer keys and the package (issue 13)
def _agree_bigram(rng: random.Random) -> None:
    from gpt2lib.bigram import BigramModel

    from gpt2lib.exercises import ch01_background as ch1

    for _ in range(5):
        V = rng.randint(2, 12)
        ids = torch.tensor([rng.randrange(V) for _ in range(rng.randint(2, 200))])
        s = rng.uniform(0.1, 2.0)
        model = BigramModel.fit(ids, V, smoothing=s)
        assert torch.equal(ch1._bigram_counts(ids, V), model.counts())
        probs = ch1._bigram_probs(ch1._bigram_counts(ids, V), s)
        torch.testing.assert_close(probs, model.probabilities())
        assert math.isclose(ch1._mean_nll(probs, ids), model.nll(ids), rel_tol=1e-5)


def _agree_bits_per_byte(rng: random.Random) -> None:
    from gpt2lib.evaluation import bits_per_byte

    for _ in range(20):
        args = (rng.uniform(0, 8), rng.randint(1, 10**6), rng.randint(1, 10**7))
        assert math.isclose(REGISTRY["bits_per_byte"].reference(*args), bits_per_byte(*args), rel_tol=1e-12)


def _agree_count_parameters(rng: random.Random) -> None:
    from gpt2lib.model import GPT, GPTConfig

    for _ in range(3):
        h = rng.choice([1, 2, 4])
        cfg = GPTConfig(vocab_size=rng.randint(10, 300), block_size=rng.randint(4, 64), n_layer=rng.randint(1, 3),
                        n_head=h, n_embd=h * rng.randint(2, 8))
        model = GPT(cfg)
        unique = {p.data_ptr(): p.numel() for p in model.parameters()}
        key = REGISTRY["count_parameters"].reference(cfg.vocab_size, cfg.block_size, cfg.n_layer, cfg.n_embd)
        assert key == sum(unique.values()), cfg


def _agree_model_shapes(rng: random.Random) -> None:
    from gpt2lib.model import GPT, GPTConfig

    h = rng.choice([1, 2, 4])
    cfg = GPTConfig(vocab_size=rng.randint(10, 300), block_size=16, n_layer=1, n_head=h, n_embd=h * 4)
    model = GPT(cfg).eval()
    B, T = rng.randint(1, 3), rng.randint(1, 16)
    seen: dict[str, tuple] = {}
    block = model.blocks[0]
    hooks = [block.attn.w_qkv.register_forward_hook(lambda m, i, o: seen.__setitem__("qkv", tuple(o.shape))),
             block.mlp.fc.register_forward_hook(lambda m, i, o: seen.__setitem__("mlp_hidden", tuple(o.shape))),
             block.register_forward_hook(lambda m, i, o: seen.__setitem__(
                 "block_output", tuple((o[0] if isinstance(o, tuple) else o).shape)))]
    with torch.no_grad():
        out = model(torch.randint(0, cfg.vocab_size, (B, T)))
    for hk in hooks:
        hk.remove()
    logits = out[0] if isinstance(out, tuple) else out
    key = REGISTRY["model_shapes"].reference(B, T, cfg.n_embd, cfg.n_head, cfg.vocab_size)
    assert {k: key[k] for k in seen} == seen
    assert key["logits"] == tuple(logits.shape)


def _agree_merge(rng: random.Random) -> None:
    from gpt2lib.tokenizer.merges import merge_pair

    for _ in range(50):
        ids = [rng.randrange(4) for _ in range(rng.randint(0, 30))]
        pair = (rng.randrange(4), rng.randrange(4))
        assert REGISTRY["merge"].reference(ids, pair, 99) == merge_pair(ids, pair, 99)


def _agree_encode_word(rng: random.Random) -> None:
    from collections import Counter as C

    from gpt2lib.tokenizer import BPETokenizer
    from gpt2lib.tokenizer.merges import train_merges

    words = ["".join(rng.choice("abcde") for _ in range(rng.randint(2, 8))) for _ in range(60)]
    learnt = train_merges(C(w.encode() for w in words), 20, progress=False)
    tok = BPETokenizer(learnt)
    vocab = {bytes([b]): b for b in range(256)}
    merges = {}
    for a, b in learnt:
        vocab[a + b] = 256 + len(merges)
        merges[(vocab[a], vocab[b])] = vocab[a + b]
    back = {v: k for k, v in vocab.items()}
    for w in words:
        key = [back[i] for i in REGISTRY["encode_word"].reference(w.encode(), merges)]
        assert key == tok.bpe(w.encode()), w


def _agree_attention(rng: random.Random) -> None:
    from gpt2lib.attention import CausalSelfAttention, attention_weights

    for _ in range(3):
        B, T, h = rng.randint(1, 3), rng.randint(1, 7), rng.choice([1, 2, 4])
        C = h * rng.randint(1, 6)
        q, k = torch.randn(B, h, T, C // h), torch.randn(B, h, T, C // h)
        torch.testing.assert_close(REGISTRY["softmax"].reference(q), torch.softmax(q, dim=-1))
        weights = torch.softmax(REGISTRY["masked_scores"].reference(q, k), dim=-1)
        torch.testing.assert_close(weights, attention_weights(q, k, causal=True))
        attn = CausalSelfAttention(C, h, bias=False).eval()
        x = torch.randn(B, T, C)
        w_q, w_k, w_v = attn.w_qkv.weight.detach().t().split(C, dim=1)
        with torch.no_grad():
            expected, _ = attn(x)
            q_pkg, _, _ = attn.split_heads(x)
        torch.testing.assert_close(REGISTRY["split_heads"].reference(x @ w_q, h), q_pkg)
        key = REGISTRY["multi_head_attention"].reference(x, w_q, w_k, w_v, attn.w_o.weight.detach().t(), h)
        torch.testing.assert_close(key, expected)


def _agree_layer_norm_gelu(rng: random.Random) -> None:
    x = torch.randn(2, 5, 8) * 3
    w, b = torch.randn(8), torch.randn(8)
    torch.testing.assert_close(REGISTRY["layer_norm"].reference(x, w, b), F.layer_norm(x, (8,), w, b, 1e-5))
    from gpt2lib.model import MLP, GPTConfig

    package_gelu = MLP(GPTConfig(n_embd=8, n_head=1)).gelu  # the activation the book's model uses
    torch.testing.assert_close(REGISTRY["gelu"].reference(x), package_gelu(x))


def _agree_rms_norm(rng: random.Random) -> None:
    from gpt2lib.variants import RMSNorm

    for eps in (1e-5, 0.1):
        x = torch.randn(2, 5, 8) * 3 + rng.uniform(-2, 2)
        norm = RMSNorm(8, eps=eps)
        with torch.no_grad():
            norm.weight.copy_(torch.randn(8))
            torch.testing.assert_close(REGISTRY["rms_norm"].reference(x, norm.weight, eps=eps), norm(x))


def _agree_make_batch(rng: random.Random) -> None:
    from gpt2lib.data import get_batch

    data = torch.randint(0, 1000, (300,))
    for _ in range(5):
        T = rng.randint(1, 20)
        starts = [rng.randrange(0, 300 - T - 1) for _ in range(rng.randint(1, 5))]
        key = REGISTRY["make_batch"].reference(data, starts, T)
        pkg = get_batch(data, len(starts), T, starts=torch.tensor(starts))
        assert torch.equal(key[0], pkg[0]) and torch.equal(key[1], pkg[1])


def _agree_lr_at(rng: random.Random) -> None:
    from gpt2lib.training.schedule import lr_at

    configs = [dict(lr=6e-4, warmup_steps=10, max_steps=100, min_lr=6e-5),
               dict(lr=1e-3, warmup_steps=0, max_steps=50, min_lr=0.0),
               dict(lr=3e-4, warmup_steps=20, max_steps=20, min_lr=3e-5),  # warm-up as long as the run
               dict(lr=1.0, warmup_steps=1, max_steps=2, min_lr=0.5)]
    for cfg in configs:
        for step in [*range(0, cfg["max_steps"] + 3), rng.randrange(0, 500)]:
            key = REGISTRY["lr_at"].reference(step, **cfg)
            assert math.isclose(key, lr_at(step, **cfg), rel_tol=1e-12, abs_tol=1e-15), (cfg, step)


def _agree_sampling_filters(rng: random.Random) -> None:
    from gpt2lib.generation import top_k_filter, top_p_filter

    for _ in range(10):
        logits = torch.randn(rng.randint(1, 3), rng.randint(2, 40)) * 3
        k, p = rng.randint(1, 45), rng.uniform(0.05, 0.99)
        assert torch.equal(REGISTRY["top_k_filter"].reference(logits, k), top_k_filter(logits, k))
        assert torch.equal(REGISTRY["top_p_filter"].reference(logits, p), top_p_filter(logits, p))


def _agree_convert(rng: random.Random) -> None:
    from gpt2lib.exercises.ch07_tools import hf_gpt2_state_dict
    from gpt2lib.hf import hf_to_ours
    from gpt2lib.model import GPTConfig

    h = rng.choice([1, 2])
    cfg = GPTConfig(vocab_size=rng.randint(10, 50), block_size=rng.randint(4, 9), n_layer=rng.randint(1, 3),
                    n_head=h, n_embd=h * rng.randint(2, 4))
    sd = hf_gpt2_state_dict(cfg.n_layer, cfg.n_embd, cfg.vocab_size, cfg.block_size)
    key, pkg = REGISTRY["convert_hf_state_dict"].reference(sd), hf_to_ours(sd, cfg)
    assert sorted(key) == sorted(pkg)
    for name in key:
        assert torch.equal(key[name], pkg[name]), name


def _agree_safetensors_header(rng: random.Random) -> None:
    from safetensors.torch import save

    tensors = {f"t{i}": torch.zeros(*[rng.randint(1, 4) for _ in range(rng.randint(0, 3))]) for i in range(4)}
    key = REGISTRY["read_safetensors_header"].reference(save(tensors, metadata={"format": "pt"}))
    assert key == {k: ("F32", tuple(v.shape)) for k, v in tensors.items()}


def _agree_costs(rng: random.Random) -> None:
    from gpt2lib import evaluation as ev

    for _ in range(20):
        n, d = rng.randint(1, 10**10), rng.randint(1, 10**12)
        peak, u = rng.choice([125e12, 312e12, 989e12]), rng.uniform(0.1, 1.0)
        assert REGISTRY["training_flops_6nd"].reference(n, d) == ev.training_flops(n, d)
        assert REGISTRY["adam_memory_bytes"].reference(n) == ev.training_memory_bytes(n)
        assert math.isclose(REGISTRY["gpu_hours"].reference(n, d, peak, u), ev.gpu_hours(n, d, peak_flops=peak, mfu=u),
                            rel_tol=1e-12)
        L, C, T, B, b = rng.randint(1, 48), 64 * rng.randint(1, 25), rng.randint(1, 4096), rng.randint(1, 64), rng.choice([1, 2, 4])
        assert REGISTRY["inference_bytes"].reference(n, L, C, T, B, b) == ev.inference_memory_bytes(
            n, n_layer=L, n_embd=C, seq_len=T, batch=B, bytes_per_value=b)


def _tiny_gpt(rng: random.Random):
    from gpt2lib.model import GPT, GPTConfig

    h = rng.choice([1, 2, 4])
    torch.manual_seed(rng.randrange(2**31))
    return GPT(GPTConfig(vocab_size=rng.randint(20, 60), block_size=32, n_layer=rng.randint(1, 3), n_head=h,
                         n_embd=h * rng.choice([4, 8]))).eval()


def _agree_block_module_gpt_model(rng: random.Random) -> None:
    # the answer keys of 5.4 and 5.6, fed the package's weights, compute the package's block and model
    from gpt2lib.exercises.ch05_modules import BookBlock, BookGPT

    for _ in range(3):
        model = _tiny_gpt(rng)
        idx = torch.randint(model.config.vocab_size, (rng.randint(1, 3), rng.randint(1, 9)))
        key = BookGPT(model.config).eval()
        key.load_state_dict(model.state_dict())
        block = BookBlock(model.config).eval()
        block.load_state_dict(model.blocks[0].state_dict())
        x = torch.randn(*idx.shape, model.config.n_embd)
        with torch.no_grad():
            torch.testing.assert_close(block(x), model.blocks[0](x)[0])
            (a, la), (b, lb) = key(idx, idx), model(idx, idx)
            torch.testing.assert_close(a, b)
            torch.testing.assert_close(la, lb)


def _agree_kv_cache_step(rng: random.Random) -> None:
    # Feeding a sequence piece by piece through the key, with its cache, gives the package model's logits
    # for the whole sequence at once.
    for _ in range(3):
        model = _tiny_gpt(rng)
        ids = torch.randint(model.config.vocab_size, (rng.randint(1, 2), rng.randint(3, 20)))
        cuts = sorted(rng.sample(range(1, ids.size(1)), rng.randint(1, min(3, ids.size(1) - 1))))
        past, pieces = [], []
        for a, b in zip([0, *cuts], [*cuts, ids.size(1)]):
            logits, past = REGISTRY["kv_cache_step"].reference(model, ids[:, a:b], past)
            pieces.append(logits)
        with torch.no_grad():
            full, _ = model(ids)
        torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-4)


AGREEMENT = {
    "bigram_counts/bigram_probs/mean_nll": _agree_bigram,
    "bits_per_byte": _agree_bits_per_byte,
    "count_parameters": _agree_count_parameters,
    "model_shapes": _agree_model_shapes,
    "merge": _agree_merge,
    "encode_word": _agree_encode_word,
    "softmax/masked_scores/split_heads/multi_head_attention": _agree_attention,
    "layer_norm/gelu": _agree_layer_norm_gelu,
    "rms_norm": _agree_rms_norm,
    "block_module/gpt_model": _agree_block_module_gpt_model,
    "kv_cache_step": _agree_kv_cache_step,
    "make_batch": _agree_make_batch,
    "lr_at": _agree_lr_at,
    "top_k_filter/top_p_filter": _agree_sampling_filters,
    "convert_hf_state_dict": _agree_convert,
    "read_safetensors_header": _agree_safetensors_header,
    "training_flops_6nd/adam_memory_bytes/gpu_hours/inference_bytes": _agree_costs,
}


@pytest.mark.parametrize("names", list(AGREEMENT))
def test_answer_key_agrees_with_the_package(names):
    """An answer key that mirrors a package function gives its numbers on inputs of every kind, edge
    cases included (issue 13: the chapter-5 key once divided by zero where the package did not)."""
    AGREEMENT[names](random.Random(0))
