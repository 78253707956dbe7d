"""Helpers for tests/test_docs.py and tests/test_browser.py: build the documentation site
once per test session, serve a folder on 127.0.0.1, and drive a headless Chromium over the
Chrome DevTools Protocol (a small client on ``websocket-client``: no selenium, no network).
"""

from __future__ import annotations

import atexit
import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urldefrag, urljoin, urlparse
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,900"]


@functools.cache
def build_site() -> tuple[Path, str]:
    """``mkdocs build --strict`` into a temporary folder: (site folder, build log).
    Raises ``AssertionError`` with the log when the build fails (a warning included)."""
    site = Path(tempfile.mkdtemp(prefix="steplab-site-")) / "site"
    atexit.register(shutil.rmtree, site.parent, ignore_errors=True)  # one build per test session
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    log = r.stdout + r.stderr
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    return site, log


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _Links(HTMLParser):
    """Every linked URL (``a``/``link`` href, ``script``/``img``/``iframe`` src) and every
    element id of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"] or "")
        key = {"a": "href", "link": "href", "script": "src", "img": "src", "iframe": "src"}.get(tag)
        if key and a.get(key):
            self.urls.append(a[key] or "")


def page_links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def broken_links(base: str, pages: list[str]) -> list[str]:
    """Links from ``pages`` (URLs under ``base``) to ``base``'s origin that do not answer
    200, or whose ``#fragment`` names no element of the target page; one line each."""
    status: dict[str, tuple[int, _Links]] = {}

    def fetch(url: str) -> tuple[int, _Links]:
        if url not in status:
            try:
                with urlopen(url, timeout=10) as resp:
                    body = resp.read()
                    html = "html" in resp.headers.get("Content-Type", "")
                    status[url] = (resp.status, page_links(body.decode("utf-8", "replace") if html else ""))
            except HTTPError as e:
                status[url] = (e.code, _Links())
        return status[url]

    origin = urlparse(base).netloc
    bad: list[str] = []
    for page in pages:
        for link in fetch(page)[1].urls:
            url = urljoin(page, link)
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or parsed.netloc != origin:
                continue
            target, fragment = urldefrag(url)
            code, parsed_target = fetch(target)
            ids = parsed_target.ids
            if code != 200:
                bad.append(f"{page}: {link} -> HTTP {code}")
            elif fragment and ids and fragment not in ids:
                bad.append(f"{page}: {link} -> no element with id {fragment!r}")
    return bad


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Chromium:
    """A headless Chromium with a fresh profile and one page, driven over CDP.

    :meth:`load` navigates, waits for the load event (and ``settle_s`` more for late
    scripts) and returns the problems seen: console errors, uncaught exceptions, error log
    entries (a failed resource load is one) and any request that leaves ``allowed_origin``.
    """

    def __init__(self, binary: str) -> None:
        import websocket

        self.profile = Path(tempfile.mkdtemp(prefix="steplab-chromium-"))
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"chromium did not start (exit code {self.proc.poll()})")
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        with urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = [t for t in json.load(resp) if t.get("type") == "page"]
        self.ws = websocket.create_connection(targets[0]["webSocketDebuggerUrl"], timeout=20,
                                              suppress_origin=True)
        self._id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: object) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def _drain(self, until: str | None, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if until and any(e.get("method") == until for e in self.events):
                return
            self.ws.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except Exception:  # the timeout: nothing more arrived
                break
        self.ws.settimeout(20)
        if until and not any(e.get("method") == until for e in self.events):
            raise TimeoutError(f"no {until} within {timeout_s} s")

    def load(self, url: str, allowed_origin: str, settle_s: float = 0.3) -> list[str]:
        self.events = []
        self.call("Page.navigate", url=url)
        self._drain("Page.loadEventFired", 20)
        self._drain(None, settle_s)
        problems: list[str] = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                problems.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                problems.append(f"console.{p['type']}: {args}")
            elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                if p["entry"].get("url", "").endswith("/favicon.ico") and "favicon" not in p["entry"]["text"]:
                    continue  # the browser's own guess at a favicon for a page that links none
                problems.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}")
            elif method == "Network.requestWillBeSent":
                req = p["request"]["url"]
                if urlparse(req).scheme in ("http", "https", "ws", "wss") and not req.startswith(allowed_origin):
                    problems.append(f"request outside {allowed_origin}: {req}")
        return problems

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            if hasattr(self, "ws"):
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)
