"""The documentation site and ``report.html`` in a real headless browser (Chromium).

Every page of the built site, and a ``report.html`` written by ``steplab bench --html`` on a
tiny benchmark, is loaded in Chromium over the DevTools protocol: no console error, no
uncaught exception, no failed resource load, no request leaving the local server (the pages
must work offline), and every same-origin link answers 200 with its ``#anchor`` present.

Skips only when no Chromium is installed and ``STEPLAB_REQUIRE_BROWSER`` is unset
(``.ci/run`` sets it, so CI fails instead). Set ``STEPLAB_SCREENSHOT_DIR`` to keep a
screenshot of the site's home page and of the report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _docs_site import Chromium, broken_links, build_site, chromium_path, serve

BINARY = chromium_path()
if BINARY is None and not os.environ.get("STEPLAB_REQUIRE_BROWSER"):
    pytest.skip("Chromium not installed (apt-get install chromium); set STEPLAB_REQUIRE_BROWSER=1 "
                "to fail instead", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    assert BINARY is not None, "STEPLAB_REQUIRE_BROWSER is set but no Chromium is installed"
    chrome = Chromium(BINARY)
    try:
        yield chrome
    finally:
        chrome.close()


def _screenshot(browser: Chromium, name: str) -> None:
    folder = os.environ.get("STEPLAB_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.screenshot(Path(folder) / name)


def _check_pages(browser: Chromium, base: str, pages: list[str]) -> None:
    problems = {page: found for page in pages if (found := browser.load(page, base))}
    assert not problems, "\n".join(f"{page}: {p}" for page, found in problems.items() for p in found)
    bad = broken_links(base, pages)
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_every_site_page_loads_clean(browser):
    site, _ = build_site()
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert len(pages) >= 20 and "index.html" in pages and "reference/cli/index.html" in pages
    with serve(site) as base:
        _check_pages(browser, base, [base + p for p in pages])
        browser.load(base, base)
        _screenshot(browser, "site-home.png")
        # the search index is served, so the search box works offline
        assert (site / "search" / "search_index.json").stat().st_size > 10_000


def test_report_html_loads_clean(browser, tmp_path):
    from typer.testing import CliRunner

    from steplab.cli import app

    html = tmp_path / "report.html"
    r = CliRunner().invoke(app, ["bench", "--workloads", "logreg", "--algorithms", "adamw-cosine",
                                 "--trials", "1", "--db", str(tmp_path / "b.db"), "--html", str(html)],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert html.stat().st_size > 10_000
    with serve(tmp_path) as base:
        _check_pages(browser, base, [base + "report.html"])
        _screenshot(browser, "report.png")
