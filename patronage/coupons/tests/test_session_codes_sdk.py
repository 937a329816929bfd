"""Codes at checkout through the official talon-one-python-sdk (9.0.0, unmodified) against a live server:
coupons and a referral code in ``update_customer_session_v2``, the ``coupons``/``referral`` response content,
what a close creates and reserves, and what a return, a reopen and a cancel give back. Every effect's props
are read by the SDK's own ``*EffectProps`` model, which refuses what it cannot read."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import talon_one
from talon_one import models as t

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.coupons.models import Coupon, CouponReservation, Redemption, Referral
from patronage.testing.factories import make_api_key, make_application
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db(transaction=True)

PROPS = {
    "acceptCoupon": "AcceptCouponEffectProps",
    "rejectCoupon": "RejectCouponEffectProps",
    "rollbackCoupon": "RollbackCouponEffectProps",
    "acceptReferral": "AcceptReferralEffectProps",
    "rejectReferral": "RejectReferralEffectProps",
    "rollbackReferral": "RollbackReferralEffectProps",
    "couponCreated": "CouponCreatedEffectProps",
    "referralCreated": "ReferralCreatedEffectProps",
    "reserveCoupon": "ReserveCouponEffectProps",
    "setDiscount": "SetDiscountEffectProps",
    "setDiscountPerItem": "SetDiscountPerItemEffectProps",
    "rollbackDiscount": "RollbackDiscountEffectProps",
}
ITEMS = ["setDiscountPerItem", "Line", [".", "Session", "CartItems"], ["Item"], 1]
TEN_OFF = rule("Ten off with a coupon", ["and", ["couponValid"]], ["setDiscount", "Coupon 10", 10])
FRIEND = rule(
    "Friend's first order",
    ["and", ["referralValid"]],
    ["setDiscount", "Welcome friend", 5],
)


class Resp:
    """What the SDK's deserializer reads: a response with its body in ``data``."""

    def __init__(self, data: Any) -> None:
        self.data = json.dumps(data)


@pytest.fixture
def shop(db: None) -> Application:
    return make_application(environment="live")


@pytest.fixture
def sdk(live_server: Any, shop: Application) -> talon_one.IntegrationApi:
    configuration = talon_one.Configuration(
        host=live_server.url,
        api_key={"Authorization": make_api_key(shop)},
        api_key_prefix={"Authorization": "ApiKey-v1"},
    )
    return talon_one.IntegrationApi(talon_one.ApiClient(configuration))


def cart() -> list[t.CartItem]:
    return [
        t.CartItem(name="Mug", sku="MUG", quantity=2, price=10, category="kitchen"),
        t.CartItem(name="Beans", sku="BEAN", quantity=1, price=30, category="coffee"),
    ]  # 50 in all


def update(
    sdk: talon_one.IntegrationApi, session_id: str, content: list[str] | None = None, **session: Any
) -> t.IntegrationStateV2:
    request = t.IntegrationRequest(customer_session=t.NewCustomerSessionV2(**session))
    if content:
        request.response_content = content
    state = sdk.update_customer_session_v2(session_id, request)
    assert isinstance(state, t.IntegrationStateV2)
    return state


def read(sdk: talon_one.IntegrationApi, effects: list[t.Effect]) -> list[tuple[str, Any]]:
    """Each effect as (type, its props read by the SDK's props model)."""
    out = []
    for effect in effects:
        assert isinstance(effect, t.Effect)
        props = sdk.api_client.deserialize(Resp(effect.props), PROPS[effect.effect_type])
        out.append((effect.effect_type, props))
    return out


def of(effects: list[tuple[str, Any]], kind: str) -> list[Any]:
    return [props for effect_type, props in effects if effect_type == kind]


def coupon_campaign(shop: Application, *rules: dict[str, Any], **settings: Any) -> Campaign:
    return running_campaign(
        shop, settings.pop("name", "Coupons"), *(rules or (TEN_OFF,)), features=["coupons"], **settings
    )


def referral_campaign(shop: Application) -> Campaign:
    return running_campaign(shop, "Refer a friend", FRIEND, features=["referrals"])


