"""Both Swagger UIs work on a machine without Internet access: `patronage serve` (gunicorn and WhiteNoise, as
in production) serves their scripts and styles from the installed packages, never from a CDN."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route, expect

from patronage.ops.tests.test_serve import free_port

pytestmark = pytest.mark.browser

SCREENSHOTS = Path("/tmp/helpers/ops")
START_TIMEOUT = 120  # seconds; only bounds a broken start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`patronage serve` on its own empty SQLite database (it migrates it first, as in production)."""
    folder = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "patronage.settings",
        "DATABASE_URL": f"sqlite:///{folder / 'docs.sqlite3'}",
        "PATRONAGE_VAR_DIR": str(folder / "var"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "patronage.cli", "serve", "--workers", "1", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                with opener.open(base + "/api/v1/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.parametrize(
    ("path", "title", "operation"),
    [
        ("/docs", "Patronage Integration API", "/v2/customer_sessions/{customerSessionId}"),
        ("/api/v1/docs", "Patronage Management API", "/api/v1/promocodes/redeem"),
    ],
)
def test_the_swagger_ui_renders_with_the_internet_blocked(
    browser: Browser, server: str, path: str, title: str, operation: str
) -> None:
    # given: a browser that may reach nothing but this machine
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []
    loaded: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            loaded.append(route.request.url)
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    try:
        # when: the docs page is opened
        page.goto(server + path)
        # then: Swagger UI draws the API's operations from its own scripts, and nothing was fetched elsewhere
        expect(page.locator(".swagger-ui .info .title")).to_contain_text(title)
        expect(page.locator(".opblock-summary-path", has_text=operation).first).to_be_visible()
        assert page.locator(".opblock").count() > 3
        assert blocked == []
        assert any(url.endswith("/static/ninja/swagger-ui-bundle.js") for url in loaded)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"docs-offline{path.replace('/', '-')}.png"))
    finally:
        context.close()
