"""Compare a chapter as committed with the same chapter as the book build executed it.

`make test` executes each chapter once, in the book build (which writes the executed notebooks under
book/_build/jupyter_execute/). This module then checks, cell by cell, what nbval's `--nbval-lax` mode
would have checked in a second execution: every code cell marked `# NBVAL_CHECK_OUTPUT` (or tagged
`nbval-check-output`) must give the outputs stored in the committed notebook, after the regex
replacements of tests/nbval_sanitize.cfg. nbval's own parsing is reused (its markers, its config
format, its merging of stream outputs, the keys it skips); only the loop that compares lives here,
because nbval's sits inside a pytest item that needs a running kernel.

Usage: python tools/compare_outputs.py COMMITTED.ipynb EXECUTED.ipynb   (exit 1 and the differences)
"""
from __future__ import annotations

import copy
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import nbformat
from nbval.plugin import coalesce_streams, find_comment_markers, find_metadata_tags, get_sanitize_patterns

ROOT = Path(__file__).resolve().parent.parent
SANITIZE_CFG = ROOT / "tests" / "nbval_sanitize.cfg"
# nbval's skip list (IPyNbFile.skip_compare without --nbval-nbdime): keys that never compare.
SKIP_KEYS = frozenset({"metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                       "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg"})

# myst-nb's glue() stores a value as a display output of this MIME prefix; the book build moves it into
# the page's prose and drops it from the executed copy, so it is never compared (the glued cells print
# the same numbers, and those are).
GLUE_PREFIX = "application/papermill.record/"

Sanitizers = list[tuple[str, str]]


def load_sanitizers(path: Path = SANITIZE_CFG) -> Sanitizers:
    """The (regex, replacement) pairs of an nbval sanitize file, in file order."""
    return get_sanitize_patterns(Path(path).read_text(encoding="utf-8"))


def _scrub_paths() -> Any:
    # The committed chapters went through tools/clean_notebook.py (machine paths replaced); the
    # executed ones did not, so both sides get the same scrub before they are compared.
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from clean_notebook import scrub
    finally:
        sys.path.pop(0)
    return scrub


_scrub = _scrub_paths()


def cell_options(cell: dict) -> dict[str, bool]:
    """nbval's options for a cell (check, skip, check_exception), from its comments, then its tags."""
    options = {"check": False, "skip": False, "check_exception": False}
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    options.update(dict(find_comment_markers(source)))
    options.update(dict(find_metadata_tags(cell.get("metadata", {}))))
    return options


def _sanitize(value: Any, sanitizers: Sanitizers) -> Any:
    if isinstance(value, list):
        value = "".join(value)
    if not isinstance(value, str):
        return value
    value = _scrub(value)
    for regex, replace in sanitizers:
        value = re.sub(regex, replace, value)
    return value


def _flatten(outputs: list[dict], sanitizers: Sanitizers) -> dict[str, list]:
    """nbval's view of a cell's outputs: streams merged per name, then one list of values per key
    (data's MIME types flattened), so that outputs of different kinds may come in any order."""
    nodes = coalesce_streams([nbformat.from_dict(copy.deepcopy(o)) for o in outputs])
    flat: dict[str, list] = defaultdict(list)
    for out in nodes:
        if out.get("output_type") == "stream":
            out = {"output_type": "stream", out["name"]: out["text"]}
        for key, value in out.items():
            if key in SKIP_KEYS:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in SKIP_KEYS and not mime.startswith(GLUE_PREFIX):
                        flat[mime].append(_sanitize(data, sanitizers))
            else:
                flat[key].append(_sanitize(value, sanitizers))
    return flat


def compare_cell_outputs(committed: list[dict], executed: list[dict], sanitizers: Sanitizers) -> list[str]:
    """The differences between two cells' outputs, as nbval would judge them; empty when they agree."""
    want, got = _flatten(committed, sanitizers), _flatten(executed, sanitizers)
    problems = []
    if set(want) - set(got):
        problems.append(f"missing from the executed outputs: {sorted(set(want) - set(got))}")
    if set(got) - set(want):
        problems.append(f"not in the committed outputs: {sorted(set(got) - set(want))}")
    for key in sorted(set(want) & set(got)):
        if want[key] != got[key]:
            problems.append(f"{key} differs:\n--- committed\n{_show(want[key])}\n+++ executed\n{_show(got[key])}")
    return problems


def _show(values: list) -> str:
    text = "\n".join(str(v) for v in values)
    return text if len(text) < 2000 else text[:2000] + " …"


def compare_notebooks(committed: Path, executed: Path, sanitizers: Sanitizers | None = None) -> list[str]:
    """Every difference in the checked cells between a committed notebook and its executed copy; also
    reports an executed copy made from other sources (stale: built before the chapter changed)."""
    sanitizers = load_sanitizers() if sanitizers is None else sanitizers
    ref = nbformat.read(str(committed), as_version=4)
    run = nbformat.read(str(executed), as_version=4)
    ref_code = [c for c in ref.cells if c.cell_type == "code"]
    run_code = [c for c in run.cells if c.cell_type == "code"]
    if [c.source for c in ref_code] != [c.source for c in run_code]:
        return [f"{executed} was executed from other code than {committed.name} has now: rebuild the book "
                f"(make test-notebooks)"]
    problems = []
    for number, (want, got) in enumerate(zip(ref_code, run_code), start=1):
        options = cell_options(want)
        if options["skip"] or not options["check"] or want.get("execution_count") is None:
            continue
        for problem in compare_cell_outputs(want.get("outputs", []), got.get("outputs", []), sanitizers):
            first_line = want.source.splitlines()[1] if want.source.count("\n") else want.source
            problems.append(f"{committed.name}, code cell {number} ({first_line.strip()[:60]}): {problem}")
    return problems


def checked_cell_count(path: Path) -> int:
    """How many cells of a notebook the comparison checks (a chapter with none would check nothing)."""
    nb = nbformat.read(str(path), as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" and c.get("execution_count") is not None
               and cell_options(c)["check"] and not cell_options(c)["skip"])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    problems = compare_notebooks(Path(argv[0]), Path(argv[1]))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
