"""What a customer holds in an application: Talon.One's CustomerInventory, section by section.

Each section is built by a function registered under the query flag that asks for it (``coupons``,
``referrals`` here; loyalty, giveaways and achievements register theirs from their own apps with
:func:`register`). A builder takes the application and the profile and returns the section's JSON value;
the Integration API adds the profile itself and calls only the builders whose flag is on.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db.models import Count, Q

from patronage.campaigns.models import CampaignState
from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application

from .models import Coupon, Redemption, Referral
from .presenters import inventory_coupon_json, inventory_referral_json

Builder = Callable[[Application, CustomerProfile], Any]
SECTIONS: dict[str, Builder] = {}


def register(flag: str, builder: Builder) -> None:
    """Serve ``builder``'s answer under ``flag`` (the query parameter and the response field)."""
    SECTIONS[flag] = builder


def inventory_sections(application: Application, profile: CustomerProfile, flags: set[str]) -> dict[str, Any]:
    return {flag: builder(application, profile) for flag, builder in SECTIONS.items() if flag in flags}


# --- coupons ----------------------------------------------------------------------------------------------


def coupon_state(coupon: Coupon, *, redeemed_by_profile: int, now: dt.datetime) -> str:
    """Talon.One's InventoryCoupon state: used, disabled, expired, pending or active."""
    used_up = coupon.usage_limit != 0 and coupon.usage_counter >= coupon.usage_limit
    if redeemed_by_profile or used_up:
        return "used"
    campaign = coupon.campaign
    # A scheduled campaign's coupon is active (the shop shows it ahead); an ended one's no longer is.
    if campaign.state != CampaignState.ENABLED or (
        campaign.end_time is not None and campaign.end_time <= now
    ):
        return "disabled"
    if coupon.expiry_date is not None and coupon.expiry_date <= now:
        return "expired"
    if coupon.start_date is not None and coupon.start_date > now:
        return "pending"
    return "active"


def inventory_coupons(application: Application, profile: CustomerProfile) -> list[dict[str, Any]]:
    """Coupons the customer reserved (hard and soft), their personal coupons, and the coupons shown to every
    customer (implicitly reserved); newest first."""
    coupons = list(
        Coupon.objects.filter(application=application, campaign__deleted_at=None)
        .filter(
            Q(reservations__profile=profile)
            | Q(recipient_integration_id=profile.integration_id)
            | Q(implicitly_reserved=True)
        )
        .select_related("campaign")
        .distinct()
        .order_by("-created", "-id")
    )
    counts = dict(
        Redemption.objects.filter(
            kind=Redemption.Kind.COUPON,
            coupon__in=[c.pk for c in coupons],
            profile=profile,
            rolled_back_at=None,
        )
        .values("coupon")
        .annotate(n=Count("id"))
        .values_list("coupon", "n")
    )
    now = clock.now()
    return [
        inventory_coupon_json(
            coupon,
            state=coupon_state(coupon, redeemed_by_profile=counts.get(coupon.pk, 0), now=now),
            profile_redemption_count=counts.get(coupon.pk, 0),
        )
        for coupon in coupons
    ]


# --- referrals --------------------------------------------------------------------------------------------


def referred_customers(referral_ids: list[int]) -> dict[int, list[str]]:
    """For each referral, the friends whose orders used it (redemptions not rolled back), first use first."""
    friends: dict[int, list[str]] = defaultdict(list)
    rows = (
        Redemption.objects.filter(
            kind=Redemption.Kind.REFERRAL,
            referral__in=referral_ids,
            rolled_back_at=None,
            profile__isnull=False,
        )
        .order_by("created", "id")
        .values_list("referral", "profile__integration_id")
    )
    for referral_id, friend in rows:
        if friend not in friends[referral_id]:
            friends[referral_id].append(friend)
    return friends


def inventory_referrals(application: Application, profile: CustomerProfile) -> list[dict[str, Any]]:
    """The referral codes the customer is the advocate of, each with the customers it referred."""
    referrals = list(
        Referral.objects.filter(
            application=application, advocate_integration_id=profile.integration_id, campaign__deleted_at=None
        ).order_by("-created", "-id")
    )
    friends = referred_customers([r.pk for r in referrals])
    return [inventory_referral_json(r, referred_customers=friends.get(r.pk, [])) for r in referrals]


register("coupons", inventory_coupons)
register("referrals", inventory_referrals)
