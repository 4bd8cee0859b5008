"""gpt2lib.notebook: ``prose`` shows a computed sentence as Markdown output, and the chapters use it (never a
MyST-NB ``{glue}`` role, which Colab and GitHub show raw)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from gpt2lib.notebook import prose, shown

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def _cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return cells


def _calls_prose(source: str) -> bool:
    # IPython lines (%magic, !shell) are not Python; blank them so the rest still parses
    text = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id == "prose") or (
                    isinstance(func, ast.Attribute) and func.attr == "prose"):
                return True
    return False


# ------------------------------------------------------------------------------------------------ prose
def test_prose_displays_markdown_and_keeps_the_text(monkeypatch):
    import IPython.display

    displayed = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: displayed.append(obj))
    before = len(shown())
    prose("The bigram needs **3.38** bits per byte, $\\ln 256 = 5.545$ nats for a uniform guess.")
    assert len(displayed) == 1 and isinstance(displayed[0], IPython.display.Markdown)
    assert displayed[0].data == "The bigram needs **3.38** bits per byte, $\\ln 256 = 5.545$ nats for a uniform guess."
    assert shown()[before:] == [displayed[0].data]
    # what the notebook stores is Markdown: the built book, JupyterLab, Colab and GitHub all render it
    assert displayed[0]._repr_markdown_() == displayed[0].data


def test_prose_refuses_anything_but_a_string(monkeypatch):
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: pytest.fail("nothing may be displayed"))
    before = shown()
    with pytest.raises(TypeError, match="f-string"):
        prose(3.38)
    assert shown() == before


def test_prose_calls_are_found_however_they_are_written():
    assert _calls_prose('prose(f"{x:.2f} ms")')
    assert _calls_prose('import gpt2lib.notebook as nb\nnb.prose("a sentence")')
    assert _calls_prose('if ok:\n    prose("yes")\nelse:\n    prose("no")')
    assert not _calls_prose("from gpt2lib.notebook import prose  # a sentence, shown as Markdown")
    assert not _calls_prose('print("prose(x)")  # prose(x) in a comment')


# --------------------------------------------------------------------------------------- the chapters
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_markdown_cell_uses_a_glue_role(path):
    """MyST-NB's {glue} roles render only in the built book: Colab and GitHub show the raw role. A sentence
    that quotes a computed value is the output of a prose() cell instead."""
    roles = [i for i, c in enumerate(_cells(path)) if c["cell_type"] == "markdown" and "{glue" in c["source"]]
    assert not roles, f"{path.name}: markdown cells {roles} use a {{glue}} role; build the sentence with prose()"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_prose_cell_hides_its_input_and_shows_its_sentence(path):
    """A cell that calls prose() is tagged remove-input, so the book shows the sentence and not the code
    that built it; and its committed output holds the Markdown the book renders."""
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code" or not _calls_prose(cell["source"]):
            continue
        assert "remove-input" in cell.get("metadata", {}).get("tags", []), (
            f"{path.name}: cell {i} calls prose() but is not tagged remove-input")
        markdown = [o for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {})]
        assert markdown, f"{path.name}: cell {i} calls prose() but its committed outputs hold no Markdown"
