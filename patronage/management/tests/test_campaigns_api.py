"""Campaigns on the Management API at Talon.One's paths, driven by the official SDK against a real server.

Creating campaigns, rulesets and evaluation groups has no SDK 9.0.0 method, so those calls go through
``ApiClient.call_api`` with the SDK's own models: it serialises the body and checks the answer against the
response model (a required field missing is a ValueError, i.e. a failure here)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import talon_one
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from talon_one import models as t
from talon_one.rest import ApiException

from patronage.testing.factories import make_api_key, make_application
from patronage.workspace.models import Application
from patronage.workspace.services import management_key_create

pytestmark = pytest.mark.django_db(transaction=True)

ALL = ("view_campaign", "add_campaign", "change_campaign", "delete_campaign")
CAMPAIGNS = "/v1/applications/{applicationId}/campaigns"
RULESETS = "/v1/applications/{applicationId}/campaigns/{campaignId}/rulesets"
CAMPAIGN = "/v1/applications/{applicationId}/campaigns/{campaignId}"
GROUPS = "/v1/applications/{applicationId}/campaign_evaluation_groups"
GROUP = "/v1/applications/{applicationId}/campaign_evaluation_groups/{groupId}"


def free_money(amount: float = 45.55) -> t.Rule:
    """The ruleset older SDKs' live tests posted."""
    return t.Rule(
        title="Free money", condition=["and", True], effects=[["setDiscount", "Free money", amount]]
    )


CART = [
    t.CartItem(name="Mug", sku="MUG", quantity=2, price=9.5, category="kitchen"),
    t.CartItem(name="Beans", sku="BEAN", quantity=1, price=24.9, category="coffee"),
]


class Staff:
    """A script holding a Management API key of a staff user with ``perms``, using the SDK unmodified."""

    def __init__(
        self, server_url: str, application: Application, *perms: str, username: str = "scripter"
    ) -> None:
        user = get_user_model().objects.create_user(username, password="pw-123456", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="campaigns", codename__in=perms)
        )
        _, key = management_key_create(user=user, name="campaign scripts")
        configuration = talon_one.Configuration(
            host=server_url + "/api",
            api_key={"Authorization": key},
            api_key_prefix={"Authorization": "ManagementKey-v1"},
        )
        self.client = talon_one.ApiClient(configuration)
        self.management = talon_one.ManagementApi(self.client)
        self.app_id = application.pk

    def call(self, path: str, method: str, response_type: str | None, body: Any = None, **ids: int) -> Any:
        return self.client.call_api(
            path,
            method,
            path_params={"applicationId": self.app_id, **ids},
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
            response_type=response_type,
            auth_settings=["management_key"],
            _return_http_data_only=True,
        )

    def create_campaign(self, name: str, **fields: Any) -> t.Campaign:
        body = t.NewCampaign(
            name=name, **{"state": "enabled", "tags": [], "features": [], "limits": [], **fields}
        )
        return self.call(CAMPAIGNS, "POST", "Campaign", body)

    def create_ruleset(self, campaign_id: int, *rules: t.Rule, activate: bool = True) -> t.Ruleset:
        body = t.NewRuleset(rules=list(rules), bindings=[], activate=activate)
        return self.call(RULESETS, "POST", "Ruleset", body, campaignId=campaign_id)

    def group_of(self, campaign_id: int) -> int:
        # SDK 9.0.0's Campaign model has no evaluationGroupId (NewCampaign has): read the JSON itself.
        return int(self.call(CAMPAIGN, "GET", "object", campaignId=campaign_id)["evaluationGroupId"])

    def base_group_id(self) -> int:
        # Read as plain JSON: the base group's parentId is 0, below the SDK model's minimum of 1.
        groups = self.call(GROUPS, "GET", "object")["data"]
        (base,) = [g for g in groups if g["parentId"] == 0]
        return int(base["id"])


def refusal(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.value.body)
    return body


@pytest.fixture
def shop(db: None) -> Application:
    return make_application(environment="live")


@pytest.fixture
def staff(live_server: Any, shop: Application) -> Staff:
    return Staff(live_server.url, shop, *ALL)


