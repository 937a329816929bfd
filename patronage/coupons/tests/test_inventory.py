"""The customer's inventory through the official SDK (9.0.0, unmodified) against a real server (Talon.One's
#8): the profile, the coupons the customer holds or may see with their state and the customer's
redemptions, and the referral codes the customer is the advocate of with the friends they brought."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import talon_one
from talon_one import models as t
from talon_one.rest import ApiException

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import running_campaign
from patronage.coupons.models import Coupon, CouponReservation, Redemption, Referral
from patronage.customer_sessions.models import CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.testing.factories import make_api_key, make_application
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db(transaction=True)

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


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


def profile(application: Application, integration_id: str) -> CustomerProfile:
    return CustomerProfile.objects.create(environment=application.environment, integration_id=integration_id)


def redeem(code: Coupon | Referral, by: CustomerProfile, *, rolled_back: bool = False) -> None:
    """What the engine writes when a session using the code closes (and, on cancel, marks rolled back)."""
    session = CustomerSession.objects.create(
        application=code.application,
        integration_id=f"order-{CustomerSession.objects.count() + 1}",
        profile=by,
        profile_integration_id=by.integration_id,
        state="closed",
    )
    is_coupon = isinstance(code, Coupon)
    Redemption.objects.create(
        application=code.application,
        kind=Redemption.Kind.COUPON if is_coupon else Redemption.Kind.REFERRAL,
        coupon=code if isinstance(code, Coupon) else None,
        referral=code if isinstance(code, Referral) else None,
        campaign=code.campaign,
        code=str(code),
        session=session,
        profile=by,
        rolled_back_at=NOW if rolled_back else None,
    )


def test_the_inventory_lists_what_the_customer_holds_with_its_state(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given Ann, a running campaign, a disabled one and one of another shop
    ann, bob = profile(shop, "ann"), profile(shop, "bob")
    running = running_campaign(shop, "Running", features=["coupons"])
    stopped = running_campaign(shop, "Stopped", features=["coupons"], state="disabled")
    theirs = running_campaign(make_application(environment="live"), "Theirs", features=["coupons"])

    def make(value: str, campaign: Campaign = running, **fields: Any) -> Coupon:
        return Coupon.objects.create(
            application=campaign.application, campaign=campaign, value=value, **fields
        )

    reserved = make("RESERVED-1", usage_limit=0)
    CouponReservation.objects.create(coupon=reserved, profile=ann)
    personal = make("PERSONAL-1", recipient_integration_id="ann", reservation=False)
    for_all = make("FOR-ALL-1", implicitly_reserved=True)
    expired = make("EXPIRED-1", recipient_integration_id="ann", expiry_date=NOW - DAY)
    pending = make("PENDING-1", recipient_integration_id="ann", start_date=NOW + DAY)
    disabled = make("DISABLED-1", stopped, recipient_integration_id="ann")
    used_up = make("USED-UP-1", recipient_integration_id="ann", usage_counter=1)
    # ... and coupons that are not Ann's: Bob's personal one, Bob's reservation, another shop's "for all"
    make("BOBS-1", recipient_integration_id="bob")
    CouponReservation.objects.create(coupon=make("BOB-HOLDS"), profile=bob)
    make("THEIRS-1", theirs, implicitly_reserved=True)

    # Ann used the reserved (unlimited) coupon twice, a third use was cancelled; Bob used it once
    redeem(reserved, ann)
    redeem(reserved, ann)
    redeem(reserved, ann, rolled_back=True)
    redeem(reserved, bob)

    # when the shop asks for Ann's inventory
    inventory = sdk.get_customer_inventory("ann", profile=True, coupons=True)

    # then the SDK reads it, with Ann's profile and each coupon's state and Ann's uses
    assert isinstance(inventory, t.CustomerInventory)
    assert inventory.profile.integration_id == "ann"
    assert inventory.referrals is None
    seen = {c.value: (c.state, c.profile_redemption_count) for c in inventory.coupons}
    assert seen == {
        reserved.value: ("used", 2),
        personal.value: ("active", 0),
        for_all.value: ("active", 0),
        expired.value: ("expired", 0),
        pending.value: ("pending", 0),
        disabled.value: ("disabled", 0),
        used_up.value: ("used", 0),
    }
    assert all(isinstance(c, t.InventoryCoupon) for c in inventory.coupons)

    # and Bob sees his own coupons plus the one shown to everyone, not Ann's (nor one he used unreserved)
    bobs = sdk.get_customer_inventory("bob", coupons=True)
    assert bobs.profile is None
    assert sorted(c.value for c in bobs.coupons) == ["BOB-HOLDS", "BOBS-1", "FOR-ALL-1"]


def test_the_inventory_lists_the_advocates_codes_with_the_friends_they_brought(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given Ann's two referral codes, one used by Bob and Carl (Dora's use was cancelled), and Bob's code
    ann, bob, carl, dora = (profile(shop, name) for name in ("ann", "bob", "carl", "dora"))
    campaign = running_campaign(shop, "Friends", features=["referrals"])
    busy = Referral.objects.create(
        application=shop, campaign=campaign, code="ANN-BUSY", advocate_integration_id="ann", usage_limit=0
    )
    quiet = Referral.objects.create(
        application=shop, campaign=campaign, code="ANN-QUIET", advocate_integration_id="ann"
    )
    Referral.objects.create(
        application=shop, campaign=campaign, code="BOB-CODE", advocate_integration_id="bob"
    )
    redeem(busy, bob)
    redeem(busy, carl)
    redeem(busy, dora, rolled_back=True)
    redeem(busy, bob)

    # when the shop asks for Ann's referrals
    inventory = sdk.get_customer_inventory("ann", referrals=True)

    # then each of her codes comes with the friends who used it, once each
    assert inventory.coupons is None and inventory.profile is None
    friends = {r.code: r.referred_customers for r in inventory.referrals}
    assert friends == {busy.code: ["bob", "carl"], quiet.code: []}
    assert all(isinstance(r, t.InventoryReferral) for r in inventory.referrals)
    assert ann.pk


def test_an_unknown_customer_has_no_inventory(sdk: talon_one.IntegrationApi) -> None:
    with pytest.raises(ApiException) as missing:
        sdk.get_customer_inventory("nobody", profile=True)
    assert missing.value.status == 404
    assert "nobody" in json.loads(missing.value.body)["message"]
