"""The reader's code, kept: what passes a checker is saved with the record, written into my_gpt2lib.py, and
used by later cells and chapters; the book's version otherwise, with one line saying which.

The cells run in a real IPython shell, so that sources come from its cell cache as they do in Jupyter."""
from __future__ import annotations

import json

import pytest
from IPython.core.interactiveshell import InteractiveShell

from gpt2lib.exercises import export_progress, import_progress, progress, use, yours


@pytest.fixture
def shell(tmp_path, monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "record" / "progress.json"))
    yours.forget_runtime()
    sh = InteractiveShell.instance()
    sh.reset()

    def run(source: str) -> None:
        result = sh.run_cell(source)
        result.raise_error()

    yield run, sh.user_ns
    yours.forget_runtime()


SOFTMAX = """
import torch
from torch import nn

def shifted(z):
    return z - z.max(dim=-1, keepdim=True).values

def my_softmax(x):
    e = torch.exp(shifted(x))
    return e / e.sum(dim=-1, keepdim=True)
"""


def test_a_pass_saves_the_source_and_what_it_uses(shell, capsys):
    run, ns = shell
    run(SOFTMAX + "from gpt2lib.exercises import check_softmax\nok = check_softmax(my_softmax)")
    assert ns["ok"] is True
    record = json.loads(progress.progress_file().read_text())
    code = record["softmax"]["code"]
    assert [name for name, _ in code["blocks"]] == ["shifted", "my_softmax"]
    assert code["imports"] == ["import torch"] and code["missing"] == []
    text = yours.module_path().read_text()
    assert "def shifted(z):" in text and "'softmax': my_softmax" in text
    module = yours.my_gpt2lib()
    import torch

    assert torch.allclose(module.PIECES["softmax"](torch.tensor([1.0, 2.0])), torch.softmax(torch.tensor([1.0, 2.0]), -1))


def test_use_prefers_this_session_then_the_saved_module_then_the_book(shell, capsys):
    run, ns = shell
    book = object.__new__(type("BookSoftmax", (), {}))
    assert use("softmax", book=book) is book
    assert "using the book's BookSoftmax: exercise 4.1" in capsys.readouterr().out
    run(SOFTMAX + "from gpt2lib.exercises import check_softmax\ncheck_softmax(my_softmax)")
    capsys.readouterr()
    assert use("softmax", book=book) is ns["my_softmax"]
    assert "using your my_softmax: exercise 4.1" in capsys.readouterr().out
    yours.forget_runtime()  # a fresh runtime: another chapter's notebook
    saved = use("softmax", book=book)
    out = capsys.readouterr().out
    assert saved is not ns["my_softmax"] and saved.__module__ == "my_gpt2lib"
    assert "using your my_softmax from my_gpt2lib.py" in out and out.count("\n") == 1


def test_a_solution_run_is_not_the_readers(shell, capsys):
    run, _ = shell
    run(SOFTMAX + "from gpt2lib.exercises import check_softmax\ncheck_softmax(my_softmax, record=False)")
    assert not yours.module_path().exists()
    assert use("softmax", book=len) is len


def test_classes_aliases_and_earlier_pieces_are_carried(shell, capsys):
    run, ns = shell
    run(SOFTMAX + "from gpt2lib.exercises import check_softmax\ncheck_softmax(my_softmax)")
    yours.forget_runtime()
    # the next chapter: the saved softmax comes back through use(), a class of the reader's uses it by alias
    run("from gpt2lib.exercises import use\nsoftmax = use('softmax', book=None)\n"
        "import math\nfrom gpt2lib.attention import causal_mask\n"
        "class Mixer(nn.Module):\n"
        "    @staticmethod\n"
        "    def forward(x):\n"
        "        return softmax(x) * math.pi, causal_mask\n"
        "Smooth = Mixer\n"
        "def my_probe(x):\n    return Smooth.forward(x)[0]\n")
    code = yours.capture(ns["my_probe"])
    names = [n for n, _ in code["blocks"]]
    assert names == ["softmax", "Mixer", "Smooth", "my_probe"]  # what each uses first; softmax: an alias, not a copy
    assert dict(code["blocks"])["softmax"] == "softmax = my_softmax\n"
    assert "import math" in code["imports"] and "from gpt2lib.attention import causal_mask" in code["imports"]


