"""Labelled tasks built from the book's corpus (Python's language reference, shipped with the package
under the PSF licence), so fine-tuning needs no download and every reader gets the same examples.

- **Acceptability** (classification): is a run of words the reference's own text, or the same words in
  a shuffled order? GPT-1 was fine-tuned on a task of this kind (CoLA, grammatical or not; Radford et
  al. 2018). A bag of words scores 50% by construction, since both classes hold the same words: only
  word order tells them apart, which is what a language model has learnt.
- The questions of instruction tuning are in :mod:`.questions`, which builds on :class:`Example` and
  :class:`Splits`.

Splits are by source: the test items come from the corpus's validation split, which the book's model
never trained on (a run the corpus repeats in its training split is dropped); the training and
validation items from its training split; no run is in two splits.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Container

from ..data import load_text, split_text
from ..runtime import InputError

__all__ = ["Example", "Splits", "acceptability"]


@dataclass(frozen=True)
class Example:
    """One labelled item: ``text`` (the input, or the question), ``label`` (a class index) or
    ``answer`` (the text to generate)."""

    text: str
    label: int | None = None
    answer: str | None = None


@dataclass(frozen=True)
class Splits:
    train: list[Example]
    val: list[Example]
    test: list[Example]

    def __repr__(self) -> str:
        return f"Splits(train={len(self.train)}, val={len(self.val)}, test={len(self.test)})"


def _prose_paragraphs(text: str) -> list[str]:
    """The paragraphs of running prose: no indented code or grammar, no headings, no lists."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        if not lines or any(line.startswith((" ", "\t", "*", "-", "=", "|", "+")) for line in lines):
            continue
        if len(lines) == 1 and len(lines[0]) < 60:
            continue  # a heading or a one-line label
        out.append(" ".join(line.strip() for line in lines))
    return out


def _word_windows(text: str, words: int, rng: random.Random) -> list[str]:
    """Non-overlapping runs of ``words`` words from the prose of ``text``, in a random order."""
    windows = []
    for para in _prose_paragraphs(text):
        toks = para.split()
        windows += [" ".join(toks[i:i + words]) for i in range(0, len(toks) - words + 1, words)]
    rng.shuffle(windows)
    return windows


def _shuffled(window: str, rng: random.Random) -> str:
    toks = window.split()
    for _ in range(100):
        rng.shuffle(toks)
        if " ".join(toks) != window:
            return " ".join(toks)
    raise InputError(f"cannot shuffle {window!r} into another order")  # every word the same


def _normalised(text: str) -> str:
    """Lower-case, whitespace collapsed: two runs are "the same text" when these are equal."""
    return " ".join(text.lower().split())


def _unseen_runs(train_text: str, val_text: str, words: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """``(pool, held)``: the runs of the training text and of the validation text, each text once.

    The corpus repeats whole passages (under several topics), so a run can occur twice in the pool
    (and land in both the training and the validation items), or lie in the validation text and in the
    training text too (and be a test item the model pre-trained on). A run is kept once; a run of the
    validation text is dropped if it occurs anywhere in the training text, and a pool run that is also a
    held run is dropped from the pool."""
    held, held_keys = _new_runs(val_text, words, rng, _normalised(train_text))
    pool, _ = _new_runs(train_text, words, rng, held_keys)
    return pool, held


def _new_runs(text: str, words: int, rng: random.Random, excluded: Container[str]) -> tuple[list[str], set[str]]:
    """The runs of ``text``, each once (compared normalised) and none whose normalised text is in ``excluded``
    (a set of runs, or a whole normalised text, where ``in`` finds a run inside it); and their keys."""
    runs, keys = [], set()
    for run in _word_windows(text, words, rng):
        key = _normalised(run)
        if key not in keys and key not in excluded:
            runs.append(run)
            keys.add(key)
    return runs, keys


def acceptability(corpus: str = "python-docs", *, words: int = 10, n_train: int = 1600, n_val: int = 150,
                  n_test: int = 100, seed: int = 0) -> Splits:
    """Runs of ``words`` words, half as written (label 1) and half shuffled (label 0), each source run used
    once and in one split only; the test runs come from the corpus's validation split and occur nowhere in
    its training split (compared lower-cased, whitespace collapsed), so the book's model never trained on
    them; the training and validation runs from the training split."""
    if words < 2:
        raise InputError(f"words must be >= 2 (one word has no order), got {words}")
    rng = random.Random(seed)
    pool, held = _unseen_runs(*split_text(load_text(corpus)), words, rng)
    if len(pool) < n_train + n_val or len(held) < n_test:
        raise InputError(f"the corpus gives {len(pool)} training and {len(held)} test runs of {words} words; "
                         f"ask for fewer examples (n_train + n_val <= {len(pool)}, n_test <= {len(held)}) or "
                         f"shorter runs")

    def label(runs: list[str]) -> list[Example]:
        # alternate, so every split is balanced exactly; then shuffle the order of the examples
        items = [Example(run, 1) if i % 2 == 0 else Example(_shuffled(run, rng), 0) for i, run in enumerate(runs)]
        rng.shuffle(items)
        return items

    return Splits(label(pool[:n_train]), label(pool[n_train:n_train + n_val]), label(held[:n_test]))