@pytest.fixture
def shop_api(live_server: Any, shop: Application) -> talon_one.IntegrationApi:
    configuration = talon_one.Configuration(
        host=live_server.url,
        api_key={"Authorization": make_api_key(shop)},
        api_key_prefix={"Authorization": "ApiKey-v1"},
    )
    return talon_one.IntegrationApi(talon_one.ApiClient(configuration))


def open_cart(shop_api: talon_one.IntegrationApi, session_id: str, **fields: Any) -> t.IntegrationStateV2:
    session = t.NewCustomerSessionV2(profile_id="customer-1", cart_items=CART, **fields)
    return shop_api.update_customer_session_v2(session_id, t.IntegrationRequest(customer_session=session))


def test_a_campaign_and_its_rules_made_through_the_sdk_discount_the_next_cart(
    staff: Staff, shop_api: talon_one.IntegrationApi
) -> None:
    # given: a campaign made through the Management API, and its rules, activated
    campaign = staff.create_campaign("Free money", description="The published example", tags=["demo"])
    ruleset = staff.create_ruleset(campaign.id, free_money())
    # then: the SDK read both answers as its models
    assert campaign.frontend_state == "running" and campaign.budgets == []
    assert staff.group_of(campaign.id) == staff.base_group_id()
    assert ruleset.activate is True and ruleset.campaign_id == campaign.id
    assert staff.management.get_campaign(staff.app_id, campaign.id).active_ruleset_id == ruleset.id
    # when: a shop sends a cart on the Integration API
    state = open_cart(shop_api, "order-1")
    # then: the campaign's discount is in the answer (the cart is 43.90: the 45.55 stops there)
    (effect,) = state.effects
    assert effect.campaign_id == campaign.id and effect.ruleset_id == ruleset.id
    assert effect.effect_type == "setDiscount"
    assert effect.props == {"name": "Free money", "value": 43.9, "scope": "sessionTotal"}
    # and the rulesets read back through the SDK's own methods
    listed = staff.management.get_rulesets(staff.app_id, campaign.id)
    assert listed.total_result_size == 1 and listed.data[0].rules[0].title == "Free money"
    fetched = staff.management.get_ruleset(staff.app_id, campaign.id, ruleset.id)
    assert fetched.rules[0].effects == [["setDiscount", "Free money", 45.55]]


def test_campaigns_are_listed_filtered_changed_and_deleted_through_the_sdk(
    staff: Staff, shop_api: talon_one.IntegrationApi
) -> None:
    # given: three campaigns
    summer = staff.create_campaign("Summer sale", tags=["Seasonal"])
    staff.create_ruleset(summer.id, free_money(5))
    staff.create_campaign("Winter sale", tags=["seasonal", "cold"])
    staff.create_campaign("Welcome", state="disabled", linked_store_ids=[17])
    management, app = staff.management, staff.app_id
    # then: lists page and filter as Talon.One's do
    everything = management.get_campaigns(app)
    assert everything.total_result_size == 3
    assert [c.name for c in everything.data] == ["Summer sale", "Winter sale", "Welcome"]
    second = management.get_campaigns(app, page_size=1, skip=1)
    assert second.total_result_size == 3 and [c.name for c in second.data] == ["Winter sale"]
    assert [c.name for c in management.get_campaigns(app, name="SALE").data] == ["Summer sale", "Winter sale"]
    assert [c.name for c in management.get_campaigns(app, tags="seasonal").data] == [
        "Summer sale",
        "Winter sale",
    ]
    disabled = management.get_campaigns(app, campaign_state="disabled").data
    assert [(c.name, c.linked_store_ids) for c in disabled] == [("Welcome", [17])]
    by_name = management.get_campaigns(app, sort="-name").data
    assert [c.name for c in by_name] == ["Winter sale", "Welcome", "Summer sale"]

    # when: the running one is switched off through update_campaign
    changed = management.update_campaign(
        app,
        summer.id,
        t.UpdateCampaign(name="Summer sale 2", state="disabled", tags=["x"], features=[], limits=[]),
    )
    # then: the answer says so, and the next cart gets nothing from it
    assert (changed.name, changed.state, changed.frontend_state, changed.tags) == (
        "Summer sale 2",
        "disabled",
        "disabled",
        ["x"],
    )
    assert open_cart(shop_api, "order-1").effects == []

    # when: it is deleted
    management.delete_campaign(app, summer.id)
    # then: it is gone from the API and its lists
    with pytest.raises(ApiException) as gone:
        management.get_campaign(app, summer.id)
    assert gone.value.status == 404
    assert [c.name for c in management.get_campaigns(app).data] == ["Winter sale", "Welcome"]


