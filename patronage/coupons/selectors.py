"""Reads of coupons: the one filter the back office, the Management API, exports and bulk deletes share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import F, Q, QuerySet

from patronage.campaigns.models import Campaign
from patronage.core import clock
from patronage.core.errors import ErrorDetail, NotFound, ValidationFailed
from patronage.workspace.models import Application

from .models import Coupon, normalize

VALID_STATES = ("expired", "validNow", "validFuture")
# Talon.One's sort names -> ours; a leading "-" sorts descending.
SORTS = {
    "id": "id",
    "value": "value",
    "created": "created",
    "startDate": "start_date",
    "expiryDate": "expiry_date",
    "usageCounter": "usage_counter",
    "usageLimit": "usage_limit",
    "batchId": "batch_id",
}


@dataclass
class CouponFilters:
    """Talon.One's coupon filters (``get_coupons_without_total_count`` / ``delete_coupons``). Empty = any."""

    value: str = ""
    exact_match: bool = False  # value: the whole code (any case) rather than a part of it
    batch_id: str = ""
    usable: bool | None = None  # usageCounter < usageLimit, or unlimited
    redeemed: bool | None = None  # usageCounter > 0
    valid: str = ""  # expired | validNow | validFuture
    recipient_integration_id: str = ""
    referral_id: int | None = None
    created_before: dt.datetime | None = None
    created_after: dt.datetime | None = None
    starts_before: dt.datetime | None = None
    starts_after: dt.datetime | None = None
    expires_before: dt.datetime | None = None
    expires_after: dt.datetime | None = None

    @property
    def empty(self) -> bool:
        return self == CouponFilters()


def _validity(valid: str, now: dt.datetime) -> Q:
    if valid == "expired":
        return Q(expiry_date__isnull=False, expiry_date__lt=now)
    if valid == "validNow":
        return (Q(start_date__isnull=True) | Q(start_date__lte=now)) & (
            Q(expiry_date__isnull=True) | Q(expiry_date__gt=now)
        )
    if valid == "validFuture":
        return Q(start_date__isnull=False, start_date__gt=now)
    message = f"valid is one of {', '.join(VALID_STATES)}, not {valid!r}"
    raise ValidationFailed(message, details=[ErrorDetail("Invalid value", message, pointer="query:valid")])


def coupons_filtered(
    *,
    campaign: Campaign | None = None,
    application: Application | None = None,
    filters: CouponFilters | None = None,
) -> QuerySet[Coupon]:
    """Coupons of a campaign (or of a whole application) matching ``filters``; newest first."""
    if campaign is None and application is None:
        raise ValueError("coupons_filtered needs a campaign or an application")
    f = filters or CouponFilters()
    rows = Coupon.objects.all()
    if campaign is not None:
        rows = rows.filter(campaign=campaign)
        application = application or campaign.application
    assert application is not None
    rows = rows.filter(application=application)
    if f.value.strip():
        value = f.value.strip()
        if f.exact_match:
            rows = rows.filter(value__iexact=normalize(value, application.coupon_code_case))
        else:
            rows = rows.filter(value__icontains=value)
    if f.batch_id:
        rows = rows.filter(batch_id=f.batch_id)
    usable = Q(usage_limit=0) | Q(usage_counter__lt=F("usage_limit"))
    if f.usable is True:
        rows = rows.filter(usable)
    elif f.usable is False:
        rows = rows.exclude(usable)
    if f.redeemed is True:
        rows = rows.filter(usage_counter__gt=0)
    elif f.redeemed is False:
        rows = rows.filter(usage_counter=0)
    if f.valid:
        rows = rows.filter(_validity(f.valid, clock.now()))
    if f.recipient_integration_id:
        rows = rows.filter(recipient_integration_id=f.recipient_integration_id)
    if f.referral_id is not None:
        rows = rows.filter(referral_id=f.referral_id)
    for name, lookup in (
        ("created_before", "created__lt"),
        ("created_after", "created__gt"),
        ("starts_before", "start_date__lt"),
        ("starts_after", "start_date__gt"),
        ("expires_before", "expiry_date__lt"),
        ("expires_after", "expiry_date__gt"),
    ):
        value = getattr(f, name)
        if value is not None:
            rows = rows.filter(**{lookup: value})
    return rows.order_by("-created", "-id")


def coupons_sorted(rows: QuerySet[Coupon], sort: str) -> QuerySet[Coupon]:
    """Talon.One's ``sort`` (a field name, ``-`` for descending); the id breaks ties."""
    if not sort:
        return rows
    field = SORTS.get(sort.removeprefix("-"))
    if field is None:
        message = f"Coupons sort by {', '.join(SORTS)} (a leading - for descending), not {sort!r}"
        raise ValidationFailed(message, details=[ErrorDetail("Invalid value", message, pointer="query:sort")])
    descending = sort.startswith("-")
    return rows.order_by(f"-{field}" if descending else field, "-id" if descending else "id")


def coupon_get(*, campaign: Campaign, coupon_id: int | str) -> Coupon:
    coupon = None
    if str(coupon_id).isdigit():
        coupon = Coupon.objects.filter(campaign=campaign, pk=int(coupon_id)).first()
    if coupon is None:
        raise NotFound(f"Coupon {coupon_id} not found in campaign {campaign.pk}")
    return coupon


def coupon_batches(*, campaign: Campaign) -> list[tuple[str, int]]:
    """(batch id, coupons) of a campaign, biggest first."""
    from django.db.models import Count

    rows = (
        Coupon.objects.filter(campaign=campaign)
        .exclude(batch_id="")
        .values("batch_id")
        .annotate(n=Count("id"))
        .order_by("-n", "batch_id")
    )
    return [(row["batch_id"], row["n"]) for row in rows]
