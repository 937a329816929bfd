"""Which offers a customer sees in a shop, and why any other offer is hidden from them.

One definition serves the customer panel ("My offers"), the Management API and the back office's
"Why is this offer (not) shown?" tool, so they can never disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet

from patronage.core import clock
from patronage.workspace.models import Application

from .models import Offer, OfferAssignment

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
