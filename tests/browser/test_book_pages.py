"""The built book (`make book` -> _build/html) opened in headless Chromium, as a reader sees it.

Run with `pytest -m book tests/browser` (the default `pytest` run deselects the `book` marker).
Pages are served from an in-process HTTP server (module scripts do not load over file://) and
every request that is not to that server is aborted and reported: the book must work offline.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.book

BUILD = Path(__file__).resolve().parents[2] / "_build" / "html"
CHART_TIMEOUT_MS = 15_000
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root in a container, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers have a tiny /dev/shm
]
# True once every chart's view holds what vega-embed draws; the fallback SVG is a sibling of the
# view, so it does not count.
CHARTS_RENDERED_JS = """() => [...document.querySelectorAll('div.layersim-chart')].every(
    c => c.querySelector(':scope > div.layersim-chart-view :is(svg, canvas)'))"""
PAGE_FACTS_JS = r"""() => ({
  charts: [...document.querySelectorAll('div.layersim-chart')].map(c => ({
    id: c.id,
    rendered: !!c.querySelector(':scope > div.layersim-chart-view :is(svg, canvas)'),
  })),
  scorecards: [...document.querySelectorAll('table.layersim-scorecard')].map(
    t => t.querySelectorAll('tbody tr').length),
  questions: [...document.querySelectorAll('table.layersim-questions')].map(
    t => t.querySelectorAll('tbody tr').length),
  hrefs: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
  pageOverflow: document.documentElement.scrollWidth - window.innerWidth,
  wideCharts: [...document.querySelectorAll('div.layersim-chart')].filter(
    c => c.scrollWidth > c.clientWidth + 1).map(c => c.id),
  uncaptioned: [...document.querySelectorAll('div.layersim-chart')].filter(c => {
    const figure = c.closest('figure');
    const caption = figure && figure.querySelector('figcaption .caption-number');
    return !(caption && /Fig\.\s*\d+/.test(caption.textContent));
  }).map(c => c.id),
})"""
# The two widths every page must fit: a laptop and a phone.
WIDTHS = (1400, 390)


class _PageScan(HTMLParser):
    """Element ids, sidebar-nav links and a meta-refresh target of one HTML file."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.nav_hrefs: list[str] = []
        self.refresh: str | None = None
        self._nav_depth = 0  # > 0 inside the theme's sidebar <nav class="bd-docs-nav">

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "nav" and (self._nav_depth or "bd-docs-nav" in a.get("class", "").split()):
            self._nav_depth += 1
        elif tag == "a" and self._nav_depth and a.get("href"):
            self.nav_hrefs.append(a["href"])
        elif tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            match = re.search(r"url=(\S+)", a.get("content", ""), re.IGNORECASE)
            self.refresh = match.group(1) if match else None

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav" and self._nav_depth:
            self._nav_depth -= 1


@functools.cache
def _scan(page: str) -> _PageScan:
    scan = _PageScan()
    scan.feed((BUILD / page).read_text(encoding="utf-8"))
    return scan


def _resolve(page: str, href: str) -> tuple[str, str]:
    """(file relative to BUILD, fragment) that a relative href on `page` points to."""
    parts = urlsplit(href)
    path = unquote(parts.path)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path)) if path else page
    if path and (BUILD / target).is_dir():
        target = posixpath.join(target, "index.html")
    return target, unquote(parts.fragment)


def _is_external(href: str) -> bool:
    parts = urlsplit(href)
    return bool(parts.scheme or parts.netloc)  # http(s), mailto, javascript, //host, ...


def toc_pages() -> list[str]:
    """The book's pages in toc order, found by following the sidebar nav from index.html like a
    reader (so stale or orphan HTML files in _build/html are ignored); redirect stubs are left
    out."""
    if not (BUILD / "index.html").is_file():
        return []
    pages: list[str] = []
    queue, seen = ["index.html"], {"index.html"}
    while queue:
        page = queue.pop(0)
        scan = _scan(page)
        links = [scan.refresh] if scan.refresh else scan.nav_hrefs
        if not scan.refresh:
            pages.append(page)
        for href in links:
            target, _ = _resolve(page, href)
            if not _is_external(href) and target not in seen and (BUILD / target).is_file():
                seen.add(target)
                queue.append(target)
    return pages


