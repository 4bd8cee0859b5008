"""The exercise system: the checker's own behaviour, then every registered exercise of the book.

For every exercise the reference passes and each plausible wrong solution fails: a checker that cannot
fail is a defect, and so is one that compares the reader's function with itself.
"""
from __future__ import annotations

import json

import pytest
import torch

from gpt2lib.exercises import Case, Exercise, Mistake, all_exercises, progress, show_progress
from gpt2lib.exercises._core import CHECKERS, REGISTRY, register


def _softmax(x):
    return torch.softmax(x, dim=-1)


def _softmax_wrong_dim(x):
    return torch.softmax(x, dim=0)


def _softmax_no_normalise(x):
    return torch.exp(x)


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "progress.json"))


@pytest.fixture()
def demo():
    ex = Exercise(
        "demo_softmax", chapter=0, title="demo", level="easy", minutes=1, reference=_softmax,
        cases=lambda rng: [Case(f"random {rng.randint(2, 5)}x4", (torch.randn(3, 4),)),
                           Case("large values", (torch.tensor([[1000.0, 1001.0]]),))],
        mistakes=[Mistake("normalise along dim=-1", _softmax_wrong_dim),
                  Mistake("divide by the sum", _softmax_no_normalise)],
    )
    yield ex
    REGISTRY.pop("demo_softmax", None)
    CHECKERS.pop("demo_softmax", None)


def test_reference_passes_and_says_so(demo, capsys):
    assert demo.check(_softmax) is True
    assert "passed all 2 cases" in capsys.readouterr().out


def test_wrong_answer_fails_with_case_and_hint(demo, capsys):
    assert demo.check(_softmax_wrong_dim) is False
    out = capsys.readouterr().out
    assert "failed" in out and "hint: normalise along dim=-1" in out and "seed=" in out


def test_unknown_mistake_fails_without_a_hint(demo, capsys):
    assert demo.check(lambda x: _softmax(x) + 0.1) is False
    out = capsys.readouterr().out
    assert "values differ" in out and "hint" not in out


@pytest.mark.parametrize("answer, message", [
    (lambda x: None, "returned None"),
    (lambda x: x.tolist(), "expected a torch.Tensor"),
    (lambda x: x[..., :1], "expected shape"),
    (lambda x: 1 / 0, "raised ZeroDivisionError"),
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


def test_not_a_function(demo, capsys):
    assert demo.check(_softmax(torch.ones(2))) is False
    assert "expected a function" in capsys.readouterr().out


def test_input_mutation_does_not_fool_the_checker(demo):
    def mutating(x):
        x.zero_()
        return _softmax(x)

    assert demo.check(mutating) is False


def test_seed_replays_the_same_cases(demo):
    seen = []
    demo.check(lambda x: seen.append(x.clone()) or _softmax(x), seed=3)
    demo.check(lambda x: seen.append(x.clone()) or _softmax(x), seed=3)
    assert torch.equal(seen[0], seen[2])


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


def test_show_progress_lists_a_chapter(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "p.json"))
    exercises = all_exercises()
    if not exercises:
        pytest.skip("no chapter has registered exercises yet")
    first = exercises[0]
    status = show_progress(chapter=first.chapter)
    assert status and all(v is False for v in status.values())
    assert f"Chapter {first.chapter}" in capsys.readouterr().out


def test_duplicate_names_are_refused(demo):
    register(demo)
    with pytest.raises(ValueError, match="two exercises"):
        register(demo)


def test_levels_are_checked():
    with pytest.raises(ValueError, match="level"):
        Exercise("x", chapter=1, title="x", level="trivial", minutes=1, reference=abs, cases=lambda rng: [])


EXERCISES = all_exercises()


@pytest.mark.parametrize("exercise", EXERCISES, ids=[e.name for e in EXERCISES])
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

    def placeholder(*args, **kwargs):
        raise NotImplementedError

    assert not exercise.check(placeholder)
    assert "not done yet" in capsys.readouterr().out
    assert not exercise.check(lambda *a, **k: None)


def test_progress_command(tmp_path, monkeypatch, capsys):
    from gpt2lib.exercises.__main__ import main

    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "p.json"))
    progress.record("anything", True)
    assert main([]) == 0
    assert "exercises passed" in capsys.readouterr().out
    assert main(["--reset"]) == 0 and progress.load() == {}
    with pytest.raises(SystemExit):
        main(["12"])
