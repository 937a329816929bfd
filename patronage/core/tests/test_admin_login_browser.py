"""The back-office sign-in page after too many wrong passwords, in a real browser."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.core.throttle import SIGN_IN_ACCOUNT_LIMIT
from patronage.testing.browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_login_page_says_to_wait_after_too_many_wrong_passwords(
    page: Page, live_server: LiveServer, settings: Any
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_user_model().objects.create_superuser("boss", "boss@example.com", "right-pass-123")

    def sign_in(password: str) -> None:
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("input[name=username]", "boss")
        page.fill("input[name=password]", password)
        page.locator("#login-form").get_by_role("button", name="Log in").click()
        page.wait_for_load_state()

    for n in range(SIGN_IN_ACCOUNT_LIMIT):
        sign_in(f"guess-{n}")
    expect(page.get_by_text("Please enter the correct username and password")).to_be_visible()
    # When the right password comes after the limit
    sign_in("right-pass-123")
    # Then the page says to wait, in plain words, and nobody is signed in
    expect(page.get_by_text("Too many failed sign-ins; try again in 15 minutes.")).to_be_visible()
    assert "/admin/login/" in page.url
    screenshot(page, "admin-login-throttled")
