"""tools/colab_sim.py itself, in seconds: the VM lacks what Colab lacks, cannot download, and the glue
reader of tests/test_colab.py finds every role. (The chapters on the VM: tests/test_colab.py.)"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    # the set-up cell's URL goes to this checkout
    assert f"file://{ROOT}" in (tmp_path / "gitconfig").read_text()


def test_the_glue_reader_finds_every_kind_of_role():
    from test_colab import GLUE_ROLE, GLUED_MARK, _glued

    prose = ("For {glue:text}`heads_model`: {glue:text}`kv_ms:.2f` ms, {glue}`count` and\n"
             "```{glue:md} zero_shot_verdict\n:format: myst\n```")
    assert {a or b for a, b in GLUE_ROLE.findall(prose)} == {"heads_model", "kv_ms", "count", "zero_shot_verdict"}

    class FakeRun:
        def outputs(self):
            return ["x = 1", f'{GLUED_MARK}{{"heads_model": "the book\'s small model"}}\n']

    assert _glued(FakeRun()) == {"heads_model": "the book's small model"}
