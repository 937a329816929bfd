"""Coupons and referrals -> Talon.One's JSON shapes (``Coupon``, ``Referral`` and their inventory variants).

Plain dicts, serialized once by ``patronage.integration.presenters.json_response`` (datetimes as RFC 3339,
Decimals as JSON numbers). Optional fields without a value are left out rather than sent as null or "":
the official SDK validates what it receives, and an absent field always passes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from patronage.campaigns.presenters import limits_json
from patronage.core.money import as_json_number

from .models import Coupon, Referral


def _put(shown: dict[str, Any], name: str, value: Any) -> None:
    if value is not None and value != "":
        shown[name] = value


def coupon_json(coupon: Coupon) -> dict[str, Any]:
    """Talon.One's ``Coupon``."""
    shown: dict[str, Any] = {
        "id": coupon.pk,
        "created": coupon.created,
        "campaignId": coupon.campaign_id,
        "value": coupon.value,
        "usageLimit": coupon.usage_limit,
        "usageCounter": coupon.usage_counter,
        "discountCounter": as_json_number(coupon.discount_counter),
        "reservationCounter": coupon.reservation_counter,
        "attributes": coupon.attributes,
        "limits": limits_json(coupon.limits),
        "reservation": coupon.reservation,
        "isReservationMandatory": coupon.is_reservation_mandatory,
        "implicitlyReserved": coupon.implicitly_reserved,
    }
    if coupon.discount_limit is not None:
        shown["discountLimit"] = as_json_number(coupon.discount_limit)
        shown["discountRemainder"] = as_json_number(coupon.discount_limit - coupon.discount_counter)
    _put(shown, "reservationLimit", coupon.reservation_limit)
    _put(shown, "startDate", coupon.start_date)
    _put(shown, "expiryDate", coupon.expiry_date)
    _put(shown, "referralId", coupon.referral_id)
    _put(shown, "recipientIntegrationId", coupon.recipient_integration_id)
    _put(shown, "importId", coupon.import_id)
    _put(shown, "batchId", coupon.batch_id)
    return shown


def inventory_coupon_json(coupon: Coupon, *, state: str, profile_redemption_count: int) -> dict[str, Any]:
    """Talon.One's ``InventoryCoupon``: the coupon as one customer sees it."""
    return {**coupon_json(coupon), "state": state, "profileRedemptionCount": profile_redemption_count}


def referral_json(referral: Referral) -> dict[str, Any]:
    """Talon.One's ``Referral``."""
    shown: dict[str, Any] = {
        "id": referral.pk,
        "created": referral.created,
        "campaignId": referral.campaign_id,
        "advocateProfileIntegrationId": referral.advocate_integration_id,
        "code": referral.code,
        "usageLimit": referral.usage_limit,
        "usageCounter": referral.usage_counter,
        "attributes": referral.attributes,
    }
    _put(shown, "friendProfileIntegrationId", referral.friend_integration_id)
    _put(shown, "startDate", referral.start_date)
    _put(shown, "expiryDate", referral.expiry_date)
    _put(shown, "importId", referral.import_id)
    _put(shown, "batchId", referral.batch_id)
    return shown


def inventory_referral_json(referral: Referral, *, referred_customers: Iterable[str]) -> dict[str, Any]:
    """Talon.One's ``InventoryReferral``: the referral with the friends who used it."""
    return {**referral_json(referral), "referredCustomers": list(referred_customers)}
