"""Keep the chapters' shared cells in one shape.

Every chapter starts with the same set-up cell (tag ``setup``), built from the repository URL in
``_config.yml``, the one place that URL is written; every chapter ends with a progress cell (tag
``progress``); every solution cell is folded in JupyterLab too (``jupyter.source_hidden``), and the
set-up cell's code is folded in the HTML book (tag ``hide-input``: its output, the device and the
versions, stays in view). Run
``python tools/sync_notebooks.py`` after changing either; ``--check`` only reports (the test suite
runs it that way).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    url = (config.get("repository") or {}).get("url")
    if not isinstance(url, str) or not url:
        raise SystemExit("_config.yml has no repository.url")
    return url.rstrip("/")


def package_version() -> str:
    """gpt2lib's version, read from gpt2lib/_version.py without importing the package."""
    text = (ROOT / "gpt2lib" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not match:
        raise SystemExit("gpt2lib/_version.py sets no __version__")
    return match.group(1)


def release_ref() -> str:
    """The git ref the set-up cell installs gpt2lib from: the release tag ``v<__version__>``.

    The notebooks and the package are released together: the release process tags the commit that
    holds both with ``v<gpt2lib.__version__>`` (and a version bump makes ``--check`` fail until the
    chapters are synced), so a reader who opens a chapter gets the package that chapter was executed
    with, never whatever the default branch holds that day. tools/colab_sim.py sets the same tag on
    the checkout's HEAD in its copy of the repository, so the simulated Colab installs exactly this ref.
    """
    return f"v{package_version()}"


def setup_source() -> str:
    url, ref = repository_url(), release_ref()
    return f'''# @title Set-up: run this cell first
# On Colab it installs gpt2lib, at the release this notebook belongs to ({ref}), from the book's
# repository (Colab already has torch, which is kept); on your own machine `make setup` has installed
# everything, so it does nothing. Then it prints the device and the versions that matter when you
# compare your numbers with the book's. transformers and tiktoken are installed only where missing:
# a Colab image's own copy is kept. Colab does not show what pip prints, so pip's output is kept and
# printed if the install fails.
import importlib.util, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("gpt2lib") is None:
    extra = [p for p in ("transformers", "tiktoken") if importlib.util.find_spec(p) is None]
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                          "gpt2lib @ git+{url}@{ref}", *extra],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        print(pip.stdout + pip.stderr)
        raise RuntimeError("pip could not install gpt2lib (its output is above): check that this runtime "
                           "can reach github.com and pypi.org, then run this cell again")
from gpt2lib.runtime import describe_environment
print(describe_environment())'''


def progress_source(chapter: int) -> str:
    return f'''# Which of this chapter's exercises you have passed (kept on your machine only).
from gpt2lib.exercises import show_progress
show_progress(chapter={chapter});'''


def code_cell(source: str, tags: list[str], form: bool = False) -> nbformat.NotebookNode:
    metadata: dict = {"tags": tags}
    if form:
        metadata["cellView"] = "form"
    return nbformat.v4.new_code_cell(source, metadata=metadata)


def chapter_number(path: Path) -> int:
    return int(path.name.split("_", 1)[0])


def sync(path: Path, check: bool) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    cells = nb["cells"]
    problems = []
    wanted = {"setup": setup_source(), "progress": progress_source(chapter_number(path))}
    for tag, source in wanted.items():
        found = [c for c in cells if tag in c.get("metadata", {}).get("tags", [])]
        if len(found) != 1:
            problems.append(f"{path.name}: expected one cell tagged '{tag}', found {len(found)}")
            if not check and not found:
                cell = code_cell(source, [tag, "hide-input"] if tag == "setup" else [tag], form=(tag == "setup"))
                if tag == "setup":
                    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
                    cells.insert(first_code, cell)
                else:
                    cells.append(cell)
            continue
        if found[0]["source"] != source:
            problems.append(f"{path.name}: the '{tag}' cell differs from tools/sync_notebooks.py")
            if not check:
                found[0]["source"] = source
                found[0]["outputs"] = [o for o in found[0].get("outputs", []) if o.get("output_type") != "execute_result"]
    # The set-up cell's code (long lines, a pip install from a git URL) is for Colab: the HTML book folds it
    # away under a "show code" button and shows only what it prints, the device and the versions.
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "setup" in tags and "hide-input" not in tags:
            problems.append(f"{path.name}: the set-up cell is not folded in the book (tag 'hide-input')")
            if not check:
                cell["metadata"]["tags"] = [*tags, "hide-input"]
    # A checker returns True or False; in a notebook that value would be echoed under the verdict it
    # just printed, so exercise and solution cells end their checker call with ";".
    for cell in cells:
        if not {"exercise", "solution"} & set(cell.get("metadata", {}).get("tags", [])):
            continue
        lines = cell["source"].rstrip().split("\n")
        if lines and lines[-1].startswith("check_") and not lines[-1].endswith(";"):
            problems.append(f"{path.name}: end the checker call with ';' in: {lines[-1]}")
            if not check:
                lines[-1] += ";"
                cell["source"] = "\n".join(lines)
                cell["outputs"] = [o for o in cell.get("outputs", []) if o.get("output_type") != "execute_result"]
    # Solution cells are folded everywhere a reader may meet them: the HTML book (tag hide-cell), Colab
    # (cellView: form), and JupyterLab and GitHub, which read Jupyter's own source_hidden flag.
    for cell in cells:
        if "solution" not in cell.get("metadata", {}).get("tags", []):
            continue
        jupyter = cell["metadata"].get("jupyter", {})
        if jupyter.get("source_hidden") is not True:
            first = "".join(cell.get("source", "")).split("\n", 1)[0]
            problems.append(f"{path.name}: a solution cell is not hidden in JupyterLab ({first})")
            if not check:
                cell["metadata"]["jupyter"] = {**jupyter, "source_hidden": True}
    if not check and problems:
        nbformat.write(nb, path)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="report differences, change nothing")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.notebooks or sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
    problems = [p for path in paths for p in sync(path, args.check)]
    for p in problems:
        print(p)
    return 1 if (problems and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
