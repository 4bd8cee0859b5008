"""The kernel-free figures work in the published book: on the built chapter-6 page, every control of the
attention explorer and of the sampling explorer redraws its figure, with no Python running anywhere.

Run after the book build (`make test` does; or `BOOK_HTML=/path/to/_build/html pytest -m browser`).
"""
from __future__ import annotations

import pytest

import json
import re

from gpt2lib.interactive import filter_probs

pytestmark = pytest.mark.browser

PAGE = "chapters/06_applications.html"


@pytest.fixture(scope="module")
def page(book_html, book_server, browser):
    if not (book_html / PAGE).exists():
        pytest.fail(f"{PAGE} is missing from the built book at {book_html}: is chapter 6 in _toc.yml?")
    pg = browser.new_page()
    errors: list[str] = []
    # Two errors come from third-party scripts on every page and are not ours: the theme declares
    # THEBE_JS_URL twice, and the widget manager calls MathJax 2's Hub.Queue, which MathJax 3 lacks.
    foreign = ("THEBE_JS_URL", "reading 'Queue'")
    pg.on("pageerror", lambda exc: None if any(f in str(exc) for f in foreign) else errors.append(str(exc)))
    pg.goto(f"{book_server}/{PAGE}", wait_until="load")
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    pg.close()


def _figure(pg, css: str, what: str):
    fig = pg.query_selector(css)
    if fig is None:
        pytest.fail(f"the {what} is missing from {PAGE}: the cell that draws it did not run, or its HTML "
                    f"output was dropped by the build")
    try:
        pg.wait_for_selector(f"{css}[data-ready='1']", timeout=10_000)
    except Exception:
        pytest.fail(f"the {what} is on the page but its script never ran (errors: {pg.errors}); "
                    f"inline scripts blocked or broken?")
    return fig


def _set(pg, selector: str, value) -> None:
    """Move a slider (or choose a menu entry) the way a reader would: the page gets 'input'/'change'."""
    el = pg.query_selector(selector)
    assert el is not None, f"control {selector} not found"
    if el.evaluate("e => e.tagName") == "SELECT":
        pg.select_option(selector, str(value))
    else:
        pg.fill(selector, str(value))


def _heatmap(fig) -> list[str]:
    return fig.eval_on_selector_all(".gpt2-heatmap td[data-w]", "cells => cells.map(c => c.getAttribute('data-w'))")


def _bars(fig) -> list[tuple[str, str]]:
    return fig.eval_on_selector_all(".gpt2-bar", "rows => rows.map(r => [r.getAttribute('data-id'), r.getAttribute('data-p')])")


def _page_data(pg, fig) -> dict:
    """The JSON the figure's inline script carries (the precomputed model output)."""
    fig_id = fig.get_attribute("id")
    html = pg.content()
    match = re.search(r'var ROOT_ID="%s";var DATA=(\{.*?\});\n' % re.escape(fig_id), html, re.S)
    assert match, "the figure's data is not on the page"
    return json.loads(match.group(1))


def test_attention_explorer_redraws_for_every_control(page):
    css = ".gpt2-attention-explorer"
    fig = _figure(page, css, "attention explorer")
    n_layer = int(fig.eval_on_selector(".gpt2-layer", "e => +e.max")) + 1
    n_head = int(fig.eval_on_selector(".gpt2-head", "e => +e.max")) + 1
    T = int(fig.eval_on_selector(".gpt2-query", "e => +e.max")) + 1
    assert T >= 4, f"the sentence has only {T} tokens"
    cells = _heatmap(fig)
    assert len(cells) == T * T, f"heat map has {len(cells)} cells for {T} tokens"

    before_map, before_caption = _heatmap(fig), fig.eval_on_selector(".gpt2-caption", "e => e.innerText")
    assert n_layer > 1, "the explorer offers a single layer: nothing to choose"
    _set(page, f"{css} .gpt2-layer", n_layer - 1)
    assert fig.get_attribute("data-state").startswith(f"{n_layer - 1},"), "the layer slider did not register"
    assert _heatmap(fig) != before_map, "moving the layer slider did not change the heat map"

    before_map = _heatmap(fig)
    assert n_head > 1, "the explorer offers a single head: nothing to choose"
    _set(page, f"{css} .gpt2-head", n_head - 1)
    assert _heatmap(fig) != before_map, "moving the head slider did not change the heat map"

    before_text = fig.eval_on_selector(".gpt2-text", "e => e.innerHTML")
    before_caption = fig.eval_on_selector(".gpt2-caption", "e => e.innerText")
    _set(page, f"{css} .gpt2-query", 1)
    assert fig.eval_on_selector(".gpt2-text", "e => e.innerHTML") != before_text, "moving the query slider did not reshade the text"
    assert fig.eval_on_selector(".gpt2-caption", "e => e.innerText") != before_caption, "the caption did not follow the query token"
    # causality survives in the page: query 1 attends only to positions 0 and 1
    weights = [float(w) for w in _heatmap(fig)[T:2 * T]]
    assert all(w == 0 for w in weights[2:]) and abs(sum(weights) - 1) < 0.01, weights
    assert not page.errors, page.errors


def test_sampling_explorer_redraws_for_every_control(page):
    css = ".gpt2-sampling-explorer"
    fig = _figure(page, css, "sampling explorer")
    bars = _bars(fig)
    assert len(bars) >= 5, f"only {len(bars)} bars drawn"

    def kept() -> int:
        return int(fig.eval_on_selector(".gpt2-summary", "e => +e.getAttribute('data-kept')"))

    all_kept = kept()
    _set(page, f"{css} .gpt2-temperature", 0.3)
    sharp = _bars(fig)
    assert sharp != bars, "moving the temperature slider did not change the bars"
    assert float(sharp[0][1]) > float(bars[0][1]), "a lower temperature must make the top token more likely"

    _set(page, f"{css} .gpt2-top_k", 3)
    assert kept() == 3, f"top-k = 3 should keep 3 tokens, the figure says {kept()}"
    probs = [float(p) for _, p in _bars(fig)]
    assert all(p == 0 for p in probs[3:]) and abs(sum(probs[:3]) - 1) < 1e-4, probs
    _set(page, f"{css} .gpt2-top_k", 0)
    assert kept() == all_kept, "top-k back at 0 (off) should keep every token again"

    _set(page, f"{css} .gpt2-top_p", 0.5)
    assert kept() < all_kept, "top-p = 0.5 should drop tokens"
    # the page's arithmetic agrees with the Python twin of gpt2lib.generation's filters, on the page's own data
    expected = filter_probs(_page_data(page, fig)["contexts"][0]["logits"], 0.3, None, 0.5)
    assert kept() == sum(p > 0 for p in expected), (kept(), sum(p > 0 for p in expected))
    shown = [float(p) for _, p in _bars(fig)]
    assert all(abs(a - b) < 1e-5 for a, b in zip(shown, expected)), (shown[:5], expected[:5])

    menu = fig.query_selector(".gpt2-context")
    if menu is not None:
        before = _bars(fig)
        _set(page, f"{css} .gpt2-context", 1)
        assert [i for i, _ in _bars(fig)] != [i for i, _ in before], "choosing another prompt did not redraw"

    page.click(f"{css} .gpt2-sample-button")
    drawn = fig.eval_on_selector(".gpt2-samples", "e => e.innerText")
    assert drawn.count("|") == 19, f"the sample button should draw 20 tokens, got {drawn!r}"
    assert not page.errors, page.errors
