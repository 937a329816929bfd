"""Customers holding coupons: reservations made and removed by the shop (Talon.One's coupon reservations).

A reservation is hard when the coupon requires one (only holders may redeem it) and soft otherwise (the
coupon shows in the holder's inventory; anyone may redeem it). Reservations made here ignore the coupon's
reservation limit and leave its reservation counter alone: both belong to the rule effect ``reserveCoupon``
(``by_rule``). A personal coupon (a recipient, or ``reservation`` off) is never reserved by anyone else.
Customers named for the first time are created, as the Integration API does wherever it meets a profile.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Greatest

from patronage.core import clock
from patronage.core.errors import ErrorCollector, ErrorDetail, NotFound, ValidationFailed
from patronage.customers.models import CustomerProfile
from patronage.customers.services import validate_integration_id
from patronage.workspace.models import Application

from .models import Coupon, CouponReservation, normalize

MAX_PROFILES = 1000


def coupon_of_value(application: Application, value: str, *, lock: bool = False) -> Coupon:
    """The application's coupon with this code (as the application's case matches codes)."""
    rows = Coupon.objects.filter(
        application=application,
        value=normalize(value, application.coupon_code_case),
        campaign__deleted_at=None,
    )
    if lock:
        rows = rows.select_for_update(no_key=True, of=("self",))
    coupon = rows.first()
    if coupon is None:
        message = f"Coupon {value!r} not found"
        raise NotFound(message, details=[ErrorDetail(NotFound.title, message, pointer="query:couponValue")])
    return coupon


def coupon_holders(application: Application, value: str) -> QuerySet[CustomerProfile]:
    """The customers holding the coupon (hard and soft reservations), in the order they reserved it."""
    coupon = coupon_of_value(application, value)
    return CustomerProfile.objects.filter(coupon_reservations__coupon=coupon).order_by(
        "coupon_reservations__created", "coupon_reservations__id"
    )


def _checked_ids(integration_ids: list[str]) -> list[str]:
    errors = ErrorCollector()
    if not integration_ids:
        errors.add("Name at least one customer in integrationIDs", pointer="/integrationIDs")
    if len(integration_ids) > MAX_PROFILES:
        errors.add(
            f"At most {MAX_PROFILES} customers per call, not {len(integration_ids)}",
            pointer="/integrationIDs",
        )
    for index, integration_id in enumerate(integration_ids):
        validate_integration_id(integration_id, pointer=f"/integrationIDs/{index}", errors=errors)
    errors.raise_if_any()
    return list(dict.fromkeys(integration_ids))


@transaction.atomic
def coupon_reserve(*, application: Application, value: str, integration_ids: list[str]) -> Coupon:
    """The customers named hold the coupon from now on (again: no change); unknown customers are created."""
    ids = _checked_ids(integration_ids)
    environment = application.environment
    now = clock.now()
    # Profiles come before coupons in the lock order: make the missing ones first, lock the coupon after.
    CustomerProfile.objects.bulk_create(
        [
            CustomerProfile(environment=environment, integration_id=i, created=now, last_activity=now)
            for i in sorted(ids)
        ],
        ignore_conflicts=True,
    )
    coupon = coupon_of_value(application, value, lock=True)
    personal_to = coupon.recipient_integration_id
    if personal_to or not coupon.reservation:
        others = [i for i in ids if i != personal_to]
        if others:
            whose = f"personal to customer {personal_to!r}" if personal_to else "personal (not reservable)"
            message = (
                f"Coupon {coupon.value} is {whose}: it cannot be reserved for "
                f"{', '.join(repr(i) for i in others[:5])}{' ...' if len(others) > 5 else ''}"
            )
            raise ValidationFailed(
                message, details=[ErrorDetail(ValidationFailed.title, message, pointer="/integrationIDs")]
            )
    profile_ids = CustomerProfile.objects.filter(environment=environment, integration_id__in=ids).values_list(
        "pk", flat=True
    )
    CouponReservation.objects.bulk_create(
        [CouponReservation(coupon=coupon, profile_id=pk, created=now) for pk in sorted(profile_ids)],
        ignore_conflicts=True,
    )
    return coupon


@transaction.atomic
def coupon_unreserve(*, application: Application, value: str, integration_ids: list[str]) -> int:
    """The customers named no longer hold the coupon; how many reservations went. A reservation a rule
    made gives its place under the reservation limit back."""
    ids = _checked_ids(integration_ids)
    coupon = coupon_of_value(application, value, lock=True)
    reservations = CouponReservation.objects.filter(
        coupon=coupon, profile__environment=application.environment, profile__integration_id__in=ids
    )
    by_rule = reservations.filter(by_rule=True).count()
    removed = int(
        CouponReservation.objects.filter(pk__in=list(reservations.values_list("pk", flat=True))).delete()[0]
    )
    if by_rule:
        Coupon.objects.filter(pk=coupon.pk).update(
            reservation_counter=Greatest(F("reservation_counter") - by_rule, 0)
        )
    return removed
