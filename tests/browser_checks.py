"""What a reader's browser must see on every chapter page, as a function the tests call."""
from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from find_chromium import CHROMIUM_APPS, CHROMIUM_COMMANDS, CHROMIUM_VARIABLES, find_chromium  # noqa: E402,F401

MATHJAX_READY = """async () => {
  if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return false;
  await MathJax.startup.promise;
  return true;
}"""

PAGE_FACTS = """() => {
  const math = Array.from(document.querySelectorAll('.math'));
  const unrendered = math.filter(el => !el.querySelector('mjx-container')).map(el => el.textContent.trim().slice(0, 60));
  const errors = Array.from(document.querySelectorAll('mjx-merror')).map(el => el.textContent.slice(0, 60));
  const images = Array.from(document.images).filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src.slice(0, 120));
  const colab = document.querySelectorAll('a[href*="colab.research.google.com"]').length;
  const text = document.querySelector('main') ? document.querySelector('main').innerText : document.body.innerText;
  const rawTex = (text.match(/\\\\(frac|sqrt|text|mathrm|begin|left|right)\\b/g) || []).length;
  return {math: math.length, unrendered, errors, images, colab, rawTex};
}"""


def check_page(browser, url: str, *, expect_math: bool | None = None) -> list[str]:
    """Open ``url`` and return a list of problems (empty when the page is fine).

    Checks: every formula rendered by MathJax (no raw TeX left, no MathJax error), every image loaded,
    no failed request for a file of the book, no request leaving the machine, a "Launch on Colab" link.
    """
    origin = "{0.scheme}://{0.netloc}".format(urlparse(url))
    problems: list[str] = []
    page = browser.new_page()
    failed_local: list[str] = []
    external: list[str] = []

    def on_request(request):
        if not request.url.startswith((origin, "data:", "blob:", "about:")):
            external.append(request.url)

    def on_failed(request):
        if request.url.startswith(origin):
            failed_local.append(f"{request.url[len(origin):]} ({request.failure})")

    def on_response(response):
        if response.url.startswith(origin) and response.status >= 400:
            failed_local.append(f"{response.url[len(origin):]} (HTTP {response.status})")

    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    # Anything leaving the machine is answered at once with an error, as offline.
    page.route(lambda u: not u.startswith(origin), lambda route: route.abort())
    try:
        page.goto(url, wait_until="load", timeout=60_000)
        mathjax = page.evaluate(MATHJAX_READY)
        page.wait_for_timeout(300)
        facts = page.evaluate(PAGE_FACTS)
    finally:
        page.close()
    if facts["math"] and not mathjax:
        problems.append(f"MathJax did not load, {facts['math']} formulas left as raw TeX")
    if facts["unrendered"]:
        problems.append(f"{len(facts['unrendered'])} formulas not rendered, e.g. {facts['unrendered'][:2]}")
    if facts["errors"]:
        problems.append(f"MathJax errors: {facts['errors'][:3]}")
    if facts["rawTex"] and facts["math"] == 0:
        problems.append(f"{facts['rawTex']} raw TeX commands in the text and no formula element")
    if expect_math and facts["math"] == 0:
        problems.append("expected formulas on this page, found none")
    if facts["images"]:
        problems.append(f"images that did not load: {facts['images'][:3]}")
    if failed_local:
        problems.append(f"failed requests for the book's own files: {failed_local[:5]}")
    if external:
        problems.append(f"requests leaving the machine (the book must work offline): {sorted(set(external))[:5]}")
    if facts["colab"] == 0:
        problems.append("no 'Launch on Colab' link")
    return problems
