"""The engine on every session update: the published Talang examples, effects and their envelope."""

from __future__ import annotations

from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.testing.api import IntegrationClient
from patronage.workspace.models import Application

CART = [
    {"name": "Mug", "sku": "MUG", "quantity": 2, "price": 9.5, "category": "kitchen"},
    {"name": "Beans", "sku": "BEAN", "quantity": 1, "price": 24.9, "category": "coffee"},
]


def test_the_published_free_money_example_works_verbatim(
    api: IntegrationClient, live_app: Application
) -> None:
    # given the older SDKs' live-test ruleset
    campaign = running_campaign(
        live_app, "Free money", rule("Free money", ["and", True], ["setDiscount", "Free money", 45.55])
    )
    # when
    body = api.session("s-1", profileId="c-1", cartItems=CART).json()
    # then: one session discount, capped at nothing (the cart is 43.90 and the discount 45.55: capped)
    (effect,) = body["effects"]
    assert effect["campaignId"] == campaign.pk
    assert effect["rulesetId"] == campaign.active_ruleset_id
    assert effect["ruleIndex"] == 0 and effect["ruleName"] == "Free money"
    assert effect["effectType"] == "setDiscount"
    assert effect["props"] == {"name": "Free money", "value": 43.9, "scope": "sessionTotal"}


def test_the_published_catch_example_gives_ten_percent(api: IntegrationClient, live_app: Application) -> None:
    running_campaign(
        live_app,
        "Ten",
        rule(
            "10% off",
            ["and", True],
            ["catch", ["noop"], ["setDiscount", "10% off", ["*", [".", "Session", "Total"], ["/", 10, 100]]]],
        ),
    )
    body = api.session(
        "s-1", profileId="c-1", cartItems=CART, additionalCosts={"shipping": {"price": 5}}
    ).json()
    assert [e["props"] for e in body["effects"]] == [
        {"name": "10% off", "value": 4.89, "scope": "sessionTotal"}
    ]
