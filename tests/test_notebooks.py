"""The chapters as committed: executed, clean, with their shared cells and their exercises in shape;
and, after the book build, the same chapters as the build executed them.

`make test` executes each chapter once, with nbval (`--nbval-lax`: the cells marked `# NBVAL_CHECK_OUTPUT`
are compared with their committed outputs, after tests/nbval_sanitize.cfg). The tests here read the
committed files, and show that nbval with the project's options catches a changed output.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpt2lib.exercises import all_exercises

ROOT = Path(__file__).resolve().parent.parent

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
    assert "hide-input" in tags(first_code), f"{path.name}: the set-up cell's code is folded in the book (tag hide-input)"
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


# --- nbval, as `make test` runs it over the chapters (tools/run_tests.sh), shown to catch what it must ---

def checked_cells(path: Path) -> int:
    return sum(1 for c in load(path)["cells"] if c["cell_type"] == "code"
               and ("# NBVAL_CHECK_OUTPUT" in source(c) or "nbval-check-output" in tags(c)))


def test_every_chapter_has_cells_whose_outputs_are_compared():
    # A chapter with no checked cell would pass under --nbval-lax while checking nothing.
    unchecked = [p.name for p in CHAPTERS if checked_cells(p) == 0]
    assert not unchecked, f"no cell marked '# NBVAL_CHECK_OUTPUT' in {unchecked}"


def test_run_tests_runs_nbval_itself_over_every_chapter():
    script = (ROOT / "tools" / "run_tests.sh").read_text("utf-8")
    for option in ("--nbval-lax", "--nbval-current-env", "--nbval-sanitize-with tests/nbval_sanitize.cfg",
                   "--nbval-cell-timeout"):
        assert option in script


def _notebook(tmp_path: Path, code: str, committed: str) -> Path:
    cell = {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": code,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": committed}]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                "display_name": "Python 3"}}, "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.mark.parametrize("code, committed, passes", [
    ("# NBVAL_CHECK_OUTPUT\nprint('loss 2.5')", "loss 2.5\n", True),
    ("# NBVAL_CHECK_OUTPUT\nprint('loss 2.6')", "loss 2.5\n", False),
    ("print('loss 2.6')", "loss 2.5\n", True),  # not marked: run, not compared
    ("# NBVAL_CHECK_OUTPUT\nprint('took 9.87 s, 12.5it/s, <x at 0x55bb01>')", "took 1.2 s, 350it/s, <x at 0x7f00aa>\n", True),
    ("# NBVAL_CHECK_OUTPUT\nprint('saved to ' + '/' + 'tmp/abc/model.pt')", "saved to …/model.pt\n", True),
    ("# NBVAL_CHECK_OUTPUT\nraise ValueError('bad')", "", False),
])
def test_nbval_with_our_options_compares_checked_cells_after_sanitizing(tmp_path, code, committed, passes):
    path = _notebook(tmp_path, code, committed)
    result = subprocess.run([sys.executable, "-m", "pytest", str(path), "--nbval-lax", "--nbval-current-env",
                             "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
                             "-p", "no:cacheprovider", "-q"], capture_output=True, text=True, cwd=tmp_path)
    assert (result.returncode == 0) == passes, result.stdout[-2000:]
