"""The demo shop's codes: the welcome mailing's promo codes work at checkout, the panel customer has a
personal coupon they used once and a referral code a friend used."""

from __future__ import annotations

from decimal import Decimal

import pytest

from patronage.core import clock
from patronage.coupons.models import Coupon, Redemption, Referral
from patronage.customer_sessions.services import CartItemInput, SessionInput, session_update
from patronage.customers.models import CustomerProfile
from patronage.ops.demo import demo_applications, demo_load, demo_mailing, demo_panel_customer
from patronage.ops.demo_codes import demo_codes
from patronage.promocodes.models import PromoCode

pytestmark = pytest.mark.django_db


def test_the_demo_codes_are_usable_and_already_used_once_each() -> None:
    # given the demo customers, the panel customer and the welcome mailing's codes
    demo_load(customers=20)
    email, _ = demo_panel_customer()
    demo_mailing()
    # when the demo codes are loaded
    demo_codes(email=email)
    # then the panel customer's personal coupon was used once, and their referral code by a new friend
    personal = Coupon.objects.get(value__startswith="YOURS-")
    assert personal.usage_counter == 1 and personal.usage_limit == 2
    assert Coupon.objects.filter(value__startswith="SPRING-").count() == 50
    referral = Referral.objects.get()
    assert referral.usage_counter == 1
    assert set(Redemption.objects.values_list("kind", flat=True)) == {"coupon", "referral"}
    # the friend's order made the advocate's reward coupon
    assert Coupon.objects.filter(
        recipient_integration_id=referral.advocate_integration_id, referral=referral
    ).exists()
    # and a welcome promo code, once a mailing issued it, works at checkout for its customer
    shop = demo_applications()[0]
    customer = CustomerProfile.objects.get(environment=shop.environment, email=email)
    promo = PromoCode.objects.filter(group__name="Welcome 10%").first()
    assert promo is not None
    PromoCode.objects.filter(pk=promo.pk).update(issued_to=customer, issued_at=clock.now())
    result = session_update(
        application=shop,
        integration_id="try-welcome",
        data=SessionInput(
            profile_id=customer.integration_id,
            cart_items=[CartItemInput(sku="A", name="A", price=Decimal("30"), quantity=1)],
            coupon_codes=[promo.code.lower()],
            state="closed",
        ),
    )
    assert [e["effectType"] for e in result.effects] == ["acceptCoupon", "setDiscount"]
    promo.refresh_from_db()
    assert promo.redeemed_at is not None
    # and loading again adds nothing
    demo_codes(email=email)
    assert Coupon.objects.filter(value__startswith="SPRING-").count() == 50
