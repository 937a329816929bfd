"""``?dry=true``: the answer of the real request, and nothing changed anywhere in the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from patronage.integration.api import api as integration_api
from patronage.testing.api import IntegrationClient

pytestmark = pytest.mark.django_db

CART = [{"sku": "A", "quantity": 2, "price": 10}, {"sku": "B", "quantity": 1, "price": 5}]


def _database() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, by model: what a dry run must leave exactly as it was."""
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values_list())
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


def _closed_order(api: IntegrationClient) -> None:
    api.session("s", profileId="c", cartItems=CART)
    api.session("s", state="closed")


# operationId -> (given, the request); the request is made dry, then real, and both answers compared.
Call = Callable[[IntegrationClient, str], Any]
CASES: dict[str, tuple[Callable[[IntegrationClient], None], Call]] = {
    "update_customer_session": (
        lambda api: api.session("s", profileId="c", cartItems=CART),
        lambda api, q: api.put(
            f"/v2/customer_sessions/s{q}",
            {"customerSession": {"state": "closed", "cartItems": CART[:1], "attributes": {"x": 1}}},
        ),
    ),
    "return_cart_items": (
        _closed_order,
        lambda api, q: api.post(
            f"/v2/customer_sessions/s/returns{q}",
            {"return": {"returnedCartItems": [{"position": 0, "quantity": 1}]}},
        ),
    ),
    "track_event": (
        lambda api: api.put("/v2/customer_profiles/c", {"attributes": {"Name": "Old"}}),
        lambda api, q: api.post(
            f"/v2/events{q or '?'}{'&' if q else ''}silent=no",
            {"profileId": "c", "type": "viewed_offer", "attributes": {"offer": "x"}},
        ),
    ),
    "update_customer_profile": (
        lambda api: api.put("/v2/customer_profiles/c", {"attributes": {"Name": "Old"}}),
        lambda api, q: api.put(
            f"/v2/customer_profiles/c{q}",
            {"attributes": {"Name": "New", "Email": "new@example.com", "AcceptsMarketing": True}},
        ),
    ),
}


def _operations_taking_dry() -> set[str]:
    document = integration_api.get_openapi_schema()
    return {
        operation["operationId"].removeprefix("patronage_integration_api_")
        for item in document["paths"].values()
        for operation in item.values()
        if any(p["name"] == "dry" for p in operation.get("parameters", []))
    }


def test_every_endpoint_that_takes_dry_is_tested_here() -> None:
    assert _operations_taking_dry() == set(CASES)


def _comparable(body: Any) -> Any:
    """The answer without what moves from one request to the next (ids from sequences, timestamps)."""
    if isinstance(body, dict):
        return {
            k: _comparable(v)
            for k, v in body.items()
            if k not in {"id", "updated", "created", "closedAt", "lastActivity", "eventId"}
        }
    if isinstance(body, list):
        return [_comparable(v) for v in body]
    return body


@pytest.mark.parametrize("operation", sorted(CASES))
@pytest.mark.parametrize("idempotency_key", [None, "key-1"])
def test_a_dry_request_changes_nothing_and_answers_as_the_real_one(
    api: IntegrationClient, operation: str, idempotency_key: str | None
) -> None:
    given, call = CASES[operation]
    given(api)
    before = _database()
    if idempotency_key:
        api.client = _with_header(api.client, idempotency_key)
    # when
    dry = call(api, "?dry=true")
    # then: not a row changed, not even an idempotency record or the customer's last activity
    assert dry.status_code in (200, 201), dry.content
    assert _database() == before
    # and the real request answers the same
    real = call(api, "")
    assert real.status_code == dry.status_code
    assert _comparable(real.json()) == _comparable(dry.json())
    assert _database() != before


def _with_header(client: Client, key: str) -> Client:
    client.defaults["HTTP_IDEMPOTENCY_KEY"] = key
    return client


def test_a_refused_dry_request_changes_nothing_either(api: IntegrationClient) -> None:
    _closed_order(api)
    before = _database()
    # when: a dry return of more than was bought
    response = api.post(
        "/v2/customer_sessions/s/returns?dry=true",
        {"return": {"returnedCartItems": [{"position": 0, "quantity": 3}]}},
    )
    # then
    assert response.status_code == 400
    assert _database() == before
