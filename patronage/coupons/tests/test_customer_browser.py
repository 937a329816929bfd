"""The customer page's Coupons, Referred customers and Sessions tabs in a real Chromium, a return of items
through its confirmation step, and the customer panel's "My codes" on a 375 px phone with its copy button."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.core import clock
from patronage.customer_sessions.models import CartItem, CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.panel.tests.conftest import PASSWORD, make_customer
from patronage.panel.tests.test_panel_browser import big_enough_to_tap, fits_the_screen
from patronage.testing.api import IntegrationClient
from patronage.testing.browser import device_page
from patronage.testing.promocodes import make_group, make_issue
from patronage.workspace.models import Application

from ..models import CampaignCodeSource, Coupon, CouponReservation, Redemption, Referral

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ALWAYS = ["and", True]
SHOTS = Path("/tmp/shots/d")
PHONE = {"width": 375, "height": 812}
CART = [
    {"name": "Mug", "sku": "MUG", "quantity": 2, "price": 10},
    {"name": "Beans", "sku": "BEAN", "quantity": 3, "price": 30},
]


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def summer(application: Application) -> Campaign:
    return running_campaign(
        application,
        "Summer",
        rule(
            "Summer 10%",
            ALWAYS,
            ["setDiscountPerItem", "Summer 10%", [".", "Session", "CartItems"], ["Item"], 5],
        ),
        end_time=dt.datetime(2099, 8, 31, 12, tzinfo=dt.UTC),
    )


def test_staff_read_the_customers_coupons_friends_and_sessions_and_return_items(
    staff_page: Page, live_server: LiveServer, api: IntegrationClient, live_app: Application
) -> None:
    # given Ada's orders, her coupons and a friend who used her referral code
    campaign = summer(live_app)
    for session, items in [("order-1", CART), ("order-2", CART[:1])]:
        assert api.session(session, profileId="ada", cartItems=items, state="closed").status_code == 200
    assert api.session("cart-3", profileId="ada", cartItems=CART[:1]).status_code == 200
    assert api.session("friend-1", profileId="bob", cartItems=CART[:1], state="closed").status_code == 200
    ada = CustomerProfile.objects.get(integration_id="ada")
    order = CustomerSession.objects.get(integration_id="order-1")
    Coupon.objects.create(
        application=live_app,
        campaign=campaign,
        value="SAVE10",
        recipient_integration_id="ada",
        attributes={"tier": "gold"},
    )
    held = Coupon.objects.create(application=live_app, campaign=campaign, value="HELD-20", usage_limit=0)
    CouponReservation.objects.create(coupon=held, profile=ada)
    used = Coupon.objects.create(application=live_app, campaign=campaign, value="USED-5", usage_counter=1)
    Redemption.objects.create(
        application=live_app,
        kind="coupon",
        coupon=used,
        campaign=campaign,
        code="USED-5",
        session=order,
        profile=ada,
    )
    CustomerSession.objects.filter(pk=order.pk).update(coupon_codes=["USED-5"])
    code = Referral.objects.create(
        application=live_app, campaign=campaign, code="ADA-FRIENDS", advocate_integration_id="ada"
    )
    friend_session = CustomerSession.objects.get(integration_id="friend-1")
    Redemption.objects.create(
        application=live_app,
        kind="referral",
        referral=code,
        campaign=campaign,
        code="ADA-FRIENDS",
        session=friend_session,
        profile=friend_session.profile,
    )
    page = staff_page
    page.set_viewport_size({"width": 1440, "height": 900})

    # when staff open her Coupons tab
    page.goto(f"{live_server.url}/admin/customers/customerprofile/{ada.pk}/change/")
    page.get_by_role("link", name="Coupons", exact=True).click()
    coupons = page.locator("#customer-coupons")
    expect(coupons).to_be_visible()
    expect(coupons.locator("tbody tr")).to_have_count(3)
    expect(coupons.locator("tr[data-coupon=USED-5] .status")).to_have_text("used")
    expect(coupons.locator("tr[data-coupon=SAVE10] .status")).to_have_text("active")
    expect(coupons.locator("tr[data-coupon=HELD-20] .usage")).to_have_text("0 / ∞")
    expect(coupons.locator("tr[data-coupon=SAVE10] .attributes")).to_contain_text("tier: gold")
    shot(page, "coupons-tab")
    # and the session that used a coupon is one click away
    expect(coupons.locator("tr[data-coupon=USED-5] .sessions a")).to_have_text("order-1")

    # when they open Referred customers
    page.get_by_role("link", name="Referred customers", exact=True).click()
    friends = page.locator("#referred-customers")
    expect(friends.locator("tbody tr .friend")).to_have_text(["bob"])
    expect(friends.locator("tbody tr .code")).to_have_text(["ADA-FRIENDS"])
    shot(page, "referred-customers-tab")

    # when they open Sessions: every session, newest first, Return items on the orders only
    page.get_by_role("link", name="Sessions", exact=True).click()
    sessions = page.locator("#customer-sessions-table")
    expect(sessions.locator("tbody .session")).to_have_text(["cart-3", "order-2", "order-1"])
    expect(sessions.locator("tbody .return")).to_have_text(["—", "Return items", "Return items"])
    expect(sessions.locator("tr[data-session=order-1] .coupons")).to_have_text("USED-5")
    shot(page, "sessions-tab")

    # when they return one bag of beans of order-1, through the confirmation step
    sessions.locator("tr[data-session=order-1]").get_by_role("link", name="Return items").click()
    expect(page.locator("h1")).to_contain_text("Return items of session order-1")
    page.get_by_label("Quantity to return of line 2").fill("1")
    shot(page, "return-choose")
    page.get_by_role("button", name="Review the return").click()
    expect(page.get_by_role("heading", name="Return these items?")).to_be_visible()
    expect(page.locator("#return-summary")).to_have_text("1 \u00d7 Beans (line 2, BEAN)")
    shot(page, "return-confirm")
    assert CartItem.objects.get(session=order, position=1).returned_quantity == 0
    page.get_by_role("button", name="Yes, return them").click()

    # then the return happened and the page says what it rolled back
    expect(page.get_by_text("Returned 1 of line 2 (Beans) of session order-1.")).to_be_visible()
    expect(
        page.get_by_text(
            "Campaign “Summer”: discount “Summer 10%” of USD 1.67 on line 2 (Beans) rolled back."
        )
    ).to_be_visible()
    expect(page.locator("#return-lines tr[data-position='1'] .returned")).to_have_text("1")
    shot(page, "return-done")
    assert CartItem.objects.get(session=order, position=1).returned_quantity == 1

    # and back on the customer's Sessions tab the order reads partially returned
    page.get_by_role("link", name="Back to the customer").click()
    row = page.locator("#customer-sessions-table tr[data-session=order-1]")
    expect(row.locator(".state")).to_have_text("Partially returned")
    expect(row.locator(".returned")).to_have_text("1")
    expect(row.locator(".items")).to_have_text("4")
    # and filtering by state stays on the tab
    page.locator("#session-states").get_by_role("link", name="Open", exact=True).click()
    expect(page.locator("#customer-sessions-table tbody .session")).to_have_text(["cart-3"])
    shot(page, "sessions-tab-open-only")


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    with device_page(browser, PHONE, phone=True) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        yield page


def test_my_codes_on_a_phone_with_the_copy_button(
    phone: Page, live_server: LiveServer, live_app: Application
) -> None:
    # given Anna's codes: a personal coupon, a used one, and promo codes from mailings
    anna = make_customer(live_app.environment, Name="Anna Nowak")
    campaign = summer(live_app)
    Coupon.objects.create(
        application=live_app,
        campaign=campaign,
        value="ANNA-SUMMER-2099-LONG-CODE",
        recipient_integration_id=anna.integration_id,
    )
    Coupon.objects.create(
        application=live_app,
        campaign=campaign,
        value="EXPIRED-1",
        recipient_integration_id=anna.integration_id,
        expiry_date=clock.now() - dt.timedelta(days=1),
    )
    group = make_group(
        live_app.environment.slug, "Spring", codes=["SPRING-7Q2X"], description="Spring mailing"
    )
    CampaignCodeSource.objects.create(campaign=campaign, group=group)
    make_issue(anna, group.codes.get())
    page = phone

    # when she signs in and opens My codes
    page.goto(f"{live_server.url}/panel/{live_app.slug}/codes/")
    page.get_by_label("Email").fill("anna@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My codes")).to_be_visible()
    page.wait_for_load_state("load")

    # then her codes stack on the phone's screen, nothing scrolls sideways, the buttons are big enough
    expect(page.locator("#coupon-list .code-value")).to_have_text(["ANNA-SUMMER-2099-LONG-CODE", "EXPIRED-1"])
    expect(page.locator("#promo-list .code-value")).to_have_text(["SPRING-7Q2X"])
    fits_the_screen(page)
    big_enough_to_tap(page, ".copy-button, .tabs a")
    expect(page.get_by_role("link", name="My codes")).to_have_attribute("aria-current", "page")
    shot(page, "my-codes-phone")

    # when she taps Copy on the promo code
    page.locator("#promo-list .code-card").get_by_role("button", name="Copy").tap()
    # then the code is on the clipboard and the button says so
    expect(page.locator("#promo-list .copy-button")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "SPRING-7Q2X"
    expect(page.locator("#copy-status")).to_have_text("Code SPRING-7Q2X copied.")
    shot(page, "my-codes-phone-copied")
    # and the expired coupon offers nothing to copy
    expect(page.locator(".code-card[data-code=EXPIRED-1] .copy-button")).to_have_count(0)
