"""tools/colab_sim.py itself, in seconds: the VM lacks what Colab lacks, cannot download, and the prose
reader of tests/test_colab.py finds every Markdown output. (The chapters on the VM: tests/test_colab.py.)"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, venv_dir

sys.path.insert(0, str(ROOT / "tools"))
import colab_sim  # noqa: E402


def test_the_vm_has_colab_but_not_gpt2lib_and_cannot_download(tmp_path):
    python = colab_sim.make_env(tmp_path, venv_dir())
    env = colab_sim.vm_env(python, tmp_path, tmp_path / "home")
    probe = ("import importlib.util as u, sys; print('google.colab' in sys.modules, u.find_spec('gpt2lib') is None, "
             "u.find_spec('myst_nb') is None, u.find_spec('torch') is not None)")
    out = subprocess.run([str(python), "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout  # cwd: not the checkout, whose gpt2lib/ would import
    assert out.split() == ["True", "True", "True", "True"], out
    # pip finds no index: an install that needs a download fails, even of a package the VM has
    fetch = subprocess.run([str(python), "-m", "pip", "download", "-q", "--no-deps", "-d", str(tmp_path / "d"),
                            "numpy"], env=env, capture_output=True, text=True)
    assert fetch.returncode != 0 and "No matching distribution" in fetch.stderr + fetch.stdout
    # the set-up cell's URL goes to a copy of this checkout, whose HEAD carries the set-up cell's release tag
    assert f"file://{tmp_path / 'repository.git'}" in (tmp_path / "gitconfig").read_text()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    tagged = subprocess.run(["git", "rev-parse", f"{colab_sim.release_ref()}^{{commit}}"], cwd=tmp_path / "repository.git",
                            capture_output=True, text=True, check=True).stdout
    assert tagged == head


# Runs a set-up cell as Colab's kernel does: what the cell prints reaches the reader, what a child process
# writes to the file descriptors does not (Colab's kernel does not forward it), so fds 1 and 2 go to /dev/null.
AS_ON_COLAB = """
import io, os, sys
source, report = open(sys.argv[1]).read(), sys.argv[2]
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1); os.dup2(null, 2)
shown = io.StringIO()
sys.stdout = sys.stderr = shown
try:
    exec(compile(source, "setup-cell", "exec"), {})
except BaseException as exc:
    shown.write(f"{type(exc).__name__}: {exc}\\n")
open(report, "w").write(shown.getvalue())
"""


def test_the_setup_cell_pins_the_release_and_shows_pip_s_error_on_colab(tmp_path):
    from sync_notebooks import release_ref, setup_source

    import gpt2lib

    # the ref is the package's release tag, in the set-up cell of every chapter (test_notebooks checks the sync)
    assert release_ref() == f"v{gpt2lib.__version__}"
    assert f"@{release_ref()}\"" in setup_source()
    # a repository without that tag (a release not made): the install fails, and the reader sees pip's
    # own error text, then one line saying what to do, not a bare CalledProcessError
    python = colab_sim.make_env(tmp_path, venv_dir(), tag="")
    env = colab_sim.vm_env(python, tmp_path, tmp_path / "home")
    (tmp_path / "home").mkdir()
    (tmp_path / "cell.py").write_text(setup_source())
    (tmp_path / "runner.py").write_text(AS_ON_COLAB)
    subprocess.run([str(python), str(tmp_path / "runner.py"), str(tmp_path / "cell.py"), str(tmp_path / "shown.txt")],
                   env=env, cwd=tmp_path / "home", check=True, capture_output=True, text=True)
    shown = (tmp_path / "shown.txt").read_text()
    assert release_ref() in shown and "error" in shown.lower(), shown  # pip's (and git's) words
    last = shown.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: pip could not install gpt2lib (its output is above)") and "run this cell again" in last, shown


def test_the_prose_reader_finds_every_markdown_output(tmp_path):
    from test_colab import _prose

    markdown = {"output_type": "display_data", "metadata": {},
                "data": {"text/markdown": "What the scores show, for the book's small model: ...",
                         "text/plain": "<IPython.core.display.Markdown object>"}}
    as_lines = {"output_type": "display_data", "metadata": {},
                "data": {"text/markdown": ["- It **can** continue text\n", "- It **cannot** rank"]}}
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "Static prose, $x$ and **bold**"},
        {"cell_type": "code", "metadata": {}, "outputs": [{"output_type": "stream", "name": "stdout", "text": "hi\n"}],
         "source": "print('hi')"},
        {"cell_type": "code", "metadata": {"tags": ["remove-input"]}, "outputs": [markdown], "source": "prose(s)"},
        {"cell_type": "code", "metadata": {}, "source": "x",
         "outputs": [{"output_type": "execute_result", "metadata": {}, "execution_count": 1,
                      "data": {"text/plain": "'not Markdown'"}}]},
        {"cell_type": "code", "metadata": {"tags": ["remove-input"]}, "outputs": [as_lines, markdown], "source": "prose(v)"},
    ]
    path = tmp_path / "chapter.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert _prose(path) == {2: ["What the scores show, for the book's small model: ..."],
                            4: ["- It **can** continue text\n- It **cannot** rank",
                                "What the scores show, for the book's small model: ..."]}


def test_colabs_committed_list_gives_every_package_the_runtime_installs():
    sys.path.insert(0, str(ROOT / "tools"))
    import colab_runtime

    pins, python = colab_runtime.read_pins()
    assert python.startswith("3.13")
    # torch comes as a URL to PyTorch's own +cpu wheel: its release is read from the file name
    assert pins["torch"] == "2.11.0" and pins["transformers"] == "5.15.0" and pins["numpy"] == "2.1.3"
    assert all(colab_runtime._key(name) in pins for name in colab_runtime.WANTED)
    path, version = colab_runtime.find_python(python)
    assert version >= (3, 10) and Path(path).exists()


def test_refreshing_colabs_list_offline_says_so_and_keeps_the_file(monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    import urllib.error
    import urllib.request

    import colab_runtime

    before = colab_runtime.FREEZE.read_bytes()

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(SystemExit, match="needs github.com"):
        colab_runtime.refresh()
    assert colab_runtime.FREEZE.read_bytes() == before
