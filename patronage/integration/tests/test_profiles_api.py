from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.testing.api import IntegrationClient


def test_profile_attributes_land_in_columns_and_custom_attributes(api: IntegrationClient) -> None:
    response = api.put(
        "/v2/customer_profiles/c-1",
        {
            "attributes": {
                "Name": "Ann Lee",
                "Email": "Ann@Example.com",
                "PhoneNumber": "(201) 555-0123",
                "BirthDate": "1990-05-17",
                "TaxExempt": True,
                "AcceptsMarketing": True,
                "Shoe": 38,
            }
        },
    )
    assert response.status_code == 200
    profile = CustomerProfile.objects.get(integration_id="c-1")
    assert profile.phone == "+12015550123"
    assert str(profile.birth_date) == "1990-05-17"
    assert profile.tax_exempt and profile.accepts_marketing
    assert profile.attributes == {"Shoe": 38}
    shown = response.json()["customerProfile"]["attributes"]
    assert shown["Email"] == "Ann@Example.com" and shown["BirthDate"] == "1990-05-17T00:00:00Z"


def test_email_is_unique_case_insensitively_per_environment(
    api: IntegrationClient, sandbox_api: IntegrationClient
) -> None:
    api.put("/v2/customer_profiles/a", {"attributes": {"Email": "ann@example.com"}})
    clash = api.put("/v2/customer_profiles/b", {"attributes": {"Email": "ANN@example.com"}})
    assert clash.status_code == 400
    assert clash.json()["errors"][0]["source"]["pointer"] == "/attributes/Email"
    assert "already used by customer a" in clash.json()["message"]
    # another environment may hold the same email
    assert (
        sandbox_api.put("/v2/customer_profiles/b", {"attributes": {"Email": "ann@example.com"}}).status_code
        == 200
    )


def test_invalid_phone_and_date_are_reported_together(api: IntegrationClient) -> None:
    response = api.put(
        "/v2/customer_profiles/a", {"attributes": {"PhoneNumber": "12", "BirthDate": "17/05/1990"}}
    )
    assert response.status_code == 400
    pointers = [e["source"]["pointer"] for e in response.json()["errors"]]
    assert pointers == ["/attributes/PhoneNumber", "/attributes/BirthDate"]
    assert not CustomerProfile.objects.filter(integration_id="a").exists()


def test_last_activity_moves_with_writes_to_the_minute(api: IntegrationClient) -> None:
    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)

    def activity(at: dt.timedelta, write: Callable[[], Any]) -> str:
        with clock.frozen_at(start + at):
            return str(write().json()["customerProfile"]["lastActivity"])

    # given: the customer's first write
    first = activity(dt.timedelta(0), lambda: api.put("/v2/customer_profiles/a", {"attributes": {}}))
    assert first == "2026-03-01T09:00:00Z"
    # when: another write less than a minute later, then one a minute after the first
    soon = activity(dt.timedelta(seconds=59), lambda: api.session("s", profileId="a"))
    later = activity(dt.timedelta(seconds=60), lambda: api.session("s", profileId="a"))
    # then: the last activity is kept to the minute (each move rewrites every index of the profile)
    assert (soon, later) == (first, "2026-03-01T09:01:00Z")


def test_bulk_update_is_all_or_nothing(api: IntegrationClient) -> None:
    ok = api.put(
        "/v2/customer_profiles?silent=no",
        {
            "customerProfiles": [
                {"integrationId": f"b-{i}", "attributes": {"Name": f"N{i}"}} for i in range(50)
            ]
        },
    )
    assert ok.status_code == 200
    assert len(ok.json()["integrationStates"]) == 50
    bad = api.put(
        "/v2/customer_profiles",
        {
            "customerProfiles": [
                {"integrationId": "b-0", "attributes": {"Name": "changed"}},
                {"integrationId": "b-new", "attributes": {"Email": "not-an-email"}},
            ]
        },
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["source"]["pointer"] == "/customerProfiles/1/attributes/Email"
    assert CustomerProfile.objects.get(integration_id="b-0").name == "N0"
    assert not CustomerProfile.objects.filter(integration_id="b-new").exists()
    silent = api.put("/v2/customer_profiles", {"customerProfiles": [{"integrationId": "b-1"}]})
    assert silent.status_code == 204


def test_bulk_update_accepts_1000_and_refuses_1001(api: IntegrationClient) -> None:
    items = [{"integrationId": f"k-{i}", "attributes": {"Email": f"k{i}@example.com"}} for i in range(1001)]
    too_many = api.put("/v2/customer_profiles", {"customerProfiles": items})
    assert too_many.status_code == 400
    assert too_many.json()["errors"][0]["source"]["pointer"] == "/customerProfiles"
    assert api.put("/v2/customer_profiles", {"customerProfiles": items[:1000]}).status_code == 204
    assert CustomerProfile.objects.filter(integration_id__startswith="k-").count() == 1000


def test_bulk_refuses_duplicate_emails_inside_and_outside_the_batch(api: IntegrationClient) -> None:
    api.put("/v2/customer_profiles/owner", {"attributes": {"Email": "taken@example.com"}})
    response = api.put(
        "/v2/customer_profiles",
        {
            "customerProfiles": [
                {"integrationId": "x1", "attributes": {"Email": "same@example.com"}},
                {"integrationId": "x2", "attributes": {"Email": "SAME@example.com"}},
                {"integrationId": "x3", "attributes": {"Email": "Taken@example.com"}},
            ]
        },
    )
    assert response.status_code == 400
    details = [e["details"] for e in response.json()["errors"]]
    assert any("also used at index 0" in d for d in details)
    assert any("already used by customer owner" in d for d in details)