def test_wrong_values_are_refused_with_pointers_into_the_body(staff: Staff) -> None:
    # given: a campaign
    campaign = staff.create_campaign("Pointers")
    # when: its rules use an operator nobody knows
    bad_rule = t.Rule(title="Odd", condition=["and", ["frobnicate", 1]], effects=[["setDiscount", "x", 1]])
    with pytest.raises(ApiException) as refused:
        staff.create_ruleset(campaign.id, free_money(), bad_rule)
    # then: 400, pointing at the operator, and the campaign still has no rules
    assert refused.value.status == 400
    (error,) = refusal(refused)["errors"]
    assert error["source"] == {"pointer": "/rules/1/condition/1/0"}
    assert "frobnicate" in error["details"]
    assert staff.management.get_rulesets(staff.app_id, campaign.id).total_result_size == 0
    assert staff.management.get_campaign(staff.app_id, campaign.id).active_ruleset_id is None

    # when: a campaign's budget names an action that does not exist, and it ends before it starts
    body = {
        "name": "Broken",
        "state": "enabled",
        "tags": [],
        "features": [],
        "limits": [
            {"action": "setDiscount", "limit": 10, "entities": []},
            {"action": "nope", "limit": 1, "entities": []},
        ],
        "startTime": "2030-01-02T00:00:00Z",
        "endTime": "2030-01-01T00:00:00Z",
    }
    with pytest.raises(ApiException) as refused:
        staff.call(CAMPAIGNS, "POST", "Campaign", body)
    # then: one 400 lists both, each where it is
    assert refused.value.status == 400
    pointers = sorted(e["source"]["pointer"] for e in refusal(refused)["errors"])
    assert pointers == ["/endTime", "/limits/1/action"]
    assert staff.management.get_campaigns(staff.app_id).total_result_size == 1

    # and an application that does not exist is a 404
    with pytest.raises(ApiException) as missing:
        staff.management.get_campaigns(staff.app_id + 1000)
    assert missing.value.status == 404


def test_a_key_whose_user_may_only_view_campaigns_cannot_change_them(
    live_server: Any, shop: Application, staff: Staff
) -> None:
    # given: a campaign, and a key of a staff user who may only view campaigns
    campaign = staff.create_campaign("Look, don't touch")
    viewer = Staff(live_server.url, shop, "view_campaign", username="viewer")
    assert viewer.management.get_campaign(shop.pk, campaign.id).name == "Look, don't touch"
    # when / then: each write is a 403 naming the permission it lacks, and nothing changes
    for attempt, permission in [
        (lambda: viewer.create_campaign("Mine"), "campaigns.add_campaign"),
        (lambda: viewer.create_ruleset(campaign.id, free_money()), "campaigns.change_campaign"),
        (
            lambda: viewer.call(GROUPS, "POST", "CampaignEvaluationGroup", {"name": "G", "parentId": 1}),
            "campaigns.change_campaign",
        ),
        (lambda: viewer.management.delete_campaign(shop.pk, campaign.id), "campaigns.delete_campaign"),
    ]:
        with pytest.raises(ApiException) as forbidden:
            attempt()
        assert forbidden.value.status == 403
        assert permission in refusal(forbidden)["message"]
    assert [c.name for c in staff.management.get_campaigns(shop.pk).data] == ["Look, don't touch"]
    assert staff.management.get_rulesets(shop.pk, campaign.id).total_result_size == 0


