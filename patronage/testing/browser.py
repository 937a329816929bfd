"""Headless Chromium for browser tests of the back office.

Use the ``browser`` and ``page`` fixtures together with pytest-django's ``live_server``. Debian's Chromium
(``apt-get install chromium``) is driven by Playwright; Playwright's own browser download is not needed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_django.live_server_helper import LiveServer

# Playwright's sync API runs an asyncio event loop in the test's thread, so Django's async-unsafe guard
# would refuse every ORM call the test makes. Nothing here is actually async: the documented workaround.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
DEFAULT_TIMEOUT_MS = 10_000


def screenshots_dir() -> Path:
    return Path(settings.VAR_DIR) / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"browser tests need Chromium at {CHROMIUM}: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def device_page(browser: Browser, viewport: dict[str, int], *, phone: bool = False) -> Iterator[Page]:
    """A fresh browser context (no cookies) at this size; ``phone`` adds touch and a 2x screen."""
    context = browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        device_scale_factor=2 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with device_page(browser, VIEWPORT) as desktop:
        yield desktop


STAFF_PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff_page(page: Page, live_server: LiveServer) -> Page:
    """The desktop page signed in to the back office as a superuser ``admin``."""
    get_user_model().objects.create_superuser("admin", "admin@example.com", STAFF_PASSWORD)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.locator("#login-form").get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    return page


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as var/screenshots/<name>.png and return its path."""
    directory = screenshots_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
