"""The segments Management API, as a staff tool (or a rule builder in the browser) would use it."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.customers.services import ProfileInput, profile_create
from patronage.segments.models import Segment
from patronage.segments.services import segment_create
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

SEGMENT_PERMS = ["view_segment", "add_segment", "change_segment", "delete_segment"]
EVERYONE = {"type": "group", "match": "all", "negate": False, "children": []}


class Staff:
    def __init__(self, *perms: str, username: str = "staff") -> None:
        self.user = get_user_model().objects.create_user(username, password="pw-123456", is_staff=True)
        self.user.user_permissions.set(Permission.objects.filter(codename__in=perms))
        self.client = Client()
        self.client.force_login(self.user)

    def call(self, method: str, url: str, body: Any = None) -> Any:
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(method, "/api/v1" + url, data=data, content_type="application/json")


@pytest.fixture
def staff() -> Staff:
    return Staff(*SEGMENT_PERMS, "view_customerprofile")


@pytest.fixture
def live() -> Environment:
    return environment_get(Environment.LIVE)


@pytest.fixture
def sandbox() -> Environment:
    return environment_get(Environment.SANDBOX)


def condition(field: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"type": "condition", "field": field, "operator": operator, "value": value, **extra}


def group(*children: dict[str, Any], match: str = "all") -> dict[str, Any]:
    return {"type": "group", "match": match, "negate": False, "children": list(children)}


def customer(environment: Environment, integration_id: str, email: str, **fields: Any) -> CustomerProfile:
    return profile_create(
        environment=environment,
        data=ProfileInput(name=integration_id.title(), email=email, **fields),
        integration_id=integration_id,
    )


def at_example(environment: Environment, name: str = "Example customers") -> Segment:
    rules = group(condition("profile.email", "domain", "example.com"))
    return segment_create(environment=environment, name=name, rules=rules)


def pointers(response: Any) -> dict[str, str]:
    return {e["source"]["pointer"]: e["details"] for e in response.json()["errors"]}


# --- CRUD ----------------------------------------------------------------------------------------------
def test_staff_create_read_change_list_and_delete_a_segment(staff: Staff, live: Environment) -> None:
    rules = group(condition("orders.count", "gte", 2), condition("profile.accepts_marketing", "is", True))
    # When staff create a segment
    response = staff.call(
        "POST",
        "/segments",
        {"environment": "live", "name": "Loyal", "description": " Two orders or more ", "rules": rules},
    )
    # Then it is saved as given, its description trimmed
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["environment"] == "live" and created["name"] == "Loyal"
    assert created["description"] == "Two orders or more" and created["rules"] == rules
    segment_id = created["id"]
    assert staff.call("GET", f"/segments/{segment_id}").json() == created
    # When they rename it and change its rules
    changed_rules = group(condition("orders.count", "gte", 3))
    response = staff.call("PUT", f"/segments/{segment_id}", {"name": "Very loyal", "rules": changed_rules})
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Very loyal" and response.json()["rules"] == changed_rules
    assert response.json()["description"] == ""
    assert response.json()["updated"] >= created["updated"]
    # Then the list of live segments shows it, and the sandbox's does not
    listed = staff.call("GET", "/segments").json()
    assert listed["count"] == 1 and listed["items"][0]["name"] == "Very loyal"
    assert staff.call("GET", "/segments?environment=sandbox").json()["count"] == 0
    # When they delete it, it is gone
    assert staff.call("DELETE", f"/segments/{segment_id}").status_code == 204
    assert staff.call("GET", f"/segments/{segment_id}").status_code == 404
    assert not Segment.objects.exists()
    # And each change left a row in the audit log, by them
    flags = LogEntry.objects.filter(user=staff.user, object_id=str(segment_id)).values_list(
        "action_flag", flat=True
    )
    assert sorted(flags) == [ADDITION, CHANGE, DELETION]


def test_list_is_by_name_and_paginated(staff: Staff, live: Environment) -> None:
    for name in ["charlie", "Alpha", "bravo"]:
        segment_create(environment=live, name=name, rules=EVERYONE)
    page = staff.call("GET", "/segments?environment=live&limit=2&offset=1").json()
    assert page["count"] == 3
    assert [s["name"] for s in page["items"]] == ["bravo", "charlie"]


def test_names_are_unique_per_environment_ignoring_case(
    staff: Staff, live: Environment, sandbox: Environment
) -> None:
    at_example(live, name="Newsletter")
    # When staff create a second live segment of the same name in other case
    response = staff.call(
        "POST", "/segments", {"environment": "live", "name": "NEWSLETTER", "rules": EVERYONE}
    )
    # Then it is refused, pointing at the name
    assert response.status_code == 400
    assert list(pointers(response)) == ["/name"]
    assert "already a segment named 'NEWSLETTER'" in response.json()["message"]
    # But the sandbox may have its own
    response = staff.call(
        "POST", "/segments", {"environment": "sandbox", "name": "Newsletter", "rules": EVERYONE}
    )
    assert response.status_code == 201
    # And renaming another live segment onto the name is refused too
    other = at_example(live, name="Other")
    response = staff.call("PUT", f"/segments/{other.pk}", {"name": " newsletter ", "rules": EVERYONE})
    assert response.status_code == 400 and list(pointers(response)) == ["/name"]
    assert Segment.objects.get(pk=other.pk).name == "Other"


def test_an_empty_name_points_at_name(staff: Staff, live: Environment) -> None:
    response = staff.call("POST", "/segments", {"environment": "live", "name": "  ", "rules": EVERYONE})
    assert response.status_code == 400
    assert pointers(response) == {"/name": "A segment needs a name"}


def test_unknown_environment_is_400_pointing_at_it(staff: Staff, live: Environment) -> None:
    response = staff.call("POST", "/segments", {"environment": "staging", "name": "X", "rules": EVERYONE})
    assert response.status_code == 400
    assert pointers(response) == {"/environment": "No environment 'staging'"}
    response = staff.call("POST", "/segments/preview", {"environment": "staging", "rules": EVERYONE})
    assert response.status_code == 400 and list(pointers(response)) == ["/environment"]
    # In a query string it is a parameter, as Talon.One says
    response = staff.call("GET", "/segments?environment=staging")
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "environment"}
    assert staff.call("GET", "/segments/fields?environment=staging").status_code == 400
    assert not Segment.objects.exists()


def test_unknown_segment_is_404_everywhere(staff: Staff, live: Environment) -> None:
    for method, url in [
        ("GET", "/segments/999999"),
        ("GET", "/segments/999999/count"),
        ("GET", "/segments/999999/members"),
        ("GET", "/segments/999999/export"),
        ("DELETE", "/segments/999999"),
    ]:
        response = staff.call(method, url)
        assert response.status_code == 404, (method, url)
        assert response.json()["message"] == "Segment 999999 not found"
    response = staff.call("PUT", "/segments/999999", {"name": "X", "rules": EVERYONE})
    assert response.status_code == 404


def test_missing_members_of_the_body_are_400(staff: Staff, live: Environment) -> None:
    response = staff.call("POST", "/segments", {"environment": "live", "name": "No rules"})
    assert response.status_code == 400
    assert list(pointers(response)) == ["/rules"]


# --- access --------------------------------------------------------------------------------------------
def test_each_call_needs_its_permission(live: Environment) -> None:
    segment = at_example(live)
    nobody = Staff(username="nobody")
    calls = [
        ("GET", "/segments", None, "segments.view_segment"),
        ("GET", f"/segments/{segment.pk}", None, "segments.view_segment"),
        ("GET", f"/segments/{segment.pk}/count", None, "segments.view_segment"),
        ("GET", "/segments/fields", None, "segments.view_segment"),
        (
            "POST",
            "/segments",
            {"environment": "live", "name": "X", "rules": EVERYONE},
            "segments.add_segment",
        ),
        ("PUT", f"/segments/{segment.pk}", {"name": "X", "rules": EVERYONE}, "segments.change_segment"),
        ("DELETE", f"/segments/{segment.pk}", None, "segments.delete_segment"),
    ]
    for method, url, body, perm in calls:
        response = nobody.call(method, url, body)
        assert response.status_code == 403, (method, url)
        assert response.json()["message"] == f"Your account lacks the permission {perm}"
    assert Segment.objects.get().name == "Example customers"


def test_members_are_customer_data_and_need_the_customers_permission_too(live: Environment) -> None:
    segment = at_example(live)
    viewer = Staff("view_segment")
    # Counting is fine with the segment permission alone
    assert viewer.call("GET", f"/segments/{segment.pk}/count").status_code == 200
    # Who the members are is not
    for method, url, body in [
        ("GET", f"/segments/{segment.pk}/members", None),
        ("GET", f"/segments/{segment.pk}/export", None),
        ("POST", "/segments/preview", {"environment": "live", "rules": EVERYONE}),
    ]:
        response = viewer.call(method, url, body)
        assert response.status_code == 403, url
        assert "customers.view_customerprofile" in response.json()["message"]


def test_anonymous_callers_are_refused(client: Client, live: Environment) -> None:
    segment = at_example(live)
    for url in ["/api/v1/segments", f"/api/v1/segments/{segment.pk}/members", "/api/v1/segments/fields"]:
        response = client.get(url)
        assert response.status_code == 401
        assert response.json()["message"].startswith("Log in to the back office")
    response = client.post(
        "/api/v1/segments",
        json.dumps({"environment": "live", "name": "X", "rules": EVERYONE}),
        content_type="application/json",
    )
    assert response.status_code == 401
    assert Segment.objects.count() == 1


# --- malformed rules: 422, pointing into the body ------------------------------------------------------
@pytest.mark.parametrize(
    ("rules", "pointer", "details"),
    [
        (
            group(condition("profile.shoe_size", "is", "42")),
            "/rules/children/0/field",
            "unknown field 'profile.shoe_size'",
        ),
        (
            group(condition("profile.name", "gte", "M")),
            "/rules/children/0/operator",
            "operator 'gte' is not valid for Name (text)",
        ),
        (
            group(condition("orders.count", "gte", "two")),
            "/rules/children/0/value",
            "must be a whole number from 0 to",
        ),
        (
            group(
                condition("profile.accepts_marketing", "is", True),
                group(condition("profile.birth_date", "before", "yesterday"), match="any"),
            ),
            "/rules/children/1/children/0/value",
            "must be a date such as 2026-05-17, not 'yesterday'",
        ),
        (condition("profile.name", "is", "Ada"), "/rules/type", "the root must be a group"),
        ([], "/rules", "must be an object: a group or a condition"),
    ],
    ids=["unknown-field", "operator-for-type", "value-type", "nested", "root-condition", "not-an-object"],
)
def test_malformed_rules_are_422_pointing_at_the_node(
    staff: Staff, live: Environment, rules: Any, pointer: str, details: str
) -> None:
    # When staff save, change or preview rules with a mistake
    segment = at_example(live)
    responses = [
        staff.call("POST", "/segments", {"environment": "live", "name": "Bad", "rules": rules}),
        staff.call("PUT", f"/segments/{segment.pk}", {"name": "Bad", "rules": rules}),
        staff.call("POST", "/segments/preview", {"environment": "live", "rules": rules}),
    ]
    for response in responses:
        # Then each is refused with Talon.One's error body, pointing at the node at fault in the request
        assert response.status_code == 422, response.content
        body = response.json()
        assert body["message"].startswith(f"Invalid segment rules at {pointer}: ")
        assert len(body["errors"]) == 1
        error = body["errors"][0]
        assert error["title"] == "Invalid value" and details in error["details"]
        assert error["source"] == {"pointer": pointer}
    # And nothing changed
    assert list(Segment.objects.values_list("name", flat=True)) == ["Example customers"]


def test_every_problem_is_reported_at_once(staff: Staff, live: Environment) -> None:
    rules = group(
        condition("profile.name", "is", ""),
        condition("promo_codes.issued_count", "gte", 1, params={"group": 999_999, "colour": "red"}),
        group(condition("profile.email", "domain", "example.com"), match="some"),
    )
    response = staff.call("POST", "/segments", {"environment": "live", "name": "Bad", "rules": rules})
    assert response.status_code == 422
    assert set(pointers(response)) == {
        "/rules/children/0/value",
        "/rules/children/1/params/colour",
        "/rules/children/1/params/group",
        "/rules/children/2/match",
    }
    assert response.json()["message"].endswith("(and 3 more)")


# --- members -------------------------------------------------------------------------------------------
@pytest.fixture
def customers(live: Environment, sandbox: Environment) -> list[CustomerProfile]:
    people = [
        customer(live, "ada", "ada@example.com", accepts_marketing=True),
        customer(live, "bob", "bob@elsewhere.org"),
        customer(live, "cy", "cy@example.com"),
        customer(live, "dee", "dee@example.com", accepts_marketing=True),
    ]
    # The same kind of customer in the sandbox: never a member of a live segment, nor the other way round
    customer(sandbox, "eve", "eve@example.com", accepts_marketing=True)
    return people


def test_count_and_members_in_pages_by_id(
    staff: Staff, live: Environment, customers: list[CustomerProfile]
) -> None:
    segment = at_example(live)
    assert staff.call("GET", f"/segments/{segment.pk}/count").json() == {"count": 3}
    first = staff.call("GET", f"/segments/{segment.pk}/members?limit=2").json()
    second = staff.call("GET", f"/segments/{segment.pk}/members?limit=2&offset=2").json()
    assert first["count"] == second["count"] == 3
    assert [m["integrationId"] for m in first["items"]] == ["ada", "cy"]
    assert [m["integrationId"] for m in second["items"]] == ["dee"]
    # The members are the Management API's customer profiles
    ada = first["items"][0]
    assert ada == staff.call("GET", "/customer_profiles?environment=live").json()["items"][-1]
    assert set(ada) == {
        "id",
        "integrationId",
        "name",
        "email",
        "phone",
        "created",
        "lastActivity",
        "closedSessions",
    }


def test_members_follow_the_customers_as_they_change(
    staff: Staff, live: Environment, customers: list[CustomerProfile]
) -> None:
    segment = segment_create(
        environment=live,
        name="Marketing",
        rules=group(condition("profile.accepts_marketing", "is", True)),
    )
    assert staff.call("GET", f"/segments/{segment.pk}/count").json() == {"count": 2}
    CustomerProfile.objects.filter(integration_id="bob").update(accepts_marketing=True)
    assert staff.call("GET", f"/segments/{segment.pk}/count").json() == {"count": 3}


def test_a_sandbox_segment_never_holds_live_customers(
    staff: Staff, sandbox: Environment, customers: list[CustomerProfile]
) -> None:
    for rules in [EVERYONE, group(condition("profile.email", "domain", "example.com"))]:
        segment = segment_create(environment=sandbox, name=f"Everyone {len(rules['children'])}", rules=rules)
        members = staff.call("GET", f"/segments/{segment.pk}/members").json()
        assert [m["integrationId"] for m in members["items"]] == ["eve"]
        assert staff.call("GET", f"/segments/{segment.pk}/count").json() == {"count": 1}
        exported = staff.client.get(f"/api/v1/segments/{segment.pk}/export")
        assert [r["integration_id"] for r in csv_rows(exported)] == ["eve"]


def csv_text(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


def csv_rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(csv_text(response), newline="")))


def test_export_streams_the_members_as_customer_csv(
    staff: Staff, live: Environment, customers: list[CustomerProfile]
) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    CustomerProfile.objects.filter(integration_id="cy").update(group=vip, attributes={"tier": "gold"})
    segment = at_example(live, name="Example: all")
    # When staff export the segment
    response = staff.client.get(f"/api/v1/segments/{segment.pk}/export")
    # Then a CSV file comes, streamed, in the customers' import format
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="segment-example-all-live-') and disposition.endswith(
        '.csv"'
    )
    rows = csv_rows(response)
    assert [r["integration_id"] for r in rows] == ["ada", "cy", "dee"]
    # (the read-only columns an export adds after the attributes are the import's to ignore)
    assert rows[1]["created"] and rows[1]["last_activity"]
    assert {k: v for k, v in rows[1].items() if k not in ("created", "last_activity")} == {
        "integration_id": "cy",
        "name": "Cy",
        "email": "cy@example.com",
        "password": "",
        "phone": "",
        "birthday": "",
        "group": "VIP",
        "tax_exempt": "no",
        "accepts_marketing": "no",
        "attr.tier": "gold",
        "orders": "0",
        "total_sales": "0.00",
        "currency": "",
    }
    assert rows[0]["accepts_marketing"] == "yes" and rows[0]["attr.tier"] == ""


def test_an_empty_any_group_holds_nobody(
    staff: Staff, live: Environment, customers: list[CustomerProfile]
) -> None:
    segment = segment_create(environment=live, name="Nobody", rules=group(match="any"))
    assert staff.call("GET", f"/segments/{segment.pk}/count").json() == {"count": 0}
    assert staff.call("GET", f"/segments/{segment.pk}/members").json() == {"items": [], "count": 0}


def test_export_of_an_empty_segment_is_the_header_alone(
    staff: Staff, live: Environment, customers: list[CustomerProfile]
) -> None:
    segment = segment_create(environment=live, name="Nobody", rules=group(match="any"))
    response = staff.client.get(f"/api/v1/segments/{segment.pk}/export")
    assert csv_text(response).splitlines() == [
        "integration_id,name,email,password,phone,birthday,group,tax_exempt,accepts_marketing,"
        "orders,total_sales,currency,created,last_activity"
    ]


# --- preview and the catalogue -------------------------------------------------------------------------
def test_preview_counts_unsaved_rules_with_a_sample(
    staff: Staff, live: Environment, customers: list[CustomerProfile]
) -> None:
    rules = group(
        condition("profile.email", "domain", "example.com"),
        condition("profile.accepts_marketing", "is", True),
    )
    response = staff.call("POST", "/segments/preview", {"environment": "live", "rules": rules})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2
    assert [(s["integrationId"], s["name"], s["email"]) for s in body["sample"]] == [
        ("dee", "Dee", "dee@example.com"),
        ("ada", "Ada", "ada@example.com"),
    ]
    assert set(body["sample"][0]) == {"id", "integrationId", "name", "email"}
    # Nothing was saved
    assert not Segment.objects.exists()
    # The same rules in the sandbox find the sandbox's customers
    sandbox = staff.call("POST", "/segments/preview", {"environment": "sandbox", "rules": rules}).json()
    assert [s["integrationId"] for s in sandbox["sample"]] == ["eve"]


def test_fields_catalogue_lists_fields_operators_params_and_the_environments_rows(
    staff: Staff, live: Environment, sandbox: Environment
) -> None:
    CustomerGroup.objects.create(environment=live, name="VIP")
    CustomerGroup.objects.create(environment=sandbox, name="Testers")
    response = staff.call("GET", "/segments/fields?environment=live")
    assert response.status_code == 200
    catalogue = response.json()
    fields = {f["key"]: f for f in catalogue["fields"]}
    assert {"profile.email", "orders.count", "promo_codes.issued_count"} <= set(fields)
    issued = fields["promo_codes.issued_count"]
    assert issued["type"] == "count" and issued["category"] == "Promo codes"
    assert {"key": "between", "label": "between", "value": "count_range"} in issued["operators"]
    group_param = next(p for p in issued["params"] if p["name"] == "group")
    assert group_param["reference"] == "promo_groups" and group_param["value"] == "ids"
    # The ids a rule may name are the environment's own
    assert [label for _, label in catalogue["references"]["customer_groups"]["options"]] == ["VIP"]
    sandbox_catalogue = staff.call("GET", "/segments/fields?environment=sandbox").json()
    assert [label for _, label in sandbox_catalogue["references"]["customer_groups"]["options"]] == [
        "Testers"
    ]
