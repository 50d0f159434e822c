"""Headless Chromium (Debian's package, driven by Playwright) against the real local stack.

Skipped with a message when Chromium or Playwright is missing, unless TAGPIPE_REQUIRE_BROWSER=1
(CI sets it: there the browser tests must run). Install: `apt-get install -y chromium` and
`pip install playwright` (never `playwright install`: it downloads a browser build).
"""

from __future__ import annotations

import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.stack import LocalStack

CHROMIUM = os.environ.get("TAGPIPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
# a real browser's UA: HeadlessChrome is a bot to the bot filter, and bots get no cookies
DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/140.0.0.0 Safari/537.36")  # fmt: skip


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    return None


@pytest.fixture(scope="module")  # not session: Playwright's sync API holds an event loop on this thread
def browser():
    missing = _browser_missing()
    if missing:
        if os.environ.get("TAGPIPE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TAGPIPE_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(f"browser tests skipped: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(user_agent=DESKTOP_UA)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("sitetag") / "stack", '[destinations.dry_run]\ntype = "log"\n') as s:
        yield s


class PageServer:
    """A site on 127.0.0.1 on its own port (another origin, same site): HTML `pages` and other `files`
    (path -> (content type, bytes)) by path, every GET path in `requests`, every POST in `posts` (answered
    `post_answer`); `cors`: readable from any origin (a CDN)."""

    def __init__(self, files: dict[str, tuple[str, bytes]] | None = None, cors: bool = False,
                 post_answer: bytes = b"{}") -> None:
        self.pages: dict[str, str] = {}
        self.files = dict(files or {})
        self.requests: list[str] = []
        self.posts: list[tuple[str, bytes]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                site.requests.append(self.path)
                path = self.path.split("?")[0]
                if path in site.pages:
                    self._answer("text/html; charset=utf-8", site.pages[path].encode())
                elif path in site.files:
                    self._answer(*site.files[path])
                else:
                    self.send_error(404)

            def do_POST(self):  # noqa: N802
                site.posts.append((self.path, self.rfile.read(int(self.headers.get("content-length") or 0))))
                self._answer("application/json", post_answer)

            def _answer(self, kind: str, data: bytes) -> None:
                self.send_response(200)
                self.send_header("content-type", kind)
                if cors:
                    self.send_header("access-control-allow-origin", "*")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def shop():
    s = PageServer()
    yield s
    s.close()
