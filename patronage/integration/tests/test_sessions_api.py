from __future__ import annotations

import pytest

from patronage.customer_sessions.models import CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.testing.api import IntegrationClient
from patronage.testing.factories import make_api_key, make_application

CART = [
    {"name": "Mug", "sku": "MUG", "quantity": 2, "price": 9.5, "category": "kitchen"},
    {"name": "Beans", "sku": "BEAN", "quantity": 1, "price": 24.9, "category": "coffee", "weight": 1000},
]


def test_creating_a_session_creates_its_customer_and_totals_the_cart(api: IntegrationClient) -> None:
    # when
    response = api.session(
        "s-1", profileId="cust-1", cartItems=CART, additionalCosts={"shipping": {"price": 5}}
    )
    # then
    assert response.status_code == 200
    body = response.json()
    session = body["customerSession"]
    assert session["state"] == "open"
    assert session["cartItemTotal"] == 43.9
    assert session["additionalCostTotal"] == 5
    assert session["total"] == 48.9
    assert [i["sku"] for i in session["cartItems"]] == ["MUG", "BEAN"]
    assert session["cartItems"][1]["weight"] == 1000
    assert body["customerProfile"]["integrationId"] == "cust-1"
    assert body["effects"] == [] and body["createdCoupons"] == [] and body["createdReferrals"] == []


def test_updates_build_on_each_other_and_attributes_merge(api: IntegrationClient) -> None:
    api.session("s-1", profileId="c", cartItems=CART, attributes={"channel": "web", "note": "x"})
    # when: only attributes are sent
    body = api.session("s-1", attributes={"note": None, "gift": True}).json()["customerSession"]
    # then: the cart stays, attributes merge, null removes
    assert len(body["cartItems"]) == 2
    assert body["attributes"] == {"channel": "web", "gift": True}
    assert body["profileId"] == "c"


def test_a_new_cart_replaces_the_old_one_whether_shorter_or_longer(api: IntegrationClient) -> None:
    three = [{"sku": f"A{n}", "quantity": 1, "price": 1, "size": "L"} for n in range(3)]
    api.session("s-1", profileId="c", cartItems=three)
    # when: a shorter cart, without the extra field, then a longer one
    shorter = api.session("s-1", cartItems=[{"sku": "B0", "quantity": 2, "price": 5}]).json()
    longer = api.session("s-1", cartItems=[{"sku": f"C{n}", "quantity": 1, "price": 2} for n in range(4)])
    # then: each answer and the stored cart hold exactly the items last sent
    assert [(i["sku"], i["position"]) for i in shorter["customerSession"]["cartItems"]] == [("B0", 0)]
    assert "size" not in shorter["customerSession"]["cartItems"][0]
    assert shorter["customerSession"]["cartItemTotal"] == 10
    stored = api.get("/v2/customer_sessions/s-1").json()["customerSession"]
    assert stored == longer.json()["customerSession"]
    assert [(i["sku"], i["position"]) for i in stored["cartItems"]] == [(f"C{n}", n) for n in range(4)]
    assert stored["cartItemTotal"] == 8


def test_closing_makes_an_order_counted_on_the_customer(api: IntegrationClient) -> None:
    api.session("s-1", profileId="c", cartItems=CART)
    body = api.session("s-1", state="closed").json()
    assert body["customerSession"]["state"] == "closed"
    assert body["customerSession"]["closedAt"]
    assert body["customerProfile"]["closedSessions"] == 1
    assert body["customerProfile"]["totalSales"] == 43.9


@pytest.mark.parametrize(
    ("path", "target", "ok"),
    [
        (["closed"], "cancelled", True),
        (["closed"], "partially_returned", True),
        (["cancelled"], "open", False),
        (["cancelled"], "closed", False),
        (["closed"], "open", False),
        (["closed", "partially_returned"], "cancelled", True),
        (["closed", "partially_returned"], "closed", False),
        ([], "partially_returned", False),
    ],
)
def test_state_transitions_follow_talon_one(
    api: IntegrationClient, path: list[str], target: str, ok: bool
) -> None:
    api.session("s-1", profileId="c", cartItems=CART)
    for state in path:
        assert api.session("s-1", state=state).status_code == 200
    current = path[-1] if path else "open"
    response = api.session("s-1", state=target)
    if ok:
        assert response.status_code == 200
        assert response.json()["customerSession"]["state"] == target
    else:
        assert response.status_code == 400
        error = response.json()
        assert f"from {current} to {target}" in error["message"]
        assert error["errors"][0]["source"]["pointer"] == "/customerSession/state"


def test_a_closed_session_refuses_cart_edits(api: IntegrationClient) -> None:
    api.session("s-1", profileId="c", cartItems=CART, state="closed")
    response = api.session("s-1", cartItems=CART[:1])
    assert response.status_code == 400
    assert "only its state can change" in response.json()["message"]
    assert len(api.get("/v2/customer_sessions/s-1").json()["customerSession"]["cartItems"]) == 2


def test_dry_run_evaluates_without_saving(api: IntegrationClient) -> None:
    response = api.put(
        "/v2/customer_sessions/s-dry?dry=true", {"customerSession": {"profileId": "c", "cartItems": CART}}
    )
    assert response.status_code == 200
    assert response.json()["customerSession"]["total"] == 43.9
    assert not CustomerSession.objects.filter(integration_id="s-dry").exists()
    assert not CustomerProfile.objects.filter(integration_id="c").exists()


