"""Every chapter page of the built book, in headless Chromium: formulas rendered, images loaded, no
failed local request, nothing fetched from the network, a Colab link, solutions hidden until asked."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from browser_checks import check_page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def test_every_chapter_page_renders(browser, book_server, book_html):
    failures = {}
    for stem in CHAPTERS:
        assert (book_html / "chapters" / f"{stem}.html").exists(), f"chapters/{stem}.html was not built"
        problems = check_page(browser, f"{book_server}/chapters/{stem}.html")
        if problems:
            failures[stem] = problems
    assert not failures, "\n".join(f"{page}: {'; '.join(p)}" for page, p in failures.items())


def test_a_page_with_math_has_math(browser, book_server):
    # The attention chapter is built around a formula: if no formula shows there, the check is blind.
    assert check_page(browser, f"{book_server}/chapters/04_attention_math.html", expect_math=True) == []


def test_solutions_are_hidden_until_clicked(browser, book_server):
    # A chapter may span several notebooks (chapter 5): three solutions per chapter, not per page.
    per_chapter: dict[str, int] = {}
    for stem in CHAPTERS:
        page = browser.new_page()
        page.route(lambda u: not u.startswith(book_server), lambda route: route.abort())
        page.goto(f"{book_server}/chapters/{stem}.html")
        solutions = page.locator(".tag_solution")
        count = solutions.count()
        per_chapter[stem[:2]] = per_chapter.get(stem[:2], 0) + count
        if count:
            first = solutions.first
            code = first.locator(".cell_input")
            assert not code.is_visible(), f"{stem}: a solution is visible before it is asked for"
            first.locator("summary").first.click()
            code.wait_for(state="visible", timeout=5_000)
        page.close()
    few = {chapter: n for chapter, n in per_chapter.items() if n < 3}
    assert not few, f"chapters with fewer than three solution cells on their pages: {few}"


def test_check_fails_when_mathjax_is_missing(browser, book_html, tmp_path):
    """The check must be able to fail: the same book without its MathJax files is reported."""
    from conftest import serve_folder

    broken = tmp_path / "html"
    shutil.copytree(book_html, broken, ignore=shutil.ignore_patterns(".jupyter_cache"))
    shutil.rmtree(broken / "_static" / "mathjax")
    with serve_folder(broken) as url:
        problems = check_page(browser, f"{url}/chapters/04_attention_math.html")
    joined = " ".join(problems)
    assert "MathJax did not load" in joined and "mathjax" in joined.lower(), problems