def test_coupons_and_a_referral_code_are_answered_and_shown_as_the_sdk_reads_them(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given a coupon campaign with a usable coupon and an expired one, and a referral campaign's code
    campaign = coupon_campaign(shop)
    good = Coupon.objects.create(application=shop, campaign=campaign, value="SAVE10", usage_limit=3)
    Coupon.objects.create(
        application=shop,
        campaign=campaign,
        value="OLD-0001",
        expiry_date=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    )
    friends = referral_campaign(shop)
    anna = Referral.objects.create(
        application=shop, campaign=friends, code="REF-ANNA", advocate_integration_id="anna", usage_limit=2
    )
    # when bob's cart carries the three coupon codes and anna's referral code
    state = update(
        sdk,
        "s-1",
        ["coupons", "referral", "customerSession"],
        profile_id="bob",
        cart_items=cart(),
        coupon_codes=["save10", "NOPE-404", "OLD-0001"],
        referral_code="REF-ANNA",
    )
    effects = read(sdk, state.effects)
    # then the good coupon is accepted and gives its discount, the others are rejected with their reasons
    (accepted,) = of(effects, "acceptCoupon")
    assert isinstance(accepted, t.AcceptCouponEffectProps) and accepted.value == "save10"
    rejected = {p.value: p for p in of(effects, "rejectCoupon")}
    assert all(isinstance(p, t.RejectCouponEffectProps) for p in rejected.values())
    assert {v: p.rejection_reason for v, p in rejected.items()} == {
        "NOPE-404": "CouponNotFound",
        "OLD-0001": "CouponExpired",
    }
    (referral,) = of(effects, "acceptReferral")
    assert isinstance(referral, t.AcceptReferralEffectProps) and referral.value == "REF-ANNA"
    assert sorted(p.value for p in of(effects, "setDiscount")) == [5, 10]
    (ten,) = [e for e in state.effects if e.effect_type == "setDiscount" and e.campaign_id == campaign.pk]
    assert ten.triggered_by_coupon == good.pk
    # and the response content shows the coupons the shop knows (not the unknown one), with bob's redemptions
    assert all(isinstance(c, t.IntegrationCoupon) for c in state.coupons)
    shown = {c.value: c for c in state.coupons}
    assert set(shown) == {"SAVE10", "OLD-0001"}
    assert shown["SAVE10"].profile_redemption_count == 0 and shown["SAVE10"].usage_limit == 3
    assert shown["SAVE10"].campaign_id == campaign.pk and shown["SAVE10"].usage_counter == 0
    assert isinstance(state.referral, t.InventoryReferral)
    assert state.referral.code == "REF-ANNA" and state.referral.id == anna.pk
    assert state.referral.advocate_profile_integration_id == "anna" and state.referral.usage_counter == 0
    assert state.customer_session.coupon_codes == ["save10", "NOPE-404", "OLD-0001"]
    assert state.customer_session.referral_code == "REF-ANNA"

    # when the session closes (without the unknown code: see the test below), then the coupon and the
    # referral count one use each
    update(sdk, "s-1", coupon_codes=["save10", "OLD-0001"], state="closed")
    good.refresh_from_db()
    anna.refresh_from_db()
    assert (good.usage_counter, anna.usage_counter) == (1, 1)
    # and bob's next cart sees his redemption of the coupon and the referral's use
    again = update(
        sdk,
        "s-2",
        ["coupons", "referral"],
        profile_id="bob",
        coupon_codes=["SAVE10"],
        referral_code="REF-ANNA",
    )
    (mine,) = again.coupons
    assert mine.profile_redemption_count == 1 and mine.usage_counter == 1
    assert again.referral.usage_counter == 1


def test_closing_a_session_that_carries_unknown_codes_is_not_an_error(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given a cart with a code no campaign owns, and a referral code nobody has
    coupon_campaign(shop)
    referral_campaign(shop)
    update(
        sdk, "s-1", profile_id="bob", cart_items=cart(), coupon_codes=["NOPE-404"], referral_code="REF-NOBODY"
    )
    # when it closes, then the order is taken and the codes are still answered as unknown
    closed = update(sdk, "s-1", state="closed")
    assert closed.customer_session.state == "closed"
    effects = read(sdk, closed.effects)
    assert [p.rejection_reason for p in of(effects, "rejectCoupon")] == ["CouponNotFound"]
    assert [p.rejection_reason for p in of(effects, "rejectReferral")] == ["ReferralNotFound"]


def test_unknown_and_unusable_referral_codes_are_rejected_through_the_sdk(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    friends = referral_campaign(shop)
    Referral.objects.create(
        application=shop, campaign=friends, code="REF-ANNA", advocate_integration_id="anna"
    )
    cases = {
        "REF-NOBODY": ("bob", "ReferralNotFound"),
        "REF-ANNA": ("anna", "ReferralRecipientIdSameAsAdvocate"),
    }
    for n, (code, (customer, expected)) in enumerate(cases.items()):
        state = update(
            sdk, f"s-{n}", ["referral"], profile_id=customer, cart_items=cart(), referral_code=code
        )
        effects = read(sdk, state.effects)
        (rejected,) = of(effects, "rejectReferral")
        assert isinstance(rejected, t.RejectReferralEffectProps)
        assert (rejected.value, rejected.rejection_reason) == (code, expected)
        assert not of(effects, "setDiscount")


def test_a_close_creates_a_coupon_and_a_referral_code_and_reserves_the_coupon_used(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given a campaign that rewards a first order with a personal coupon and a code to share, and
    # reserves the coupon the cart used for the customer
    campaign = running_campaign(
        shop,
        "Rewards",
        rule("Next order", ["and", [".", "Session", "FirstSession"]], ["createCoupon", "", 2, 30]),
        rule("Share", ["and", True], ["createReferral", 3]),
        rule("Keep it", ["and", ["couponValid"]], ["reserveCoupon"]),
        features=["coupons", "referrals"],
    )
    wallet = Coupon.objects.create(application=shop, campaign=campaign, value="WALLET-1", usage_limit=0)
    # when the open cart carries the coupon, it is reserved (said, not yet made) and nothing is created
    opened = update(sdk, "s-1", profile_id="cara", cart_items=cart(), coupon_codes=["WALLET-1"])
    effects = read(sdk, opened.effects)
    (reserve,) = of(effects, "reserveCoupon")
    assert isinstance(reserve, t.ReserveCouponEffectProps)
    assert (reserve.coupon_value, reserve.profile_integration_id, reserve.is_new_reservation) == (
        "WALLET-1",
        "cara",
        True,
    )
    assert opened.created_coupons == [] and opened.created_referrals == []
    assert not CouponReservation.objects.filter(coupon=wallet).exists()
    # when it closes
    closed = update(sdk, "s-1", state="closed")
    effects = read(sdk, closed.effects)
    # then a personal coupon and a referral code are made, as the SDK's Coupon and Referral
    (made,) = closed.created_coupons
    assert isinstance(made, t.Coupon)
    assert (
        made.recipient_integration_id == "cara" and made.usage_limit == 2 and made.campaign_id == campaign.pk
    )
    assert made.expiry_date is not None and made.usage_counter == 0
    (created,) = of(effects, "couponCreated")
    assert isinstance(created, t.CouponCreatedEffectProps)
    assert (created.value, created.profile_id) == (made.value, "cara")
    (code,) = closed.created_referrals
    assert isinstance(code, t.Referral)
    assert code.advocate_profile_integration_id == "cara" and code.usage_limit == 3
    (shared,) = of(effects, "referralCreated")
    assert isinstance(shared, t.ReferralCreatedEffectProps) and shared.value == code.code
    # and the coupon used is now held by cara, the made codes are in the shop's records
    assert CouponReservation.objects.get(coupon=wallet).profile.integration_id == "cara"
    assert Coupon.objects.get(value=made.value).recipient_integration_id == "cara"
    assert Referral.objects.get(code=code.code).advocate_integration_id == "cara"
    # and the next cart of hers sees the reservation as an existing one
    later = update(sdk, "s-2", profile_id="cara", cart_items=cart(), coupon_codes=["WALLET-1"])
    (again,) = of(read(sdk, later.effects), "reserveCoupon")
    assert again.is_new_reservation is False


def test_a_return_keeps_the_coupon_redeemed_and_a_reopen_gives_it_back(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given a coupon of limit 1 that gives 10 off the cart and 1 off each line
    campaign = coupon_campaign(shop, TEN_OFF, rule("Lines", ["and", ["couponValid"]], ITEMS))
    once = Coupon.objects.create(application=shop, campaign=campaign, value="ONCE-0001")
    closed = update(
        sdk, "s-1", profile_id="dan", cart_items=cart(), coupon_codes=["ONCE-0001"], state="closed"
    )
    assert [k for k, _ in read(sdk, closed.effects)] == [
        "acceptCoupon",
        "setDiscount",
        "setDiscountPerItem",
        "setDiscountPerItem",
    ]
    # when one mug is returned
    returned = sdk.return_cart_items(
        "s-1",
        t.ReturnIntegrationRequest(
            _return=t.NewReturn(returned_cart_items=[t.ReturnedCartItem(position=0, quantity=1)])
        ),
    )
    assert isinstance(returned, t.IntegrationStateV2)
    effects = read(sdk, returned.effects)
    # then only the mug line's discount share comes back: the coupon stays used
    assert [k for k, _ in effects] == ["rollbackDiscount"]
    (rollback,) = of(effects, "rollbackDiscount")
    assert isinstance(rollback, t.RollbackDiscountEffectProps) and rollback.value == 0.5
    once.refresh_from_db()
    assert once.usage_counter == 1
    assert Redemption.objects.get(coupon=once).rolled_back_at is None
    other = update(sdk, "s-2", profile_id="eve", cart_items=cart(), coupon_codes=["ONCE-0001"])
    (refused,) = of(read(sdk, other.effects), "rejectCoupon")
    assert refused.rejection_reason == "CampaignLimitReached"

    # given another closed order with a coupon of limit 1, when it is reopened
    Coupon.objects.create(application=shop, campaign=campaign, value="ONCE-0002")
    update(sdk, "s-3", profile_id="dan", cart_items=cart(), coupon_codes=["ONCE-0002"], state="closed")
    reopened = sdk.reopen_customer_session("s-3")
    assert isinstance(reopened, t.ReopenSessionResponse)
    effects = read(sdk, reopened.effects)
    # then the reopen rolls the coupon back with every discount it gave
    (given_back,) = of(effects, "rollbackCoupon")
    assert isinstance(given_back, t.RollbackCouponEffectProps) and given_back.value == "ONCE-0002"
    assert sorted(p.value for p in of(effects, "rollbackDiscount")) == [1, 1, 10]
    assert Coupon.objects.get(value="ONCE-0002").usage_counter == 0
    assert Redemption.objects.get(coupon__value="ONCE-0002").rolled_back_at is not None
    # and the coupon is usable again: by someone else, and by the reopened session when it closes again
    eve = update(sdk, "s-4", profile_id="eve", cart_items=cart(), coupon_codes=["ONCE-0002"])
    assert of(read(sdk, eve.effects), "acceptCoupon")
    again = update(sdk, "s-3", state="closed")
    assert [p.value for p in of(read(sdk, again.effects), "acceptCoupon")] == ["ONCE-0002"]
    assert Coupon.objects.get(value="ONCE-0002").usage_counter == 1


def test_a_cancel_rolls_back_the_coupon_and_the_referral_code(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given a closed order that used a coupon and a referral code
    coupons = coupon_campaign(shop)
    code = Coupon.objects.create(application=shop, campaign=coupons, value="SAVE10")
    anna = Referral.objects.create(
        application=shop, campaign=referral_campaign(shop), code="REF-ANNA", advocate_integration_id="anna"
    )
    update(
        sdk,
        "s-1",
        profile_id="bob",
        cart_items=cart(),
        coupon_codes=["SAVE10"],
        referral_code="ref-anna",
        state="closed",
    )
    code.refresh_from_db()
    anna.refresh_from_db()
    assert (code.usage_counter, anna.usage_counter) == (1, 1)
    # when it is cancelled
    cancelled = update(sdk, "s-1", state="cancelled")
    effects = read(sdk, cancelled.effects)
    # then both codes are rolled back, as the SDK reads them, with the campaigns that accepted them
    (coupon_back,) = of(effects, "rollbackCoupon")
    assert isinstance(coupon_back, t.RollbackCouponEffectProps) and coupon_back.value == "SAVE10"
    (referral_back,) = of(effects, "rollbackReferral")
    assert isinstance(referral_back, t.RollbackReferralEffectProps) and referral_back.value == "ref-anna"
    owners = {e.effect_type: e.campaign_id for e in cancelled.effects}
    assert owners["rollbackCoupon"] == coupons.pk and owners["rollbackReferral"] == anna.campaign_id
    code.refresh_from_db()
    anna.refresh_from_db()
    assert (code.usage_counter, anna.usage_counter) == (0, 0)
    assert not Redemption.objects.filter(session__integration_id="s-1", rolled_back_at=None).exists()
    # and a cancel of an open session rolls back nothing
    update(sdk, "s-2", profile_id="bob", cart_items=cart(), coupon_codes=["SAVE10"])
    dropped = update(sdk, "s-2", state="cancelled")
    assert not of(read(sdk, dropped.effects), "rollbackCoupon")
