"""The chapters as committed: executed, clean, with their shared cells and their exercises in shape;
and, after the book build, the same chapters as the build executed them.

`make test` executes each chapter once, in the book build; the tests marked `book` then compare the
cells marked `# NBVAL_CHECK_OUTPUT` with that execution (tools/compare_outputs.py). The other tests
read the committed files only.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpt2lib.exercises import all_exercises

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import compare_outputs  # noqa: E402  (a tool, not a package: found through tools/)

CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
_ROOTS = "|".join(["home", "root", "tmp", "wor" + "k", "Users"])
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:%s)/[\w./-]+" % _ROOTS)
EXERCISE_HEADING = re.compile(r"^###\s+Exercise\s+(\d+)\.(\d+)\s+\((easy|medium|hard),\s*~\s*\d+\s*min\)", re.M)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def test_nine_chapters_in_the_toc():
    assert len({p.name[:2] for p in CHAPTERS}) == 9  # a chapter may span several notebooks (chapter 5)
    toc = (ROOT / "_toc.yml").read_text()
    for path in CHAPTERS:
        assert f"chapters/{path.stem}" in toc


def test_shared_cells_are_in_sync_with_the_template():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "sync_notebooks.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_is_committed_executed_and_clean(path):
    nb = load(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and source(c).strip()]
    unexecuted = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unexecuted, f"{path.name}: code cells {unexecuted} have no stored execution; run tools/run_notebook.sh"
    errors = [i for i, c in enumerate(code) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: stored error outputs in code cells {errors}"
    paths = sorted(set(MACHINE_PATH.findall(json.dumps(nb))))
    assert not paths, f"{path.name}: machine paths {paths[:3]}"
    assert path.stat().st_size < 3_000_000, f"{path.name} is over 3 MB"
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "setup" in tags(first_code), f"{path.name}: the first code cell must be the set-up cell"
    assert "progress" in tags(code[-1]), f"{path.name}: the last code cell must be the progress cell"
    assert nb["cells"][0]["cell_type"] == "markdown" and source(nb["cells"][0]).startswith("# ")


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_has_three_checked_exercises_with_hidden_solutions(path):
    chapter = int(path.name[:2])
    nb = load(path)
    cells = nb["cells"]
    headings = [m for c in cells if c["cell_type"] == "markdown" for m in EXERCISE_HEADING.finditer(source(c))]
    exercise_cells = [c for c in cells if "exercise" in tags(c)]
    solution_cells = [c for c in cells if "solution" in tags(c)]
    # the three exercises are counted per chapter, which may span several notebooks (chapter 5)
    in_chapter = [m for p in CHAPTERS if p.name[:2] == path.name[:2] for c in load(p)["cells"]
                  if c["cell_type"] == "markdown" for m in EXERCISE_HEADING.finditer(source(c))]
    assert len(in_chapter) >= 3, f"{path.name}: {len(in_chapter)} exercise headings ('### Exercise {chapter}.k (easy, ~5 min): ...')"
    assert all(int(m.group(1)) == chapter for m in headings), f"{path.name}: exercise numbers must start with {chapter}."
    assert len(exercise_cells) >= min(3, len(headings)) and len(solution_cells) == len(exercise_cells), \
        f"{path.name}: {len(exercise_cells)} exercise cells, {len(solution_cells)} solution cells"
    for cell in exercise_cells:
        text = source(cell)
        assert "NotImplementedError" in text and "check_" in text, f"{path.name}: exercise cell without placeholder or checker:\n{text}"
        outputs = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
        assert "not done yet" in outputs, f"{path.name}: an exercise cell as committed should print 'not done yet'"
    for cell in solution_cells:
        text = source(cell)
        assert "hide-cell" in tags(cell), f"{path.name}: solution cells are hidden (tag hide-cell)"
        assert cell.get("metadata", {}).get("cellView") == "form", f"{path.name}: solution cells fold on Colab (cellView: form)"
        assert text.lstrip().startswith("# @title Solution"), f"{path.name}: solution cells start with '# @title Solution'"
        assert "record=False" in text, f"{path.name}: a solution's check must not count as the reader's pass"
        outputs = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
        assert "✓" in outputs, f"{path.name}: a solution cell's check must pass:\n{outputs}"


def test_registered_exercises_cover_every_chapter():
    by_chapter: dict[int, int] = {}
    for e in all_exercises():
        by_chapter[e.chapter] = by_chapter.get(e.chapter, 0) + 1
    assert sum(by_chapter.values()) >= 27, by_chapter
    for chapter in range(1, 10):
        assert by_chapter.get(chapter, 0) >= 3, f"chapter {chapter} registers {by_chapter.get(chapter, 0)} exercises"


def test_every_checker_used_in_a_chapter_exists():
    import gpt2lib.exercises as ex

    for path in CHAPTERS:
        for name in set(re.findall(r"\bcheck_(\w+)\(", "".join(source(c) for c in load(path)["cells"]))):
            assert callable(getattr(ex, f"check_{name}")), f"{path.name} calls an unknown checker check_{name}"


# --- The chapters as the book build executed them (run after the build: `make test-notebooks`) ---

def executed_copy(path: Path) -> Path:
    """Where the book build (tools/build_book.sh, output folder $BOOK_OUT or book) wrote ``path`` executed."""
    return ROOT / os.environ.get("BOOK_OUT", "book") / "_build" / "jupyter_execute" / "chapters" / path.name


@pytest.mark.book
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_executed_chapter_gives_its_committed_outputs(path):
    executed = executed_copy(path)
    if not executed.exists():
        pytest.fail(f"{executed} is missing: build the book first (make test-notebooks), and check that "
                    f"chapters/{path.stem} is in _toc.yml")
    problems = compare_outputs.compare_notebooks(path, executed)
    assert not problems, "\n\n".join(problems)


def test_every_chapter_has_cells_whose_outputs_are_compared():
    # A chapter with no checked cell would pass the comparison while checking nothing.
    unchecked = [p.name for p in CHAPTERS if compare_outputs.checked_cell_count(p) == 0]
    assert not unchecked, f"no cell marked '# NBVAL_CHECK_OUTPUT' in {unchecked}"


# --- The comparison itself, shown to fail on what it must catch ---

SANITIZERS = compare_outputs.load_sanitizers()


def _cell(source: str, outputs: list[dict], count: int | None = 1) -> dict:
    return {"cell_type": "code", "source": source, "metadata": {}, "execution_count": count, "outputs": outputs}


def _stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def _result(text: str, **more: str) -> dict:
    return {"output_type": "execute_result", "execution_count": 1, "metadata": {},
            "data": {"text/plain": text, **more}}


def _differ(committed: list[dict], executed: list[dict]) -> list[str]:
    return compare_outputs.compare_cell_outputs(committed, executed, SANITIZERS)


def test_comparison_accepts_equal_outputs_and_what_the_sanitizer_removes():
    assert _differ([_stream("loss 2.5\n")], [_stream("loss 2.5\n")]) == []
    # timings, rates and addresses are replaced on both sides, as nbval does
    assert _differ([_stream("took 1.2 s at 350it/s, <obj at 0x7f00aa>\n")],
                   [_stream("took 9.87 s at 12.5it/s, <obj at 0x55bb01>\n")]) == []
    # streams are merged before comparing, so a print split differently is the same output
    assert _differ([_stream("a\nb\n")], [_stream("a\n"), _stream("b\n")]) == []
    # widget model ids are random and never compared; their text/plain is
    widget = {"application/vnd.jupyter.widget-view+json": {"model_id": "abc"}}
    assert _differ([_result("HBox()", **widget)],
                   [_result("HBox()", **{"application/vnd.jupyter.widget-view+json": {"model_id": "xyz"}})]) == []
    # glue() records become the page's prose and leave the executed copy; the printed numbers still compare
    glued = {"output_type": "display_data", "metadata": {"scrapbook": {"name": "n"}},
             "data": {"application/papermill.record/text/plain": "408"}}
    assert _differ([glued, _stream("408 of 408\n")], [_stream("408 of 408\n")]) == []
    assert _differ([glued, _stream("408 of 408\n")], [_stream("379 of 379\n")]) != []
    # a machine path in the executed output matches the scrubbed committed one
    assert _differ([_stream("saved to …/model.pt\n")], [_stream(f"saved to {'/' + 'tmp'}/abc/model.pt\n")]) == []


@pytest.mark.parametrize("executed, what", [
    ([_stream("loss 2.6\n")], "stdout differs"),
    ([_stream("loss 2.5\n", name="stderr")], "missing"),
    ([_stream("loss 2.5\n"), _stream("extra\n")], "stdout differs"),
    ([], "missing"),
    ([_stream("loss 2.5\n"), _result("3")], "not in the committed"),
    ([_stream("loss 2.5\n"), {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []}],
     "not in the committed"),
])
def test_comparison_fails_on_a_changed_output(executed, what):
    problems = _differ([_stream("loss 2.5\n")], executed)
    assert problems and what in problems[0], problems


def test_comparison_fails_on_a_changed_result_or_error():
    assert "text/plain differs" in _differ([_result("tensor([1, 2])")], [_result("tensor([1, 3])")])[0]
    error = {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["x"]}
    assert _differ([error], [dict(error, traceback=["other"])]) == []  # tracebacks are not compared
    assert "evalue differs" in _differ([error], [dict(error, evalue="worse")])[0]
    assert "ename differs" in _differ([error], [dict(error, ename="TypeError")])[0]


def _write(tmp_path: Path, name: str, cells: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}))
    return path


def test_only_checked_cells_are_compared_and_a_stale_copy_is_reported(tmp_path):
    checked = _cell("# NBVAL_CHECK_OUTPUT\nprint(1)", [_stream("1\n")])
    unchecked = _cell("print(2)", [_stream("2\n")])
    ignored = _cell("# NBVAL_IGNORE_OUTPUT\nprint(3)", [_stream("3\n")])
    committed = _write(tmp_path, "a.ipynb", [checked, unchecked, ignored])
    same = _write(tmp_path, "b.ipynb", [checked, dict(unchecked, outputs=[_stream("20\n")]),
                                         dict(ignored, outputs=[])])
    assert compare_outputs.compare_notebooks(committed, same, SANITIZERS) == []
    changed = _write(tmp_path, "c.ipynb", [dict(checked, outputs=[_stream("10\n")]), unchecked, ignored])
    problems = compare_outputs.compare_notebooks(committed, changed, SANITIZERS)
    assert len(problems) == 1 and "code cell 1 (print(1))" in problems[0]
    stale = _write(tmp_path, "d.ipynb", [dict(checked, source="# NBVAL_CHECK_OUTPUT\nprint(11)"), unchecked, ignored])
    assert "executed from other code" in compare_outputs.compare_notebooks(committed, stale, SANITIZERS)[0]


def test_comparison_fails_on_a_real_chapter_with_one_output_changed(tmp_path):
    """A committed chapter compared with itself agrees; with one word added to one checked output, the
    comparison names that cell."""
    path = CHAPTERS[0]
    assert compare_outputs.compare_notebooks(path, path) == []
    changed = load(path)
    code = [c for c in changed["cells"] if c["cell_type"] == "code"]
    number, output = next((i, o) for i, c in enumerate(code, start=1) if compare_outputs.cell_options(c)["check"]
                          for o in c.get("outputs", []) if "text" in o or "text/plain" in o.get("data", {}))
    holder, key = (output, "text") if "text" in output else (output["data"], "text/plain")
    holder[key] = ("".join(holder[key]) if isinstance(holder[key], list) else holder[key]) + " changed"
    copy_path = tmp_path / path.name
    copy_path.write_text(json.dumps(changed))
    problems = compare_outputs.compare_notebooks(path, copy_path)
    assert len(problems) == 1 and f"code cell {number} " in problems[0], problems
