"""Codes at checkout: coupons, promo codes from mailings and referral codes in session updates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.core import clock
from patronage.core.errors import Conflict
from patronage.coupons.models import CampaignCodeSource, Coupon, CouponReservation, Redemption, Referral
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import PromoCode, PromoCodeGroup
from patronage.promocodes.services import promo_code_redeem
from patronage.testing.api import IntegrationClient
from patronage.testing.promocodes import make_issue
from patronage.workspace.models import Application

CART = [{"name": "Beans", "sku": "BEAN", "quantity": 2, "price": 25, "category": "coffee"}]
TEN_OFF = rule("Ten off with a coupon", ["and", ["couponValid"]], ["setDiscount", "Coupon 10", 10])


def coupon_campaign(app: Application, *rules: dict[str, Any], **settings: Any) -> Any:
    return running_campaign(
        app, settings.pop("name", "Coupons"), *(rules or (TEN_OFF,)), features=["coupons"], **settings
    )


def coupon(campaign: Any, value: str = "SAVE10", **fields: Any) -> Coupon:
    return Coupon.objects.create(application=campaign.application, campaign=campaign, value=value, **fields)


def effects(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in body["effects"] if e["effectType"] == kind]


def reason(body: dict[str, Any]) -> str:
    (rejected,) = effects(body, "rejectCoupon")
    return rejected["props"]["rejectionReason"]


def test_a_valid_coupon_is_accepted_redeemed_at_close_and_given_back_on_cancel(
    api: IntegrationClient, live_app: Application
) -> None:
    # given a campaign giving 10 off with a coupon, and its coupon
    campaign = coupon_campaign(live_app)
    code = coupon(campaign)
    # when the cart carries it (typed in lower case: the application ignores case)
    body = api.session("s-1", profileId="c-1", cartItems=CART, couponCodes=["save10"]).json()
    # then it is accepted and the discount names the coupon
    (accepted,) = effects(body, "acceptCoupon")
    assert accepted["props"] == {"value": "save10"} and accepted["campaignId"] == campaign.pk
    (discount,) = effects(body, "setDiscount")
    assert discount["triggeredByCoupon"] == code.pk and discount["props"]["value"] == 10
    code.refresh_from_db()
    assert code.usage_counter == 0  # an open session redeems nothing
    # when the session closes
    api.session("s-1", profileId="c-1", state="closed")
    code.refresh_from_db()
    assert code.usage_counter == 1
    (used,) = Redemption.objects.filter(coupon=code)
    assert used.profile is not None
    assert used.session.integration_id == "s-1" and used.profile.integration_id == "c-1"
    # and a second customer may not use it (limit 1)
    other = api.session("s-2", profileId="c-2", cartItems=CART, couponCodes=["SAVE10"]).json()
    assert reason(other) == "CampaignLimitReached" and not effects(other, "setDiscount")
    # when the first session is cancelled, the coupon comes back
    cancelled = api.session("s-1", profileId="c-1", state="cancelled").json()
    (rollback,) = effects(cancelled, "rollbackCoupon")
    assert rollback["props"] == {"value": "save10"} and rollback["campaignId"] == campaign.pk
    assert effects(cancelled, "rollbackDiscount")
    code.refresh_from_db()
    assert code.usage_counter == 0
    again = api.session("s-2", profileId="c-2", cartItems=CART, couponCodes=["SAVE10"]).json()
    assert effects(again, "acceptCoupon")


def test_an_unknown_code_is_an_effect_not_an_error(api: IntegrationClient, live_app: Application) -> None:
    coupon_campaign(live_app)
    response = api.session("s-1", profileId="c-1", cartItems=CART, couponCodes=["NOPE-123"])
    assert response.status_code == 200
    (rejected,) = effects(response.json(), "rejectCoupon")
    assert rejected["campaignId"] == 0
    assert rejected["props"] == {"value": "NOPE-123", "rejectionReason": "CouponNotFound"}


@pytest.mark.parametrize(
    ("fields", "profile", "expected"),
    [
        ({"expiry_date": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, "c-1", "CouponExpired"),
        ({"start_date": dt.datetime(2099, 1, 1, tzinfo=dt.UTC)}, "c-1", "CouponStartDateInFuture"),
        ({"recipient_integration_id": "c-9"}, "c-1", "CouponRecipientDoesNotMatch"),
        ({"recipient_integration_id": "c-9"}, None, "ProfileRequired"),
        ({"is_reservation_mandatory": True}, "c-1", "CouponReservationRequired"),
        ({"usage_limit": 2, "usage_counter": 2}, "c-1", "CampaignLimitReached"),
        ({"discount_limit": Decimal("5"), "discount_counter": Decimal("5")}, "c-1", "CampaignLimitReached"),
    ],
)
def test_each_unusable_coupon_gets_talon_ones_reason(
    api: IntegrationClient, live_app: Application, fields: dict[str, Any], profile: str | None, expected: str
) -> None:
    coupon(coupon_campaign(live_app), **fields)
    customer = {"profileId": profile} if profile else {}
    body = api.session("s-1", cartItems=CART, couponCodes=["SAVE10"], **customer).json()
    assert reason(body) == expected
    assert not effects(body, "setDiscount")


def test_a_personal_coupon_and_a_reserved_one_work_for_their_customer(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = coupon_campaign(live_app)
    coupon(campaign, "MINE-0001", recipient_integration_id="c-1")
    held = coupon(campaign, "HELD-0001", is_reservation_mandatory=True)
    api.session("warmup", profileId="c-1")
    CouponReservation.objects.create(coupon=held, profile=CustomerProfile.objects.get(integration_id="c-1"))
    body = api.session("s-1", profileId="c-1", cartItems=CART, couponCodes=["MINE-0001", "HELD-0001"]).json()
    assert [e["props"]["value"] for e in effects(body, "acceptCoupon")] == ["MINE-0001", "HELD-0001"]
    assert len(effects(body, "setDiscount")) == 2


def test_rules_reject_with_the_condition_that_failed_and_campaigns_that_did_not_run(
    api: IntegrationClient, live_app: Application
) -> None:
    big = coupon_campaign(
        live_app,
        rule(
            "Big carts only",
            ["and", ["couponValid"], [">", [".", "Session", "Total"], 100]],
            ["setDiscount", "B", 5],
        ),
        name="Big",
    )
    coupon(big, "BIG-0001")
    off = coupon_campaign(live_app, name="Paused", state="disabled")
    coupon(off, "OFF-0001")
    plain = running_campaign(
        live_app, "No coupon rule", rule("Always", ["and", True], ["setDiscount", "P", 1])
    )
    coupon(plain, "PLAIN-001")
    body = api.session(
        "s-1", profileId="c-1", cartItems=CART, couponCodes=["BIG-0001", "OFF-0001", "PLAIN-001"]
    ).json()
    reasons = {e["props"]["value"]: e["props"] for e in effects(body, "rejectCoupon")}
    assert reasons["BIG-0001"] == {
        "value": "BIG-0001",
        "rejectionReason": "CouponRejectedByCondition",
        "conditionIndex": 1,
    }
    assert reasons["OFF-0001"]["rejectionReason"] == "CouponPartOfNotRunningCampaign"
    assert reasons["PLAIN-001"]["rejectionReason"] == "CouponPartOfNotTriggeredCampaign"


def test_a_coupon_and_profile_budget_lets_each_customer_use_a_shared_code_once(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = coupon_campaign(
        live_app, limits=[{"action": "redeemCoupon", "limit": 1, "entities": ["Coupon", "Profile"]}]
    )
    coupon(campaign, "WELCOME", usage_limit=0)
    api.session("s-1", profileId="c-1", cartItems=CART, couponCodes=["WELCOME"], state="closed")
    again = api.session("s-2", profileId="c-1", cartItems=CART, couponCodes=["WELCOME"]).json()
    assert reason(again) == "ProfileLimitReached"
    other = api.session("s-3", profileId="c-2", cartItems=CART, couponCodes=["WELCOME"]).json()
    assert effects(other, "acceptCoupon")


def test_a_coupons_own_per_customer_limit_is_kept(api: IntegrationClient, live_app: Application) -> None:
    limits = [{"action": "redeemCoupon", "limit": 2, "entities": ["Coupon", "Profile"]}]
    coupon(coupon_campaign(live_app), "TWICE-EACH", usage_limit=0, limits=limits)
    for n in (1, 2):
        api.session(f"s-{n}", profileId="c-1", cartItems=CART, couponCodes=["TWICE-EACH"], state="closed")
    third = api.session("s-3", profileId="c-1", cartItems=CART, couponCodes=["TWICE-EACH"]).json()
    assert reason(third) == "ProfileLimitReached"
    anonymous = api.session("s-4", cartItems=CART, couponCodes=["TWICE-EACH"]).json()
    assert reason(anonymous) == "ProfileRequired"


def test_a_gift_card_coupon_discounts_at_most_what_is_left_of_it(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = coupon_campaign(
        live_app, rule("Gift card", ["and", ["couponValid"]], ["setDiscount", "Gift card", 100])
    )
    card = coupon(campaign, "GIFT-0001", usage_limit=0, discount_limit=Decimal("70"))
    first = api.session(
        "s-1", profileId="c-1", cartItems=CART, couponCodes=["GIFT-0001"], state="closed"
    ).json()
    assert effects(first, "setDiscount")[0]["props"]["value"] == 50
    card.refresh_from_db()
    assert card.discount_counter == 50 and card.discount_remainder == 20
    second = api.session("s-2", profileId="c-1", cartItems=CART, couponCodes=["GIFT-0001"]).json()
    assert effects(second, "setDiscount")[0]["props"]["value"] == 20


def test_create_coupon_gives_the_customer_a_personal_code_at_close_that_a_cancel_keeps(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = coupon_campaign(
        live_app,
        rule("Next order", ["and", [".", "Session", "FirstSession"]], ["createCoupon", "", 1, 30]),
        TEN_OFF,
        limits=[{"action": "createCoupon", "limit": 5, "entities": []}],
    )
    open_body = api.session("s-1", profileId="c-1", cartItems=CART).json()
    assert open_body["createdCoupons"] == [] and not effects(open_body, "couponCreated")
    closed = api.session("s-1", profileId="c-1", state="closed").json()
    (created,) = closed["createdCoupons"]
    (effect,) = effects(closed, "couponCreated")
    assert effect["props"] == {"value": created["value"], "profileId": "c-1"}
    made = Coupon.objects.get(value=created["value"])
    assert (
        made.campaign == campaign and made.recipient_integration_id == "c-1" and made.expiry_date is not None
    )
    api.session("s-1", profileId="c-1", state="cancelled")
    assert Coupon.objects.filter(pk=made.pk).exists()
    # the customer's next order uses it
    body = api.session("s-2", profileId="c-1", cartItems=CART, couponCodes=[made.value]).json()
    assert effects(body, "acceptCoupon")


def test_the_coupons_response_content_reports_the_customers_redemptions(
    api: IntegrationClient, live_app: Application
) -> None:
    code = coupon(coupon_campaign(live_app), "TWICE-001", usage_limit=3)
    api.session("s-1", profileId="c-1", cartItems=CART, couponCodes=["TWICE-001"], state="closed")
    body = api.put(
        "/v2/customer_sessions/s-2",
        {
            "customerSession": {"profileId": "c-1", "couponCodes": ["TWICE-001"]},
            "responseContent": ["coupons"],
        },
    ).json()
    (shown,) = body["coupons"]
    assert shown["id"] == code.pk and shown["usageCounter"] == 1 and shown["profileRedemptionCount"] == 1


# ---- promo codes from mailings --------------------------------------------------------------------------


@pytest.fixture
def pool(live_app: Application, api: IntegrationClient) -> PromoCodeGroup:
    """A promo-code group a running campaign accepts: code A-1 issued to c-1, B-2 to c-2, C-3 not issued."""
    group = PromoCodeGroup.objects.create(environment=live_app.environment, name="Winter mailing")
    campaign = coupon_campaign(live_app, name="Winter")
    CampaignCodeSource.objects.create(campaign=campaign, group=group)
    api.session("w-1", profileId="c-1")
    api.session("w-2", profileId="c-2")
    now = clock.now()
    for code, owner in (("WINTER-A1", "c-1"), ("WINTER-B2", "c-2"), ("WINTER-C3", None)):
        profile = CustomerProfile.objects.get(integration_id=owner) if owner else None
        PromoCode.objects.create(
            environment=live_app.environment,
            group=group,
            code=code,
            issued_to=profile,
            issued_at=now if profile else None,
        )
    return group


def test_an_issued_promo_code_is_redeemed_at_close_and_given_back_on_cancel(
    api: IntegrationClient, live_app: Application, pool: PromoCodeGroup
) -> None:
    body = api.session(
        "s-1", profileId="c-1", cartItems=CART, couponCodes=["winter-a1"], state="closed"
    ).json()
    assert effects(body, "acceptCoupon") and effects(body, "setDiscount")
    promo = PromoCode.objects.get(code="WINTER-A1")
    assert promo.redeemed_by is not None
    assert promo.redeemed_at is not None and promo.redeemed_by.integration_id == "c-1"
    assert Redemption.objects.get(promo_code_id=promo.pk).session.integration_id == "s-1"
    # the same code through the promo-code API now fails: one rule for both ways in
    with pytest.raises(Conflict):
        promo_code_redeem(environment=live_app.environment, code="WINTER-A1", profile=promo.redeemed_by)
    cancelled = api.session("s-1", profileId="c-1", state="cancelled").json()
    assert effects(cancelled, "rollbackCoupon")
    promo.refresh_from_db()
    assert promo.redeemed_at is None


def test_promo_codes_not_issued_or_issued_to_someone_else_are_rejected(
    api: IntegrationClient, pool: PromoCodeGroup
) -> None:
    body = api.session("s-1", profileId="c-1", cartItems=CART, couponCodes=["WINTER-B2", "WINTER-C3"]).json()
    reasons = {e["props"]["value"]: e["props"]["rejectionReason"] for e in effects(body, "rejectCoupon")}
    assert reasons == {"WINTER-B2": "CouponRecipientDoesNotMatch", "WINTER-C3": "CouponNotFound"}


def test_a_promo_code_redeemed_through_the_api_is_refused_at_checkout(
    api: IntegrationClient, live_app: Application, pool: PromoCodeGroup
) -> None:
    owner = CustomerProfile.objects.get(integration_id="c-1")
    promo_code_redeem(environment=live_app.environment, code="WINTER-A1", profile=owner)
    body = api.session("s-1", profileId="c-1", cartItems=CART, couponCodes=["WINTER-A1"]).json()
    assert reason(body) == "CampaignLimitReached"


# ---- referrals ---------------------------------------------------------------------------------------------


def referral_campaign(app: Application) -> Any:
    return running_campaign(
        app,
        "Refer a friend",
        rule(
            "Friend's first order",
            ["and", ["referralValid"], [".", "Session", "FirstSession"]],
            ["setDiscount", "Welcome friend", 5],
            ["createCoupon", [".", "Referral", "Advocate"], 1, 0],
        ),
        features=["referrals", "coupons"],
    )


def test_a_referral_code_rewards_the_friend_and_the_advocate_and_counts_at_close(
    api: IntegrationClient, live_app: Application
) -> None:
    campaign = referral_campaign(live_app)
    code = Referral.objects.create(
        application=live_app, campaign=campaign, code="REF-ANNA", advocate_integration_id="anna"
    )
    body = api.session("s-1", profileId="bob", cartItems=CART, referralCode="ref-anna", state="closed").json()
    assert effects(body, "acceptReferral")[0]["props"] == {"value": "ref-anna"}
    (reward,) = body["createdCoupons"]
    assert reward["recipientIntegrationId"] == "anna" and reward["referralId"] == code.pk
    code.refresh_from_db()
    assert code.usage_counter == 1
    friend = Redemption.objects.get(referral=code).profile
    assert friend is not None and friend.integration_id == "bob"
    cancelled = api.session("s-1", profileId="bob", state="cancelled").json()
    assert effects(cancelled, "rollbackReferral")[0]["props"] == {"value": "ref-anna"}
    code.refresh_from_db()
    assert code.usage_counter == 0


@pytest.mark.parametrize(
    ("fields", "profile", "expected"),
    [
        ({}, "anna", "ReferralRecipientIdSameAsAdvocate"),
        ({"friend_integration_id": "carl"}, "bob", "ReferralRecipientDoesNotMatch"),
        ({"usage_limit": 1, "usage_counter": 1}, "bob", "ReferralLimitReached"),
        ({"expiry_date": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, "bob", "ReferralExpired"),
    ],
)
def test_unusable_referral_codes_get_talon_ones_reason(
    api: IntegrationClient, live_app: Application, fields: dict[str, Any], profile: str, expected: str
) -> None:
    campaign = referral_campaign(live_app)
    Referral.objects.create(
        application=live_app, campaign=campaign, code="REF-ANNA", advocate_integration_id="anna", **fields
    )
    body = api.session("s-1", profileId=profile, cartItems=CART, referralCode="REF-ANNA").json()
    (rejected,) = effects(body, "rejectReferral")
    assert rejected["props"]["rejectionReason"] == expected
    unknown = api.session("s-2", profileId="bob", referralCode="REF-NOBODY").json()
    assert effects(unknown, "rejectReferral")[0]["props"]["rejectionReason"] == "ReferralNotFound"


def test_create_referral_gives_the_customer_a_code_to_share(
    api: IntegrationClient, live_app: Application
) -> None:
    running_campaign(
        live_app,
        "Advocates",
        rule("Share after an order", ["and", True], ["createReferral", 3]),
        features=["referrals"],
    )
    body = api.session("s-1", profileId="anna", cartItems=CART, state="closed").json()
    (made,) = body["createdReferrals"]
    assert made["advocateProfileIntegrationId"] == "anna" and made["usageLimit"] == 3
    assert effects(body, "referralCreated")[0]["props"] == {"value": made["code"]}


def test_the_customers_promo_codes_tab_names_the_order_that_used_the_code(
    api: IntegrationClient, pool: PromoCodeGroup, admin_client: Client
) -> None:
    # given a mailing issued WINTER-A1 to c-1
    customer = CustomerProfile.objects.get(integration_id="c-1")
    make_issue(customer, PromoCode.objects.get(code="WINTER-A1"))
    page = f"/admin/customers/customerprofile/{customer.pk}/change/"
    assert "Not used" in admin_client.get(page).content.decode()
    # when an order uses it
    api.session("order-77", profileId="c-1", cartItems=CART, couponCodes=["WINTER-A1"], state="closed")
    # then the customer's Promo codes tab says when and in which order
    html = admin_client.get(page).content.decode()
    assert "in order" in html and ">order-77</a>" in html
    # and a cancelled order gives it back
    api.session("order-77", profileId="c-1", state="cancelled")
    assert "Not used" in admin_client.get(page).content.decode()
