"""gpt2lib.finetune.questions: chapter 6.2's questions have one answer per input, and the held-out ones
leak nothing: no input in two splits, no test method's description seen in pre-training or fine-tuning."""
from __future__ import annotations

from collections import Counter

import pytest

from gpt2lib.data import load_text, split_text
from gpt2lib.finetune import (documented_names, normalise, question_audit, question_kind, question_splits, questions,
                              reference_sections)
from gpt2lib.finetune.questions import METHOD_PREFIX, SECTION_PREFIX, _clean, _raw_questions
from gpt2lib.runtime import InputError


@pytest.fixture(scope="module")
def splits():
    """The splits chapter 6.2 and `python -m gpt2lib finetune --task questions` use."""
    return question_splits()


def padded(text: str) -> str:
    return f" {normalise(text)} "


def test_documented_names_read_both_layouts_of_the_reference():
    names = documented_names()
    assert ("str.upper()", "Return a copy of the string with all the cased characters converted to uppercase.") in names
    # a class's methods are indented under it, without the class name; a built-in applied to the object keeps its form
    assert ("dict.get(key[, default])", "Return the value for *key* if *key* is in the dictionary, else *default*.") in names
    assert ("len(dictview)", "Return the number of entries in the dictionary.") in names
    assert ("range.step", 'The value of the *step* parameter (or "1" if the parameter was not supplied)') in names
    assert not [n for n, _ in names if n.startswith(("key ", "d["))]  # operations, not names
    assert {"Compound statements", "Sequence Types — \"list\", \"tuple\", \"range\""} <= {t for t, _ in reference_sections()}


def test_the_raw_questions_repeat_and_contradict_and_questions_keeps_each_input_once_with_one_answer():
    raw = _raw_questions(load_text("python-docs"), 120)
    answers: dict[str, set[str]] = {}
    for r in raw:
        answers.setdefault(normalise(r.question), set()).add(normalise(r.answer))
    contradicted = [q for q, a in answers.items() if len(a) > 1]
    assert contradicted  # the corpus repeats passages under several titles
    assert any(a == {"assignment statements", "augmented assignment statements"} for a in answers.values())
    items = questions()
    keys = [normalise(ex.text) for ex in items]
    assert len(keys) == len(set(keys))  # each input once, compared normalised
    assert not set(keys) & set(contradicted)  # an input with two right answers is dropped
    assert all(normalise(ex.answer) in answers[normalise(ex.text)] for ex in items)
    counts = question_audit()
    assert (counts["raw"], counts["kept"]) == (len(raw), len(items)) == (len(raw), len(_clean(raw)[0]))
    assert counts["ambiguous_inputs"] == len(contradicted) and counts["repeated"] > counts["ambiguous"] > 0


def test_no_input_is_in_two_splits_and_each_has_one_answer(splits):
    parts = [{normalise(ex.text) for ex in part} for part in (splits.train, splits.val, splits.test)]
    assert sum(map(len, parts)) == len(splits.train) + len(splits.val) + len(splits.test)  # no repeat within a part
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    by_input = Counter(normalise(ex.text) for ex in splits.train + splits.val + splits.test)
    assert max(by_input.values()) == 1
    assert set(map(question_kind, splits.test)) == set(map(question_kind, splits.val)) == {"method", "section"}


def test_held_out_method_descriptions_were_seen_neither_in_pre_training_nor_in_fine_tuning(splits):
    pre_train, held = split_text(load_text("python-docs"))
    seen, unseen = padded(pre_train), padded(held)
    tests = [ex for ex in splits.test if question_kind(ex) == "method"]
    assert len(tests) >= 20 and all(ex.text.startswith(METHOD_PREFIX) for ex in tests)
    fine_tuning = [padded(f"{ex.text} {ex.answer}") for ex in splits.train + splits.val]
    for ex in tests:
        assert padded(ex.answer) not in seen and padded(ex.answer) in unseen, ex.text  # pre-training never read it
        assert not any(padded(ex.answer) in text for text in fine_tuning), ex.text     # nor did fine-tuning
    # the review's leaks: object.__slots__ (the old chapter's example) was a test question and a training question
    assert not any("object.__slots__" in ex.text for ex in splits.test)


def test_held_out_passages_name_titles_the_training_set_teaches(splits):
    tests = [ex for ex in splits.test if question_kind(ex) == "section"]
    assert len(tests) >= 50 and all(ex.text.startswith(SECTION_PREFIX) for ex in tests)
    titles = Counter(ex.answer for ex in splits.train if question_kind(ex) == "section")
    assert all(titles[ex.answer] >= 4 for ex in tests)  # a class it was trained on, with at least 4 examples
    # where a title has passages pre-training never saw (the corpus's validation split), they are tested first
    pre_train = padded(split_text(load_text("python-docs"))[0])
    unseen = [ex for ex in tests if padded(ex.text[len(SECTION_PREFIX):].removesuffix(" ...")) not in pre_train]
    assert {ex.answer for ex in unseen} >= {"Sequence Types — \"list\", \"tuple\", \"range\"", "Mapping Types — \"dict\""}


def test_the_splits_are_seeded_and_refuse_bad_fractions(splits):
    other = question_splits(seed=1)
    assert question_splits() == splits and other != splits
    methods = [[ex for ex in s.test if question_kind(ex) == "method"] for s in (splits, other)]
    assert methods[0] == methods[1]  # held out by source, not drawn
    counts = question_audit()
    assert counts["test_method"] + counts["test_section"] == len(splits.test)
    assert counts["train_method"] + counts["train_section"] == len(splits.train)
    with pytest.raises(InputError, match="val \\+ test < 1"):
        question_splits(val=0.5, test=0.5)
