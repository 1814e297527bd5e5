"""The book's website in a real browser, with the network cut off.

Builds the site (``sslkit.book.build``), serves it on 127.0.0.1 and opens every page in
Chromium (Debian's ``chromium``, driven by Playwright): no console error and no failed request,
no raw LaTeX left in the text, every image loaded, every internal link resolves, the search
finds "Sinkhorn", and moving any slider of an interactive figure changes what is drawn.
Screenshots of three pages are saved in the test's temporary folder (printed with ``-s``).
Skipped where Playwright or a Chromium is not installed.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

playwright = pytest.importorskip("playwright.sync_api")


def _browser() -> str | None:
    for name in (os.environ.get("BOOK_BROWSER"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


BROWSER = _browser()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium)")
INTERACTIVE = ("02_equipartition_optimal_transport", "03_sinkhorn_self_labelling", "05_swav")
# TeX left as text: a $...$ or \(...\) pair, or a TeX command, outside code and rendered math.
RAW_TEX = re.compile(r"\$\$|\$[^$\s][^$\n]{0,200}\$|\\\(|\\\[|"
                     r"\\(frac|tfrac|sum|log|lambda|varepsilon|mathbb|mathcal|operatorname|langle|cdot|sqrt)(?![a-zA-Z])")
VISIBLE_TEXT = """() => {
  const body = document.querySelector('main') || document.body;
  const copy = body.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .sslkit-vega').forEach(e => e.remove());
  return copy.innerText;
}"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from sslkit.book import build

    out = tmp_path_factory.mktemp("book") / "site"
    t = time.perf_counter()
    index, problems = build(out)
    print(f"\nsite built in {time.perf_counter() - t:.1f} s into {out}")
    assert not problems, problems
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=BROWSER, args=[
            "--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"])  # no DNS: no network
        yield b
        b.close()


class Page:
    """One browser tab that records console errors and every request that failed or left the site."""

    def __init__(self, browser, base: str):
        self.base, self.problems = base, []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed request: {r.url}"))

    def _route(self, route):
        if route.request.url.startswith(self.base) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            self.problems.append(f"request leaves the site: {route.request.url}")
            route.abort()

    def open(self, name: str):
        self.page.goto(self.base + name, wait_until="load")
        self.page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
        n = self.page.locator(".sslkit-vega").count()
        if n:
            self.page.wait_for_function(f"document.querySelectorAll('.sslkit-vega canvas, .sslkit-vega svg').length >= {n}")
        return self.page


def _internal_links(page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    return [h for h in hrefs if h.startswith(base)]


def test_every_page(site, browser):
    out, base = site
    pages = sorted(p.name for p in out.glob("*.html"))
    assert {"index.html", "bibliography.html", "teachers.html", "full_scale.html", "benchmarks.html",
            "results.html"} <= set(pages)
    assert [p for p in pages if p[:2].isdigit()] == sorted(p.with_suffix(".html").name for p in
                                                           (Path(__file__).parent.parent / "chapters").glob("[0-9][0-9]_*.ipynb"))
    tab, ids, links, failures = Page(browser, base), {}, set(), []
    for name in pages:
        page = tab.open(name)
        ids[name] = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        links |= set(_internal_links(page, base))
        raw = RAW_TEX.findall(page.evaluate(VISIBLE_TEXT))
        if raw:
            failures.append(f"{name}: raw LaTeX {raw[:3]}")
        broken = page.eval_on_selector_all("img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0))"
                                                  ".map(e => e.src.slice(0, 80))")
        if broken:
            failures.append(f"{name}: images not loaded {broken[:3]}")
        failures += [f"{name}: {p}" for p in tab.problems]
        tab.problems.clear()
    for link in sorted(links):
        url = urlparse(link)
        target = unquote(url.path[len(urlparse(base).path):]) or "index.html"
        if target.endswith("/"):
            target += "index.html"
        if not (out / target).is_file():
            failures.append(f"link to a missing page: {link}")
        elif url.fragment and target in ids and unquote(url.fragment) not in ids[target]:
            failures.append(f"link to a missing anchor: {link}")
    tab.context.close()
    assert not failures, "\n".join(failures[:30])


def test_search_finds_sinkhorn(site, browser):
    _, base = site
    tab = Page(browser, base)
    page = tab.open("index.html")
    page.locator("button.search-button-field").first.click()
    box = page.locator("#pst-search-dialog input[name=q]")
    box.fill("Sinkhorn")
    box.press("Enter")
    page.wait_for_url(re.compile(r"search\.html\?q=Sinkhorn"))
    page.wait_for_selector("#search-results li", timeout=30_000)
    found = page.eval_on_selector_all("#search-results li a", "els => els.map(e => e.getAttribute('href'))")
    assert any(h.startswith("03_sinkhorn_self_labelling.html") for h in found), found
    assert not tab.problems, tab.problems
    tab.context.close()


def _move(page, figure, index: int) -> None:
    """Move one slider to the other end of its range, as a reader's drag does (an input event)."""
    figure.locator("input[type=range]").nth(index).evaluate(
        "x => { x.value = (+x.value === +x.max) ? x.min : x.max; x.dispatchEvent(new Event('input', {bubbles: true})); }")
    page.wait_for_timeout(400)


@pytest.mark.parametrize("chapter", INTERACTIVE)
def test_sliders_move_the_figure(site, browser, chapter, tmp_path_factory):
    _, base = site
    tab = Page(browser, base)
    page = tab.open(chapter + ".html")
    figures = page.locator(".sslkit-vega")
    assert figures.count() >= 1, f"{chapter} has no interactive figure"
    for f in range(figures.count()):
        figure = figures.nth(f)
        figure.scroll_into_view_if_needed()
        sliders = figure.locator("input[type=range]").count()
        assert sliders >= 1, f"figure {f} of {chapter} has no slider"
        for s in range(sliders):
            before = figure.screenshot()
            _move(page, figure, s)
            assert figure.screenshot() != before, f"slider {s} of figure {f} in {chapter} changes nothing drawn"
    assert not tab.problems, tab.problems
    tab.context.close()


def test_screenshots(site, browser, tmp_path_factory):
    """Three pages as a reader sees them, for a person to look at (paths printed with -s)."""
    _, base = site
    shots = tmp_path_factory.mktemp("screenshots")
    tab = Page(browser, base)
    tab.open("index.html").screenshot(path=shots / "index.png")
    page = tab.open("03_sinkhorn_self_labelling.html")
    page.locator(".sslkit-vega").first.scroll_into_view_if_needed()
    page.screenshot(path=shots / "03_sinkhorn_self_labelling.png")
    page = tab.open("05_swav.html")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the figure scrolls sideways
    page.locator(".sslkit-vega").first.scroll_into_view_if_needed()
    page.screenshot(path=shots / "05_swav_phone.png")
    print(f"\nscreenshots: {sorted(str(p) for p in shots.glob('*.png'))}")
    assert all(p.stat().st_size > 10_000 for p in shots.glob("*.png")) and len(list(shots.glob("*.png"))) == 3
    assert not tab.problems, tab.problems
    tab.context.close()
