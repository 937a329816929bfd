"""The engine through a session's whole life, on the Integration API: what an open session only answers,
what a close commits (once), what a cancel, a return and a reopen roll back, and the semantics of
discounts, groups and budgets (talon-one.md 2.3, 3.1-3.6 and 6). Every answer is read by the official
SDK's own deserializer, the props of each effect by its ``*EffectProps`` model."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
import talon_one

from patronage.campaigns.models import BudgetCounter, Campaign, EffectRecord
from patronage.campaigns.services import evaluation_group_create
from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.core import clock
from patronage.customer_sessions.models import CustomerSession
from patronage.customers.attributes import profile_attributes
from patronage.customers.models import CustomerProfile
from patronage.testing.api import IntegrationClient
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db

CART = [
    {"name": "Mug", "sku": "MUG", "quantity": 2, "price": 10, "category": "kitchen"},
    {"name": "Beans", "sku": "BEAN", "quantity": 1, "price": 30, "category": "coffee"},
]  # 50 in all
ALWAYS = ["and", True]
PROPS_MODELS = {
    "setDiscount": "SetDiscountEffectProps",
    "setDiscountPerItem": "SetDiscountPerItemEffectProps",
    "setDiscountPerAdditionalCost": "SetDiscountPerAdditionalCostEffectProps",
    "rollbackDiscount": "RollbackDiscountEffectProps",
    "addFreeItem": "AddFreeItemEffectProps",
    "showNotification": "ShowNotificationEffectProps",
    "updateAttribute": "UpdateAttributeEffectProps",
    "customEffect": "CustomEffectProps",
}


class Resp:
    """What the SDK's deserializer reads: a response with its body in ``data``."""

    def __init__(self, data: Any) -> None:
        self.data = json.dumps(data)


def sdk_read(body: dict[str, Any], model: str = "IntegrationStateV2") -> dict[str, Any]:
    """The body as the SDK reads it (it raises on anything it refuses), each effect's props included."""
    client = talon_one.ApiClient()
    client.deserialize(Resp(body), model)
    for effect in body.get("effects", []):
        client.deserialize(Resp(effect["props"]), PROPS_MODELS[effect["effectType"]])
    for reason in body.get("ruleFailureReasons", []):
        client.deserialize(Resp(reason), "RuleFailureReason")
    return body


def put(
    api: IntegrationClient,
    session_id: str,
    *,
    query: str = "",
    content: list[str] | None = None,
    **session: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"customerSession": session}
    if content:
        body["responseContent"] = content
    response = api.put(f"/v2/customer_sessions/{session_id}{query}", body)
    assert response.status_code == 200, response.content
    return sdk_read(response.json())


def returned(api: IntegrationClient, session_id: str, *items: tuple[int, int]) -> dict[str, Any]:
    body = {"return": {"returnedCartItems": [{"position": p, "quantity": q} for p, q in items]}}
    response = api.post(f"/v2/customer_sessions/{session_id}/returns", body)
    assert response.status_code == 201, response.content
    return sdk_read(response.json())


def reopened(api: IntegrationClient, session_id: str) -> dict[str, Any]:
    response = api.put(f"/v2/customer_sessions/{session_id}/reopen")
    assert response.status_code == 200, response.content
    return sdk_read(response.json(), "ReopenSessionResponse")


def kinds(body: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(e["effectType"], e["props"].get("value")) for e in body["effects"]]


def counters(campaign: Campaign) -> dict[tuple[str, str, str], Decimal]:
    return {
        (c.action, c.entity_key, c.period): c.counter for c in BudgetCounter.objects.filter(campaign=campaign)
    }


def used(campaign: Campaign, action: str = "setDiscountEffect") -> Decimal:
    return sum(
        (c.counter for c in BudgetCounter.objects.filter(campaign=campaign, action=action)), Decimal(0)
    )


def ledger(session_id: str) -> list[tuple[str, Decimal, bool]]:
    return [
        (r.effect_type, r.amount - r.released, r.rolled_back_at is not None)
        for r in EffectRecord.objects.filter(session__integration_id=session_id).order_by("pk")
    ]


