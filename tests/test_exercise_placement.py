"""Exercises as the chapters place them: no answer above its exercise, solutions that never overwrite the
reader's function, and solution cells folded everywhere.

An exercise is only an exercise if nothing the reader has already run answers it. For every exercise
cell, the functions defined (``def``) and imported (``from gpt2lib... import``) in the cells above it
are run through that exercise's checker; none may pass. A solution cell defines ``<name>_solution``
(``<base>_solution`` for a learner's function named ``my_<base>``) and never the learner's own name,
so that "Run all" does not silently replace the reader's work.
"""
from __future__ import annotations

import ast
import contextlib
import copy
import inspect
import io
import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from gpt2lib.exercises import all_exercises

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
CHECK_CALL = re.compile(r"\bcheck_(\w+)\(\s*(\w+)")
# what every chapter's cells may lean on without importing it themselves in the cell that defines a function
_PRELUDE = "import math, json, struct, re, random\nimport numpy as np\nimport torch\nimport torch.nn as nn\n" \
           "import torch.nn.functional as F\nfrom collections import Counter, defaultdict\n"
_SECONDS_PER_CANDIDATE = 10


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _python(source: str) -> ast.Module | None:
    # IPython lines (%magic, !shell) are not Python; blank them so the rest still parses
    text = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        return ast.parse(text)
    except SyntaxError:
        return None


