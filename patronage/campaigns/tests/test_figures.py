"""A customer's figures (seed 004: discounted and undiscounted orders, accrued discounts, net revenue),
derived from their orders and the effect ledger: after closes, a cancel and a partial return; on the
Management API as Talon.One's CustomerAnalytics (read by the SDK) and at the top of the customer page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import talon_one
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from patronage.campaigns.figures import customer_figures
from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.campaigns.tests.test_lifecycle import Resp, put, returned
from patronage.customers.models import CustomerProfile
from patronage.testing.api import IntegrationClient
from patronage.testing.factories import make_api_key, make_application
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db

CART = [
    {"name": "Mug", "sku": "MUG", "quantity": 2, "price": 10},
    {"name": "Beans", "sku": "BEAN", "quantity": 1, "price": 30},
]  # 50 in all
SMALL = [{"name": "Filters", "sku": "FIL", "quantity": 1, "price": 5}]
OVER_40 = ["and", [">=", [".", "Session", "Total"], 40]]


def ten_off_over_40(application: Application) -> None:
    running_campaign(application, "Ten off", rule("Ten off", OVER_40, ["setDiscount", "Ten off", 10]))


def pen_for_sharing(application: Application) -> None:
    shared = ["and", ["=", [".", "Event", "Type"], "shared_link"]]
    running_campaign(application, "Pen", rule("Pen", shared, ["addFreeItem", "PEN", "Pen"]))


@pytest.fixture
def history(api: IntegrationClient, live_app: Application) -> CustomerProfile:
    """Customer c's orders: two discounted closes (one then partly returned), a close under the threshold, a
    discounted close then cancelled, an open cart, and a pen for sharing a link."""
    ten_off_over_40(live_app)
    pen_for_sharing(live_app)
    put(api, "s1", profileId="c", cartItems=CART, state="closed")  # 50, 10 off
    put(api, "s2", profileId="c", cartItems=CART, state="closed")
    put(api, "s2", state="cancelled")  # not an order any more: its discount rolled back
    put(api, "s3", profileId="c", cartItems=CART, state="closed")  # 50, 10 off ...
    returned(api, "s3", (0, 1))  # ... one mug back: 40 sold, the session discount stays
    put(api, "s4", profileId="c", cartItems=SMALL, state="closed")  # 5, no discount
    put(api, "s5", profileId="c", cartItems=CART)  # open: not an order
    assert api.post("/v2/events", {"profileId": "c", "type": "shared_link"}).status_code == 204
    return CustomerProfile.objects.get(integration_id="c")


def test_the_figures_follow_closes_a_cancel_and_a_partial_return(history: CustomerProfile) -> None:
    (figures,) = customer_figures(history).applications
    assert (figures.orders, figures.discounted_orders, figures.undiscounted_orders) == (3, 2, 1)
    assert figures.discounts == Decimal(20)
    assert figures.revenue == Decimal(95)  # 50 + 40 + 5
    assert figures.net_revenue == Decimal(75)
    assert figures.free_items == 1
    # and they agree with the customer's own counters
    assert history.closed_sessions == figures.orders and history.total_sales == figures.revenue


def test_a_reopen_takes_the_order_and_its_discount_out(
    api: IntegrationClient, history: CustomerProfile
) -> None:
    assert api.put("/v2/customer_sessions/s1/reopen").status_code == 200
    total = customer_figures(history).total
    assert (total.orders, total.discounted_orders, total.discounts, total.revenue) == (2, 1, 10, 45)


def test_figures_per_application_and_in_total(history: CustomerProfile, live_app: Application) -> None:
    # given an order of the same customer in a euro shop of the environment
    euro = make_application(name="Euro shop", currency="EUR")
    ten_off_over_40(euro)
    put(IntegrationClient(make_api_key(euro)), "e1", profileId="c", cartItems=CART, state="closed")
    figures = customer_figures(history)
    assert [(f.name, f.currency, f.orders, f.discounts) for f in figures.applications] == [
        ("Euro shop", "EUR", 1, 10),
        (live_app.name, "USD", 3, 20),
    ]
    assert (figures.total.orders, figures.total.discounted_orders, figures.total.net_revenue) == (4, 3, 115)


# ---- Management API --------------------------------------------------------------------------------------


def staff(*perms: str) -> Client:
    name = "staff-" + "-".join(perms)
    user = get_user_model().objects.create_user(name, password="pw-123456", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


def analytics_url(application: Application, profile: CustomerProfile) -> str:
    return f"/api/v1/applications/{application.pk}/customers/{profile.pk}/analytics"


def test_the_analytics_endpoint_answers_talon_ones_customer_analytics(
    history: CustomerProfile, live_app: Application
) -> None:
    response = staff("view_customerprofile").get(analytics_url(live_app, history))
    assert response.status_code == 200, response.content
    analytics = talon_one.ApiClient().deserialize(Resp(response.json()), "CustomerAnalytics")
    assert analytics.total_orders == 3 and analytics.total_discounted_orders == 2
    assert analytics.total_revenue == 95 and analytics.total_discounts == 20
    assert analytics.free_items == 1
    assert analytics.accepted_coupons == 0 and analytics.created_coupons == 0


def test_the_analytics_endpoint_checks_permission_and_environment(
    history: CustomerProfile, live_app: Application
) -> None:
    assert staff().get(analytics_url(live_app, history)).status_code == 403
    sandbox = make_application(environment="sandbox")
    client = staff("view_customerprofile")
    missing = client.get(analytics_url(sandbox, history))
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["source"]["parameter"] == "customerId"


def test_a_customer_with_no_orders_has_zero_analytics(live_app: Application) -> None:
    profile = CustomerProfile.objects.create(environment=live_app.environment, integration_id="new")
    body: dict[str, Any] = staff("view_customerprofile").get(analytics_url(live_app, profile)).json()
    assert body == {
        "acceptedCoupons": 0,
        "createdCoupons": 0,
        "freeItems": 0,
        "totalOrders": 0,
        "totalDiscountedOrders": 0,
        "totalRevenue": 0,
        "totalDiscounts": 0,
    }


# ---- the customer page -----------------------------------------------------------------------------------


def test_the_customer_page_shows_the_figures_and_the_events(
    history: CustomerProfile, live_app: Application
) -> None:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456"))
    response = client.get(f"/admin/customers/customerprofile/{history.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    # the figures at the top, in the shop's currency
    figures = html.split('class="customer-figures', 1)[1].split("</section>", 1)[0]
    for text in ("Discounted orders", "Undiscounted orders", "Accrued discounts", "Net revenue"):
        assert text in figures
    assert live_app.name in figures and "USD 20.00" in figures and "USD 75.00" in figures
    # and the Events tab lists the tracked event and the return
    events = html.split('id="customer-events"', 1)[1].split("</table>", 1)[0]
    assert "shared_link" in events and "talon_session_returned" in events
