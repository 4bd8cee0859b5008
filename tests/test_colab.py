"""The chapters as a Colab reader meets them, offline: one notebook alone in an empty folder, in a fresh VM.

tools/colab_sim.py builds the VM: no gpt2lib or MyST-NB, ``google.colab`` importable, pip barred from
every index and the set-up cell's ``git+<repository URL>@v<version>`` sent to this checkout's HEAD, tagged. Its packages
come in two configurations (``COLAB_CONFIGS``, comma-separated; ``oldest`` alone by default, `make test-colab`
both): ``colab``, Colab's own versions on the Python closest to Colab's (tools/colab_runtime.py builds them
from the committed copy of Colab's package list; `make setup-colab`), and ``oldest``, this project's
packages with the oldest transformers pyproject.toml accepts (tools/setup.sh installs it). A Hugging Face
cache holding tests/hf_standin.py's GPT-2 (124M's shape, the hub file's layout, random weights with real-scale
logits) stands in for the hub's ``openai-community/gpt2``.

`make test` executes every chapter once, with nbval, in the project's environment; this runs
only what that cannot show: the chapters with an OpenAI path (4 to 7), which take it here, and one
chapter without it (9), which uses the book's model from the package the set-up cell installed. Then:

* each runs clean, and its set-up cell installed gpt2lib without replacing Colab's packages;
* the book's model came inside the installed package (nothing trained, nothing downloaded);
* chapters 4 to 7 take the OpenAI path, and the sentences they compute (``prose()``'s Markdown outputs) say so.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, venv_dir
from gpt2lib.book import BOOK_NAME, OPENAI_NAME

sys.path.insert(0, str(ROOT / "tools"))
import colab_sim  # noqa: E402

pytestmark = pytest.mark.colab

OPENAI_CHAPTERS = {"04_attention_math", "05_practice", "05_1_model", "06_applications", "07_tools"}
BOOK_MODEL_CHAPTER = "09_faq"  # no OpenAI path; loads the book's model
CHAPTERS = sorted(ROOT / "chapters" / f"{name}.ipynb" for name in OPENAI_CHAPTERS | {BOOK_MODEL_CHAPTER})
TAGGED = ""  # set by the fixture
# what the prose of the book's own model says, and must not say on OpenAI's path
BOOK_MODEL_WORDS = (BOOK_NAME.removeprefix("the "), "book model's size")


CONFIGS = [c.strip() for c in os.environ.get("COLAB_CONFIGS", "oldest").split(",") if c.strip()]


def _packages(config: str) -> tuple[Path, Path | None, str]:
    """(environment whose packages the VM gets, transformers folder to put in their place, the transformers
    version the set-up cell must show) of a configuration."""
    if config == "oldest":
        oldest = venv_dir() / "oldest-transformers"
        if not (oldest / "transformers").is_dir():
            pytest.fail(f"{oldest} is missing: run 'make setup-book' (it installs the oldest supported transformers)")
        return venv_dir(), oldest, "4.46.3"
    if config == "colab":
        runtime = venv_dir() / "colab-runtime"
        if not (runtime / ".colab-runtime").is_file():
            pytest.fail(f"{runtime} is missing: run 'make setup-colab' (it builds Colab's runtime from tools/colab/pip-freeze.txt)")
        return runtime, None, json.loads((runtime / ".colab-runtime").read_text())["transformers"]
    raise pytest.UsageError(f"COLAB_CONFIGS names {config!r}; the configurations are 'colab' and 'oldest'")


@pytest.fixture(scope="module", params=CONFIGS)
def colab(request, tmp_path_factory):
    """The simulated Colab of one configuration and the Hugging Face stand-in; yields the interpreter, the
    runs by name, and the transformers version the VM holds."""
    packages, transformers_dir, transformers_version = _packages(request.param)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "gpt2lib", "pyproject.toml"], cwd=ROOT,
                           capture_output=True, text=True).stdout
    if dirty.strip():
        pytest.fail("the set-up cell installs gpt2lib from this checkout's HEAD, which lacks these uncommitted "
                    f"changes; commit them first:\n{dirty}")
    folder = tmp_path_factory.mktemp("colab")
    python = colab_sim.make_env(folder, packages, transformers_dir)
    global TAGGED  # the commit the VM's repository tagged: HEAD now (a commit made during the run moves HEAD)
    TAGGED = subprocess.run(["git", "rev-parse", f"{colab_sim.release_ref()}^{{commit}}"], cwd=folder / "repository.git",
                            capture_output=True, text=True, check=True).stdout.strip()
    assert TAGGED == subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                    check=True).stdout.strip()

    hf_home = folder / "huggingface"
    from hf_standin import write_standin

    write_standin(hf_home / "hub")
    runs = {}
    for nb in CHAPTERS:
        runs[nb.stem] = colab_sim.run_alone(python, folder, nb, hf_home=hf_home)
        print(f"simulated Colab ({request.param}): {nb.name} {'ok' if runs[nb.stem].returncode == 0 else 'FAILED'} "
              f"in {runs[nb.stem].seconds:.0f} s")
    yield python, runs, transformers_version


def _prose(notebook: Path) -> dict[int, list[str]]:
    """The Markdown every code cell displayed (what ``gpt2lib.notebook.prose`` shows), by the cell's index."""
    found: dict[int, list[str]] = {}
    for i, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            text = out.get("data", {}).get("text/markdown")
            if text is not None:
                found.setdefault(i, []).append("".join(text) if isinstance(text, list) else text)
    return found