def _exercise_cells(nb: dict) -> list[tuple[int, str, str]]:
    """(cell index, checker name, learner's function name) for every exercise cell."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if "exercise" in _tags(cell):
            match = CHECK_CALL.search(_source(cell))
            if match:
                found.append((i, match.group(1), match.group(2)))
    return found


def _defined_functions(tree: ast.Module) -> list[str]:
    """The functions and classes a cell defines at its top level."""
    return [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def _solution_names(learner: str) -> set[str]:
    """``my_x`` -> ``x_solution`` (or ``my_x_solution``); a class ``MyX`` -> ``XSolution``."""
    if learner.startswith("My") and learner[2:3].isupper():
        return {f"{learner[2:]}Solution"}
    base = learner[3:] if learner.startswith("my_") else learner
    return {f"{learner}_solution", f"{base}_solution"}


# ------------------------------------------------------------------------------ solution naming
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_solution_cells_define_name_solution_and_never_the_learners_name(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    problems = []
    for index, checker, learner in _exercise_cells(nb):
        solution = next((j for j in range(index + 1, len(cells)) if "solution" in _tags(cells[j])), None)
        if solution is None:
            problems.append(f"cell {index}: exercise '{checker}' has no solution cell after it")
            continue
        text = _source(cells[solution])
        tree = _python(text)
        defined = _defined_functions(tree) if tree else []
        wanted = _solution_names(learner)
        expected = sorted(wanted)[-1]
        if learner in defined:
            problems.append(f"cell {solution}: the solution redefines the learner's `{learner}` (call it {expected})")
        named = wanted & set(defined)
        if not named:
            problems.append(f"cell {solution}: the solution defines {defined}, expected `{expected}`")
            continue
        calls = CHECK_CALL.findall(text)
        if not any(c == checker and fn in named for c, fn in calls) or "record=False" not in text:
            problems.append(f"cell {solution}: expected check_{checker}({expected}, record=False)")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


# ------------------------------------------------------------------------------ nothing above answers the exercise
class _TooSlow(Exception):
    pass


def _on_alarm(signum, frame):
    raise _TooSlow()


def _candidates_above(cells: list[dict], index: int) -> dict[str, tuple[int, Callable]]:
    """Name -> (cell index, callable) for the top-level defs and gpt2lib imports of the cells above."""
    namespace: dict[str, Any] = {}
    exec(_PRELUDE, namespace)
    found: dict[str, tuple[int, Callable]] = {}
    for i in range(index):
        cell = cells[i]
        if cell["cell_type"] != "code" or {"solution", "setup", "exercise", "progress"} & set(_tags(cell)):
            continue
        tree = _python(_source(cell))
        if tree is None:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                try:
                    exec(compile(ast.Module([node], type_ignores=[]), f"cell {i}", "exec"), namespace)
                except Exception:
                    continue
                # gpt2lib.book and gpt2lib.notebook load models and fill in prose: they answer no exercise,
                # and calling chapter_model with an exercise's arguments would train the book model
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gpt2lib") \
                        and node.module not in ("gpt2lib.book", "gpt2lib.notebook"):
                    for alias in node.names:
                        name = alias.asname or alias.name
                        obj = namespace.get(name)
                        if callable(obj) and not name.startswith(("check_", "show_")):
                            found[name] = (i, obj)  # classes too: a class exercise must not be answered
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                try:
                    exec(compile(ast.Module([node], type_ignores=[]), f"cell {i}", "exec"), namespace)
                except Exception:
                    continue  # a decorator or default that needs the cell's runtime state
                found[node.name] = (i, namespace[node.name])
    return found


def _takes(fn: Callable, args: tuple, kwargs: dict) -> bool:
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:
        return True  # no signature to read (a builtin): let the checker decide
    return True


def _right_and_wrong(exercise, fn: Callable, cases: list) -> tuple[int, int]:
    """(cases answered right, cases answered wrong); a case on which ``fn`` raises is neither."""
    right = wrong = 0
    if exercise.adapt is not None:
        fn = exercise.adapt(fn)  # a class exercise: the cases call the built module
    for case in cases:
        expected = exercise.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                got = fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        except (Exception, SystemExit):
            continue
        try:
            exercise._compare(expected, got)
            right += 1
        except Exception:
            wrong += 1
    return right, wrong


def _gives_away(exercise, fn: Callable) -> str | None:
    """How ``fn`` answers the exercise, if it does: it passes the checker, or it is right on every case
    it answers and only raises on an edge case or two (the answer without its guard is still the answer).
    A function that returns a wrong value somewhere, like a softmax that overflows, is not flagged."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(_SECONDS_PER_CANDIDATE)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if exercise.check(fn, record=False, seed=0):
                return f"passes check_{exercise.name}"
        cases = exercise.draw_cases(0)
        right, wrong = _right_and_wrong(exercise, fn, cases)
        if wrong == 0 and len(cases) >= 3 and right >= len(cases) - 2:
            return (f"answers {right} of the {len(cases)} cases of check_{exercise.name} right "
                    "and only raises on the rest")
        return None
    except _TooSlow:
        return None  # too slow to be an answer a reader would run
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _passes(exercise, fn: Callable) -> bool:
    return _gives_away(exercise, fn) is not None


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_nothing_above_an_exercise_passes_its_checker(path):
    registry = {e.name: e for e in all_exercises()}
    nb = json.loads(path.read_text(encoding="utf-8"))
    answered = []
    for index, checker, learner in _exercise_cells(nb):
        exercise = registry.get(checker)
        assert exercise is not None, f"{path.name} cell {index}: unknown checker check_{checker}"
        first = exercise.draw_cases(0)[0]
        for name, (where, fn) in _candidates_above(nb["cells"], index).items():
            if name == learner or name.startswith("use"):
                continue
            if exercise.adapt is not None:  # a class exercise: only classes can answer it
                if not isinstance(fn, type):
                    continue
            elif isinstance(fn, type) or not _takes(fn, first.args, first.kwargs):
                continue
            verdict = _gives_away(exercise, fn)
            if verdict:
                answered.append(f"`{name}` (cell {where}) {verdict} (exercise cell {index})")
    assert not answered, f"{path.name}: an answer sits above its exercise:\n  " + "\n  ".join(answered)


