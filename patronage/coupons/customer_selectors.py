"""Reads about one customer's codes: the back office's Coupons, Referred customers and Sessions tabs of the
customer page, the Return items page, and the customer panel's "My codes" page.

Every read is a handful of queries whatever the number of rows (no query per coupon or per session).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from patronage.campaigns.models import Campaign, CampaignState
from patronage.core import clock
from patronage.customer_sessions.models import CartItem, CustomerSession, SessionState
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import PromoCodeIssue
from patronage.workspace.models import Application

from .models import CampaignCodeSource, Coupon, CouponReservation, Redemption


class CouponStatus:
    """Talon.One's InventoryCoupon states (talon-one.md 4.3), the Status column of the Coupons tab."""

    ACTIVE = "active"
    USED = "used"
    EXPIRED = "expired"
    PENDING = "pending"
    DISABLED = "disabled"


def coupon_status(coupon: Coupon, *, redeemed_by_profile: bool, now: dt.datetime) -> str:
    """Used (up, or by this customer), then disabled (its campaign does not run), expired, pending, active."""
    used_up = coupon.usage_limit > 0 and coupon.usage_counter >= coupon.usage_limit
    if used_up or redeemed_by_profile:
        return CouponStatus.USED
    campaign = coupon.campaign
    if campaign.deleted_at is not None or campaign.frontend_state(now) not in ("running", "scheduled"):
        return CouponStatus.DISABLED
    if coupon.expiry_date is not None and coupon.expiry_date <= now:
        return CouponStatus.EXPIRED
    if coupon.start_date is not None and coupon.start_date > now:
        return CouponStatus.PENDING
    return CouponStatus.ACTIVE


def usage_text(counter: int, limit: int) -> str:
    """``3 / 5``; an unlimited code (limit 0) reads ``3 / ∞``."""
    return f"{counter} / {limit if limit else '∞'}"


@dataclass
class SessionLink:
    pk: int
    integration_id: str
    rolled_back: bool = False


@dataclass
class CustomerCoupon:
    coupon: Coupon
    status: str
    # Why it is the customer's: "personal", "reserved", "redeemed" (one or more).
    reasons: list[str]
    sessions: list[SessionLink] = field(default_factory=list)

    @property
    def usage(self) -> str:
        return usage_text(self.coupon.usage_counter, self.coupon.usage_limit)

    @property
    def attributes(self) -> list[tuple[str, Any]]:
        return sorted((self.coupon.attributes or {}).items())


def _environment_applications(profile: CustomerProfile) -> QuerySet[Application]:
    return Application.objects.filter(environment_id=profile.environment_id)


def customer_coupons(profile: CustomerProfile, *, now: dt.datetime | None = None) -> list[CustomerCoupon]:
    """Every coupon of the customer, newest first: personal ones (their integration ID as recipient, in an
    application of their environment), those they reserved and those they redeemed."""
    now = now or clock.now()
    applications = _environment_applications(profile)
    personal = set(
        Coupon.objects.filter(
            application__in=applications, recipient_integration_id=profile.integration_id
        ).values_list("pk", flat=True)
    )
    reserved = set(CouponReservation.objects.filter(profile=profile).values_list("coupon_id", flat=True))
    redemptions = list(
        Redemption.objects.filter(profile=profile, kind=Redemption.Kind.COUPON, coupon__isnull=False)
        .select_related("session")
        .order_by("created", "pk")
    )
    sessions: dict[int, list[SessionLink]] = defaultdict(list)
    redeemed_now: set[int] = set()
    for redemption in redemptions:
        assert redemption.coupon_id is not None
        rolled_back = redemption.rolled_back_at is not None
        sessions[redemption.coupon_id].append(
            SessionLink(redemption.session_id, redemption.session.integration_id, rolled_back)
        )
        if not rolled_back:
            redeemed_now.add(redemption.coupon_id)
    ids = personal | reserved | set(sessions)
    coupons = Coupon.objects.filter(pk__in=ids).select_related("campaign").order_by("-created", "-pk")
    rows = []
    for coupon in coupons:
        reasons = [
            name
            for name, holds in (
                ("personal", coupon.pk in personal),
                ("reserved", coupon.pk in reserved),
                ("redeemed", coupon.pk in sessions),
            )
            if holds
        ]
        status = coupon_status(coupon, redeemed_by_profile=coupon.pk in redeemed_now, now=now)
        rows.append(CustomerCoupon(coupon, status, reasons, sessions.get(coupon.pk, [])))
    return rows


def referred_customers(profile: CustomerProfile) -> QuerySet[Redemption]:
    """Referral redemptions of codes this customer advocates, newest first (rolled-back ones included)."""
    return (
        Redemption.objects.filter(
            kind=Redemption.Kind.REFERRAL,
            application__in=_environment_applications(profile),
            referral__advocate_integration_id=profile.integration_id,
        )
        .select_related("session", "profile", "referral")
        .order_by("-created", "-pk")
    )


SESSION_STATES: list[tuple[str, str]] = [
    (SessionState.OPEN, "Open"),
    (SessionState.CLOSED, "Closed"),
    (SessionState.PARTIALLY_RETURNED, "Partially returned"),
    (SessionState.CANCELLED, "Cancelled"),
]
RETURNABLE = (SessionState.CLOSED, SessionState.PARTIALLY_RETURNED)


