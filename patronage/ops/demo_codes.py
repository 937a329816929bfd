"""Demo codes: the welcome mailing's promo codes redeemable at checkout, a coupon campaign with a batch of
coupons and a personal one for the demo panel customer, a refer-a-friend campaign with the panel customer's
referral code, and two orders closed through the engine with a coupon and with the referral code, so the
customer page's Coupons, Referred customers and Sessions tabs and the panel's "My codes" show something."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from patronage.campaigns.models import Campaign
from patronage.campaigns.services import CampaignInput, campaign_create, ruleset_create
from patronage.core import clock
from patronage.coupons.models import CampaignCodeSource, Coupon
from patronage.coupons.referrals import referral_create
from patronage.coupons.services import coupons_create, coupons_for_recipients
from patronage.customer_sessions.models import CustomerSession, SessionState
from patronage.customer_sessions.services import CartItemInput, SessionInput, session_update
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import PromoCodeGroup

from .demo import demo_applications

WELCOME = "Welcome code 10%"
SPRING = "Spring coupons"
REFER = "Refer a friend"
CART = [
    CartItemInput(
        sku="COF-001", name="Espresso beans 1kg", category="coffee", price=Decimal("21.99"), quantity=2
    )
]


def _campaign(
    shop: Any, name: str, description: str, features: list[str], rules: list[dict[str, Any]]
) -> Campaign:
    found = Campaign.objects.filter(application=shop, name=name, deleted_at=None).first()
    if found is not None:
        return found
    campaign = campaign_create(
        application=shop,
        data=CampaignInput(name=name, description=description, state="enabled", features=features),
    )
    ruleset_create(campaign=campaign, rules=rules, activate=True)
    return campaign


def demo_codes(*, email: str) -> None:
    """Run again, it adds nothing."""
    shop = demo_applications()[0]
    welcome = _campaign(
        shop,
        WELCOME,
        "The welcome mailing's codes give 10% off at checkout, once, to the customer they were sent to.",
        ["coupons"],
        [
            {
                "title": "10% with a welcome code",
                "condition": ["and", ["couponValid"]],
                "effects": [
                    ["setDiscount", "Welcome 10%", ["*", [".", "Session", "CartItemTotal"], 0.1], "cartItems"]
                ],
            }
        ],
    )
    group = PromoCodeGroup.objects.filter(environment=shop.environment, name="Welcome 10%").first()
    if group is not None:
        CampaignCodeSource.objects.get_or_create(campaign=welcome, group=group)
    spring = _campaign(
        shop,
        SPRING,
        "Coupons worth 5 off an order of 20 or more.",
        ["coupons"],
        [
            {
                "title": "5 off with a spring coupon",
                "condition": ["and", ["couponValid"], [">=", [".", "Session", "CartItemTotal"], 20]],
                "effects": [["setDiscount", "Spring 5 off", 5]],
            }
        ],
    )
    refer = _campaign(
        shop,
        REFER,
        "A friend's first order with a referral code gets 5 off; the advocate gets a 10% coupon.",
        ["referrals", "coupons"],
        [
            {
                "title": "Friend's first order",
                "condition": ["and", ["referralValid"], [".", "Session", "FirstSession"]],
                "effects": [
                    ["setDiscount", "Welcome friend", 5],
                    ["createCoupon", [".", "Referral", "Advocate"], 1, 60],
                ],
            },
            {
                "title": "Advocate's reward coupon",
                "condition": ["and", ["couponValid"]],
                "effects": [["setDiscount", "Thanks for referring", ["*", [".", "Session", "Total"], 0.1]]],
            },
        ],
    )
    panel = CustomerProfile.objects.filter(environment=shop.environment, email=email.lower()).first()
    if panel is None or Coupon.objects.filter(campaign=spring).exists():
        return
    expiry = clock.now() + dt.timedelta(days=90)
    coupons_create(campaign=spring, count=50, pattern="SPRING-####-####", usage_limit=1, expiry_date=expiry)
    (personal,) = coupons_for_recipients(
        campaign=spring, recipients=[panel.integration_id], pattern="YOURS-####-####", usage_limit=2
    )
    code = referral_create(
        application=shop, campaign_id=refer.pk, advocate=panel.integration_id, usage_limit=5
    )
    _order(shop, "demo-codes-coupon", panel.integration_id, coupons=[personal.value])
    # A new customer's first order: the friend the panel customer referred.
    _order(shop, "demo-codes-referral", f"friend-of-{panel.integration_id}", referral=code.code)


def _order(
    shop: Any, session_id: str, customer: str, *, coupons: list[str] | None = None, referral: str = ""
) -> None:
    if CustomerSession.objects.filter(application=shop, integration_id=session_id).exists():
        return
    session_update(
        application=shop,
        integration_id=session_id,
        data=SessionInput(
            profile_id=customer,
            cart_items=CART,
            coupon_codes=coupons,
            referral_code=referral or None,
            state=SessionState.CLOSED,
        ),
    )