def test_the_placement_check_can_fail():
    """A chapter that defines the answer above its exercise is caught (a check that cannot fail is none)."""
    def cell(source: str, tags: tuple[str, ...] = ()) -> dict:
        return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source, "outputs": []}

    cells = [cell("import torch", ("setup",)),
             cell("def stable(x):\n    z = x - x.max(dim=-1, keepdim=True).values\n    return z.exp() / z.exp().sum(-1, keepdim=True)"),
             cell("from gpt2lib.generation import top_k_filter"),
             cell("def naive(x):\n    return x.exp() / x.exp().sum(-1, keepdim=True)"),
             cell("def my_softmax(x):\n    raise NotImplementedError\ncheck_softmax(my_softmax);", ("exercise",)),
             cell("def distinct(tokens, n):\n    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]\n"
                  "    return len(set(grams)) / len(grams)"),
             cell("def my_distinct_n(tokens, n):\n    raise NotImplementedError\ncheck_distinct_n(my_distinct_n);",
                  ("exercise",))]
    found = _candidates_above(cells, 4)
    assert set(found) == {"stable", "top_k_filter", "naive"}
    registry = {e.name: e for e in all_exercises()}
    assert _gives_away(registry["softmax"], found["stable"][1]) == "passes check_softmax"
    assert _gives_away(registry["softmax"], found["top_k_filter"][1]) is None
    assert _gives_away(registry["softmax"], found["naive"][1]) is None  # overflows on large scores, masks: not the answer
    # the answer but for the edge case (no n-grams at all) still gives the exercise away
    distinct = _candidates_above(cells, 6)["distinct"][1]
    assert _gives_away(registry["distinct_n"], distinct).startswith("answers")
    # a class exercise: a class above it that answers it is caught, the package's layer (a tuple) is not an answer
    classes = [cell("import torch", ("setup",)),
               cell("from gpt2lib.attention import CausalSelfAttention"),
               cell("from gpt2lib.exercises.ch04_attention_module import BookCausalSelfAttention as Ready"),
               cell("class MyCausalSelfAttention(nn.Module):\n    def __init__(self, n_embd, n_head):\n"
                    "        raise NotImplementedError\ncheck_attention_module(MyCausalSelfAttention);", ("exercise",))]
    found = _candidates_above(classes, 3)
    assert set(found) == {"CausalSelfAttention", "Ready"}
    assert _gives_away(registry["attention_module"], found["Ready"][1]) == "passes check_attention_module"
    assert _gives_away(registry["attention_module"], found["CausalSelfAttention"][1]) is None


# ------------------------------------------------------------------------------ solution cells folded everywhere
def test_sync_hides_solution_cells_in_jupyterlab(tmp_path):
    source = next(p for p in CHAPTERS if p.name.startswith("01_"))
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    nb = json.loads(copy.read_text(encoding="utf-8"))
    solutions = [c for c in nb["cells"] if "solution" in _tags(c)]
    assert solutions
    for c in solutions:
        c["metadata"].pop("jupyter", None)
    solutions[0]["metadata"]["jupyter"] = {"outputs_hidden": False}  # other flags are kept
    copy.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tool = [sys.executable, str(ROOT / "tools" / "sync_notebooks.py")]

    before = subprocess.run([*tool, "--check", str(copy)], capture_output=True, text=True)
    assert before.returncode == 1 and before.stdout.count("not hidden in JupyterLab") == len(solutions), before.stdout
    subprocess.run([*tool, str(copy)], check=True, capture_output=True, text=True)
    after = json.loads(copy.read_text(encoding="utf-8"))
    for c in (c for c in after["cells"] if "solution" in _tags(c)):
        assert c["metadata"]["jupyter"]["source_hidden"] is True
        assert "hide-cell" in _tags(c) and c["metadata"].get("cellView") == "form"
    assert [c for c in after["cells"] if "solution" in _tags(c)][0]["metadata"]["jupyter"]["outputs_hidden"] is False
    again = subprocess.run([*tool, "--check", str(copy)], capture_output=True, text=True)
    assert "not hidden" not in again.stdout, again.stdout
    assert [c["source"] for c in after["cells"]] == [c["source"] for c in nb["cells"]]  # nothing else moved