@pytest.mark.parametrize("name", [nb.stem for nb in CHAPTERS])
def test_chapter_runs_alone_on_a_fresh_colab(colab, name):
    run = colab[1][name]
    assert run.returncode == 0, f"{name} failed on the simulated Colab:\n{run.log[-4000:]}"
    setup = run.tagged_output("setup")
    assert f"transformers {colab[2]}" in setup, f"the set-up cell should show the VM's transformers, kept:\n{setup}"


def test_the_setup_cell_installed_gpt2lib_and_nothing_else(colab):
    python, runs = colab[:2]
    assert all(r.returncode == 0 for r in runs.values())
    site = colab_sim.site_packages(python)
    # every package of the VM is a link to the image's own, except what pip installed there
    installed_here = sorted(p.name for p in site.glob("*.dist-info") if not p.is_symlink())
    assert len(installed_here) == 1 and installed_here[0].startswith("gpt2lib-"), installed_here
    # ... from the release the notebook names (its tag, which the simulated repository sets on HEAD)
    direct = json.loads((site / installed_here[0] / "direct_url.json").read_text())
    assert direct["vcs_info"].get("requested_revision") == colab_sim.release_ref(), direct
    assert direct["vcs_info"]["commit_id"] == TAGGED, direct


def test_the_book_model_comes_inside_the_installed_package(colab):
    runs = colab[1]
    lines = [line for text in runs[BOOK_MODEL_CHAPTER].outputs() for line in re.split(r"[\r\n]", text)
             if "book model:" in line]
    assert lines and all(line.startswith("book model: shipped with gpt2lib, step 600") for line in lines), lines
    assert BOOK_MODEL_CHAPTER not in OPENAI_CHAPTERS and "book_model(" in (ROOT / "chapters" / f"{BOOK_MODEL_CHAPTER}.ipynb").read_text()


@pytest.mark.parametrize("name", sorted(OPENAI_CHAPTERS))
def test_chapters_4_to_7_take_the_openai_path(colab, name):
    run = colab[1][name]
    assert run.returncode == 0
    text = "\n".join(run.outputs())
    assert "OpenAI's GPT-2 124M, from Hugging Face's cache" in text, text[:3000]
    assert "cannot be had here" not in text and "is not in Hugging Face's local cache" not in text


@pytest.mark.parametrize("name", sorted(OPENAI_CHAPTERS))
def test_prose_follows_the_openai_outputs(colab, name):
    """The sentences the chapter computes were computed on this run, on OpenAI's path: every cell that shows
    one in the committed (offline) chapter showed one here, none describes the book's own model, and where the
    committed sentence names the book's model, this run's names OpenAI's."""
    run = colab[1][name]
    assert run.returncode == 0
    committed, here = _prose(ROOT / "chapters" / f"{name}.ipynb"), _prose(run.notebook)
    assert set(committed) <= set(here), f"cells that showed no sentence on Colab: {sorted(set(committed) - set(here))}"
    for cell, texts in here.items():
        for text in texts:
            assert not any(words in text for words in BOOK_MODEL_WORDS), (cell, text)
    for cell, texts in committed.items():
        if any(BOOK_NAME in text for text in texts):
            assert any(OPENAI_NAME in text for text in here[cell]), (cell, here[cell])
