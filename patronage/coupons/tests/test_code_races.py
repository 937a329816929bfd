"""Codes under real parallel closes: threads with their own PostgreSQL connections race to close sessions
carrying the same code (and to redeem the same promo code through the promo-code API), and each code is
used exactly as many times as it allows, never more: the close responses, the counters and the redemption
rows agree."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.core import clock
from patronage.core.errors import Conflict
from patronage.coupons.models import CampaignCodeSource, Coupon, Redemption, Referral
from patronage.customer_sessions.models import CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import PromoCode, PromoCodeGroup
from patronage.promocodes.services import promo_code_redeem
from patronage.testing.api import IntegrationClient
from patronage.testing.factories import make_api_key, make_application
from patronage.testing.threads import race
from patronage.workspace.models import Application

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CART = [{"sku": "A", "name": "A", "quantity": 1, "price": 40}]
TEN_OFF = rule("Ten off with a coupon", ["and", ["couponValid"]], ["setDiscount", "Coupon 10", 10])


@pytest.fixture
def app() -> Application:
    return make_application(environment="live")


@pytest.fixture
def patient(settings: Any) -> None:
    # The closes queue on one code's row lock: each waits its turn instead of answering 409.
    settings.PATRONAGE_LOCK_WAIT_MS = 60_000


def open_then_close_all(key: str, sessions: list[tuple[str, str]], **codes: Any) -> list[Any]:
    """Open each (session, customer) with the codes (each is accepted while nothing is redeemed), then close
    them all at the same instant; the close responses, in order."""
    api = IntegrationClient(key)
    for session_id, customer in sessions:
        opened = api.session(session_id, profileId=customer, cartItems=CART, **codes)
        assert opened.status_code == 200, opened.content
        assert answers(opened, "accept"), opened.json()["effects"]
    return race(
        len(sessions), lambda i: IntegrationClient(key).session(sessions[i][0], state="closed"), timeout=120
    )


def answers(response: Any, verdict: str) -> list[dict[str, Any]]:
    """The acceptCoupon/acceptReferral (or reject...) effects of a response."""
    return [e for e in response.json()["effects"] if e["effectType"].startswith(verdict)]


def all_ok(results: list[Any]) -> None:
    assert all(getattr(r, "status_code", None) == 200 for r in results), [
        getattr(r, "content", r) for r in results if getattr(r, "status_code", None) != 200
    ]


def test_fifty_customers_closing_at_once_with_a_coupon_of_ten_uses_get_exactly_ten(
    app: Application, patient: None
) -> None:
    # given a coupon usable ten times, and fifty customers' carts carrying it
    campaign = running_campaign(app, "Coupons", TEN_OFF, features=["coupons"])
    code = Coupon.objects.create(application=app, campaign=campaign, value="TEN-TIMES", usage_limit=10)
    sessions = [(f"s{i}", f"c{i}") for i in range(50)]
    # when all fifty close at the same instant
    results = open_then_close_all(make_api_key(app), sessions, couponCodes=["TEN-TIMES"])
    # then every close is an order, exactly ten of them with the coupon and its discount
    all_ok(results)
    assert sum(len(answers(r, "acceptCoupon")) for r in results) == 10
    refused = [e["props"]["rejectionReason"] for r in results for e in answers(r, "rejectCoupon")]
    assert refused == ["CampaignLimitReached"] * 40
    assert sum(len(answers(r, "setDiscount")) for r in results) == 10
    assert CustomerSession.objects.filter(state="closed").count() == 50
    # and the coupon counts ten uses, one redemption row each, by ten different orders
    code.refresh_from_db()
    assert code.usage_counter == 10
    rows = Redemption.objects.filter(coupon=code, rolled_back_at=None)
    assert rows.count() == 10 and len({r.session_id for r in rows}) == 10


def test_a_coupon_and_profile_budget_of_one_holds_when_a_customers_orders_close_at_once(
    app: Application, patient: None
) -> None:
    # given a shared code each customer may use once, and one customer with eight carts carrying it
    campaign = running_campaign(
        app,
        "Welcome",
        TEN_OFF,
        features=["coupons"],
        limits=[{"action": "redeemCoupon", "limit": 1, "entities": ["Coupon", "Profile"]}],
    )
    code = Coupon.objects.create(application=app, campaign=campaign, value="WELCOME", usage_limit=0)
    sessions = [(f"s{i}", "ann") for i in range(8)]
    # when the eight close at once
    results = open_then_close_all(make_api_key(app), sessions, couponCodes=["WELCOME"])
    # then exactly one used the code; the others were told the customer's limit is reached
    all_ok(results)
    assert sum(len(answers(r, "acceptCoupon")) for r in results) == 1
    refused = [e["props"]["rejectionReason"] for r in results for e in answers(r, "rejectCoupon")]
    assert refused == ["ProfileLimitReached"] * 7
    code.refresh_from_db()
    assert code.usage_counter == 1
    assert Redemption.objects.filter(coupon=code, rolled_back_at=None).count() == 1


def test_an_issued_promo_code_redeemed_at_once_at_checkout_and_through_the_api_is_used_once(
    app: Application, patient: None
) -> None:
    # given a promo code issued to ann, of a group a running campaign accepts, and six carts of hers with it
    group = PromoCodeGroup.objects.create(environment=app.environment, name="Mailing")
    CampaignCodeSource.objects.create(
        campaign=running_campaign(app, "Mailing offer", TEN_OFF, features=["coupons"]), group=group
    )
    key = make_api_key(app)
    assert IntegrationClient(key).session("hello", profileId="ann").status_code == 200
    ann = CustomerProfile.objects.get(environment=app.environment, integration_id="ann")
    promo = PromoCode.objects.create(
        environment=app.environment, group=group, code="MAIL-0001", issued_to=ann, issued_at=clock.now()
    )
    api = IntegrationClient(key)
    for i in range(6):
        assert answers(
            api.session(f"s{i}", profileId="ann", cartItems=CART, couponCodes=["MAIL-0001"]), "accept"
        )

    # when six closes and six redemptions through the promo-code API all happen at the same instant
    def go(i: int) -> Any:
        if i < 6:
            return IntegrationClient(key).session(f"s{i}", state="closed")
        try:
            return promo_code_redeem(environment=app.environment, code="MAIL-0001", profile=ann)
        except Conflict as refused:
            return refused

    results = race(12, go, timeout=120)
    # then exactly one of the twelve used it
    closes, redeems = results[:6], results[6:]
    all_ok(closes)
    at_checkout = sum(len(answers(r, "acceptCoupon")) for r in closes)
    through_api = sum(isinstance(r, PromoCode) for r in redeems)
    assert at_checkout + through_api == 1, (at_checkout, redeems)
    assert all(isinstance(r, (PromoCode, Conflict)) for r in redeems), redeems
    refused = [e["props"]["rejectionReason"] for r in closes for e in answers(r, "rejectCoupon")]
    assert refused == ["CampaignLimitReached"] * (6 - at_checkout)
    # and the code is redeemed by ann, with a redemption row only when a checkout used it
    promo.refresh_from_db()
    assert promo.redeemed_at is not None and promo.redeemed_by_id == ann.pk
    assert Redemption.objects.filter(promo_code_id=promo.pk, rolled_back_at=None).count() == at_checkout


def test_a_referral_code_of_three_uses_and_twenty_friends_closing_at_once_gets_exactly_three(
    app: Application, patient: None
) -> None:
    # given anna's referral code usable three times, and twenty friends' carts carrying it
    campaign = running_campaign(
        app,
        "Refer a friend",
        rule("Friend", ["and", ["referralValid"]], ["setDiscount", "Welcome friend", 5]),
        features=["referrals"],
    )
    code = Referral.objects.create(
        application=app, campaign=campaign, code="REF-ANNA", advocate_integration_id="anna", usage_limit=3
    )
    sessions = [(f"s{i}", f"friend{i}") for i in range(20)]
    # when they all close at once
    results = open_then_close_all(make_api_key(app), sessions, referralCode="REF-ANNA")
    # then exactly three friends used it; the others were told its limit is reached
    all_ok(results)
    assert sum(len(answers(r, "acceptReferral")) for r in results) == 3
    refused = [e["props"]["rejectionReason"] for r in results for e in answers(r, "rejectReferral")]
    assert refused == ["ReferralLimitReached"] * 17
    code.refresh_from_db()
    assert code.usage_counter == 3
    rows = Redemption.objects.filter(referral=code, rolled_back_at=None)
    assert rows.count() == 3 and len({r.profile_id for r in rows}) == 3


def test_cancels_giving_a_coupon_back_and_closes_taking_it_at_once_keep_its_count_true(
    app: Application, patient: None
) -> None:
    # given a coupon of five uses, used up by five closed orders, and twenty open carts carrying it
    campaign = running_campaign(app, "Coupons", TEN_OFF, features=["coupons"])
    code = Coupon.objects.create(application=app, campaign=campaign, value="FIVE-USES", usage_limit=5)
    key = make_api_key(app)
    api = IntegrationClient(key)
    for i in range(5):
        done = api.session(f"done{i}", profileId=f"old{i}", cartItems=CART, couponCodes=["FIVE-USES"])
        assert answers(done, "acceptCoupon")
        assert api.session(f"done{i}", state="closed").status_code == 200
    for i in range(20):
        waiting = api.session(f"new{i}", profileId=f"new{i}", cartItems=CART, couponCodes=["FIVE-USES"])
        assert answers(waiting, "rejectCoupon")  # used up while the five stand
    # when the five orders are cancelled while the twenty carts close, all at the same instant
    results = race(
        25,
        lambda i: IntegrationClient(key).session(
            f"done{i}" if i < 5 else f"new{i - 5}", state="cancelled" if i < 5 else "closed"
        ),
        timeout=120,
    )
    # then every cancel gave its use back, and the closes took at most the five uses freed
    all_ok(results)
    cancels, closes = results[:5], results[5:]
    assert [len(answers(r, "rollbackCoupon")) for r in cancels] == [1] * 5
    taken = sum(len(answers(r, "acceptCoupon")) for r in closes)
    assert 0 <= taken <= 5
    # and the counter is exactly the uses that stand, one redemption row each
    code.refresh_from_db()
    assert code.usage_counter == taken
    standing = Redemption.objects.filter(coupon=code, rolled_back_at=None)
    assert standing.count() == taken
    assert all(r.session.integration_id.startswith("new") for r in standing)


def test_a_gift_card_spent_by_ten_orders_closing_at_once_gives_exactly_its_value(
    app: Application, patient: None
) -> None:
    # given a gift card of 100 (any number of uses), and ten carts of 40 carrying it
    campaign = running_campaign(
        app,
        "Gift cards",
        rule("Gift card", ["and", ["couponValid"]], ["setDiscount", "Gift card", 100]),
        features=["coupons"],
    )
    card = Coupon.objects.create(
        application=app, campaign=campaign, value="GIFT-0100", usage_limit=0, discount_limit=Decimal(100)
    )
    sessions = [(f"s{i}", f"c{i}") for i in range(10)]
    # when they all close at once
    results = open_then_close_all(make_api_key(app), sessions, couponCodes=["GIFT-0100"])
    # then the card paid 40, 40 and what was left (20), and nothing more
    all_ok(results)
    paid = sorted(Decimal(str(e["props"]["value"])) for r in results for e in answers(r, "setDiscount"))
    assert paid == [20, 40, 40]
    assert sum(len(answers(r, "acceptCoupon")) for r in results) == 3
    refused = [e["props"]["rejectionReason"] for r in results for e in answers(r, "rejectCoupon")]
    assert refused == ["CampaignLimitReached"] * 7
    card.refresh_from_db()
    assert (card.usage_counter, card.discount_counter, card.discount_remainder) == (3, 100, 0)
    rows = Redemption.objects.filter(coupon=card, rolled_back_at=None)
    assert sorted(r.discount for r in rows) == [20, 40, 40]
