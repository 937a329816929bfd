"""Private offers: assigned to the customer's email, favourited, claimed or redeemed."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower

from patronage.offers.models import Offer, OfferAssignment, OfferClaim, OfferFavourite, OfferRedemption

from .. import registry
from ..fields import period_q
from ..registry import Clause, Condition, Context, Reference
from .periods import PERIOD

OFFERS = "Private offers"


def _which(rows: QuerySet[Any], clause: Clause, ctx: Context) -> Q:
    if clause.operator == "any_of":
        rows = rows.filter(offer_id__in=clause.value)
    else:
        rows = rows.filter(offer__environment=ctx.environment)
    return Q(Exists(rows))


def assigned(clause: Clause, ctx: Context) -> Q:
    # Assignments are by email (stored lowercased) and apply to whoever has that email.
    return _which(OfferAssignment.objects.filter(email=Lower(OuterRef("email"))), clause, ctx)


def tracked(model: type[Any], when: str = "created") -> registry.Build:
    def condition(clause: Clause, ctx: Context) -> Q:
        rows = model.objects.filter(profile=OuterRef("pk")).filter(period_q(clause, ctx, when))
        return _which(rows, clause, ctx)

    return condition


def register() -> None:
    registry.register_reference(
        Reference(
            "offers",
            "offer",
            lambda environment: Offer.objects.filter(environment=environment).order_by("system_name"),
            label_field="system_name",
        )
    )

    def offer_condition(key: str, label: str, build: registry.Build, **extra: Any) -> Condition:
        return Condition(
            key, label, OFFERS, "reference", build, ("any_of", "any"), reference="offers", **extra
        )

    registry.register(
        offer_condition("offers.assigned", "Offer assigned", assigned),
        offer_condition("offers.favourited", "Offer favourited", tracked(OfferFavourite), params=PERIOD),
        offer_condition("offers.claimed", "Offer claimed", tracked(OfferClaim), params=PERIOD),
        offer_condition(
            "offers.redeemed", "Offer redeemed", tracked(OfferRedemption, "redeemed_at"), params=PERIOD
        ),
    )
