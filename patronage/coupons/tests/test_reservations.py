"""Coupon reservations through the official SDK (9.0.0, unmodified) against a real server: reserving for
customers, listing the holders and removing reservations (Talon.One's #2-#4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import talon_one
from talon_one import models as t
from talon_one.rest import ApiException

from patronage.campaigns.tests.helpers import running_campaign
from patronage.coupons.models import Coupon, CouponReservation
from patronage.customers.models import CustomerProfile
from patronage.testing.factories import make_api_key, make_application
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db(transaction=True)


def refusal(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.value.body)
    return body


def integration_api(server_url: str, application: Application) -> talon_one.IntegrationApi:
    configuration = talon_one.Configuration(
        host=server_url,
        api_key={"Authorization": make_api_key(application)},
        api_key_prefix={"Authorization": "ApiKey-v1"},
    )
    return talon_one.IntegrationApi(talon_one.ApiClient(configuration))


@pytest.fixture
def shop(db: None) -> Application:
    return make_application(environment="live")


@pytest.fixture
def sdk(live_server: Any, shop: Application) -> talon_one.IntegrationApi:
    return integration_api(live_server.url, shop)


def coupon(application: Application, value: str, **fields: Any) -> Coupon:
    campaign = running_campaign(application, f"Coupons {value}", features=["coupons"])
    return Coupon.objects.create(application=application, campaign=campaign, value=value, **fields)


def holders(sdk: talon_one.IntegrationApi, value: str) -> list[str]:
    page = sdk.get_reserved_customers(value)
    assert isinstance(page, t.InlineResponse200)
    assert page.total_result_size == len(page.data)
    return [p.integration_id for p in page.data]


def test_reserving_a_coupon_for_customers_and_releasing_it(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given a coupon with a reservation limit of 1, and a customer the shop has told us about
    wallet = coupon(shop, "WALLET-10", reservation_limit=1, is_reservation_mandatory=True)
    CustomerProfile.objects.create(environment=shop.environment, integration_id="ann")

    # when the shop reserves it for Ann and for Bob, whom we have never seen
    answer = sdk.create_coupon_reservation("wallet-10", t.CouponReservations(integration_i_ds=["ann", "bob"]))

    # then the SDK gets the coupon, both hold it (the API ignores the reservation limit) and Bob exists now
    assert isinstance(answer, t.Coupon)
    assert (answer.id, answer.value, answer.is_reservation_mandatory) == (wallet.pk, "WALLET-10", True)
    assert answer.reservation_counter == 0
    assert holders(sdk, "WALLET-10") == ["ann", "bob"]
    assert CustomerProfile.objects.filter(environment=shop.environment, integration_id="bob").exists()

    # reserving again changes nothing
    sdk.create_coupon_reservation("WALLET-10", t.CouponReservations(integration_i_ds=["ann"]))
    assert CouponReservation.objects.filter(coupon=wallet).count() == 2

    # when the shop releases Ann's reservation, then only Bob holds it
    assert sdk.delete_coupon_reservation("WALLET-10", t.CouponReservations(integration_i_ds=["ann"])) is None
    assert holders(sdk, "WALLET-10") == ["bob"]
    # and the customers stay
    assert CustomerProfile.objects.filter(integration_id="ann").exists()


def test_personal_coupons_cannot_be_reserved_by_others(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    coupon(shop, "ANNS-ONLY", recipient_integration_id="ann", reservation=False)
    coupon(shop, "NOBODYS", reservation=False)

    # the recipient may hold her own coupon
    sdk.create_coupon_reservation("ANNS-ONLY", t.CouponReservations(integration_i_ds=["ann"]))
    assert holders(sdk, "ANNS-ONLY") == ["ann"]

    # anyone else is refused with a message saying whose it is
    with pytest.raises(ApiException) as refused:
        sdk.create_coupon_reservation("ANNS-ONLY", t.CouponReservations(integration_i_ds=["ann", "bob"]))
    assert refused.value.status == 400
    message = refusal(refused)["message"]
    assert "personal to customer 'ann'" in message and "'bob'" in message
    with pytest.raises(ApiException) as not_reservable:
        sdk.create_coupon_reservation("NOBODYS", t.CouponReservations(integration_i_ds=["carl"]))
    assert not_reservable.value.status == 400
    assert holders(sdk, "ANNS-ONLY") == ["ann"] and holders(sdk, "NOBODYS") == []


def test_unknown_codes_and_other_shops_codes_are_not_found(
    live_server: Any, sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given a coupon of another shop in the same environment
    theirs = make_application(environment="live")
    coupon(theirs, "THEIRS-1")

    for call in (
        lambda: sdk.create_coupon_reservation("THEIRS-1", t.CouponReservations(integration_i_ds=["ann"])),
        lambda: sdk.delete_coupon_reservation("NOPE-0000", t.CouponReservations(integration_i_ds=["ann"])),
        lambda: sdk.get_reserved_customers("THEIRS-1"),
    ):
        with pytest.raises(ApiException) as missing:
            call()
        assert missing.value.status == 404
        assert "not found" in refusal(missing)["message"]
    assert not CouponReservation.objects.exists()

    # an empty list of customers is a 400 pointing at the field
    coupon(shop, "MINE-0001")
    with pytest.raises(ApiException) as empty:
        sdk.create_coupon_reservation("MINE-0001", t.CouponReservations(integration_i_ds=[]))
    assert empty.value.status == 400
    assert refusal(empty)["errors"][0]["source"]["pointer"] == "/integrationIDs"


def test_a_sandbox_key_sees_only_its_sandbox_shop(live_server: Any) -> None:
    # given the same code in a live shop and in a sandbox shop
    live = make_application(environment="live")
    sandbox = make_application(environment="sandbox")
    coupon(live, "SAME-CODE")
    coupon(sandbox, "SAME-CODE")
    sandbox_sdk = integration_api(live_server.url, sandbox)

    # when the sandbox reserves it, then only the sandbox coupon is held, by a sandbox customer
    answer = sandbox_sdk.create_coupon_reservation(
        "SAME-CODE", t.CouponReservations(integration_i_ds=["ann"])
    )
    assert Coupon.objects.get(pk=answer.id).application == sandbox
    (held,) = CouponReservation.objects.all()
    assert held.profile.environment == sandbox.environment
    page = sandbox_sdk.get_reserved_customers("SAME-CODE")
    assert page.data[0].sandbox is True
    assert integration_api(live_server.url, live).get_reserved_customers("SAME-CODE").data == []
