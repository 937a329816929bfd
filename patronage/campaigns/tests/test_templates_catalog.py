"""Campaign templates: each compiles, and a campaign made from it gives what its name promises."""

from __future__ import annotations

import pytest

from patronage.campaigns import templates_catalog as catalog
from patronage.campaigns.talang import compile_ruleset
from patronage.campaigns.tests.helpers import running_campaign
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.testing.api import IntegrationClient
from patronage.workspace.models import Application

CART = [
    {"name": "Mug", "sku": "MUG", "quantity": 2, "price": 9.5, "category": "kitchen"},
    {"name": "Beans", "sku": "BEAN", "quantity": 1, "price": 24.9, "category": "coffee"},
    {"name": "Filter", "sku": "FIL", "quantity": 3, "price": 4, "category": "coffee"},
]


@pytest.mark.parametrize(
    "rules",
    [
        catalog.customer_group_discount(name="VIP 10%", group="VIP", percent=10),
        catalog.free_shipping_over(name="Free shipping", amount="49.90"),
        catalog.percent_off_category(name="Coffee 20%", category="coffee", percent=20),
        catalog.three_for_two(name="3 for 2", category="coffee"),
        catalog.three_for_two(name="3 for 2"),
    ],
    ids=["group", "shipping", "category", "three-for-two-category", "three-for-two-cart"],
)
def test_every_template_compiles(rules: list[dict[str, object]]) -> None:
    assert len(compile_ruleset(rules)) == 1


def test_every_template_in_the_list_builds_rules_that_compile() -> None:
    answers = {"group": "VIP", "percent": "12.5", "amount": "30", "category": "tea"}
    for template in catalog.TEMPLATES.values():
        given = {a.name: answers[a.name] for a in template.answers}
        compile_ruleset(template.build(name=template.label, **given))


def test_customer_group_discount_is_for_the_group_only(api: IntegrationClient, live_app: Application) -> None:
    # given a VIP and a customer of no group
    vip = CustomerGroup.objects.create(environment=live_app.environment, name="VIP")
    CustomerProfile.objects.create(environment=live_app.environment, integration_id="c-vip", group=vip)
    CustomerProfile.objects.create(environment=live_app.environment, integration_id="c-plain")
    running_campaign(
        live_app, "VIP", *catalog.customer_group_discount(name="VIP 10%", group="VIP", percent=10)
    )
    # when both buy the same cart (items 19 + 24.90 + 12 = 55.90)
    vip_effects = api.session("s-vip", profileId="c-vip", cartItems=CART).json()["effects"]
    plain_effects = api.session("s-plain", profileId="c-plain", cartItems=CART).json()["effects"]
    # then only the VIP gets 10% of the items
    assert [e["props"] for e in vip_effects] == [{"name": "VIP 10%", "value": 5.59, "scope": "cartItems"}]
    assert plain_effects == []


def test_free_shipping_starts_at_the_amount(api: IntegrationClient, live_app: Application) -> None:
    running_campaign(live_app, "Shipping", *catalog.free_shipping_over(name="Free shipping", amount=50))
    shipping = {"shipping": {"price": 4.95}}
    big = api.session("s-big", cartItems=CART, additionalCosts=shipping).json()["effects"]
    small = api.session("s-small", cartItems=CART[:1], additionalCosts=shipping).json()["effects"]
    assert [(e["effectType"], e["props"]["value"]) for e in big] == [("setDiscountPerAdditionalCost", 4.95)]
    assert small == []


def test_percent_off_a_category_discounts_its_lines(api: IntegrationClient, live_app: Application) -> None:
    running_campaign(
        live_app, "Coffee", *catalog.percent_off_category(name="Coffee 20%", category="coffee", percent=20)
    )
    effects = api.session("s-1", cartItems=CART).json()["effects"]
    # 20% of 24.90 and of 3 x 4
    assert sorted(e["props"]["value"] for e in effects) == [2.4, 4.98]
    assert {e["effectType"] for e in effects} == {"setDiscountPerItem"}


def test_three_for_two_makes_the_cheapest_of_every_three_free(
    api: IntegrationClient, live_app: Application
) -> None:
    running_campaign(live_app, "3 for 2", *catalog.three_for_two(name="3 for 2"))
    # six units: the two cheapest (two 4.00 filters) are free
    effects = api.session("s-1", cartItems=CART).json()["effects"]
    assert sum(e["props"]["value"] for e in effects) == 8
    # two units only: nothing
    assert api.session("s-2", cartItems=CART[:1]).json()["effects"] == []