def test_an_evaluation_group_made_through_the_api_holds_its_campaigns(
    staff: Staff, shop_api: talon_one.IntegrationApi
) -> None:
    # given: a listOrder group under the base group
    base = staff.base_group_id()
    body = t.NewCampaignEvaluationGroup(
        name="One of these",
        parent_id=base,
        evaluation_mode="listOrder",
        evaluation_scope="session",
        locked=False,
    )
    group = staff.call(GROUPS, "POST", "CampaignEvaluationGroup", body)
    assert (group.name, group.parent_id, group.evaluation_mode) == ("One of these", base, "listOrder")
    # and: two campaigns in it, each with a discount
    first = staff.create_campaign("First", evaluation_group_id=group.id)
    second = staff.create_campaign("Second", evaluation_group_id=group.id)
    assert staff.group_of(first.id) == staff.group_of(second.id) == group.id
    staff.create_ruleset(first.id, free_money(5))
    staff.create_ruleset(second.id, free_money(7))
    # when: a cart comes in
    state = open_cart(shop_api, "order-1")
    # then: only the first triggered campaign of the group applies
    assert [(e.campaign_id, e.props["value"]) for e in state.effects] == [(first.id, 5)]

    # the group reads back, takes a new name and mode, and lists under the base group
    assert staff.call(GROUP, "GET", "CampaignEvaluationGroup", groupId=group.id).name == "One of these"
    renamed = staff.call(
        GROUP,
        "PUT",
        "CampaignEvaluationGroup",
        t.UpdateCampaignEvaluationGroup(
            name="All of these",
            parent_id=base,
            evaluation_mode="stackable",
            evaluation_scope="session",
            locked=False,
        ),
        groupId=group.id,
    )
    assert (renamed.name, renamed.evaluation_mode) == ("All of these", "stackable")
    assert sorted(e.props["value"] for e in open_cart(shop_api, "order-2").effects) == [5, 7]
    listed = staff.call(GROUPS, "GET", "object")
    assert listed["totalResultSize"] == 2
    assert [(g["name"], g["parentId"]) for g in listed["data"]] == [("Base group", 0), ("All of these", base)]

    # a group with campaigns in it is not deleted; emptied, it is
    with pytest.raises(ApiException) as refused:
        staff.call(GROUP, "DELETE", None, groupId=group.id)
    assert refused.value.status == 400
    for campaign in (first, second):
        staff.management.update_campaign(
            staff.app_id,
            campaign.id,
            t.UpdateCampaign(name=campaign.name, tags=[], features=[], limits=[], evaluation_group_id=base),
        )
    staff.call(GROUP, "DELETE", None, groupId=group.id)
    with pytest.raises(ApiException) as gone:
        staff.call(GROUP, "GET", "CampaignEvaluationGroup", groupId=group.id)
    assert gone.value.status == 404


def test_a_campaign_budget_shows_what_closed_sessions_used(
    staff: Staff, shop_api: talon_one.IntegrationApi
) -> None:
    # given: a campaign with a 100.00 discount budget and the free-money rule
    limits = [t.LimitConfig(action="setDiscount", limit=100, entities=[])]
    campaign = staff.create_campaign("Budgeted", limits=limits)
    staff.create_ruleset(campaign.id, free_money())
    assert campaign.budgets == [t.CampaignBudget(action="setDiscount", limit=100, counter=0)]
    # when: a cart is discounted but still open, the budget is untouched
    open_cart(shop_api, "order-1")
    assert staff.management.get_campaign(staff.app_id, campaign.id).budgets[0].counter == 0
    # when: the session closes
    closed = open_cart(shop_api, "order-1", state="closed")
    assert [e.props["value"] for e in closed.effects] == [43.9]
    # then: the campaign's budget shows the discount granted, in the campaign and in the list
    expected = [t.CampaignBudget(action="setDiscount", limit=100, counter=43.9)]
    assert staff.management.get_campaign(staff.app_id, campaign.id).budgets == expected
    assert staff.management.get_campaigns(staff.app_id).data[0].budgets == expected
