"""What only the published book can show, checked after a deploy (the workflow's ``published`` job):

1. every chapter's page is served by GitHub Pages and carries its title;
2. every chapter's notebook, as Colab opens it (the repository's raw file on ``main``), is a valid notebook
   whose set-up cell is the one committed here, and Colab's launch URL for it answers;
3. with ``--install``: chapter 1's published set-up cell, run in a fresh virtual environment that imports
   ``google.colab`` as Colab's does, installs gpt2lib from the release tag over the network, and the book's
   model then loads from the installed package.

    python tools/check_published.py [--install]            # URLs from _config.yml's repository
    python tools/check_published.py --pages URL --raw URL  # another host (tests use a loopback server)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent


def chapters() -> list[str]:
    """The notebooks of the table of contents, in order (``chapters/NAME``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if str(node.get("file", "")).startswith("chapters/"):
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    return found


def urls() -> dict[str, str]:
    """Pages, raw-file and Colab base URLs of the repository _config.yml names."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]["url"].rstrip("/")
    owner, name = repo.split("/")[-2:]
    branch = config["repository"].get("branch", "main")
    return {"pages": f"https://{owner}.github.io/{name}/",
            "raw": f"https://raw.githubusercontent.com/{owner}/{name}/{branch}/",
            "colab": f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/"}


def get(url: str) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": "gpt2lib-check-published"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode("utf-8")


def setup_cell(nb: nbformat.NotebookNode) -> str:
    cells = [c for c in nb.cells if "setup" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{len(cells)} cells tagged 'setup', expected 1")
    return cells[0].source


def check_urls(pages: str, raw: str, colab: str | None) -> list[str]:
    """One line per failure (empty: all published as committed)."""
    failures = []
    for chapter in chapters():
        local = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4)
        title = next(c.source for c in local.cells if c.cell_type == "markdown").splitlines()[0].lstrip("# ").strip()
        try:
            page = get(f"{pages}{chapter}.html")
            if title.split(":")[0] not in page:
                failures.append(f"{pages}{chapter}.html does not carry the title {title!r}")
        except (urllib.error.URLError, OSError) as exc:
            failures.append(f"{pages}{chapter}.html: {exc}")
        try:
            published = nbformat.reads(get(f"{raw}{chapter}.ipynb"), as_version=4)
            nbformat.validate(published)
            if setup_cell(published) != setup_cell(local):
                failures.append(f"{raw}{chapter}.ipynb: its set-up cell differs from the committed one")
        except (urllib.error.URLError, OSError, ValueError, nbformat.ValidationError) as exc:
            failures.append(f"{raw}{chapter}.ipynb: {exc}")
        if colab:
            try:
                get(f"{colab}{chapter}.ipynb")
            except (urllib.error.URLError, OSError) as exc:
                failures.append(f"{colab}{chapter}.ipynb: {exc}")
    return failures


def check_install(raw: str) -> list[str]:
    """Chapter 1's published set-up cell in a fresh environment that looks like Colab's to it."""
    cell = setup_cell(nbformat.reads(get(f"{raw}{chapters()[0]}.ipynb"), as_version=4))
    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp) / "env"
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        python = str(env / "bin" / "python")
        subprocess.run([python, "-m", "pip", "install", "-q", "torch", "nbconvert", "ipykernel"], check=True)
        site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   capture_output=True, text=True, check=True).stdout.strip())
        (site / "google" / "colab").mkdir(parents=True)
        (site / "google" / "colab" / "__init__.py").write_text('"""Colab\'s module, as the set-up cell looks for it."""\n')
        (site / "zz_colab.pth").write_text("import google.colab\n")
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell), nbformat.v4.new_code_cell(
            "import gpt2lib\nmodel, tok = gpt2lib.book_model()\nprint('installed gpt2lib', gpt2lib.__version__)")])
        path = Path(tmp) / "setup.ipynb"
        nbformat.write(nb, path)
        run = subprocess.run([python, "-m", "nbconvert", "--to", "notebook", "--execute", "--inplace", str(path)],
                             capture_output=True, text=True)
        if run.returncode:
            return [f"chapter 1's set-up cell failed in a fresh environment:\n{run.stderr[-3000:]}"]
        out = json.dumps(nbformat.read(path, as_version=4).cells[1].outputs)
        if "book model: shipped with gpt2lib" not in out or "installed gpt2lib" not in out:
            return [f"after chapter 1's set-up cell, the book model did not load from the installed package: {out[:2000]}"]
    return []


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", help="the book's base URL (default: GitHub Pages of _config.yml's repository)")
    parser.add_argument("--raw", help="the base URL of the repository's raw files on the published branch")
    parser.add_argument("--no-colab", action="store_true", help="skip Colab's launch URLs")
    parser.add_argument("--install", action="store_true", help="also run chapter 1's set-up cell for real")
    args = parser.parse_args(argv)
    base = urls()
    pages, raw = args.pages or base["pages"], args.raw or base["raw"]
    failures = check_urls(pages, raw, None if args.no_colab else base["colab"])
    if args.install and not failures:
        failures += check_install(raw)
    for line in failures:
        print(f"published: {line}", file=sys.stderr)
    print(f"published: {len(chapters())} chapters checked at {pages} and {raw}: "
          + ("all as committed" if not failures else f"{len(failures)} problem(s)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