def test_returns_reduce_sales_and_mark_the_session(api: IntegrationClient) -> None:
    api.session("s-1", profileId="c", cartItems=CART, state="closed")
    response = api.post(
        "/v2/customer_sessions/s-1/returns",
        {"return": {"returnedCartItems": [{"position": 0, "quantity": 1}]}},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["customerSession"]["state"] == "partially_returned"
    assert body["customerSession"]["cartItems"][0]["returnedQuantity"] == 1
    assert body["customerProfile"]["totalSales"] == pytest.approx(34.4)
    assert body["return"]["returnedCartItems"] == [{"position": 0, "quantity": 1}]
    # returning more than remains is refused and points at the item
    too_many = api.post(
        "/v2/customer_sessions/s-1/returns",
        {"return": {"returnedCartItems": [{"position": 0, "quantity": 2}]}},
    )
    assert too_many.status_code == 400
    assert too_many.json()["errors"][0]["source"]["pointer"] == "/return/returnedCartItems/0/quantity"
    missing = api.post(
        "/v2/customer_sessions/s-1/returns", {"return": {"returnedCartItems": [{"position": 9}]}}
    )
    assert missing.status_code == 400 and "no item at position 9" in missing.json()["message"]


def test_reopen_puts_a_closed_order_back_to_open(api: IntegrationClient) -> None:
    api.session("s-1", profileId="c", cartItems=CART, state="closed")
    assert api.put("/v2/customer_sessions/s-1/reopen").json() == {"effects": []}
    body = api.get("/v2/customer_sessions/s-1").json()["customerSession"]
    assert body["state"] == "open"
    assert CustomerProfile.objects.get(integration_id="c").closed_sessions == 0
    # an open session cannot be reopened
    again = api.put("/v2/customer_sessions/s-1/reopen")
    assert again.status_code == 400 and "from open to open" in again.json()["message"]


def test_unknown_session_is_404_with_talon_error_body(api: IntegrationClient) -> None:
    response = api.get("/v2/customer_sessions/nope")
    assert response.status_code == 404
    assert response.json()["errors"][0]["title"] == "Not found"
    assert api.put("/v2/customer_sessions/nope/reopen").status_code == 404


def test_sandbox_and_live_are_separate_but_shops_of_one_environment_share_customers(
    api: IntegrationClient, sandbox_api: IntegrationClient, live_app: object
) -> None:
    api.put("/v2/customer_profiles/same-id", {"attributes": {"Name": "Live Ann"}})
    sandbox_api.put("/v2/customer_profiles/same-id", {"attributes": {"Name": "Sandbox Ann"}})
    assert CustomerProfile.objects.filter(integration_id="same-id").count() == 2
    api.session("s-1", profileId="same-id")
    # the sandbox key cannot see the live session
    assert sandbox_api.get("/v2/customer_sessions/s-1").status_code == 404
    # a second live shop sees the same live customer
    other_live = IntegrationClient(make_api_key(make_application(environment="live")))
    body = other_live.session("s-other", profileId="same-id").json()
    assert body["customerProfile"]["attributes"]["Name"] == "Live Ann"
    assert body["customerProfile"]["sandbox"] is False
    assert other_live.get("/v2/customer_sessions/s-1").status_code == 404  # sessions belong to a shop


def test_erasure_removes_the_customer_and_anonymizes_orders(api: IntegrationClient) -> None:
    api.put("/v2/customer_profiles/c", {"attributes": {"Email": "ann@example.com", "Name": "Ann"}})
    api.session("s-1", profileId="c", cartItems=CART, state="closed")
    response = api.delete("/v1/customer_data/c")
    assert response.status_code == 204
    assert not CustomerProfile.objects.filter(integration_id="c").exists()
    order = CustomerSession.objects.get(integration_id="s-1")
    assert order.profile is None and order.profile_integration_id == "" and order.anonymized
    assert order.items.count() == 2
    assert api.delete("/v1/customer_data/c").status_code == 404


def test_validation_errors_point_at_the_field(api: IntegrationClient) -> None:
    response = api.session("s-1", cartItems=[{"sku": "A", "quantity": 0, "price": "abc"}])
    assert response.status_code == 400
    pointers = {e["source"]["pointer"] for e in response.json()["errors"]}
    assert pointers == {"/customerSession/cartItems/0/quantity", "/customerSession/cartItems/0/price"}
    bad_state = api.session("s-1", state="shipped")
    assert bad_state.json()["errors"][0]["source"]["pointer"] == "/customerSession/state"


def test_malformed_json_oversized_bodies_and_unknown_paths_get_json_errors(
    api: IntegrationClient, settings: object
) -> None:
    malformed = api.put("/v2/customer_sessions/s-1", raw='{"customerSession": {')
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["message"]
    settings.PATRONAGE_MAX_BODY_BYTES = 1000  # type: ignore[attr-defined]
    big = api.session("s-1", attributes={"blob": "x" * 2000})
    assert big.status_code == 413
    assert "limit is 1000 bytes" in big.json()["message"]
    unknown = api.get("/v2/no_such_thing")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "No endpoint GET /v2/no_such_thing"


def test_openapi_documents_are_published(client: object, db: None) -> None:
    integration = client.get("/openapi.json").json()  # type: ignore[attr-defined]
    assert "/v2/customer_sessions/{customerSessionId}" in integration["paths"]
    management = client.get("/api/v1/openapi.json").json()  # type: ignore[attr-defined]
    assert "/api/v1/applications" in management["paths"]
    assert client.get("/docs").status_code == 200  # type: ignore[attr-defined]
    assert client.get("/api/v1/docs").status_code == 200  # type: ignore[attr-defined]
