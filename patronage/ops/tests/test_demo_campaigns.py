"""The demo shop's campaigns: "VIP 10%" and "Free shipping over 50" running, VIP customers, and orders closed
through the engine so that the customers' figures show discounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from patronage.campaigns.figures import customer_figures
from patronage.campaigns.models import Campaign, EffectRecord
from patronage.customer_sessions.services import CartItemInput, SessionInput, session_update
from patronage.customers.models import CustomerProfile
from patronage.ops.demo import demo_campaigns, demo_load
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db


def test_the_demo_shop_runs_two_campaigns_with_orders_that_used_them() -> None:
    # given the demo customers
    demo_load(customers=40)
    # when the demo campaigns are loaded
    demo_campaigns()
    # then the demo shop runs both, each with its rules active
    shop = Application.objects.get(slug="demo-shop")
    campaigns = Campaign.objects.filter(application=shop).order_by("name")
    assert [(c.name, c.state, c.active_ruleset is not None) for c in campaigns] == [
        ("Free shipping over 50", "enabled", True),
        ("VIP 10%", "enabled", True),
    ]
    assert CustomerProfile.objects.filter(environment=shop.environment, group__name="VIP").count() >= 5
    # and the demo orders closed through the engine left discounts of both kinds in the ledger
    assert set(EffectRecord.objects.filter(application=shop).values_list("effect_type", flat=True)) == {
        "setDiscount",
        "setDiscountPerAdditionalCost",
    }
    vip_order = EffectRecord.objects.filter(effect_type="setDiscount").select_related("profile").first()
    assert vip_order is not None and vip_order.profile is not None
    figures = customer_figures(vip_order.profile).total
    assert figures.discounted_orders >= 1 and figures.discounts > 0
    # and loading them again adds nothing
    assert demo_campaigns() == []
    assert Campaign.objects.filter(application=shop).count() == 2


def test_a_vip_gets_ten_percent_off_and_free_shipping_over_50() -> None:
    demo_load(customers=20)
    demo_campaigns()
    shop = Application.objects.get(slug="demo-shop")
    vip = CustomerProfile.objects.filter(environment=shop.environment, group__name="VIP").first()
    assert vip is not None
    result = session_update(
        application=shop,
        integration_id="try-vip",
        data=SessionInput(
            profile_id=vip.integration_id,
            cart_items=[CartItemInput(sku="GFT-050", name="Gift card", price=Decimal("60"), quantity=1)],
            additional_costs={"shipping": Decimal("4.99")},
        ),
        dry=True,
    )
    assert [(e["effectType"], e["props"]["value"]) for e in result.effects] == [
        ("setDiscount", 6),
        ("setDiscountPerAdditionalCost", 4.99),
    ]
