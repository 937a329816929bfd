"""The back office as a marketer starts the day: the home page's figures, then a redemption refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.core import clock
from patronage.customer_sessions.models import CustomerSession, SessionState
from patronage.customers.models import CustomerProfile
from patronage.mailings.models import Mailing
from patronage.offers.models import OfferRedemption
from patronage.testing.browser import screenshot
from patronage.testing.factories import make_application
from patronage.testing.offers import make_offer
from patronage.testing.promocodes import make_group
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_home_page_figures_then_a_redemption_for_someone_else_is_refused(
    staff_page: Page, live_server: LiveServer
) -> None:
    # given: a Live shop in EUR with orders over the last days, a sending mailing, a group running low
    page = staff_page
    shop = make_application(environment=Environment.LIVE, name="Demo Shop", currency="EUR")
    live = environment_get(Environment.LIVE)
    now = clock.now()
    for n in range(12):
        CustomerProfile.objects.create(environment=live, integration_id=f"c-{n}", email=f"c{n}@example.com")
        CustomerSession.objects.create(
            application=shop,
            integration_id=f"s-{n}",
            state=SessionState.CLOSED,
            total=Decimal("19.90") * (n % 4 + 1),
            closed_at=now - dt.timedelta(days=n * 2, hours=1),
        )
    Mailing.objects.create(environment=live, name="Spring news", sender="news@shop.example", subject="Hi")
    Mailing.objects.filter(name="Spring news").update(status=Mailing.Status.SENDING, recipient_count=1200)
    low = make_group(live, "Welcome 10%", codes=[f"W-{i}" for i in range(30)])
    low.codes.exclude(code="W-0").update(issued_at=now)

    # when: the marketer opens the back office
    page.goto(f"{live_server.url}/admin/")

    # then: the Live figures, with money in its currency and a chart
    expect(page.locator("#dashboard-customers")).to_contain_text("12")
    expect(page.locator("#dashboard-orders")).to_contain_text("12")
    expect(page.locator("#dashboard-sales")).to_contain_text("EUR 597.00")
    expect(page.locator("#dashboard-chart rect")).to_have_count(30)
    expect(page.locator("#dashboard-mailings")).to_contain_text("Spring news")
    expect(page.locator("#dashboard-low-groups")).to_contain_text("1 of 30 codes active (3%)")
    screenshot(page, "home-dashboard")
    page.get_by_role("link", name="Sandbox", exact=True).click()
    expect(page.locator("#dashboard-mailings")).to_contain_text("No mailing is sending now")

    # when: staff record a redemption of Ada's offer by another customer
    offer = make_offer(
        environment=Environment.LIVE, shops=[shop], name="Ada's gift", assigned_emails=["ada@x.org"]
    )
    page.goto(f"{live_server.url}/admin/offers/offer/{offer.pk}/redeem/")
    page.fill("input[name=customer]", "c3@example.com")
    page.get_by_role("button", name="Record").click()

    # then: refused on the customer field, in words; nothing recorded
    expect(page.locator("#content")).to_contain_text(
        "Offer Ada's gift is not for c3@example.com: it is not public and their email is not assigned to it"
    )
    screenshot(page, "offer-redemption-refused")
    assert not OfferRedemption.objects.exists()
