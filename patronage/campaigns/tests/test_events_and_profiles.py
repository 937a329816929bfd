"""The engine without a session, on the Integration API: tracked events (``POST /v2/events``) and rule-engine
profile updates (``PUT /v2/customer_profiles/{id}?runRuleEngine=true``). Both commit at once (no close to
wait for) unless dry; every answer is read by the official SDK's deserializer."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import transaction

from patronage.campaigns.models import BudgetCounter, Campaign, EffectRecord
from patronage.campaigns.services import evaluation_group_create
from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.campaigns.tests.test_lifecycle import sdk_read
from patronage.customer_sessions.models import Event
from patronage.customers.attributes import profile_attributes
from patronage.customers.models import CustomerProfile
from patronage.customers.services import profile_lock_or_create
from patronage.testing.api import IntegrationClient
from patronage.testing.factories import make_api_key, make_application
from patronage.testing.threads import race
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db

SHARED = ["and", ["=", [".", "Event", "Type"], "shared_link"]]
FRIENDS = ["and", [">=", [".", "Event", "Attributes", "friends"], 3]]


def pen_for_sharing(application: Application, **settings: Any) -> Campaign:
    return running_campaign(
        application,
        "Pen for sharing",
        rule("Shared", SHARED, ["addFreeItem", "PEN", "Pen"], ["showNotification", "Thanks", "Hi", "A pen"]),
        **settings,
    )


def track(
    api: IntegrationClient, query: str = "?silent=no", status: int = 200, **body: Any
) -> dict[str, Any]:
    response = api.post(f"/v2/events{query}", {"profileId": "c-1", "type": "shared_link", **body})
    assert response.status_code == status, response.content
    return sdk_read(response.json(), "TrackEventV2Response") if status == 200 else {}


def kinds(body: dict[str, Any]) -> list[str]:
    return [e["effectType"] for e in body["effects"]]


# ---- events ----------------------------------------------------------------------------------------------


def test_an_event_is_stored_answered_with_its_effects_and_committed_at_once(
    api: IntegrationClient, live_app: Application
) -> None:
    # given a campaign rewarding a shared link
    campaign = pen_for_sharing(live_app)
    # when the shop tracks that event for a customer it never mentioned before
    body = track(api, attributes={"url": "https://shop.example/p/1"})
    # then the effects come back, with the customer (created) and the event as stored
    assert kinds(body) == ["addFreeItem", "showNotification"]
    assert body["effects"][0]["campaignId"] == campaign.pk
    assert body["createdCoupons"] == [] and body["createdReferrals"] == []
    assert body["customerProfile"]["integrationId"] == "c-1"
    event = Event.objects.get()
    assert body["event"]["id"] == event.pk and body["event"]["type"] == "shared_link"
    assert body["event"]["profileId"] == "c-1" and body["event"]["applicationId"] == live_app.pk
    assert body["event"]["attributes"] == {"url": "https://shop.example/p/1"}
    assert body["event"]["effects"] == body["effects"]
    # and the event keeps what it answered, and the ledger holds its effects (no session: committed now)
    assert event.session is None and event.effects == body["effects"]
    assert [(r.effect_type, r.event_id, r.session_id) for r in EffectRecord.objects.order_by("pk")] == [
        ("addFreeItem", event.pk, None),
        ("showNotification", event.pk, None),
    ]
    assert EffectRecord.objects.filter(profile__integration_id="c-1").count() == 2


def test_an_event_of_another_type_or_attributes_triggers_nothing(
    api: IntegrationClient, live_app: Application
) -> None:
    running_campaign(live_app, "Three friends", rule("Friends", FRIENDS, ["addFreeItem", "MUG", "Mug"]))
    assert kinds(track(api, type="invited", attributes={"friends": 2})) == []
    assert kinds(track(api, type="invited", attributes={"friends": 3})) == ["addFreeItem"]
    assert Event.objects.count() == 2


def test_silent_events_answer_204_and_are_still_stored(api: IntegrationClient, live_app: Application) -> None:
    pen_for_sharing(live_app)
    # Talon.One's default for events is silent=yes
    track(api, query="", status=204)
    track(api, query="?silent=yes", status=204)
    assert Event.objects.count() == 2 and EffectRecord.objects.count() == 4


def test_response_content_picks_what_comes_along(api: IntegrationClient, live_app: Application) -> None:
    campaign = pen_for_sharing(live_app)
    running_campaign(live_app, "Never", rule("Never", ["and", False], ["addFreeItem", "X1", "X"]))
    body = track(api, responseContent=["triggeredCampaigns", "ruleFailureReasons"])
    assert "customerProfile" not in body and "event" not in body
    assert [c["id"] for c in body["triggeredCampaigns"]] == [campaign.pk]
    assert [r["campaignName"] for r in body["ruleFailureReasons"]] == ["Never"]


def test_a_dry_event_answers_but_writes_nothing(api: IntegrationClient, live_app: Application) -> None:
    pen_for_sharing(live_app, limits=[{"action": "addFreeItemEffect", "limit": 5, "entities": []}])
    body = track(api, query="?silent=no&dry=true")
    assert kinds(body) == ["addFreeItem", "showNotification"]
    # nothing stays: no event, no customer, no ledger row, no budget used
    assert not Event.objects.exists()
    assert not CustomerProfile.objects.filter(integration_id="c-1").exists()
    assert not EffectRecord.objects.exists()
    assert not BudgetCounter.objects.filter(counter__gt=0).exists()


def test_events_consume_budgets(api: IntegrationClient, live_app: Application) -> None:
    # given two pens in all, and one per customer
    campaign = pen_for_sharing(
        live_app,
        limits=[
            {"action": "addFreeItemEffect", "limit": 2, "entities": []},
            {"action": "addFreeItemEffect", "limit": 1, "entities": ["Profile"]},
        ],
    )
    # when one customer shares twice and two more share once
    first = track(api)
    again = track(api, responseContent=["ruleFailureReasons"])
    other = track(api, profileId="c-2")
    last = track(api, profileId="c-3", responseContent=["ruleFailureReasons"])
    # then each budget holds: one pen for c-1, one for c-2, none left for c-3
    assert kinds(first) == ["addFreeItem", "showNotification"]
    assert kinds(again) == ["showNotification"]
    assert "ProfileLimitReached" in again["ruleFailureReasons"][0]["details"]
    assert kinds(other) == ["addFreeItem", "showNotification"]
    assert kinds(last) == ["showNotification"]
    assert "CampaignLimitReached" in last["ruleFailureReasons"][0]["details"]
    assert (
        BudgetCounter.objects.get(campaign=campaign, action="addFreeItemEffect", entity_key="").counter == 2
    )
    assert EffectRecord.objects.filter(effect_type="addFreeItem").count() == 2


def test_force_complete_evaluation_runs_every_campaign_of_an_exclusive_group(
    api: IntegrationClient, live_app: Application
) -> None:
    # given two matching campaigns in a listOrder group: only the first applies
    group = evaluation_group_create(application=live_app, name="One gift", mode="listOrder")
    first = pen_for_sharing(live_app, evaluation_group_id=group.pk)
    second = running_campaign(
        live_app,
        "Mug for sharing",
        rule("Shared", SHARED, ["addFreeItem", "MUG", "Mug"]),
        evaluation_group_id=group.pk,
    )
    usual = track(api, query="?silent=no&dry=true")
    assert {e["campaignId"] for e in usual["effects"]} == {first.pk}
    # when a dry event forces complete evaluation
    forced = track(api, query="?silent=no&dry=true&forceCompleteEvaluation=true")
    # then both campaigns give their effects
    assert {e["campaignId"] for e in forced["effects"]} == {first.pk, second.pk}
    # and a real event may not ask for it
    response = api.post("/v2/events?silent=no&forceCompleteEvaluation=True", {"profileId": "c", "type": "x"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["parameter"] == "forceCompleteEvaluation"
    assert not Event.objects.exists()


def test_an_event_without_a_type_is_refused(api: IntegrationClient, live_app: Application) -> None:
    response = api.post("/v2/events?silent=no", {"profileId": "c-1", "type": ""})
    assert response.status_code == 400
    assert not Event.objects.exists()


def test_an_event_through_the_sdk_model(api: IntegrationClient, live_app: Application) -> None:
    # The request as the SDK builds it (its own model, null fields dropped) is accepted as sent.
    import talon_one

    pen_for_sharing(live_app)
    request = talon_one.IntegrationEventV2Request(
        profile_id="c-9", type="shared_link", attributes={"url": "u"}, response_content=["event"]
    )
    payload = talon_one.ApiClient().sanitize_for_serialization(request)
    response = api.post("/v2/events?silent=no", payload)
    assert response.status_code == 200, response.content
    body = sdk_read(response.json(), "TrackEventV2Response")
    assert body["event"]["profileId"] == "c-9" and kinds(body) == ["addFreeItem", "showNotification"]


# ---- rule-engine profile updates ---------------------------------------------------------------------------


def gold_welcome(application: Application) -> Campaign:
    return running_campaign(
        application,
        "Gold welcome",
        rule(
            "Gold",
            ["and", ["=", [".", "Profile", "Attributes", "LoyaltyTier"], "gold"]],
            ["showNotification", "Welcome", "Gold", "Welcome to gold"],
            ["updateAttributeValue", "Profile", "Welcomed", "yes"],
        ),
    )


def profile_put(api: IntegrationClient, query: str, **body: Any) -> dict[str, Any]:
    response = api.put(f"/v2/customer_profiles/c-1{query}", body)
    assert response.status_code == 200, response.content
    return sdk_read(response.json(), "CustomerProfileIntegrationResponseV2")


def test_a_profile_update_with_the_rule_engine_answers_and_commits_effects(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = gold_welcome(live_app)
    # when the customer becomes gold with the rule engine on
    body = profile_put(api, "?runRuleEngine=true", attributes={"LoyaltyTier": "gold"})
    # then the effects are answered and committed at once: the ledger, and the attribute the rule set
    assert kinds(body) == ["showNotification", "updateAttribute"]
    assert body["effects"][0]["campaignId"] == campaign.pk
    assert body["customerProfile"]["attributes"]["Welcomed"] == "yes"
    profile = CustomerProfile.objects.get(integration_id="c-1")
    assert profile_attributes(profile)["Welcomed"] == "yes"
    assert [(r.effect_type, r.session_id, r.event_id) for r in EffectRecord.objects.order_by("pk")] == [
        ("showNotification", None, None),
        ("updateAttribute", None, None),
    ]


def test_without_the_rule_engine_a_profile_update_answers_no_effects(
    api: IntegrationClient, live_app: Application
) -> None:
    gold_welcome(live_app)
    body = profile_put(api, "", attributes={"LoyaltyTier": "gold"})
    assert body["effects"] == [] and not EffectRecord.objects.exists()
    assert "Welcomed" not in body["customerProfile"]["attributes"]


def test_a_dry_profile_update_with_the_rule_engine_writes_nothing(
    api: IntegrationClient, live_app: Application
) -> None:
    gold_welcome(live_app)
    body = profile_put(
        api,
        "?runRuleEngine=True&dry=True",
        attributes={"LoyaltyTier": "gold"},
        responseContent=["triggeredCampaigns"],
    )
    assert kinds(body) == ["showNotification", "updateAttribute"]
    assert [c["name"] for c in body["triggeredCampaigns"]] == ["Gold welcome"]
    assert not CustomerProfile.objects.filter(integration_id="c-1").exists()
    assert not EffectRecord.objects.exists()


# ---- parallel requests for one customer (PostgreSQL row locks) ----------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_events_of_one_customer_grant_a_profile_budget_once(settings: Any) -> None:
    # given one pen per customer, and requests that wait for each other rather than answer 409
    settings.PATRONAGE_LOCK_WAIT_MS = 60_000
    app = make_application(environment="live")
    pen_for_sharing(app, limits=[{"action": "addFreeItemEffect", "limit": 1, "entities": ["Profile"]}])
    key = make_api_key(app)
    # when ten events of a customer unknown so far arrive at the same instant
    results = race(
        10,
        lambda i: IntegrationClient(key).post(
            "/v2/events?silent=no", {"profileId": "c", "type": "shared_link"}
        ),
    )
    # then each is answered and stored, the customer was made once, and exactly one got the pen
    assert [r.status_code for r in results] == [200] * 10, [r.content for r in results]
    assert sum(kinds(r.json()).count("addFreeItem") for r in results) == 1
    assert Event.objects.count() == 10 and CustomerProfile.objects.filter(integration_id="c").count() == 1
    assert EffectRecord.objects.filter(effect_type="addFreeItem").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_for_a_customer_whose_lock_is_held_too_long_answers_409(settings: Any) -> None:
    settings.PATRONAGE_LOCK_WAIT_MS = 200
    app = make_application(environment="live")
    pen_for_sharing(app)
    key = make_api_key(app)
    IntegrationClient(key).put("/v2/customer_profiles/c", {"attributes": {}})
    holding, answered = threading.Event(), threading.Event()

    def hold() -> str:
        # another request for the customer keeps their row locked until the event has been answered
        with transaction.atomic():
            profile_lock_or_create(environment=app.environment, integration_id="c")
            holding.set()
            answered.wait(timeout=30)
        return "held"

    def send() -> Any:
        holding.wait(timeout=30)
        try:
            return IntegrationClient(key).post(
                "/v2/events?silent=no", {"profileId": "c", "type": "shared_link"}
            )
        finally:
            answered.set()

    held, response = race(2, lambda i: hold() if i == 0 else send())
    assert held == "held" and response.status_code == 409
    assert response.json()["message"].startswith("Too many requests or limit reached")
    assert not Event.objects.exists() and not EffectRecord.objects.exists()


def test_erasing_a_customer_anonymizes_their_tracked_events(
    api: IntegrationClient, live_app: Application
) -> None:
    track(api, query="", status=204)
    track(api, query="", status=204, profileId="c-2")
    assert api.delete("/v1/customer_data/c-1").status_code == 204
    assert sorted(Event.objects.values_list("profile_integration_id", flat=True)) == ["", "c-2"]