def customer_sessions(profile: CustomerProfile, *, state: str = "") -> QuerySet[CustomerSession]:
    """Every session of the customer, newest first, with the units in it and the units returned."""
    sessions = CustomerSession.objects.filter(profile=profile)
    if state:
        sessions = sessions.filter(state=state)
    return (
        sessions.select_related("application")
        .annotate(
            units=Coalesce(Sum("items__quantity"), 0),
            returned_units=Coalesce(Sum("items__returned_quantity"), 0),
        )
        .order_by("-created", "-pk")
    )


def customer_sessions_page(
    profile: CustomerProfile, *, page: Any = 1, per_page: int = 20, state: str = ""
) -> Page[CustomerSession]:
    return Paginator(customer_sessions(profile, state=state), per_page).get_page(page)


@dataclass
class ReturnLine:
    item: CartItem
    remaining: int


def returnable_lines(session: CustomerSession) -> list[ReturnLine]:
    """The cart's lines with what is left to return of each."""
    items = CartItem.objects.filter(session=session).order_by("position")
    return [ReturnLine(item, item.quantity - item.returned_quantity) for item in items]


# --- the customer panel's "My codes" ---------------------------------------------------------------------


@dataclass
class PanelCode:
    code: str
    kind: str  # "coupon" or "promocode"
    purpose: str
    detail: str
    valid_until: dt.datetime | None
    used: bool
    state: str  # "ready", "used", "expired", "pending"
    starts: dt.datetime | None = None


@dataclass
class PanelCodes:
    coupons: list[PanelCode]
    promo_codes: list[PanelCode]

    @property
    def empty(self) -> bool:
        return not self.coupons and not self.promo_codes


_STATE_ORDER = {"ready": 0, "pending": 1, "used": 2, "expired": 3}


def _valid_until(*dates: dt.datetime | None) -> dt.datetime | None:
    known = [d for d in dates if d is not None]
    return min(known) if known else None


def panel_codes(
    *, application: Application, profile: CustomerProfile, now: dt.datetime | None = None
) -> PanelCodes:
    """The codes the signed-in customer may see in this shop: coupons addressed to them, reserved by them or
    visible to every customer (of campaigns that are running or scheduled), and the promo codes mailings
    issued them. Usable ones first."""
    now = now or clock.now()
    live_campaigns = Q(campaign__state=CampaignState.ENABLED, campaign__deleted_at=None) & (
        Q(campaign__end_time=None) | Q(campaign__end_time__gt=now)
    )
    found = (
        Coupon.objects.filter(application=application)
        .filter(
            Q(recipient_integration_id=profile.integration_id)
            | Q(implicitly_reserved=True)
            | Q(reservations__profile=profile)
        )
        .filter(live_campaigns)
        .select_related("campaign")
        .distinct()
        .order_by("-created", "-pk")
    )
    coupons = list(found)
    redeemed = set(
        Redemption.objects.filter(
            profile=profile, kind=Redemption.Kind.COUPON, rolled_back_at=None, coupon__in=coupons
        ).values_list("coupon_id", flat=True)
    )
    reserved = set(
        CouponReservation.objects.filter(profile=profile, coupon__in=coupons).values_list(
            "coupon_id", flat=True
        )
    )
    coupon_rows = []
    for coupon in coupons:
        status = coupon_status(coupon, redeemed_by_profile=coupon.pk in redeemed, now=now)
        state = {"active": "ready", "used": "used", "expired": "expired", "pending": "pending"}.get(status)
        if state is None:
            continue
        if coupon.recipient_integration_id == profile.integration_id:
            detail = "Personal code: only you can use it"
        elif coupon.pk in reserved:
            detail = "Saved to your account"
        else:
            detail = "Available to every customer"
        coupon_rows.append(
            PanelCode(
                code=coupon.value,
                kind="coupon",
                purpose=coupon.campaign.name,
                detail=detail,
                valid_until=_valid_until(coupon.expiry_date, coupon.campaign.end_time),
                used=coupon.pk in redeemed,
                state=state,
                starts=coupon.start_date if state == "pending" else None,
            )
        )

    issues = list(
        PromoCodeIssue.objects.filter(profile=profile, promo_code__isnull=False)
        .select_related("promo_code", "group")
        .order_by("-created", "-pk")
    )
    groups = {issue.group_id for issue in issues if issue.group_id is not None}
    campaigns_of_group: dict[int, list[Campaign]] = defaultdict(list)
    for source in (
        CampaignCodeSource.objects.filter(group_id__in=groups, campaign__application=application)
        .filter(live_campaigns)
        .select_related("campaign")
        .order_by("campaign__name")
    ):
        campaigns_of_group[source.group_id].append(source.campaign)
    promo_rows = []
    seen: set[int] = set()
    for issue in issues:
        code = issue.promo_code
        assert code is not None
        if code.pk in seen:
            continue  # a repeat issue of the same code: one card
        seen.add(code.pk)
        campaigns = campaigns_of_group.get(issue.group_id or 0, [])
        ends = [c.end_time for c in campaigns]
        used = code.redeemed_at is not None
        valid_until = None if not ends or None in ends else max(e for e in ends if e is not None)
        promo_rows.append(
            PanelCode(
                code=code.code,
                kind="promocode",
                purpose=", ".join(c.name for c in campaigns) or issue.group_name,
                detail=(issue.group.description if issue.group is not None else "") or "",
                valid_until=valid_until,
                used=used,
                state="used" if used else "ready",
            )
        )
    coupon_rows.sort(key=lambda row: _STATE_ORDER[row.state])
    promo_rows.sort(key=lambda row: _STATE_ORDER[row.state])
    return PanelCodes(coupon_rows, promo_rows)