def test_a_decorated_function_is_saved_with_its_decorator(shell, capsys):
    run, ns = shell
    run("import torch\n@torch.no_grad()\ndef my_gelu(x):\n    return x * 2\n"
        "from gpt2lib.exercises import yours\ncode = yours.capture(my_gelu)")
    assert ns["code"]["blocks"] == [["my_gelu", "@torch.no_grad()\ndef my_gelu(x):\n    return x * 2\n"]]
    assert ns["code"]["imports"] == ["import torch"]


def test_local_variables_that_share_a_notebook_name_are_not_dependencies(shell, capsys):
    run, ns = shell
    run("import torch\nx, loss, step = 1, 2, 3\nclass Base:\n    pass\nbias = 0.5\n"
        "def my_gelu(x, scale=bias):\n    loss = x * scale\n    for step in range(2):\n        loss = loss + step\n"
        "    return [loss for loss in (loss,)][0]\n"
        "class MyBox(Base):\n    size = 3\n    def forward(self, x):\n        step = x\n        return my_gelu(step)\n"
        "from gpt2lib.exercises import yours\ncode = yours.capture(MyBox)")
    code = ns["code"]
    assert [n for n, _ in code["blocks"]] == ["Base", "my_gelu", "MyBox"]
    assert code["missing"] == ["bias"]  # a default value, read where the function is defined


def test_values_a_module_cannot_carry_are_named(shell, capsys):
    run, _ = shell
    run("import torch\nscale = 3.0\ndef my_gelu(x):\n    return x * scale\n"
        "from gpt2lib.exercises import yours\ncode = yours.capture(my_gelu)")
    assert capsys.readouterr().out == ""
    _, ns = shell
    assert ns["code"]["missing"] == ["scale"]
    ns["code"]["missing"] and yours.keep("gelu", ns["my_gelu"])
    assert "it uses scale, which only this notebook has" in capsys.readouterr().out


def test_export_and_import_carry_the_code(shell, tmp_path, monkeypatch, capsys):
    run, _ = shell
    run(SOFTMAX + "from gpt2lib.exercises import check_softmax\ncheck_softmax(my_softmax)")
    exported = export_progress(tmp_path / "mine.json")
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "elsewhere" / "progress.json"))
    yours.forget_runtime()
    assert use("softmax", book=len) is len
    import_progress(exported)
    assert "def my_softmax(x):" in yours.module_path().read_text()
    assert use("softmax", book=len).__name__ == "my_softmax"


def test_a_module_that_no_longer_imports_falls_back_in_one_line(shell, capsys):
    run, _ = shell
    run(SOFTMAX + "from gpt2lib.exercises import check_softmax\ncheck_softmax(my_softmax)")
    yours.forget_runtime()
    path = yours.module_path()
    path.write_text(path.read_text() + "\nraise RuntimeError('edited by hand')\n")
    capsys.readouterr()
    assert use("softmax", book=len) is len
    out = capsys.readouterr().out
    assert "using the book's len: your my_gpt2lib.py did not import (RuntimeError: edited by hand)" in out


def test_a_lambda_passes_but_is_not_saved(shell, capsys):
    run, _ = shell
    run("import torch\nfrom gpt2lib.exercises import check_softmax\n"
        "ok = check_softmax(lambda x: torch.softmax(x, dim=-1))")
    out = capsys.readouterr().out
    assert "✓" in out and "could not be saved into my_gpt2lib.py" in out
    assert use("softmax", book=len).__name__ == "<lambda>"  # this session still has it
    yours.forget_runtime()
    capsys.readouterr()
    assert use("softmax", book=len) is len
    assert "passed, but your code for it is not in my_gpt2lib.py" in capsys.readouterr().out


def test_use_names_an_unknown_exercise():
    with pytest.raises(ValueError, match="no exercise is named 'sofmax'"):
        use("sofmax", book=None)
