"""The official talon-one-python-sdk drives our Integration API unmodified, against a real server."""

from __future__ import annotations

import json

import pytest
import talon_one
from talon_one import models as t
from talon_one.rest import ApiException

from patronage.testing.factories import make_api_key, make_application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sdk(live_server: object) -> talon_one.IntegrationApi:
    key = make_api_key(make_application(environment="live"))
    configuration = talon_one.Configuration(
        host=live_server.url,  # type: ignore[attr-defined]
        api_key={"Authorization": key},
        api_key_prefix={"Authorization": "ApiKey-v1"},
    )
    return talon_one.IntegrationApi(talon_one.ApiClient(configuration))


def _cart() -> list[t.CartItem]:
    return [
        t.CartItem(name="Mug", sku="MUG", quantity=2, price=9.5, category="kitchen"),
        t.CartItem(name="Beans", sku="BEAN", quantity=1, price=24.9, category="coffee"),
    ]


def test_session_life_cycle_through_the_sdk(sdk: talon_one.IntegrationApi) -> None:
    # given an open cart
    state = sdk.update_customer_session_v2(
        "order-1",
        t.IntegrationRequest(
            customer_session=t.NewCustomerSessionV2(
                profile_id="sdk-customer", cart_items=_cart(), attributes={"a": 1}
            ),
            response_content=["customerSession", "customerProfile"],
        ),
    )
    assert isinstance(state, t.IntegrationStateV2)
    assert state.customer_session.state == "open"
    assert state.customer_session.total == pytest.approx(43.9)
    assert state.customer_profile.integration_id == "sdk-customer"
    assert state.effects == []

    # when it is closed, then it is an order
    closed = sdk.update_customer_session_v2(
        "order-1", t.IntegrationRequest(customer_session=t.NewCustomerSessionV2(state="closed"))
    )
    assert closed.customer_session.state == "closed"
    assert closed.customer_profile.closed_sessions == 1

    fetched = sdk.get_customer_session("order-1")
    assert fetched.customer_session.cart_items[0].sku == "MUG"

    # returns
    returned = sdk.return_cart_items(
        "order-1",
        t.ReturnIntegrationRequest(
            _return=t.NewReturn(returned_cart_items=[t.ReturnedCartItem(position=1, quantity=1)])
        ),
    )
    assert returned.customer_session.state == "partially_returned"
    assert returned._return.returned_cart_items[0].position == 1
    assert returned.customer_profile.total_sales == pytest.approx(19.0)


def test_reopen_through_the_sdk(sdk: talon_one.IntegrationApi) -> None:
    sdk.update_customer_session_v2(
        "order-2",
        t.IntegrationRequest(
            customer_session=t.NewCustomerSessionV2(profile_id="c2", cart_items=_cart(), state="closed")
        ),
    )
    reopened = sdk.reopen_customer_session("order-2")
    assert reopened.effects == []
    assert sdk.get_customer_session("order-2").customer_session.state == "open"


def test_profiles_through_the_sdk(sdk: talon_one.IntegrationApi) -> None:
    response = sdk.update_customer_profile_v2(
        "sdk-p1",
        t.CustomerProfileIntegrationRequestV2(attributes={"Name": "Ann", "Email": "ann@example.com"}),
    )
    assert response.customer_profile.attributes["Name"] == "Ann"
    bulk = sdk.update_customer_profiles_v2(
        t.MultipleCustomerProfileIntegrationRequest(
            customer_profiles=[
                t.MultipleCustomerProfileIntegrationRequestItem(
                    integration_id=f"sdk-b{i}", attributes={"Name": f"B{i}"}
                )
                for i in range(3)
            ]
        ),
        silent="no",
    )
    assert [s.customer_profile.integration_id for s in bulk.integration_states] == [
        "sdk-b0",
        "sdk-b1",
        "sdk-b2",
    ]
    sdk.delete_customer_data("sdk-p1")
    with pytest.raises(ApiException) as gone:
        sdk.delete_customer_data("sdk-p1")
    assert gone.value.status == 404


def test_errors_reach_the_sdk_as_talon_error_bodies(sdk: talon_one.IntegrationApi) -> None:
    sdk.update_customer_session_v2(
        "order-3",
        t.IntegrationRequest(customer_session=t.NewCustomerSessionV2(profile_id="c3", state="cancelled")),
    )
    with pytest.raises(ApiException) as refused:
        sdk.update_customer_session_v2(
            "order-3", t.IntegrationRequest(customer_session=t.NewCustomerSessionV2(state="closed"))
        )
    assert refused.value.status == 400
    body = json.loads(refused.value.body)
    assert body["message"] == "Cannot change the state of customer session order-3 from cancelled to closed"
    assert body["errors"][0]["source"]["pointer"] == "/customerSession/state"


def test_wrong_key_is_401_through_the_sdk(sdk: talon_one.IntegrationApi) -> None:
    sdk.api_client.configuration.api_key["Authorization"] = "not-a-key"
    with pytest.raises(ApiException) as denied:
        sdk.get_customer_session("x")
    assert denied.value.status == 401
    assert json.loads(denied.value.body)["message"] == "Invalid API key"
