"""A topic task from the book's corpus: which part of Python's reference does a run of words come from?

The corpus is a set of sections (a title underlined with asterisks, then the text), each taken from one
part of Python's documentation. Three parts give the classes: the statements (the language reference's
chapters "Simple statements" and "Compound statements"), the expressions (its chapter "Expressions") and
the objects and their types (its chapter "Data model" and the library's "Built-in Types"). The sections of
other parts (lexical analysis, the execution model, the debugger) are left out. The title of every
section is listed below with its part, so the labels are the documentation's own structure, not a
guess.

A language model's loss cannot answer this: every part is ordinary text of the same reference, equally
likely to the model. A bag of words can do well (``operand`` is an expression's word, ``__init__`` an
object's), and a classifier fine-tuned on a few hundred labelled runs can learn the same and more.

The book's model pre-trained on most of these runs (the sections in the corpus's training split) but
never saw a label. Every run is used once: the corpus repeats whole passages under several titles, so
runs are compared lower-cased with spacing collapsed, kept once, and dropped when they occur under
titles of two different parts.
"""
from __future__ import annotations

import random

from ..runtime import InputError
from .questions import reference_sections
from .tasks import Example, Splits, _normalised

__all__ = ["TOPICS", "SECTION_TOPICS", "topics"]

TOPICS = ("statements", "expressions", "objects and types")

_STATEMENTS = ('The "assert" statement', "Assignment statements", "Augmented assignment statements",
               'The "break" statement', "Class definitions", "Compound statements", 'The "continue" statement',
               "Coroutines", 'The "del" statement', 'The "for" statement', "Function definitions",
               'The "global" statement', 'The "if" statement', 'The "import" statement', 'The "nonlocal" statement',
               'The "pass" statement', 'The "raise" statement', 'The "return" statement', 'The "try" statement',
               'The "while" statement', 'The "with" statement', 'The "yield" statement')
_EXPRESSIONS = ("Arithmetic conversions", "Attribute references", "Await expression", "Binary arithmetic operations",
                "Binary bitwise operations", "Boolean operations", "Calls", "Comparisons", "Dictionary displays",
                "Expression lists", "Lambdas", "List displays", "Membership test operations", "Operator precedence",
                "The power operator", "Shifting operations", "Slicings", "Subscriptions",
                "Unary arithmetic and bitwise operations")
_OBJECTS = ("Basic customization", "Code Objects", "Customizing attribute access", "Emulating container types", "Emulating numeric types", "Functions", 'Mapping Types — "dict"', "Methods",
            "Modules", "Mutable Sequence Types", "Objects, values and types",
            'Sequence Types — "list", "tuple", "range"', "Special Attributes", "Special method names",
            "String Methods", "The Ellipsis Object", "The Null Object", "The standard type hierarchy", "Truth Value Testing",
            "Type Objects", "With Statement Context Managers")

#: Each labelled section's title and its class (an index into :data:`TOPICS`).
SECTION_TOPICS: dict[str, int] = {title: label for label, titles in enumerate((_STATEMENTS, _EXPRESSIONS, _OBJECTS))
                                  for title in titles}

def _labelled_runs(corpus: str, words: int) -> list[tuple[str, int]]:
    """Every run of ``words`` words of prose in a labelled section, once; a run under two parts is dropped."""
    runs: dict[str, tuple[str, set[int]]] = {}
    for title, paragraphs in reference_sections(corpus):
        label = SECTION_TOPICS.get(title)
        if label is None:
            continue
        for para in paragraphs:
            toks = para.split()
            for i in range(0, len(toks) - words + 1, words):
                run = " ".join(toks[i:i + words])
                runs.setdefault(_normalised(run), (run, set()))[1].add(label)
    return [(run, next(iter(labels))) for run, labels in runs.values() if len(labels) == 1]


def topics(corpus: str = "python-docs", *, words: int = 16, n_val: int = 100, n_test: int = 250,
           seed: int = 0) -> Splits:
    """Runs of ``words`` words labelled with their part of the reference (0, 1, 2: see :data:`TOPICS`), in a
    seeded random order: ``n_test`` for the test split, ``n_val`` for validation, every other run for training.
    No run (compared lower-cased, spacing collapsed) is in two splits."""
    if words < 1:
        raise InputError(f"words must be >= 1, got {words}")
    runs = _labelled_runs(corpus, words)
    if not runs:
        raise InputError(f"the corpus {corpus!r} has no section titled as the reference's parts "
                         "(see gpt2lib.finetune.topics.SECTION_TOPICS); use the book's corpus, 'python-docs'")
    if n_val + n_test >= len(runs):
        raise InputError(f"the corpus gives {len(runs)} runs of {words} words; ask for fewer (n_val + n_test < "
                         f"{len(runs)}, leaving the rest for training) or shorter runs")
    random.Random(seed).shuffle(runs)
    items = [Example(run, label) for run, label in runs]
    return Splits(items[n_test + n_val:], items[n_test:n_test + n_val], items[:n_test])
