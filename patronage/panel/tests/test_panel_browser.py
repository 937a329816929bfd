"""The customer panel as a shopper uses it on a phone: a real Chromium against a live server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.customers.models import CustomerProfile
from patronage.testing.browser import device_page, screenshot
from patronage.testing.factories import make_application
from patronage.testing.smtp import SmtpServer
from patronage.workspace.models import Application, Environment

from .conftest import PASSWORD, make_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 812}
NEW_PASSWORD = "walnut-lantern-77"


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    with device_page(browser, PHONE, phone=True) as page:
        yield page


@pytest.fixture
def shop(db: None) -> Application:
    return make_application(environment=Environment.LIVE, slug="harbour-books", name="Harbour Books")


@pytest.fixture
def anna(shop: Application) -> CustomerProfile:
    return make_customer(shop.environment, Name="Anna Nowak", PhoneNumber="+14155550123")


def fits_the_screen(page: Page) -> None:
    """Nothing wider than the screen: no sideways scrolling on a phone."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the screen"


def big_enough_to_tap(page: Page, selector: str) -> None:
    for box in [page.locator(selector).nth(i).bounding_box() for i in range(page.locator(selector).count())]:
        assert box is not None and box["height"] >= 44, f"{selector} is {box} tall: too small to tap"


def sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_customer_signs_in_edits_details_and_signs_out_on_a_phone(
    phone: Page, live_server: LiveServer, shop: Application, anna: CustomerProfile
) -> None:
    page = phone
    # When Anna opens the shop's customer panel on her phone
    page.goto(f"{live_server.url}/panel/{shop.slug}/")
    # Then she sees the login page with the shop's name, readable without zooming or scrolling sideways
    expect(page).to_have_url(f"{live_server.url}/panel/{shop.slug}/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator(".brand-name")).to_have_text("Harbour Books")
    expect(page.get_by_role("link", name="Set your password")).to_be_visible()
    fits_the_screen(page)
    big_enough_to_tap(page, "input:not([type=hidden]), button, .links a, a.button-secondary")
    screenshot(page, "panel-login-phone")

    # When she mistypes her password
    sign_in(page, "anna@example.com", "not-my-password")
    # Then she is told, and her email is kept for the next try
    expect(page.get_by_role("alert")).to_have_text("The email or password is incorrect.")
    expect(page.get_by_label("Email")).to_have_value("anna@example.com")
    screenshot(page, "panel-login-failed-phone")

    # When she signs in with the right one
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Then she lands on My offers, and her account page shows her details
    expect(page).to_have_url(f"{live_server.url}/panel/{shop.slug}/offers/")
    page.get_by_role("link", name="Account").click()
    expect(page).to_have_url(f"{live_server.url}/panel/{shop.slug}/account/")
    page.wait_for_load_state("load")  # measured below: wait for the styles, not only the new URL
    expect(page.locator(".profile-name")).to_have_text("Anna Nowak")
    expect(page.locator(".profile-email")).to_have_text("anna@example.com")
    expect(page.get_by_text("+1 415-555-0123").first).to_be_visible()
    expect(page.get_by_role("link", name="Account")).to_have_attribute("aria-current", "page")
    fits_the_screen(page)
    big_enough_to_tap(page, "input[type=text], input[type=tel], button, .tabs a, a.button-secondary, .check")
    screenshot(page, "panel-account-phone")

    # When she types a phone number that cannot be right
    page.get_by_label("Phone").fill("12345")
    page.get_by_role("button", name="Save changes").click()
    # Then the phone field says what is wrong
    expect(page.locator(".field-invalid .error")).to_contain_text("This is not a valid phone number.")
    expect(page.get_by_label("Phone")).to_have_value("12345")
    fits_the_screen(page)
    screenshot(page, "panel-account-bad-phone-phone")

    # When she fixes it and subscribes to news
    page.get_by_label("Phone").fill("(212) 555-0188")
    page.get_by_label("Send me news and offers by email").check()
    page.get_by_role("button", name="Save changes").click()
    # Then she is told, and sees the saved number in international form
    expect(page.get_by_role("status")).to_have_text("Your details have been saved.")
    expect(page.locator(".facts")).to_contain_text("+1 212-555-0188")
    expect(page.locator(".facts")).to_contain_text("Subscribed")
    screenshot(page, "panel-account-saved-phone")
    anna.refresh_from_db()
    assert (anna.phone, anna.accepts_marketing) == ("+12125550188", True)

    # When she signs out
    page.get_by_role("button", name="Sign out").click()
    # Then she is back on the login page, and her account is closed to this browser
    expect(page).to_have_url(f"{live_server.url}/panel/{shop.slug}/login/")
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    page.goto(f"{live_server.url}/panel/{shop.slug}/account/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_first_time_customer_sets_a_password_from_the_email_on_a_phone(
    phone: Page, live_server: LiveServer, shop: Application, smtp_server: SmtpServer
) -> None:
    page = phone
    # Given a customer the shop imported, with no password
    make_customer(shop.environment, email="ben@example.com", password=None, Name="Ben Adams")
    # When Ben taps "Set your password" on the login page and gives his email
    page.goto(f"{live_server.url}/panel/{shop.slug}/login/")
    page.get_by_role("link", name="Set your password").click()
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    screenshot(page, "panel-first-password-phone")
    page.get_by_label("Email").fill("ben@example.com")
    page.get_by_role("button", name="Send me the link").click()
    # Then he is told to check his email
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    fits_the_screen(page)
    screenshot(page, "panel-reset-sent-phone")
    # And the mail arrives with a link to this panel
    (mail,) = smtp_server.wait_for(1)
    assert mail.subject == "Set your password for Harbour Books"
    (link,) = [link for link in mail.links() if "/reset/" in link]
    page.set_content(mail.html)
    screenshot(page, "panel-reset-mail-phone")

    # When he opens the link and chooses a password
    assert link.startswith(f"{live_server.url}/panel/{shop.slug}/reset/")
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    screenshot(page, "panel-choose-password-phone")
    page.get_by_role("button", name="Save password").click()
    # Then he is signed in on his account page
    expect(page.get_by_role("status")).to_have_text("Your password is set and you are signed in.")
    expect(page.locator(".profile-name")).to_have_text("Ben Adams")

    # And the link does not work a second time
    page.goto(link)
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    screenshot(page, "panel-reset-link-used-phone")


def test_the_login_page_at_desktop_width(page: Page, live_server: LiveServer, shop: Application) -> None:
    page.goto(f"{live_server.url}/panel/{shop.slug}/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # The form stays a comfortable column instead of stretching across the screen
    box = page.locator(".card").first.bounding_box()
    assert box is not None and box["width"] <= 480
    screenshot(page, "panel-login-desktop")


def test_an_unknown_shop_shows_the_panel_not_found_page(
    page: Page, live_server: LiveServer, db: None
) -> None:
    response = page.goto(f"{live_server.url}/panel/no-such-shop/login/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    screenshot(page, "panel-not-found-desktop")
