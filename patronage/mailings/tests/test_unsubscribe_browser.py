"""The unsubscribe page on a phone, and the consent history it leaves on the customer's back-office page:
a real Chromium against a live server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.customers.models import CustomerProfile
from patronage.mailings import unsubscribe
from patronage.testing.browser import device_page, screenshot
from patronage.testing.mailings import make_customers, make_mailing
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 375, "height": 812}


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    with device_page(browser, PHONE, phone=True) as page:
        yield page


def test_a_customer_unsubscribes_on_a_phone_and_undoes_it(
    phone: Page, live_server: LiveServer, staff_page: Page
) -> None:
    # given: a consenting customer and the link of a mailing from "Demo Shop"
    live = environment_get(Environment.LIVE)
    (ann,) = make_customers(live, 1)
    mailing = make_mailing(live)
    url = unsubscribe.mailing_url(mailing, ann.pk).replace("http://127.0.0.1:8000", live_server.url)
    # when: they open it
    phone.goto(url)
    # then: they are out at once, and the page says from whom
    expect(phone.get_by_role("heading")).to_have_text("You are unsubscribed")
    expect(phone.locator("#unsubscribe-status")).to_contain_text(
        "You will no longer receive marketing emails from Demo Shop at c0@example.com."
    )
    assert not CustomerProfile.objects.get(pk=ann.pk).accepts_marketing
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "unsubscribe-phone")
    # when: they change their mind
    phone.get_by_role("button", name="Undo: keep sending me news and offers").click()
    # then
    expect(phone.get_by_role("heading")).to_have_text("You are subscribed again")
    assert CustomerProfile.objects.get(pk=ann.pk).accepts_marketing
    screenshot(phone, "unsubscribe-phone-undone")
    # and: staff see both changes on the customer's page, newest first
    staff_page.goto(f"{live_server.url}/admin/customers/customerprofile/{ann.pk}/change/")
    staff_page.get_by_role("link", name="Consent history").click()
    rows = staff_page.locator("#consent-history tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("No → Yes")
    expect(rows.nth(0)).to_contain_text("undo")
    expect(rows.nth(1)).to_contain_text("Yes → No")
    expect(rows.nth(1)).to_contain_text("Unsubscribe link")
    screenshot(staff_page, "customer-consent-history")


def test_a_tampered_link_gets_a_friendly_page(phone: Page, live_server: LiveServer) -> None:
    response = phone.goto(f"{live_server.url}/unsubscribe/eyJwIjoxfQ:forged/")
    assert response is not None and response.status == 400
    expect(phone.get_by_role("heading")).to_have_text("This unsubscribe link is not complete")
    screenshot(phone, "unsubscribe-phone-invalid")