# Parametrised at collection time; when the book is not built, one placeholder keeps the tests
# (which then fail in `book_root`) from being silently skipped as an empty parameter set.
PAGES = toc_pages() or ["index.html"]


@dataclass
class Visit:
    """What one page load in Chromium showed."""

    console_errors: list[str]
    failed_requests: list[str]
    offsite_requests: list[str]
    charts: list[dict[str, Any]]
    scorecards: list[int]
    questions: list[int]
    hrefs: list[str]
    page_overflow: int = 0
    wide_charts: list[str] = None  # type: ignore[assignment]
    uncaptioned: list[str] = None  # type: ignore[assignment]


@pytest.fixture(scope="session")
def book_root() -> Path:
    if not (BUILD / "index.html").is_file():
        pytest.fail(f"{BUILD / 'index.html'} is missing: run `make book` first", pytrace=False)
    return BUILD


@pytest.fixture(scope="session")
def base_url(book_root: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(book_root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: any free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _chromium() -> str:
    env = os.environ.get("LAYERSIM_CHROMIUM")
    if env:
        if not Path(env).is_file():
            pytest.fail(f"LAYERSIM_CHROMIUM={env} is not a file", pytrace=False)
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    pytest.fail(
        "Chromium not found: `apt-get install chromium` (Debian), or set "
        "LAYERSIM_CHROMIUM=/path/to/chrome",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[dev]'", pytrace=False)
    executable = _chromium()
    # Playwright only drives the system Chromium: `playwright install` (a download) is never needed.
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def visit(browser: Any, base_url: str) -> Callable[[str], Visit]:
    """Loads a page once per session (the tests below share the load) and records what it did."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    @functools.cache
    def load(page_path: str, width: int = WIDTHS[0]) -> Visit:
        v = Visit([], [], [], [], [], [], [])
        context = browser.new_context(
            service_workers="block", viewport={"width": width, "height": 900}
        )

        def route(route: Any) -> None:
            if route.request.url.startswith(base_url):
                route.continue_()
            else:  # the network is off limits: abort, and fail the test below
                v.offsite_requests.append(route.request.url)
                route.abort()

        context.route("**/*", route)
        page = context.new_page()

        def on_console(msg: Any) -> None:
            if msg.type == "error":
                v.console_errors.append(f"{msg.text} ({msg.location.get('url', '?')})")

        def on_response(response: Any) -> None:
            if response.status >= 400:
                v.failed_requests.append(f"{response.status} {response.url}")

        def on_request_failed(request: Any) -> None:
            # offsite ones were aborted by `route`; an HTTP error was already listed
            local = request.url.startswith(base_url)
            if local and not any(f.endswith(" " + request.url) for f in v.failed_requests):
                v.failed_requests.append(f"{request.failure} {request.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: v.console_errors.append(f"uncaught: {error}"))
        page.on("response", on_response)
        page.on("requestfailed", on_request_failed)
        try:
            page.goto(base_url + page_path, wait_until="load")
            try:
                page.wait_for_function(CHARTS_RENDERED_JS, timeout=CHART_TIMEOUT_MS)
            except PlaywrightTimeout:
                pass  # reported by test_charts_render
            page.wait_for_load_state("networkidle")  # late requests and errors count too
            facts = page.evaluate(PAGE_FACTS_JS)
        finally:
            context.close()
        v.charts, v.scorecards, v.hrefs = facts["charts"], facts["scorecards"], facts["hrefs"]
        v.questions = facts["questions"]
        v.page_overflow, v.wide_charts = facts["pageOverflow"], facts["wideCharts"]
        v.uncaptioned = facts["uncaptioned"]
        return v

    return load


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_errors(visit: Callable[[str], Visit], page: str) -> None:
    v = visit(page)
    problems = v.console_errors + v.failed_requests
    assert not problems, f"console errors or failed requests on {page}:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_page_stays_offline(visit: Callable[[str], Visit], page: str) -> None:
    offsite = visit(page).offsite_requests
    assert not offsite, f"{page} tried to reach the network:\n" + "\n".join(offsite)


@pytest.mark.parametrize("page", PAGES)
def test_charts_render(visit: Callable[[str], Visit], page: str) -> None:
    blank = [c["id"] or "(no id)" for c in visit(page).charts if not c["rendered"]]
    assert not blank, (
        f"{len(blank)} chart(s) on {page} drew nothing in div.layersim-chart-view within "
        f"{CHART_TIMEOUT_MS / 1000:.0f} s: {blank}"
    )


def test_some_page_has_charts(visit: Callable[[str], Visit]) -> None:
    assert [p for p in PAGES if visit(p).charts], "no page of the book has a div.layersim-chart"


def test_scorecard_has_one_row_per_claim(visit: Callable[[str], Visit]) -> None:
    from layersim.analysis.verdicts import CLAIM_IDS as claim_ids

    tables = [(p, rows) for p in PAGES for rows in visit(p).scorecards]
    assert len(tables) == 1, f"expected one table.layersim-scorecard, found {tables}"
    page, rows = tables[0]
    assert rows == len(claim_ids), f"{page}: {rows} scorecard rows for claims {claim_ids}"


def test_questions_table_has_one_row_per_question(visit: Callable[[str], Visit]) -> None:
    tables = [(p, rows) for p in PAGES for rows in visit(p).questions]
    assert len(tables) == 1, f"expected one table.layersim-questions, found {tables}"
    assert tables[0][1] == 5, f"{tables[0][0]}: {tables[0][1]} rows for questions E1-E5"


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_resolve(visit: Callable[[str], Visit], page: str) -> None:
    broken = []
    for href in dict.fromkeys(visit(page).hrefs):  # unique, in page order
        if _is_external(href) or href in ("", "#"):
            continue  # external links are never followed; "#" is the theme's no-op link
        if href.startswith("/"):  # breaks when the book is served under a sub-path
            broken.append(f"{href} -> absolute path; use a relative link")
            continue
        target, fragment = _resolve(page, href)
        if target.split("/")[0] == ".." or not (BUILD / target).is_file():
            broken.append(f"{href} -> missing file {target}")
        elif fragment and target.endswith(".html") and fragment not in _scan(target).ids:
            broken.append(f"{href} -> no id {fragment!r} in {target}")
    assert not broken, f"broken links on {page}:\n" + "\n".join(broken)


@pytest.mark.parametrize("page", PAGES)
def test_notebook_pages_launch_their_ipynb_in_colab(book_root: Path, page: str) -> None:
    """A page built from a MyST notebook with an .ipynb twin gets a Colab button for the twin."""
    source = book_root.parent.parent / Path(page).with_suffix(".ipynb")
    html = (book_root / page).read_text(encoding="utf-8")
    launches = set(re.findall(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', html))
    if not source.is_file():
        return
    expected = Path(page).with_suffix(".ipynb").as_posix()
    assert any(url.endswith(f"/blob/main/{expected}") for url in launches), (
        f"{page}: no Colab launch button for {expected}; found {sorted(launches)}"
    )


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", PAGES)
def test_nothing_overflows(visit: Callable[[str], Visit], page: str, width: int) -> None:
    v = visit(page) if width == WIDTHS[0] else visit(page, width)  # one load per width
    assert v.page_overflow <= 1, f"{page} is {v.page_overflow} px wider than a {width} px window"
    assert not v.wide_charts, f"charts wider than their column on {page} at {width} px: " + (
        ", ".join(v.wide_charts)
    )


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_is_numbered_and_captioned(visit: Callable[[str], Visit], page: str) -> None:
    missing = visit(page).uncaptioned
    assert not missing, f"charts without a numbered caption on {page}: {missing}"
