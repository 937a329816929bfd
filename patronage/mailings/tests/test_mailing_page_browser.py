"""A mailing's own page in a real Chromium: Preview, Send a test to me (to a real SMTP server on loopback)
and Send..., with the send page's counts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.customers.services import group_create
from patronage.mailings.models import Mailing
from patronage.mailings.services import TEST_CODE
from patronage.promocodes.models import PromoCode, PromoCodeIssue
from patronage.testing.browser import screenshot
from patronage.testing.mailings import make_customers, make_mailing
from patronage.testing.promocodes import make_group
from patronage.testing.smtp import SmtpServer
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/mailings/mailing/"
HELPER_SHOTS = Path("/tmp/helpers/mail2")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def shot(page: Page, name: str) -> None:
    path = screenshot(page, name)
    if HELPER_SHOTS.is_dir():
        shutil.copy(path, HELPER_SHOTS / path.name)


def test_the_mailing_page_offers_preview_a_test_to_me_and_send(
    staff_page: Page, live_server: LiveServer, smtp_server: SmtpServer
) -> None:
    page = staff_page
    live = environment_get(Environment.LIVE)
    vip = group_create(environment=live, name="VIP")
    make_customers(live, 9, prefix="vip", group=vip)
    make_customers(live, 1, prefix="vip-no", group=vip, consent=False)
    make_group(live, "Autumn", codes=[f"AUT-{n}" for n in range(20)])
    make_group(live, "Spring", codes=["SPR-1"])
    mailing = make_mailing(
        live,
        name="VIP autumn",
        audience=Mailing.Audience.GROUP,
        customer_group=vip,
        html_body="<p>{{ client.name }}: <b>{{ client.promocode('Autumn') }}</b></p>",
        text_body="Your spring code: {{ client.last_promocode('Spring') }}",
    )

    # The mailing's own page: its three buttons, and the sender's example address visible.
    page.goto(f"{live_server.url}{LIST}{mailing.pk}/change/")
    expect(page.get_by_text("Demo Shop <news@shop.example>")).to_be_visible()
    shot(page, "mailing-change-page")
    for label in ("Preview", "Send a test to me", "Send…"):
        expect(page.get_by_role("link", name=label).first).to_be_visible()

    # Send a test to me: to the signed-in staff user's address, issuing nothing.
    page.get_by_role("link", name="Send a test to me").first.click()
    expect(page.locator("#test-to")).to_have_text("admin@example.com")
    page.fill("#id_customer", "vip3@example.com")
    page.get_by_role("button", name="Send the test to admin@example.com").click()
    expect(page.get_by_text("No promo code was issued")).to_be_visible()
    shot(page, "mailing-test-sent")
    (mail,) = smtp_server.wait_for(1)
    assert mail.to == ["admin@example.com"]
    assert f"<b>{TEST_CODE}</b>" in mail.html
    assert not PromoCodeIssue.objects.exists()
    assert PromoCode.objects.filter(issued_at__isnull=True).count() == 21

    # Send...: 9 of the 10 group members have consent; none has a Spring code yet.
    page.goto(f"{live_server.url}{LIST}{mailing.pk}/change/")
    page.get_by_role("link", name="Send…").first.click()
    expect(page.locator("#send-recipients")).to_have_text("9")
    expect(page.locator("#send-skipped")).to_contain_text("1 more in it without marketing consent")
    expect(page.locator(".send-empty-last")).to_contain_text("9 of them have no code from “Spring” yet")
    shot(page, "mailing-send-page")
    page.get_by_role("button", name="Yes, send to 9 customers").click()

    # The progress page shows the same 9.
    expect(page.locator("#mailing-recipients")).to_have_text("9")
    shot(page, "mailing-progress-after-send")
