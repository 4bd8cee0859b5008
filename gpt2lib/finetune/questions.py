"""Questions with one right answer each, built from the book's corpus, for instruction tuning (chapter 6.2).

Two kinds:

- "What does ``dict.get(key[, default])`` do?", answered by the first sentence of its documentation;
- "Which section of the reference is this from? PASSAGE", answered by the section's title.

The corpus (Python's reference topics) repeats whole passages under several topics, so the raw questions
repeat and contradict each other: the same passage under "Assignment statements" and "Augmented
assignment statements". :func:`questions` compares inputs after :func:`~gpt2lib.finetune.scores.normalise`
(case, punctuation and spacing ignored), keeps one copy of each, and drops an input that has two
different answers: training on it would teach a contradiction, and scoring it against one answer would
mark the other right answer wrong.

:func:`question_splits` holds out by source, as :func:`~gpt2lib.finetune.tasks.acceptability` does: a
test question's passage (or its method's description) lies in the corpus's validation split and nowhere
in its training split, so neither pre-training nor fine-tuning saw it; and no answer of a test (or
validation) question is an answer in the fine-tuning training set, so a right answer is not a memorised
pair. :func:`question_audit` counts what each rule removed and proves the rules hold.
"""
from __future__ import annotations

import builtins
import random
import re
from collections import defaultdict
from dataclasses import dataclass

from ..data import load_text, split_text
from ..runtime import InputError
from .scores import normalise
from .tasks import Example, Splits, _prose_paragraphs

__all__ = ["documented_names", "reference_sections", "questions", "question_kind", "question_splits",
           "question_audit"]

METHOD_PREFIX = "What does "
SECTION_PREFIX = "Which section of the reference is this from? "

# A documented name at the start of a line: ``object.__len__(self)``, ``str.upper()``, ``pdb.pm()``,
# ``len(dictview)`` (a built-in applied to the object), then a blank line and the indented description.
_ENTRY = re.compile(r"^(?:(?:classmethod|staticmethod) )?(\w+\.\w+(?:\([^\n]*\))?|\w+\(\w+\))\n\n((?:   [^\n]+\n)+)",
                    re.M)
# ``class dict(**kwargs)``: its methods are indented one level, without the class name (``   get(key)``).
_CLASS = re.compile(r"^class (\w+)\([^\n]*\)\n(?:(?:class [^\n]*)?\n)*((?:(?: [^\n]*)?\n)+)", re.M)
_MEMBER = re.compile(r"^   (?:(?:classmethod|staticmethod) )?(\w+)(\([^\n]*\))?\n\n((?:      [^\n]+\n)+)", re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“(*])")


@dataclass(frozen=True)
class _Raw:
    """A question, its answer, and the text it was built from (the passage, or the method's description)."""

    question: str
    answer: str
    source: str


def _first_sentence(description: str) -> str:
    text = " ".join(line.strip() for line in description.splitlines())
    text = re.sub(r"\s*\[\d+\]", "", text)  # footnote marks
    return _SENTENCE_END.split(text, maxsplit=1)[0]


def _is_call_on_object(name: str, args: str | None) -> bool:
    """``len(d)``, ``iter(dictview)``: a built-in applied to the object, not a method of it."""
    return hasattr(builtins, name) and args is not None and re.fullmatch(r"\(\w+\)", args) is not None


def _raw_methods(text: str) -> list[_Raw]:
    found = [(m.start(), m.group(1), m.group(2)) for m in _ENTRY.finditer(text)
             if "." in m.group(1) or _is_call_on_object(m.group(1).split("(")[0], "(" + m.group(1).split("(", 1)[1])]
    for block in _CLASS.finditer(text):
        for m in _MEMBER.finditer(block.group(2)):
            name, args = m.group(1), m.group(2)
            full = f"{name}{args}" if _is_call_on_object(name, args) else f"{block.group(1)}.{name}{args or ''}"
            found.append((block.start(2) + m.start(), full, m.group(3)))
    out = []
    for _, name, description in sorted(found):
        first = _first_sentence(description)
        if 20 <= len(first) <= 200:
            out.append(_Raw(f"{METHOD_PREFIX}{name} do?", first, first))
    return out


