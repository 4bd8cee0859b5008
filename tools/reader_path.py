"""A chapter as a reader who solved every exercise runs it: each exercise cell holds its solution.

    python tools/reader_path.py chapters/05_1_model.ipynb OUT.ipynb
    python tools/reader_path.py --all OUT_FOLDER      # every chapter that runs the reader's code (use(...))

The committed chapters leave the exercises unsolved, so they run the book's path: every ``use(...)`` falls back
to the hidden solution. This copy takes the other path: the solution's code, renamed to the learner's names
(``XSolution`` -> ``MyX``, ``x_solution`` -> ``my_x``) and counted (``record=False`` dropped), replaces the
placeholder in the exercise cell, so each checker passes and each ``use(...)`` returns the reader's code.
nbval run on the copy (``make test-reader``) then proves that the cells checked against the committed
outputs (``# NBVAL_CHECK_OUTPUT``) print the same on both paths.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CHECK_CALL = re.compile(r"\bcheck_(\w+)\(\s*(\w+)")


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def solution_name(learner: str) -> str:
    """``my_x`` -> ``x_solution``, ``MyX`` -> ``XSolution`` (tests/test_exercise_placement.py enforces it)."""
    if learner.startswith("my_"):
        return learner[3:] + "_solution"
    if learner.startswith("My") and learner[2:3].isupper():
        return learner[2:] + "Solution"
    return learner + "_solution"


def _imports(source: str) -> list[str]:
    """The exercise cell's own top-level imports (``from gpt2lib.exercises import check_x``), kept."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [ast.get_source_segment(source, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]


def solved(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """A copy of ``nb`` with each exercise solved in the learner's cell; and how many were."""
    nb = nbformat.from_dict(nb)
    cells, count = nb.cells, 0
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or "exercise" not in _tags(cell):
            continue
        match = CHECK_CALL.search(cell.source)
        sol = next((j for j in range(i + 1, len(cells)) if "solution" in _tags(cells[j])), None)
        if match is None or sol is None:
            raise ValueError(f"cell {i}: an exercise cell without a check call or a solution cell after it")
        learner = match.group(2)
        name = solution_name(learner)
        body = "\n".join(line for line in cells[sol].source.splitlines() if not line.startswith("# @title"))
        if not re.search(rf"\b{re.escape(name)}\b", body):
            raise ValueError(f"cell {sol}: the solution does not define {name} (for the learner's {learner})")
        body = re.sub(rf"\b{re.escape(name)}\b", learner, body).replace(", record=False", "")
        cell.source = "\n".join([*_imports(cell.source), body.strip("\n")])
        count += 1
    return nb, count


def uses_readers_code(nb: nbformat.NotebookNode) -> bool:
    """Whether a later cell runs what the reader wrote (a ``use(...)`` call outside the exercises)."""
    return any(c.cell_type == "code" and not {"exercise", "solution"} & set(_tags(c))
               and re.search(r"\buse\(", c.source) for c in nb.cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="CHAPTER.ipynb OUT.ipynb, or with --all: OUT_FOLDER")
    parser.add_argument("--all", action="store_true", help="every chapter whose later cells use the reader's code")
    args = parser.parse_args(argv)
    if len(args.paths) != (1 if args.all else 2):
        parser.error("give CHAPTER.ipynb OUT.ipynb, or --all OUT_FOLDER")
    pairs: list[tuple[Path, Path]]
    if args.all:
        out = Path(args.paths[0])
        out.mkdir(parents=True, exist_ok=True)
        pairs = [(p, out / p.name) for p in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))]
    else:
        pairs = [(Path(args.paths[0]), Path(args.paths[1]))]
    for src, dst in pairs:
        nb = nbformat.read(src, as_version=4)
        if args.all and not uses_readers_code(nb):
            continue
        copy, count = solved(nb)
        nbformat.write(copy, dst)
        print(f"{dst}: {count} exercise(s) solved in the learner's cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