def configure(application: Application, **flags: Any) -> None:
    for name, value in flags.items():
        setattr(application, name, value)
    application.save()


def ten_off(application: Application, name: str = "Ten off", **settings: Any) -> Campaign:
    return running_campaign(application, name, rule(name, ALWAYS, ["setDiscount", name, 10]), **settings)


BUDGETS = [
    {"action": "setDiscountEffect", "limit": 5, "entities": []},
    {"action": "setDiscount", "limit": 100, "entities": []},
]


# ---- the life cycle ------------------------------------------------------------------------------------


def test_an_open_session_only_answers_its_effects(api: IntegrationClient, live_app: Application) -> None:
    # given a campaign with budgets
    campaign = ten_off(live_app, limits=BUDGETS)
    # when an open session is updated twice
    put(api, "s", profileId="c", cartItems=CART)
    body = put(api, "s", profileId="c", cartItems=CART)
    # then the effect is answered, but nothing is committed: no ledger row, no budget used
    assert kinds(body) == [("setDiscount", 10)]
    assert body["effects"][0]["props"] == {"name": "Ten off", "value": 10, "scope": "sessionTotal"}
    assert not EffectRecord.objects.exists()
    assert used(campaign) == 0 and used(campaign, "setDiscount") == 0


def test_a_close_commits_once_even_when_closed_is_sent_again(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = ten_off(live_app, limits=BUDGETS)
    put(api, "s", profileId="c", cartItems=CART)
    # when the session closes, and "closed" is sent again
    first = put(api, "s", state="closed")
    second = put(api, "s", state="closed")
    # then the close committed one discount, and the second answer repeats it without committing again
    assert kinds(first) == [("setDiscount", 10)]
    assert second["effects"] == first["effects"]
    assert ledger("s") == [("setDiscount", Decimal(10), False)]
    assert counters(campaign) == {("setDiscountEffect", "", ""): 1, ("setDiscount", "", ""): 10}


def test_reading_a_session_answers_its_current_effects(api: IntegrationClient, live_app: Application) -> None:
    ten_off(live_app)
    put(api, "s", profileId="c", cartItems=CART)
    response = api.get("/v2/customer_sessions/s")
    assert response.status_code == 200
    body = sdk_read(response.json(), "IntegrationCustomerSessionResponse")
    assert kinds(body) == [("setDiscount", 10)]
    # and after a cancel, what the cancel answered
    put(api, "s", state="closed")
    put(api, "s", state="cancelled")
    assert kinds(api.get("/v2/customer_sessions/s").json()) == [("rollbackDiscount", 10)]


def test_cancelling_a_closed_session_rolls_back_each_discount_and_releases_budgets(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = running_campaign(
        live_app,
        "Two",
        rule(
            "Ten",
            ALWAYS,
            ["setDiscount", "Ten", 10],
            ["setDiscountPerItem", "Mugs", [".", "Session", "CartItems"], ["Item"], 1],
        ),
        limits=BUDGETS,
    )
    put(api, "s", profileId="c", cartItems=CART, state="closed")
    assert used(campaign) == 3 and used(campaign, "setDiscount") == 12
    # when the closed session is cancelled
    body = put(api, "s", state="cancelled")
    # then one rollbackDiscount per discount, each with the value granted, and the budgets are free again
    assert [(e["effectType"], e["props"]) for e in body["effects"]] == [
        ("rollbackDiscount", {"name": "Ten", "value": 10, "scope": "sessionTotal"}),
        ("rollbackDiscount", {"name": "Mugs", "value": 1, "cartItemPosition": 0, "scope": "price"}),
        ("rollbackDiscount", {"name": "Mugs", "value": 1, "cartItemPosition": 1, "scope": "price"}),
    ]
    assert all(
        e["campaignId"] == campaign.pk and e["rulesetId"] == campaign.active_ruleset_id
        for e in body["effects"]
    )
    assert used(campaign) == 0 and used(campaign, "setDiscount") == 0
    assert [rolled for _, _, rolled in ledger("s")] == [True, True, True]


def test_cancelling_an_open_session_answers_nothing(api: IntegrationClient, live_app: Application) -> None:
    campaign = ten_off(live_app, limits=BUDGETS)
    put(api, "s", profileId="c", cartItems=CART)
    body = put(api, "s", state="cancelled")
    assert body["effects"] == []
    assert not EffectRecord.objects.exists() and used(campaign) == 0


def test_a_reopen_rolls_back_and_the_session_can_close_again(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = ten_off(live_app, limits=BUDGETS)
    put(api, "s", profileId="c", cartItems=CART, state="closed")
    # when reopened
    body = reopened(api, "s")
    # then the discount is rolled back and its budget released
    assert kinds(body) == [("rollbackDiscount", 10)]
    assert used(campaign) == 0
    assert CustomerProfile.objects.get(integration_id="c").closed_sessions == 0
    # and a second close commits again
    again = put(api, "s", state="closed")
    assert kinds(again) == [("setDiscount", 10)]
    assert ledger("s") == [("setDiscount", Decimal(0), True), ("setDiscount", Decimal(10), False)]
    assert used(campaign) == 1 and used(campaign, "setDiscount") == 10


def test_a_partial_return_of_flattened_items_rolls_back_the_returned_unit(
    api: IntegrationClient, live_app: Application
) -> None:
    # given flattened cart items and 2 off each unit (the partial-return tutorial: three units, one returned)
    configure(live_app, enable_flattened_cart_items=True)
    campaign = running_campaign(
        live_app,
        "Two off",
        rule(
            "Two off", ALWAYS, ["setDiscountPerItem", "Two off", [".", "Session", "CartItems"], ["Item"], 2]
        ),
        limits=BUDGETS,
    )
    cart = [
        {"name": "Tea", "sku": "TEA", "quantity": 1, "price": 5},
        {"name": "Shoe", "sku": "SHOE", "quantity": 3, "price": 20},
    ]
    closed = put(api, "s", profileId="c", cartItems=cart, state="closed")
    assert [(e["props"]["position"], e["props"].get("subPosition")) for e in closed["effects"]] == [
        (0, 0),
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    assert used(campaign) == 4 and used(campaign, "setDiscount") == 8
    # when one unit of position 1 is returned
    body = returned(api, "s", (1, 1))
    # then one rollbackDiscount for that unit
    assert [e["props"] for e in body["effects"]] == [
        {"name": "Two off", "value": 2, "cartItemPosition": 1, "cartItemSubPosition": 0, "scope": "price"}
    ]
    assert used(campaign) == 3 and used(campaign, "setDiscount") == 6
    # and the next return rolls back the next unit
    body = returned(api, "s", (1, 1))
    assert [e["props"].get("cartItemSubPosition") for e in body["effects"]] == [1]
    # and a cancel of what is left rolls back the rest
    body = put(api, "s", state="cancelled")
    assert [
        (e["props"]["cartItemPosition"], e["props"].get("cartItemSubPosition")) for e in body["effects"]
    ] == [
        (0, 0),
        (1, 2),
    ]
    assert used(campaign) == 0 and used(campaign, "setDiscount") == 0


def test_a_partial_return_without_flattening_rolls_back_the_lines_share(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = running_campaign(
        live_app,
        "Tenth",
        rule("Tenth", ALWAYS, ["setDiscountPerItem", "Tenth", [".", "Session", "CartItems"], ["Item"], 10]),
        limits=BUDGETS,
    )
    cart = [{"name": "Shoe", "sku": "SHOE", "quantity": 3, "price": 20}]
    closed = put(api, "s", profileId="c", cartItems=cart, state="closed")
    assert [e["props"] for e in closed["effects"]] == [
        {"name": "Tenth", "value": 10, "position": 0, "scope": "price"}
    ]
    # when one of three units is returned: a third of the line's discount comes back
    body = returned(api, "s", (0, 1))
    assert [e["props"] for e in body["effects"]] == [
        {"name": "Tenth", "value": 3.33, "cartItemPosition": 0, "scope": "price"}
    ]
    assert used(campaign, "setDiscount") == Decimal("6.67")
    assert used(campaign) == 1  # the effect still stands for two units
    # when the other two are returned: the rest of it, and the effect's count
    body = returned(api, "s", (0, 2))
    assert [e["props"]["value"] for e in body["effects"]] == [6.67]
    assert used(campaign) == 0 and used(campaign, "setDiscount") == 0


def test_a_dry_run_writes_nothing(api: IntegrationClient, live_app: Application) -> None:
    campaign = ten_off(live_app, limits=BUDGETS)
    put(api, "s", profileId="c", cartItems=CART)
    # when the session is closed in a dry run
    body = put(api, "s", query="?dry=true", state="closed")
    # then the answer is the close's, but nothing is stored
    assert kinds(body) == [("setDiscount", 10)]
    assert not EffectRecord.objects.exists()
    assert not BudgetCounter.objects.filter(counter__gt=0).exists()
    assert CustomerSession.objects.get(integration_id="s").state == "open"
    assert used(campaign) == 0


def test_a_dry_run_at_a_later_time_runs_a_scheduled_campaign(
    api: IntegrationClient, live_app: Application
) -> None:
    start = clock.now() + dt.timedelta(days=3)
    ten_off(live_app, start_time=start)
    assert put(api, "s", profileId="c", cartItems=CART)["effects"] == []
    later = (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = put(api, "s", query=f"?dry=true&now={later}", profileId="c", cartItems=CART)
    assert kinds(body) == [("setDiscount", 10)]


def test_a_dry_run_evaluates_the_campaigns_it_names_even_disabled_ones(
    api: IntegrationClient, live_app: Application
) -> None:
    draft = ten_off(live_app, "Draft", state="disabled")
    other = ten_off(live_app, "Other")
    # a plain update runs only the enabled campaign
    assert [e["campaignId"] for e in put(api, "s", profileId="c", cartItems=CART)["effects"]] == [other.pk]
    # a dry run naming the disabled one runs it, and only it
    body = put(api, "s", query="?dry=true", profileId="c", cartItems=CART, evaluableCampaignIds=[draft.pk])
    assert [e["campaignId"] for e in body["effects"]] == [draft.pk]
    # outside a dry run the list is ignored
    body = put(api, "s", profileId="c", cartItems=CART, evaluableCampaignIds=[draft.pk])
    assert [e["campaignId"] for e in body["effects"]] == [other.pk]


def test_a_campaign_with_linked_stores_runs_only_for_their_sessions(
    api: IntegrationClient, live_app: Application
) -> None:
    ten_off(live_app, linked_stores=["berlin", "paris"])
    assert kinds(put(api, "a", cartItems=CART, storeIntegrationId="berlin")) == [("setDiscount", 10)]
    assert put(api, "b", cartItems=CART, storeIntegrationId="rome")["effects"] == []
    assert put(api, "c", cartItems=CART)["effects"] == []


def test_a_campaign_runs_only_within_its_schedule(api: IntegrationClient, live_app: Application) -> None:
    now = clock.now()
    ten_off(live_app, "Past", start_time=now - dt.timedelta(days=2), end_time=now - dt.timedelta(days=1))
    ten_off(live_app, "Future", start_time=now + dt.timedelta(days=1))
    running = ten_off(
        live_app, "Now", start_time=now - dt.timedelta(days=1), end_time=now + dt.timedelta(days=1)
    )
    assert [e["campaignId"] for e in put(api, "s", cartItems=CART)["effects"]] == [running.pk]


# ---- discounts ---------------------------------------------------------------------------------------------


def test_a_discount_never_takes_the_cart_below_zero(api: IntegrationClient, live_app: Application) -> None:
    running_campaign(live_app, "Free money", rule("Free money", ALWAYS, ["setDiscount", "Free money", 45.55]))
    body = put(api, "s", cartItems=[{"sku": "A", "name": "A", "quantity": 1, "price": 10}])
    assert body["effects"][0]["props"] == {"name": "Free money", "value": 10, "scope": "sessionTotal"}
    # and a second discount finds nothing left
    running_campaign(live_app, "More", rule("More", ALWAYS, ["setDiscount", "More", 5]))
    assert kinds(put(api, "s", cartItems=[{"sku": "A", "name": "A", "quantity": 1, "price": 10}])) == [
        ("setDiscount", 10)
    ]


def test_discounts_are_rounded_to_the_currencys_minor_unit(
    api: IntegrationClient, live_app: Application
) -> None:
    configure(live_app, currency="JPY")
    running_campaign(
        live_app,
        "Tenth",
        rule("Tenth", ALWAYS, ["setDiscount", "Tenth", ["*", [".", "Session", "Total"], 0.1]]),
    )
    body = put(api, "s", cartItems=[{"sku": "A", "name": "A", "quantity": 1, "price": 1235}])
    assert kinds(body) == [("setDiscount", 124)]  # 123.5 rounds half up to whole yen


@pytest.mark.parametrize(("cascading", "second"), [(True, 9), (False, 10)])
def test_cascading_discounts_compute_on_what_earlier_ones_left(
    api: IntegrationClient, live_app: Application, cascading: bool, second: int
) -> None:
    configure(live_app, enable_cascading_discounts=cascading)
    ten_off(live_app, "First")
    running_campaign(
        live_app,
        "Then",
        rule("Tenth", ALWAYS, ["setDiscount", "Tenth", ["*", [".", "Session", "DiscountedTotal"], 0.1]]),
    )
    body = put(api, "s", cartItems=[{"sku": "A", "name": "A", "quantity": 1, "price": 100}])
    assert kinds(body) == [("setDiscount", 10), ("setDiscount", second)]


def test_a_budget_trims_a_discount_when_partial_discounts_are_allowed(
    api: IntegrationClient, live_app: Application
) -> None:
    configure(live_app, enable_partial_discounts=True)
    running_campaign(
        live_app,
        "Fifteens",
        rule("One", ALWAYS, ["setDiscount", "One", 15]),
        rule("Two", ALWAYS, ["setDiscount", "Two", 15]),
        limits=[{"action": "setDiscount", "limit": 25, "entities": []}],
    )
    body = put(api, "s", cartItems=CART)
    assert [e["props"] for e in body["effects"]] == [
        {"name": "One", "value": 15, "scope": "sessionTotal"},
        {"name": "Two", "value": 10, "desiredValue": 15, "scope": "sessionTotal"},
    ]


def test_a_budget_drops_a_discount_it_cannot_cover_and_says_why(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = running_campaign(
        live_app,
        "Fifteens",
        rule("One", ALWAYS, ["setDiscount", "One", 15]),
        rule("Two", ALWAYS, ["setDiscount", "Two", 15]),
        limits=[{"action": "setDiscount", "limit": 25, "entities": []}],
    )
    body = put(api, "s", cartItems=CART, content=["ruleFailureReasons"])
    assert kinds(body) == [("setDiscount", 15)]
    (reason,) = body["ruleFailureReasons"]
    assert (reason["campaignID"], reason["ruleIndex"], reason["ruleName"], reason["effectIndex"]) == (
        campaign.pk,
        1,
        "Two",
        0,
    )
    assert reason["details"].startswith("CampaignLimitReached")


def test_three_for_two_discounts_the_cheapest_unit(api: IntegrationClient, live_app: Application) -> None:
    running_campaign(
        live_app,
        "3 for 2",
        rule(
            "Cheapest free",
            ["and", [">=", ["quantity", [".", "Session", "CartItems"]], 3]],
            [
                "setDiscountPerItem",
                "3 for 2",
                ["cheapest", [".", "Session", "CartItems"], 1],
                ["Item"],
                [".", "Item", "Price"],
            ],
        ),
    )
    body = put(api, "s", cartItems=CART)
    (effect,) = body["effects"]
    assert effect["effectType"] == "setDiscountPerItem"
    assert (effect["props"]["position"], effect["props"]["value"]) == (0, 10)
    # two units: nothing
    assert (
        put(api, "t", cartItems=[*CART[1:], {"sku": "X", "name": "X", "quantity": 1, "price": 1}])["effects"]
        == []
    )


def test_free_shipping_discounts_the_whole_additional_cost(
    api: IntegrationClient, live_app: Application
) -> None:
    running_campaign(
        live_app,
        "Free shipping",
        rule(
            "Over 40",
            ["and", [">", [".", "Session", "CartItemTotal"], 40]],
            ["setDiscountPerAdditionalCost", "Free shipping", "shipping"],
        ),
    )
    body = put(api, "s", cartItems=CART, additionalCosts={"wrap": {"price": 2}, "shipping": {"price": 4.95}})
    assert [e["props"] for e in body["effects"]] == [
        {"name": "Free shipping", "additionalCostId": 1, "additionalCost": "shipping", "value": 4.95}
    ]


# ---- other effects and failure reasons -------------------------------------------------------------------


def test_free_items_notifications_and_failure_effects(api: IntegrationClient, live_app: Application) -> None:
    campaign = running_campaign(
        live_app,
        "Gifts",
        rule(
            "Big cart",
            ["and", [">", [".", "Session", "Total"], 10], [">", [".", "Session", "Total"], 100]],
            ["addFreeItem", "GIFT", "Gift"],
            failureEffects=[["showNotification", "Info", "Almost", "Spend over 100 for a gift"]],
        ),
        rule(
            "Any",
            ALWAYS,
            ["addFreeItem", "PEN", "Pen", 2],
            ["showNotification", "Offer", "Hello", "A pen for you"],
        ),
    )
    body = put(api, "s", cartItems=CART, content=["ruleFailureReasons", "triggeredCampaigns"])
    assert [(e["effectType"], e["ruleIndex"], e["props"]) for e in body["effects"]] == [
        (
            "showNotification",
            0,
            {"notificationType": "Info", "title": "Almost", "body": "Spend over 100 for a gift"},
        ),
        ("addFreeItem", 1, {"sku": "PEN", "name": "Pen", "desiredQuantity": 2}),
        ("showNotification", 1, {"notificationType": "Offer", "title": "Hello", "body": "A pen for you"}),
    ]
    (reason,) = body["ruleFailureReasons"]
    assert (reason["campaignID"], reason["ruleIndex"], reason["conditionIndex"]) == (campaign.pk, 0, 1)
    assert [c["id"] for c in body["triggeredCampaigns"]] == [campaign.pk]
    # a bigger cart passes the rule: the gift instead of the notification
    body = put(api, "s", cartItems=[{"sku": "TV", "name": "TV", "quantity": 1, "price": 500}])
    assert [e["effectType"] for e in body["effects"]] == ["addFreeItem", "addFreeItem", "showNotification"]


def test_attribute_updates_apply_to_the_profile_and_the_session_on_close(
    api: IntegrationClient, live_app: Application
) -> None:
    running_campaign(
        live_app,
        "Mark",
        rule(
            "Mark",
            ALWAYS,
            ["updateAttributeValue", "Profile", "lastPromo", "Mark"],
            ["updateAttributeValue", "Session", "spent", [".", "Session", "Total"]],
        ),
    )
    body = put(api, "s", profileId="c", cartItems=CART)
    assert [e["props"] for e in body["effects"]] == [
        {"path": "Profile.lastPromo", "value": "Mark"},
        {"path": "Session.spent", "value": 50},
    ]
    # open: nothing applied yet
    assert "spent" not in CustomerSession.objects.get(integration_id="s").attributes
    put(api, "s", state="closed")
    assert CustomerSession.objects.get(integration_id="s").attributes["spent"] == 50
    assert profile_attributes(CustomerProfile.objects.get(integration_id="c"))["lastPromo"] == "Mark"


# ---- evaluation groups -------------------------------------------------------------------------------------


def grouped(application: Application, mode: str) -> tuple[Campaign, Campaign, Campaign]:
    group = evaluation_group_create(application=application, name=f"{mode} group", mode=mode)
    small = ten_off(application, "Small", evaluation_group_id=group.pk)
    big = running_campaign(
        application, "Big", rule("Big", ALWAYS, ["setDiscount", "Big", 20]), evaluation_group_id=group.pk
    )
    idle = running_campaign(
        application,
        "Idle",
        rule("Never", ["and", False], ["setDiscount", "Never", 30]),
        evaluation_group_id=group.pk,
    )
    return small, big, idle


@pytest.mark.parametrize(
    ("mode", "winner", "losers"),
    [
        ("listOrder", "Small", ["Big"]),
        ("highestDiscount", "Big", ["Small"]),
        ("lowestDiscount", "Small", ["Big"]),
    ],
)
def test_an_exclusive_group_applies_one_campaign_and_says_which_lost(
    api: IntegrationClient, live_app: Application, mode: str, winner: str, losers: list[str]
) -> None:
    campaigns = {c.name: c for c in grouped(live_app, mode)}
    outside = ten_off(live_app, "Outside")
    body = put(api, "s", cartItems=CART, content=["ruleFailureReasons", "triggeredCampaigns"])
    assert [e["campaignId"] for e in body["effects"]] == [campaigns[winner].pk, outside.pk]
    assert body["effects"][0]["evaluationGroupMode"] == mode
    assert {c["id"] for c in body["triggeredCampaigns"]} == {campaigns[winner].pk, outside.pk}
    not_triggered = [
        r["campaignName"]
        for r in body["ruleFailureReasons"]
        if "CampaignNotTriggered" in r.get("details", "")
    ]
    assert not_triggered == losers
    # the campaign whose rule failed says so with its condition
    assert any(
        r["campaignName"] == "Idle" and r.get("conditionIndex") == 0 for r in body["ruleFailureReasons"]
    )


def test_a_stackable_group_applies_every_triggered_campaign(
    api: IntegrationClient, live_app: Application
) -> None:
    small, big, _ = grouped(live_app, "stackable")
    body = put(api, "s", cartItems=CART)
    assert [(e["campaignId"], e["props"]["value"]) for e in body["effects"]] == [(small.pk, 10), (big.pk, 20)]


# ---- budget scopes and periods ----------------------------------------------------------------------------


def once_per(application: Application, *entities: str, period: str = "") -> Campaign:
    limit: dict[str, Any] = {"action": "setDiscountEffect", "limit": 1, "entities": list(entities)}
    if period:
        limit["period"] = period
    return ten_off(application, limits=[limit])


def test_a_profile_budget_counts_per_customer_and_skips_anonymous_sessions(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = once_per(live_app, "Profile")
    assert kinds(put(api, "a1", profileId="ann", cartItems=CART, state="closed")) == [("setDiscount", 10)]
    body = put(api, "a2", profileId="ann", cartItems=CART, content=["ruleFailureReasons"])
    assert body["effects"] == []
    assert body["ruleFailureReasons"][0]["details"].startswith("ProfileLimitReached")
    assert kinds(put(api, "b1", profileId="bob", cartItems=CART)) == [("setDiscount", 10)]
    anonymous = put(api, "x", cartItems=CART, content=["ruleFailureReasons"])
    assert anonymous["effects"] == []
    assert anonymous["ruleFailureReasons"][0]["details"].startswith("ProfileRequired")
    ann = CustomerProfile.objects.get(integration_id="ann")
    assert counters(campaign) == {("setDiscountEffect", f"Profile={ann.pk}", ""): 1}


def test_a_daily_budget_starts_again_on_the_applications_next_day(
    api: IntegrationClient, live_app: Application
) -> None:
    configure(live_app, time_zone="Europe/Berlin")
    once_per(live_app, period="daily")
    evening = dt.datetime(2026, 3, 10, 22, 30, tzinfo=dt.UTC)  # 23:30 in Berlin
    with clock.frozen_at(evening):
        assert kinds(put(api, "s1", cartItems=CART, state="closed")) == [("setDiscount", 10)]
    with clock.frozen_at(
        evening + dt.timedelta(minutes=20)
    ):  # still the 10th in Berlin (not in UTC's terms either)
        assert put(api, "s2", cartItems=CART)["effects"] == []
    with clock.frozen_at(
        evening + dt.timedelta(minutes=40)
    ):  # 00:10 on the 11th in Berlin, still the 10th in UTC
        assert kinds(put(api, "s3", cartItems=CART, state="closed")) == [("setDiscount", 10)]
    assert sorted(BudgetCounter.objects.values_list("period", "counter")) == [
        ("2026-03-10", 1),
        ("2026-03-11", 1),
    ]


def test_an_identifier_budget_counts_per_identifier(api: IntegrationClient, live_app: Application) -> None:
    once_per(live_app, "Identifier")
    assert kinds(
        put(api, "s1", profileId="ann", identifiers=["device-1"], cartItems=CART, state="closed")
    ) == [("setDiscount", 10)]
    assert put(api, "s2", profileId="bob", identifiers=["device-1"], cartItems=CART)["effects"] == []
    assert kinds(put(api, "s3", profileId="bob", identifiers=["device-2"], cartItems=CART)) == [
        ("setDiscount", 10)
    ]
    assert (
        put(api, "s4", profileId="bob", cartItems=CART)["effects"] == []
    )  # no identifier: cannot be checked


def test_a_store_budget_counts_per_store(api: IntegrationClient, live_app: Application) -> None:
    once_per(live_app, "Store")
    assert kinds(put(api, "s1", storeIntegrationId="berlin", cartItems=CART, state="closed")) == [
        ("setDiscount", 10)
    ]
    assert put(api, "s2", storeIntegrationId="berlin", cartItems=CART)["effects"] == []
    assert kinds(put(api, "s3", storeIntegrationId="paris", cartItems=CART)) == [("setDiscount", 10)]


def test_a_partial_return_gives_back_whole_minor_units(api: IntegrationClient, live_app: Application) -> None:
    # given yen (no minor unit) and a line discount of 100 over three units
    configure(live_app, currency="JPY")
    campaign = running_campaign(
        live_app,
        "Hundred",
        rule(
            "Hundred", ALWAYS, ["setDiscountPerItem", "Hundred", [".", "Session", "CartItems"], ["Item"], 100]
        ),
        limits=BUDGETS[1:],
    )
    put(
        api,
        "s",
        profileId="c",
        cartItems=[{"name": "Cup", "sku": "CUP", "quantity": 3, "price": 500}],
        state="closed",
    )
    # when one unit comes back: a third of 100 yen is 33, not 33.33
    assert kinds(returned(api, "s", (0, 1))) == [("rollbackDiscount", 33)]
    assert used(campaign, "setDiscount") == 67
    # and a cancel gives back the rest
    assert kinds(put(api, "s", state="cancelled")) == [("rollbackDiscount", 67)]
    assert used(campaign, "setDiscount") == 0


def test_budget_counters_come_back_to_exactly_zero(api: IntegrationClient, live_app: Application) -> None:
    # given a money budget moved by amounts binary floating point cannot hold (SQLite computes in it)
    campaign = running_campaign(
        live_app,
        "Tenth",
        rule("Tenth", ALWAYS, ["setDiscount", "Tenth", ["*", [".", "Session", "Total"], 0.1]]),
        limits=[{"action": "setDiscount", "limit": "2.4", "entities": []}],
    )
    put(
        api,
        "a",
        profileId="ann",
        cartItems=[{"sku": "A", "name": "A", "quantity": 1, "price": 4}],
        state="closed",
    )
    put(
        api,
        "b",
        profileId="bob",
        cartItems=[{"sku": "B", "name": "B", "quantity": 1, "price": 20}],
        state="closed",
    )
    assert used(campaign, "setDiscount") == Decimal("2.4")  # the budget is exactly full
    # when both are cancelled, the larger first
    assert kinds(put(api, "b", state="cancelled")) == [("rollbackDiscount", 2)]
    assert kinds(put(api, "a", state="cancelled")) == [("rollbackDiscount", 0.4)]
    # then the counter is back at zero, and the whole budget can be used again
    assert used(campaign, "setDiscount") == 0
    put(
        api,
        "c",
        profileId="ann",
        cartItems=[{"sku": "A", "name": "A", "quantity": 1, "price": 4}],
        state="closed",
    )
    closed = put(
        api,
        "d",
        profileId="bob",
        cartItems=[{"sku": "B", "name": "B", "quantity": 1, "price": 20}],
        state="closed",
    )
    assert kinds(closed) == [("setDiscount", 2)]
    assert used(campaign, "setDiscount") == Decimal("2.4")