def documented_names(corpus: str = "python-docs") -> list[tuple[str, str]]:
    """``(name, first sentence)`` for each documented method or attribute (``object.__len__(self)``,
    ``str.upper()``, ``dict.get(key[, default])``, ``len(dictview)``), in the corpus's order, repeats included."""
    return [(r.question[len(METHOD_PREFIX):-len(" do?")], r.answer) for r in _raw_methods(load_text(corpus))]


def reference_sections(corpus: str = "python-docs") -> list[tuple[str, list[str]]]:
    """``(title, prose paragraphs)`` for each top-level section (a title underlined with ``*``)."""
    return _sections(load_text(corpus))


def _sections(text: str) -> list[tuple[str, list[str]]]:
    heads = list(re.finditer(r"^([^\n]+)\n(\*+)\n", text, re.M))
    out = []
    for i, m in enumerate(heads):
        if len(m.group(2)) != len(m.group(1)):
            continue
        body = text[m.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        paragraphs = [p for p in _prose_paragraphs(body) if len(p) >= 80]
        if paragraphs:
            out.append((m.group(1), paragraphs))
    return out


def _raw_questions(text: str, max_chars: int) -> list[_Raw]:
    items = _raw_methods(text)
    for title, paragraphs in _sections(text):
        for p in paragraphs:
            passage = p if len(p) <= max_chars else p[:max_chars].rsplit(" ", 1)[0] + " ..."
            items.append(_Raw(f"{SECTION_PREFIX}{passage}", title, p))
    return items


def _clean(raw: list[_Raw]) -> tuple[list[_Raw], dict[str, int]]:
    """One copy of each input (compared normalised); an input with two different answers dropped."""
    answers: dict[str, set[str]] = defaultdict(set)
    copies: dict[str, int] = defaultdict(int)
    for r in raw:
        answers[normalise(r.question)].add(normalise(r.answer))
        copies[normalise(r.question)] += 1
    kept, seen = [], set()
    for r in raw:
        key = normalise(r.question)
        if len(answers[key]) == 1 and key not in seen:
            seen.add(key)
            kept.append(r)
    return kept, {"raw": len(raw), "inputs": len(copies),
                  "repeated": sum(n for n in copies.values() if n > 1),
                  "repeated_inputs": sum(n > 1 for n in copies.values()),
                  "ambiguous": sum(copies[k] for k, a in answers.items() if len(a) > 1),
                  "ambiguous_inputs": sum(len(a) > 1 for a in answers.values()), "kept": len(kept)}


def questions(corpus: str = "python-docs", *, max_chars: int = 120) -> list[Example]:
    """Both kinds of question, as ``Example(text=question, answer=answer)``, each input once and with one
    answer: what each documented method does, and which section a passage (its first ``max_chars``
    characters, cut at a word) comes from."""
    kept, _ = _clean(_raw_questions(load_text(corpus), max_chars))
    return [Example(r.question, answer=r.answer) for r in kept]


def question_kind(example: Example) -> str:
    """``"method"`` for "What does ... do?", ``"section"`` for "Which section ...?"."""
    return "method" if example.text.startswith(METHOD_PREFIX) else "section"


def _padded(text: str) -> str:
    return f" {normalise(text)} "


def question_splits(corpus: str = "python-docs", *, val: float = 0.1, test: float = 0.2, seed: int = 0,
                    max_chars: int = 120) -> Splits:
    """The questions of :func:`questions`, split for fine-tuning; the CLI and chapter 6.2 use these splits.

    - **What does ... do?** The test questions are those whose description lies in the corpus's
      validation split and nowhere in its training split (:func:`~gpt2lib.data.split_text`): neither the
      book's model nor fine-tuning ever saw their answers, so they test whether a fact can be produced
      without having been read. A training or validation question whose answer is a test answer, or
      whose text holds one, is dropped. The rest are split by answer (a tenth, ``val``, to validation).
    - **Which section ...?** A title is a class: the model can only learn to name titles it is trained
      on, so each title's passages are spread over the parts, ``test`` and ``val`` of them (rounded down:
      a title with fewer than 1/``test`` passages is never tested). A title's test passages are taken
      first from those that occur nowhere in the corpus's training split; the other test passages were in
      the book's model's pre-training text (under their title), though never in fine-tuning.

    No input (compared normalised) is in two parts; ``seed`` fixes the random choices."""
    return _question_splits(load_text(corpus), val=val, test=test, seed=seed, max_chars=max_chars)[0]


def _question_splits(text: str, *, val: float, test: float, seed: int,
                     max_chars: int) -> tuple[Splits, dict[str, int]]:
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise InputError(f"need 0 <= val, test and val + test < 1, got val={val}, test={test}")
    kept, counts = _clean(_raw_questions(text, max_chars))
    pre_train, held = split_text(text)
    seen, unseen = _padded(pre_train), _padded(held)
    is_unseen = {id(r): _padded(r.source) not in seen and _padded(r.source) in unseen for r in kept}
    rng = random.Random(seed)
    methods = [r for r in kept if r.question.startswith(METHOD_PREFIX)]
    parts: dict[str, list[_Raw]] = {"train": [], "val": [], "test": [r for r in methods if is_unseen[id(r)]]}
    held_answers = [normalise(r.answer) for r in parts["test"]]
    pool = [r for r in methods if not is_unseen[id(r)]]
    clean = [r for r in pool if not any(a in normalise(f"{r.question} {r.answer}") for a in held_answers)]
    counts["method_holds_a_test_answer"] = len(pool) - len(clean)
    by_answer: dict[str, list[_Raw]] = defaultdict(list)
    for r in clean:
        by_answer[normalise(r.answer)].append(r)
    answers = sorted(by_answer)
    rng.shuffle(answers)
    n_val = round(len(clean) * val)
    for a in answers:
        parts["val" if len(parts["val"]) < n_val else "train"] += by_answer[a]
    by_title: dict[str, list[_Raw]] = defaultdict(list)
    for r in kept:
        if not r.question.startswith(METHOD_PREFIX):
            by_title[r.answer].append(r)
    dropped = 0
    for title in sorted(by_title):
        rows = list(by_title[title])
        rng.shuffle(rows)
        rows.sort(key=lambda r: not is_unseen[id(r)])  # stable: the passages pre-training never saw first
        n_test, n_val = int(len(rows) * test), int(len(rows) * val)
        parts["test"] += rows[:n_test]
        parts["val"] += rows[n_test:n_test + n_val]
        rest = rows[n_test + n_val:]
        keep = [r for r in rest if not any(a in normalise(r.question) for a in held_answers)]
        dropped += len(rest) - len(keep)
        parts["train"] += keep
    counts["section_holds_a_test_answer"] = dropped
    counts.update({f"{name}_{kind}": sum(r.question.startswith(METHOD_PREFIX) == (kind == "method") for r in rows)
                   for name, rows in parts.items() for kind in ("method", "section")})
    counts["test_unseen_by_pre_training"] = sum(is_unseen[id(r)] for r in parts["test"])
    out = {name: [Example(r.question, answer=r.answer) for r in rows] for name, rows in parts.items()}
    return Splits(out["train"], out["val"], out["test"]), counts


def question_audit(corpus: str = "python-docs", *, val: float = 0.1, test: float = 0.2, seed: int = 0,
                   max_chars: int = 120) -> dict[str, int]:
    """What :func:`questions` and :func:`question_splits` did, rule by rule: ``raw`` questions built, on
    ``inputs`` different inputs (compared normalised); ``repeated`` of them share their input with another,
    on ``repeated_inputs`` inputs; ``ambiguous`` of them have an input with two or more answers
    (``ambiguous_inputs``), all dropped; ``kept``, one per input; ``method_holds_a_test_answer`` and
    ``section_holds_a_test_answer``, dropped from training and validation because a test method's
    description is their answer or part of their text; the size of each part by kind; and
    ``test_unseen_by_pre_training``, the test questions whose passage or description is not in the
    book's model's pre-training text."""
    return _question_splits(load_text(corpus), val=val, test=test, seed=seed, max_chars=max_chars)[1]
