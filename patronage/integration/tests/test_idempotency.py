from __future__ import annotations

import datetime as dt

from django.test import RequestFactory

from patronage.core import clock
from patronage.customer_sessions.models import CartItem
from patronage.integration.idempotency import fingerprint, reserve
from patronage.integration.models import IdempotencyRecord
from patronage.testing.api import IntegrationClient
from patronage.workspace.models import Application

CLOSE = {
    "customerSession": {
        "profileId": "c",
        "state": "closed",
        "cartItems": [{"sku": "A", "quantity": 3, "price": 10}],
    }
}
RETURN_ONE = {"return": {"returnedCartItems": [{"position": 0, "quantity": 1}]}}


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def test_a_replay_returns_the_stored_response_and_applies_nothing(api: IntegrationClient) -> None:
    api.put("/v2/customer_sessions/s", CLOSE)
    first = api.post("/v2/customer_sessions/s/returns", RETURN_ONE, headers=_key("ret-1"))
    again = api.post("/v2/customer_sessions/s/returns", RETURN_ONE, headers=_key("ret-1"))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert CartItem.objects.get(sku="A").returned_quantity == 1


def test_the_same_key_with_another_payload_is_422(api: IntegrationClient) -> None:
    api.put("/v2/customer_sessions/s", CLOSE, headers=_key("k"))
    other = api.put("/v2/customer_sessions/s", {"customerSession": {"state": "cancelled"}}, headers=_key("k"))
    assert other.status_code == 422
    assert "already used for a different request" in other.json()["message"]
    assert other.json()["errors"][0]["source"] == {"parameter": "Idempotency-Key"}


def test_a_request_still_in_progress_makes_its_twin_409(
    api: IntegrationClient, live_app: Application
) -> None:
    body = b'{"customerSession": {"profileId": "c"}}'
    # given a twin that reserved the key and has not finished
    twin = RequestFactory().put("/v2/customer_sessions/s", data=body, content_type="application/json")
    reserve(live_app, "busy", fingerprint(twin))
    response = api.put("/v2/customer_sessions/s", raw=body, headers=_key("busy"))
    assert response.status_code == 409
    assert "still being processed" in response.json()["message"]


def test_errors_are_replayed_too(api: IntegrationClient) -> None:
    first = api.put("/v2/customer_sessions/s/reopen", headers=_key("r"))
    assert first.status_code == 404
    api.put("/v2/customer_sessions/s", CLOSE)
    # the session exists now, but the key already has its answer
    assert api.put("/v2/customer_sessions/s/reopen", headers=_key("r")).status_code == 404


def test_keys_expire_after_24_hours(api: IntegrationClient) -> None:
    api.put("/v2/customer_sessions/s", CLOSE)
    api.post("/v2/customer_sessions/s/returns", RETURN_ONE, headers=_key("old"))
    with clock.frozen_at(clock.now() + dt.timedelta(hours=24, minutes=1)):
        response = api.post("/v2/customer_sessions/s/returns", RETURN_ONE, headers=_key("old"))
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert CartItem.objects.get(sku="A").returned_quantity == 2


def test_keys_are_per_application_and_limited_to_255_characters(
    api: IntegrationClient, sandbox_api: IntegrationClient
) -> None:
    assert api.put("/v2/customer_profiles/a", {"attributes": {}}, headers=_key("shared")).status_code == 200
    assert (
        sandbox_api.put("/v2/customer_profiles/b", {"attributes": {}}, headers=_key("shared")).status_code
        == 200
    )
    too_long = api.put("/v2/customer_profiles/a", {"attributes": {}}, headers=_key("x" * 256))
    assert too_long.status_code == 400
    assert IdempotencyRecord.objects.count() == 2


def test_an_abandoned_reservation_is_taken_over(api: IntegrationClient, live_app: Application) -> None:
    body = b'{"attributes": {"Name": "Ann"}}'
    twin = RequestFactory().put("/v2/customer_profiles/a", data=body, content_type="application/json")
    reserve(live_app, "crashed", fingerprint(twin))  # its process died before finishing
    with clock.frozen_at(clock.now() + dt.timedelta(minutes=2)):
        response = api.put("/v2/customer_profiles/a", raw=body, headers=_key("crashed"))
    assert response.status_code == 200
    assert response.json()["customerProfile"]["attributes"]["Name"] == "Ann"
