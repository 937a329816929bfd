"""Writes about private offers. Tracking (favourite, claim, redeem) lives here so the panel, the back office
and the Management API record the same facts the same way."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from patronage.core import clock
from patronage.core.errors import Conflict, NotFound, ValidationFailed
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application

from .models import Offer, OfferClaim, OfferFavourite, OfferRedemption, RedemptionSource
from .selectors import offers_visible


def _visible_offer(*, offer_id: int, profile: CustomerProfile, application: Application) -> Offer:
    """The offer, when this customer sees it in this shop right now (one cannot act on a hidden offer)."""
    offer = offers_visible(application=application, email=profile.email).filter(pk=offer_id).first()
    if offer is None:
        raise NotFound(f"Offer {offer_id} is not available to you in {application.name}")
    return offer


@transaction.atomic
def offer_favourite_set(
    *, offer_id: int, profile: CustomerProfile, application: Application, favourite: bool
) -> None:
    """Mark or unmark an offer as the customer's favourite; doing it twice changes nothing."""
    if not favourite:
        OfferFavourite.objects.filter(offer_id=offer_id, profile=profile).delete()
        return
    offer = _visible_offer(offer_id=offer_id, profile=profile, application=application)
    OfferFavourite.objects.get_or_create(offer=offer, profile=profile, defaults={"created": clock.now()})


@transaction.atomic
def offer_claim(*, offer_id: int, profile: CustomerProfile, application: Application) -> OfferClaim:
    """The customer takes the offer up; claiming again returns the first claim."""
    offer = _visible_offer(offer_id=offer_id, profile=profile, application=application)
    claim, _ = OfferClaim.objects.get_or_create(
        offer=offer, profile=profile, defaults={"created": clock.now()}
    )
    return claim


def offer_redeem(
    *,
    offer: Offer,
    profile: CustomerProfile,
    source: RedemptionSource,
    recorded_by: User | None = None,
    redeemed_at: dt.datetime | None = None,
    note: str = "",
) -> OfferRedemption:
    """Record that the customer used the offer; a second redemption of the same offer is a Conflict."""
    if profile.environment_id != offer.environment_id:
        raise ValidationFailed(
            f"Customer {profile.integration_id} is not in the environment of offer {offer}"
        )
    now = clock.now()
    if redeemed_at is not None and redeemed_at > now:
        raise ValidationFailed("A redemption cannot be in the future")
    try:
        with transaction.atomic():
            return OfferRedemption.objects.create(
                offer=offer,
                profile=profile,
                source=source,
                recorded_by=recorded_by,
                redeemed_at=redeemed_at or now,
                note=note,
                created=now,
            )
    except IntegrityError as exc:
        earlier = OfferRedemption.objects.filter(offer=offer, profile=profile).first()
        when = f" on {earlier.redeemed_at:%Y-%m-%d %H:%M} UTC" if earlier else ""
        raise Conflict(f"Customer {profile.integration_id} already redeemed offer {offer}{when}") from exc
