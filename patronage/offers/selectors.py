"""Which offers a customer sees in a shop, and why any other offer is hidden from them.

One definition serves the customer panel ("My offers"), the Management API and the back office's
"Why is this offer (not) shown?" tool, so they can never disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application

from .models import Offer, OfferAssignment, OfferClaim, OfferFavourite, OfferRedemption

# Why an offer is hidden, in the order they are checked: the first that applies is the one reported.
INACTIVE = "inactive"
NOT_STARTED = "starts later"
ENDED = "ended"
OTHER_SHOP = "not in this shop"
NOT_ASSIGNED = "not assigned to this email"
SHOWN = "shown"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def offers_visible(
    *, application: Application, email: str | None, now: dt.datetime | None = None
) -> QuerySet[Offer]:
    """Offers a signed-in customer with ``email`` sees in ``application``, in sort order.

    Active, started, not ended, listed for this shop, and public or assigned to the email (matched
    case-insensitively; an email assigned before its customer registered counts).
    """
    now = now or clock.now()
    assigned = Q(is_public=True)
    if email:
        assigned |= Q(
            Exists(OfferAssignment.objects.filter(offer=OuterRef("pk"), email=normalize_email(email)))
        )
    return (
        Offer.objects.filter(
            environment_id=application.environment_id,
            is_active=True,
            starts_at__lte=now,
            ends_at__gt=now,
            applications=application,
        )
        .filter(assigned)
        .order_by("sort_order", "id")
    )


def offers_visible_with_marks(
    *, application: Application, profile: CustomerProfile, now: dt.datetime | None = None
) -> QuerySet[Offer]:
    """``offers_visible`` for this customer, each marked ``is_favourite``/``is_claimed``/``is_redeemed``, with
    its pictures: one query for the panel's "My offers" and the mobile app's API alike."""
    mine = {"offer": OuterRef("pk"), "profile": profile}
    return (
        offers_visible(application=application, email=profile.email, now=now)
        .select_related("picture", "image_small", "image_medium", "image_big")
        .annotate(
            is_favourite=Exists(OfferFavourite.objects.filter(**mine)),
            is_claimed=Exists(OfferClaim.objects.filter(**mine)),
            is_redeemed=Exists(OfferRedemption.objects.filter(**mine)),
        )
    )


@dataclass(frozen=True)
class Visibility:
    offer: Offer
    reason: str  # SHOWN or why it is hidden

    @property
    def shown(self) -> bool:
        return self.reason == SHOWN


def offers_explained(
    *, application: Application, email: str, now: dt.datetime | None = None
) -> list[Visibility]:
    """Every offer of the shop's environment with "shown" or the first reason it is hidden from ``email``."""
    now = now or clock.now()
    email = normalize_email(email)
    offers = (
        Offer.objects.filter(environment_id=application.environment_id)
        .annotate(
            in_shop=Exists(
                Offer.applications.through.objects.filter(offer=OuterRef("pk"), application=application)
            ),
            assigned=Exists(OfferAssignment.objects.filter(offer=OuterRef("pk"), email=email)),
        )
        .order_by("sort_order", "id")
    )
    explained = []
    for offer in offers:
        if not offer.is_active:
            reason = INACTIVE
        elif offer.starts_at > now:
            reason = NOT_STARTED
        elif offer.ends_at <= now:
            reason = ENDED
        elif not offer.in_shop:  # type: ignore[attr-defined]
            reason = OTHER_SHOP
        elif not offer.is_public and not offer.assigned:  # type: ignore[attr-defined]
            reason = NOT_ASSIGNED
        else:
            reason = SHOWN
        explained.append(Visibility(offer=offer, reason=reason))
    return explained


def email_has_customer(*, application: Application, email: str) -> bool:
    """Whether a customer of the shop's environment has this email (case-insensitively, by the unique
    index on the lowercased email)."""
    return (
        CustomerProfile.objects.alias(email_lower=Lower("email"))
        .filter(environment_id=application.environment_id, email_lower=normalize_email(email))
        .exists()
    )


@dataclass
class OfferActivity:
    offer: Offer
    favourited: Any = None
    claimed: Any = None
    redemption: OfferRedemption | None = None


def offer_activity(profile: CustomerProfile) -> list[OfferActivity]:
    """What the customer did with offers: one row per offer, newest first, three queries in all."""
    rows: dict[int, OfferActivity] = {}
    for favourite in OfferFavourite.objects.filter(profile=profile).select_related("offer"):
        rows.setdefault(favourite.offer_id, OfferActivity(favourite.offer)).favourited = favourite.created
    for claim in OfferClaim.objects.filter(profile=profile).select_related("offer"):
        rows.setdefault(claim.offer_id, OfferActivity(claim.offer)).claimed = claim.created
    for redemption in OfferRedemption.objects.filter(profile=profile).select_related("offer", "recorded_by"):
        rows.setdefault(redemption.offer_id, OfferActivity(redemption.offer)).redemption = redemption

    def latest(row: OfferActivity) -> Any:
        moments = [
            m for m in (row.favourited, row.claimed, row.redemption and row.redemption.redeemed_at) if m
        ]
        return max(moments)

    return sorted(rows.values(), key=latest, reverse=True)
