"""Mailings as staff use them: a real Chromium against a live server, a real job worker and a real SMTP
server on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.dataio.testing import BackgroundWorker
from patronage.mailings import sending
from patronage.mailings.models import Mailing, MailingDelivery
from patronage.promocodes.models import PromoCode, PromoCodeIssue
from patronage.testing.browser import screenshot
from patronage.testing.mailings import make_customers, make_mailing
from patronage.testing.promocodes import make_group
from patronage.testing.smtp import SmtpServer
from patronage.workspace.models import Environment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/mailings/mailing/"
HTML = "<h1>Hello {{ client.first_name }}</h1>\n<p>Your code: <b>{{ client.promocode('Autumn 10%') }}</b></p>"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_staff_write_a_mailing_fix_a_template_error_and_preview_it(
    staff_page: Page, live_server: LiveServer
) -> None:
    page = staff_page
    make_customers(Environment.LIVE, 3)
    group = make_group(Environment.LIVE, "Autumn 10%", codes=["AUT-1", "AUT-2", "AUT-3"])
    page.goto(f"{live_server.url}{LIST}add/")
    page.fill("#id_name", "Autumn sale")
    page.fill("#id_sender", "Demo Shop <news@shop.example>")
    page.fill("#id_subject", "{{ client.first_name }}, your autumn code")
    page.fill("#id_html_body", HTML.replace("Autumn 10%", "Autumn 20%"))
    page.fill("#id_text_body", "Code: {{ client.promocode('Autumn 10%') }}\n{{ client.password }}")
    page.get_by_role("button", name="Save", exact=True).click()

    # Each mistake is reported on its field, with its line and column.
    expect(page.locator(".errorlist")).to_contain_text(
        ["HTML body, line 2, column 28: there is no group of promo codes named 'Autumn 20%'"]
    )
    expect(page.get_by_text("Text body, line 2, column 10: unknown field client.password")).to_be_visible()
    screenshot(page, "mailings-form-template-errors")
    assert not Mailing.objects.exists()

    page.fill("#id_html_body", HTML)
    page.fill("#id_text_body", "Code: {{ client.promocode('Autumn 10%') }}")
    page.get_by_role("button", name="Save", exact=True).click()

    # Saved: the preview of the first consenting customer, with the group's next code, issuing nothing.
    expect(page.locator("#preview-subject")).to_have_text("Customer, your autumn code")
    expect(page.locator("#preview-text")).to_contain_text("Code: AUT-1")
    frame = page.frame_locator("#preview-html")
    expect(frame.locator("h1")).to_have_text("Hello Customer")
    expect(frame.locator("b")).to_have_text("AUT-1")
    expect(page.get_by_text("the preview does not issue them")).to_be_visible()
    page.fill("#id_customer", "c2@example.com")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#preview-subject")).to_have_text("Customer, your autumn code")
    screenshot(page, "mailings-preview")
    assert PromoCode.objects.filter(group=group, issued_at__isnull=True).count() == 3
    assert not PromoCodeIssue.objects.exists()


def test_a_mailing_needing_more_codes_than_the_group_has_is_refused(
    staff_page: Page, live_server: LiveServer
) -> None:
    page = staff_page
    make_customers(Environment.LIVE, 5)
    group = make_group(Environment.LIVE, "Autumn 10%", codes=["AUT-1", "AUT-2", "AUT-3"])
    mailing = make_mailing(Environment.LIVE, html_body=HTML)
    page.goto(f"{live_server.url}{LIST}{mailing.pk}/send/")

    expect(page.locator("#send-recipients")).to_have_text("5")
    expect(page.locator("#send-refused")).to_contain_text(
        "Group “Autumn 10%” has 3 active codes, this mailing needs 5"
    )
    expect(page.get_by_role("button", name="Yes, send")).to_have_count(0)
    screenshot(page, "mailings-capacity-refused")
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.DRAFT
    assert not MailingDelivery.objects.exists()
    assert PromoCode.objects.filter(group=group, issued_at__isnull=True).count() == 3


def test_staff_send_a_mailing_and_watch_its_progress(
    staff_page: Page,
    live_server: LiveServer,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    page = staff_page
    # As in production: several SMTP connections and preparation lanes at once.
    settings.PATRONAGE_MAILING_CONNECTIONS = 3
    settings.PATRONAGE_MAILING_PREPARE_LANES = 2
    monkeypatch.setattr(sending, "BATCH", 10)  # several batches, so progress moves in steps
    customers = make_customers(Environment.LIVE, 40)
    make_customers(Environment.LIVE, 2, prefix="no-consent", consent=False)
    make_group(Environment.LIVE, "Autumn 10%", codes=[f"AUT-{n}" for n in range(50)])
    mailing = make_mailing(Environment.LIVE, name="Autumn sale", html_body=HTML)
    page.goto(f"{live_server.url}{LIST}")
    page.get_by_role("link", name="Autumn sale").click()
    page.goto(f"{live_server.url}{LIST}{mailing.pk}/send/")
    expect(page.locator("#send-capacity")).to_contain_text("Autumn 10%")
    screenshot(page, "mailings-send-confirm")
    page.get_by_role("button", name="Yes, send to 40 customers").click()

    expect(page.get_by_text("Waiting for a worker")).to_be_visible()
    with BackgroundWorker():
        expect(page.locator("#mailing-sent")).to_have_text("40", timeout=30_000)
    expect(page.locator("#mailing-status")).to_have_text("Sent")
    expect(page.locator("#mailing-percent")).to_have_text("100")
    screenshot(page, "mailings-progress-sent")

    messages = smtp_server.wait_for(40)
    codes = {mail.to[0]: mail.html.split("<b>")[1].split("</b>")[0] for mail in messages}
    assert len(set(codes.values())) == 40 and set(codes) == {c.email for c in customers}
    assert PromoCode.objects.filter(issued_at__isnull=True).count() == 10

    # Every recipient's message as it was sent.
    page.get_by_role("link", name="Every recipient and their message").click()
    page.get_by_role("link", name="c7@example.com").click()
    frame = page.frame_locator("#delivery-html")
    expect(frame.locator("b")).to_have_text(codes["c7@example.com"])
    expect(page.get_by_text(f"{codes['c7@example.com']} (Autumn 10%, initial)")).to_be_visible()
    screenshot(page, "mailings-delivery")

    # The customer's Promo codes tab names the mailing.
    page.goto(f"{live_server.url}/admin/customers/customerprofile/{customers[7].pk}/change/")
    page.get_by_role("link", name="Promo codes", exact=True).click()
    row = page.locator("#customer-promo-codes tbody tr")
    expect(row.locator(".code")).to_have_text(codes["c7@example.com"])
    expect(row.locator(".mailing")).to_have_text("Autumn sale")
    screenshot(page, "mailings-profile-tab")
