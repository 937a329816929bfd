"""Campaigns as a marketer makes them: a real Chromium against a live server, then the shop's API."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import running_campaign
from patronage.customer_sessions.models import CustomerSession
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.testing.browser import screenshot
from patronage.testing.factories import make_api_key, make_application
from patronage.workspace.models import Application

TEN_PERCENT_OF_ITEMS = ["*", [".", "Session", "CartItemTotal"], ["/", 10, 100]]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/campaigns/campaign/"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def shop() -> Application:
    """A EUR shop with a VIP customer, and a campaign already running for everyone."""
    application = make_application(name="Coffee shop", currency="EUR")
    vip = CustomerGroup.objects.create(environment=application.environment, name="VIP")
    CustomerProfile.objects.create(
        environment=application.environment, integration_id="c-vip", name="Vera", group=vip
    )
    running_campaign(
        application,
        "Free shipping over 50",
        {
            "title": "Free shipping",
            "condition": ["and", [">=", [".", "Session", "CartItemTotal"], 50]],
            "effects": [["setDiscountPerAdditionalCost", "Free shipping", "shipping"]],
        },
    )
    return application


def click_and_load(page: Page, target: Any) -> None:
    with page.expect_navigation():
        target.click()


def test_a_marketer_makes_a_vip_discount_from_a_template_tries_it_switches_it_on_and_the_shop_gets_it(
    staff_page: Page, live_server: LiveServer, shop: Application
) -> None:
    page = staff_page
    # Given the campaign list
    page.goto(f"{live_server.url}{LIST}")
    expect(page.locator("#result_list")).to_contain_text("Free shipping over 50")
    # When the marketer makes a customer group discount from its template
    click_and_load(page, page.get_by_role("link", name="New campaign from template"))
    card = page.locator("#template-customer_group_discount")
    card.get_by_label("Campaign name").fill("VIP 10%")
    card.get_by_label("Customer group").select_option(label="VIP")
    card.get_by_label("Discount (%)").fill("10")
    screenshot(page, "campaigns-templates")
    click_and_load(page, card.get_by_role("button", name="Create"))
    # Then the campaign page shows its rule in the builder, disabled until switched on
    expect(page.locator(".messagelist, #content-main").first).to_be_visible()
    builder = page.locator("#campaign-builder")
    rule = builder.locator(".cb-rule").first
    expect(rule.locator(".cb-title")).to_have_value("10% off for VIP")
    expect(rule.locator(".cb-condition .cb-attribute")).to_have_value("Profile.Group")
    expect(rule.locator(".cb-effect")).to_have_value("setDiscount")
    expect(page.locator("#id_state")).to_have_value("disabled")
    screenshot(page, "campaigns-change-builder")
    # The Talang view shows the same rules as JSON
    builder.get_by_role("tab", name="Talang").click()
    expect(page.locator("#id_rules")).to_be_visible()
    assert json.loads(page.locator("#id_rules").input_value()) == [
        {
            "title": "10% off for VIP",
            "condition": ["and", ["=", [".", "Profile", "Group"], "VIP"]],
            "effects": [["setDiscount", "VIP 10%", TEN_PERCENT_OF_ITEMS, "cartItems"]],
        }
    ]
    builder.get_by_role("tab", name="Builder").click()

    # When they try it for the VIP with a two-line cart and shipping
    click_and_load(page, page.get_by_role("link", name="Try it on a cart"))
    page.get_by_label("Customer integration ID").fill("c-vip")
    page.get_by_label("Shipping cost").fill("4.95")
    rows = page.locator("#try-cart-rows")
    for n, (sku, name, category, price, quantity) in enumerate(
        [("MUG", "Mug", "kitchen", "9.5", "2"), ("BEAN", "Beans", "coffee", "24.9", "1")], start=1
    ):
        if n > 1:
            rows.get_by_role("button", name="+ Item").click()
        rows.get_by_label(f"Item {n}: SKU").fill(sku)
        rows.get_by_label(f"Item {n}: Name").fill(name)
        rows.get_by_label(f"Item {n}: Category").fill(category)
        rows.get_by_label(f"Item {n}: Price (EUR)").fill(price)
        rows.get_by_label(f"Item {n}: Quantity").fill(quantity)
    click_and_load(page, page.get_by_role("button", name="Try it"))
    # Then they see the discount, 10% of the 43.90 cart, and why free shipping did not apply
    effects = page.locator("#try-effects")
    expect(effects).to_contain_text("Discount “VIP 10%” on the cart items")
    expect(effects).to_contain_text("EUR 4.39")
    expect(page.locator("#try-failures")).to_contain_text("Free shipping over 50")
    screenshot(page, "campaigns-try-it")
    assert not CustomerSession.objects.exists()  # a dry run

    # When they switch it on
    click_and_load(page, page.get_by_role("link", name="Back to the campaign"))
    page.locator("#id_state").select_option("enabled")
    click_and_load(page, page.locator("button[name=_save], input[name=_save]").first)
    # Then the list shows it running
    row = page.locator("#result_list tbody tr", has_text="VIP 10%")
    expect(row.locator("[data-state]")).to_have_text("Running")
    screenshot(page, "campaigns-list")
    campaign = Campaign.objects.get(name="VIP 10%")
    assert campaign.state == "enabled" and campaign.active_ruleset is not None

    # And the shop's next cart for the VIP gets the discount through the Integration API
    answer = requests.put(
        f"{live_server.url}/v2/customer_sessions/order-1",
        json={
            "customerSession": {
                "profileId": "c-vip",
                "cartItems": [
                    {"sku": "MUG", "name": "Mug", "quantity": 2, "price": 9.5, "category": "kitchen"},
                    {"sku": "BEAN", "name": "Beans", "quantity": 1, "price": 24.9, "category": "coffee"},
                ],
            }
        },
        headers={"Authorization": f"ApiKey-v1 {make_api_key(shop)}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    effects_sent = [e for e in answer.json()["effects"] if e["campaignId"] == campaign.pk]
    assert [e["props"] for e in effects_sent] == [{"name": "VIP 10%", "value": 4.39, "scope": "cartItems"}]

    # And the evaluation tree lists both campaigns in the order they run
    page.goto(f"{live_server.url}{LIST}tree/?application={shop.pk}")
    expect(page.locator("#evaluation-tree .et-campaign")).to_have_count(2)
    screenshot(page, "campaigns-tree")
