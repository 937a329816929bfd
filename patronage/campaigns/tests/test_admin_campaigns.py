"""The campaign pages of the back office, through Django's test client."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from patronage.campaigns import templates_catalog as catalog
from patronage.campaigns.models import BudgetCounter, Campaign, EffectRecord, EvaluationGroup
from patronage.campaigns.plan import base_group
from patronage.campaigns.services import campaign_delete
from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.customer_sessions.models import CustomerSession
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.testing.api import IntegrationClient
from patronage.testing.factories import make_api_key, make_application
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db

LIST = "/admin/campaigns/campaign/"
ADD = "/admin/campaigns/campaign/add/"
TREE = "/admin/campaigns/campaign/tree/"
CART = [
    {"name": "Mug", "sku": "MUG", "quantity": 2, "price": 9.5, "category": "kitchen"},
    {"name": "Beans", "sku": "BEAN", "quantity": 1, "price": 24.9, "category": "coffee"},
]
TEN_PERCENT = [
    rule(
        "10% over 20",
        ["and", [">=", [".", "Session", "CartItemTotal"], 20]],
        ["setDiscount", "Ten", ["*", [".", "Session", "CartItemTotal"], ["/", 10, 100]]],
    )
]


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456"))
    return client


@pytest.fixture
def shop() -> Application:
    return make_application(name="Coffee shop", currency="EUR")


def form_data(application: Application, **overrides: Any) -> dict[str, Any]:
    data = {
        "application": application.pk,
        "name": "Ten percent",
        "description": "",
        "state": "enabled",
        "start_time_0": "",
        "start_time_1": "",
        "end_time_0": "",
        "end_time_1": "",
        "tags": "summer, coffee",
        "evaluation_group": "",
        "limits": "[]",
        "rules": json.dumps(TEN_PERCENT),
    }
    data.update(overrides)
    return data


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_list_shows_state_budgets_and_the_last_30_days_and_hides_deleted_campaigns(
    admin_client: Client, shop: Application
) -> None:
    # given a running campaign with a money budget half used and a closed order it discounted
    campaign = running_campaign(
        shop, "Ten", *TEN_PERCENT, limits=[{"action": "setDiscount", "limit": 100, "entities": []}]
    )
    BudgetCounter.objects.create(campaign=campaign, action="setDiscount", counter=Decimal(50))
    api = IntegrationClient(make_api_key(shop))
    api.session("s-1", cartItems=CART, state="closed")
    gone = running_campaign(shop, "Gone", *TEN_PERCENT)
    campaign_delete(campaign=gone)
    # when
    page = text(admin_client.get(LIST))
    # then
    assert "Ten" in page and "Gone" not in page
    assert 'data-state="running"' in page
    assert "EUR 54.39 of EUR 100.00" in page  # 50 before, and 10% of the 43.90 order
    recorded = EffectRecord.objects.get(campaign=campaign)
    assert f"EUR {recorded.amount:.2f}" in page  # the discount of the last 30 days


def test_the_list_asks_the_same_number_of_queries_for_one_campaign_or_many(
    admin_client: Client, shop: Application, django_assert_max_num_queries: Any
) -> None:
    running_campaign(shop, "First", *TEN_PERCENT, limits=[{"action": "setDiscount", "limit": 100}])
    admin_client.get(LIST)  # warm the session and content types
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        admin_client.get(LIST)
    for n in range(5):
        running_campaign(shop, f"More {n}", *TEN_PERCENT, limits=[{"action": "setDiscount", "limit": 100}])
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert admin_client.get(LIST).status_code == 200


def test_the_state_filter_uses_the_computed_state(admin_client: Client, shop: Application) -> None:
    running_campaign(shop, "Now")
    running_campaign(shop, "Later", start_time=__import__("datetime").datetime(2999, 1, 1))
    running_campaign(shop, "Off", state="disabled")
    page = text(admin_client.get(LIST, {"state": "scheduled"}))
    assert ">Later<" in page and ">Now<" not in page and ">Off<" not in page


def test_adding_a_campaign_with_builder_json_saves_an_active_ruleset(
    admin_client: Client, shop: Application
) -> None:
    response = admin_client.post(ADD, form_data(shop))
    assert response.status_code == 302, text(response)[:3000]
    campaign = Campaign.objects.get(name="Ten percent")
    assert campaign.tags == ["summer", "coffee"]
    assert campaign.active_ruleset is not None and campaign.active_ruleset.version == 1
    assert campaign.active_ruleset.rules == TEN_PERCENT
    assert campaign.evaluation_group == base_group(shop)


def test_saving_without_changing_the_rules_keeps_the_version_and_a_change_makes_a_new_one(
    admin_client: Client, shop: Application
) -> None:
    campaign = running_campaign(shop, "Ten", *TEN_PERCENT)
    url = f"{LIST}{campaign.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200 and 'id="campaign-builder-data"' in page.content.decode()
    assert admin_client.post(url, form_data(shop, name="Ten", state="disabled")).status_code == 302
    campaign.refresh_from_db()
    assert campaign.state == "disabled" and campaign.active_ruleset.version == 1  # type: ignore[union-attr]
    changed = [{**TEN_PERCENT[0], "title": "Renamed"}]
    assert admin_client.post(url, form_data(shop, name="Ten", rules=json.dumps(changed))).status_code == 302
    campaign.refresh_from_db()
    assert campaign.active_ruleset.version == 2 and campaign.active_ruleset.rules == changed  # type: ignore[union-attr]


def test_invalid_talang_shows_each_problem_on_its_line_in_words(
    admin_client: Client, shop: Application
) -> None:
    bad = [
        rule("Fine", ["and", True], ["setDiscount", "x", 1]),
        rule("Broken", ["and", True, ["foo", 1]], ["setDiscount", "y", "lots"]),
    ]
    response = admin_client.post(ADD, form_data(shop, rules=json.dumps(bad)))
    assert response.status_code == 200
    page = text(response)
    assert "Rule 2, condition 2: Unknown operator &#x27;foo&#x27;" in page
    assert "Rule 2, effect 1, argument 2: Expected number here, got string" in page
    # the builder gets the same problems with the pointers it places them by
    found = re.search(r'id="campaign-builder-data" type="application/json">(.*?)</script>', page)
    assert found is not None
    data = json.loads(found.group(1))
    assert {p["pointer"] for p in data["problems"]} == {"/rules/1/condition/2/0", "/rules/1/effects/0/2"}
    assert not Campaign.objects.filter(name="Ten percent").exists()


def test_invalid_talang_json_and_budgets_are_said_in_words(admin_client: Client, shop: Application) -> None:
    limits = json.dumps([{"action": "setDiscount", "limit": -5}])
    page = text(admin_client.post(ADD, form_data(shop, rules="[{", limits=limits)))
    assert "The Talang is not valid JSON" in page
    assert "Budget 1: The limit is a number, 0 or more" in page


def test_try_it_shows_the_effect_and_saves_nothing(admin_client: Client, shop: Application) -> None:
    # given a disabled campaign (Try it runs it anyway) and a customer
    campaign = running_campaign(shop, "Ten", *TEN_PERCENT, state="disabled")
    CustomerProfile.objects.create(environment=shop.environment, integration_id="c-1")
    # when
    response = admin_client.post(
        f"{LIST}{campaign.pk}/try/", {"customer": "c-1", "cart": json.dumps(CART), "shipping": "4.95"}
    )
    # then: 10% of 43.90
    page = text(response)
    assert response.status_code == 200
    assert "Discount “Ten” on the session total" in page and "EUR 4.39" in page
    assert CustomerSession.objects.count() == 0 and EffectRecord.objects.count() == 0


def test_try_it_says_why_a_rule_did_not_apply(admin_client: Client, shop: Application) -> None:
    campaign = running_campaign(shop, "Ten", *TEN_PERCENT)
    page = text(admin_client.post(f"{LIST}{campaign.pk}/try/", {"cart": json.dumps(CART[:1])}))
    assert "No effect" in page and "Condition 1 is not met." in page


def test_a_campaign_from_the_customer_group_template(admin_client: Client, shop: Application) -> None:
    CustomerGroup.objects.create(environment=shop.environment, name="VIP")
    url = f"{LIST}from-template/?application={shop.pk}"
    assert "Customer group discount" in text(admin_client.get(url))
    response = admin_client.post(
        url,
        {
            "application": shop.pk,
            "template": "customer_group_discount",
            "customer_group_discount-name": "VIP 15%",
            "customer_group_discount-group": "VIP",
            "customer_group_discount-percent": "15",
        },
    )
    campaign = Campaign.objects.get(name="VIP 15%")
    assert response.status_code == 302 and response["Location"].endswith(f"/{campaign.pk}/change/")
    assert campaign.state == "disabled" and campaign.template == "customer_group_discount"
    assert campaign.active_ruleset.rules == catalog.customer_group_discount(  # type: ignore[union-attr]
        name="VIP 15%", group="VIP", percent=15
    )


def test_a_group_of_another_environment_is_refused(admin_client: Client, shop: Application) -> None:
    sandbox = make_application(environment="sandbox")
    CustomerGroup.objects.create(environment=sandbox.environment, name="Testers")
    response = admin_client.post(
        f"{LIST}from-template/?application={shop.pk}",
        {
            "application": shop.pk,
            "template": "customer_group_discount",
            "customer_group_discount-name": "Testers",
            "customer_group_discount-group": "Testers",
            "customer_group_discount-percent": "15",
        },
    )
    assert "Pick a customer group of the application" in text(response)
    assert not Campaign.objects.exists()


def test_the_tree_reorders_campaigns_and_changes_a_group_mode(
    admin_client: Client, shop: Application
) -> None:
    first = running_campaign(shop, "First")
    second = running_campaign(shop, "Second")
    base = base_group(shop)
    page = text(admin_client.get(TREE, {"application": shop.pk}))
    assert page.index(">First<") < page.index(">Second<")
    # when the marketer moves the second up and makes the base group exclusive
    move = {"application": shop.pk, "action": "move", "group": base.pk, "kind": "campaign", "id": second.pk}
    assert admin_client.post(TREE, {**move, "direction": "up"}).status_code == 302
    mode = {"application": shop.pk, "action": "mode", "group": base.pk, "mode": "listOrder"}
    assert admin_client.post(TREE, mode).status_code == 302
    # then
    page = text(admin_client.get(TREE, {"application": shop.pk}))
    assert page.index(">Second<") < page.index(">First<")
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.position < first.position
    assert EvaluationGroup.objects.get(pk=base.pk).mode == "listOrder"


def test_the_tree_adds_a_group(admin_client: Client, shop: Application) -> None:
    base = base_group(shop)
    new = {
        "application": shop.pk,
        "action": "create",
        "name": "Weekend",
        "parent": base.pk,
        "mode": "highestDiscount",
    }
    admin_client.post(TREE, new)
    group = EvaluationGroup.objects.get(application=shop, name="Weekend")
    assert group.parent == base and group.mode == "highestDiscount"


def test_deleting_asks_first_then_keeps_the_row_out_of_sight(admin_client: Client, shop: Application) -> None:
    campaign = running_campaign(shop, "Ten", *TEN_PERCENT)
    url = f"{LIST}{campaign.pk}/delete/"
    assert "Delete the campaign “Ten”?" in text(admin_client.get(url))
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.deleted_at is not None and campaign.state == "archived"
    assert ">Ten<" not in text(admin_client.get(LIST))


def test_staff_need_the_campaign_permissions(shop: Application) -> None:
    running_campaign(shop, "Ten", *TEN_PERCENT)
    user = get_user_model().objects.create_user("clerk", "clerk@example.com", "pw-123456", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get(LIST).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    assert client.get(LIST).status_code == 200
    assert client.post(TREE, {"application": shop.pk, "action": "mode"}).status_code == 403
    assert client.get(f"{LIST}from-template/").status_code == 403
