"""The segment pages of the back office, through Django's test client."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from patronage.segments.models import Segment
from patronage.segments.services import segment_create
from patronage.testing.mailings import make_customers
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

PREVIEW = "/admin/segments/segment/preview/"
CUSTOMERS = "/admin/customers/customerprofile/"
DOMAIN = {
    "type": "group",
    "match": "all",
    "children": [
        {"type": "condition", "field": "profile.email", "operator": "domain", "value": "vip.example"}
    ],
}


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456"))
    return client


@pytest.fixture
def live() -> Environment:
    return environment_get(Environment.LIVE)


def test_the_change_page_carries_the_builder_with_the_saved_rules(
    admin_client: Client, live: Environment
) -> None:
    segment = segment_create(environment=live, name="VIPs", rules=DOMAIN)
    page = admin_client.get(f"/admin/segments/segment/{segment.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="segment-builder-data"' in html and "profile.email" in html
    assert f"segment={segment.pk}" in html  # the link to its members in the customer list


def test_the_preview_counts_and_samples_or_points_at_the_problem(
    admin_client: Client, live: Environment
) -> None:
    for n, profile in enumerate(make_customers(live, 3, prefix="v")):
        profile.email = f"v{n}@vip.example" if n else profile.email
        profile.save(update_fields=["email"])
    ok = admin_client.post(PREVIEW, {"environment": "live", "rules": DOMAIN}, content_type="application/json")
    assert ok.status_code == 200
    assert ok.json()["count"] == 2
    assert [row["integration_id"] for row in ok.json()["sample"]] == ["v2", "v1"]

    bad = {
        "type": "group",
        "children": [{"type": "condition", "field": "orders.count", "operator": "contains"}],
    }
    refused = admin_client.post(
        PREVIEW, {"environment": "live", "rules": bad}, content_type="application/json"
    )
    assert refused.status_code == 422
    problem = refused.json()["problems"][0]
    assert problem["pointer"] == "/rules/children/0/operator"
    assert "operator 'contains' is not valid for Number of orders" in problem["details"]


def test_the_preview_needs_permission_to_view_segments(live: Environment) -> None:
    user = get_user_model().objects.create_user("clerk", password="pw-123456", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_customerprofile"))
    client = Client()
    client.force_login(user)
    response = client.post(PREVIEW, {"environment": "live", "rules": DOMAIN}, content_type="application/json")
    assert response.status_code == 403


def test_saving_malformed_json_keeps_nothing_and_says_where(admin_client: Client, live: Environment) -> None:
    response = admin_client.post(
        "/admin/segments/segment/add/",
        {"environment": "live", "name": "Broken", "description": "", "rules": '{"type": "group",'},
    )
    assert response.status_code == 200
    assert "Not JSON" in response.content.decode()
    assert not Segment.objects.exists()


def test_the_customer_list_filters_by_segment_and_refuses_one_of_the_other_environment(
    admin_client: Client, live: Environment
) -> None:
    vip = make_customers(live, 2, prefix="x")[0]
    vip.email = "x@vip.example"
    vip.save(update_fields=["email"])
    segment = segment_create(environment=live, name="VIPs", rules=DOMAIN)
    listed = admin_client.get(f"{CUSTOMERS}?segment={segment.pk}")
    assert listed.context["cl"].result_count == 1
    assert "Segment: VIPs" in listed.content.decode()

    sandbox = admin_client.get(f"{CUSTOMERS}?environment=sandbox&segment={segment.pk}", follow=True)
    assert sandbox.context["cl"].result_count == 0
    assert any("no segment" in str(m) for m in sandbox.context["messages"])
