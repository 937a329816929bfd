"""The database side of codes in sessions: what a session's codes name (fetched in one query per kind,
locked when the session closes), whether one may be used, and what a close writes and a cancel undoes.

Lock order (ARCHITECTURE.md): profile, session, then coupons and promo codes, then the referral, then
budget counters. Closing sessions lock their codes here, before the engine locks its counters; rollbacks
lock them in :func:`rollback_load`, which the engine calls before its counters too. Every counter also
moves through a single conditional UPDATE (never past a limit, never below zero), so the invariants hold
on SQLite, which ignores row locks.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Round

from patronage.campaigns.facts import Facts
from patronage.campaigns.models import EffectRecord
from patronage.core.errors import Conflict
from patronage.core.locking import lock
from patronage.promocodes.models import PromoCode
from patronage.promocodes.selectors import REDEMPTION_ORDERS
from patronage.promocodes.services import promo_codes_mark_redeemed, promo_codes_unredeem

from .models import Coupon, CouponReservation, Redemption, Referral, normalize
from .presenters import coupon_json, inventory_referral_json, referral_json

ZERO = Decimal("0")


@dataclass(frozen=True)
class CodeFacts:
    """One code of the request, as evaluation reads it (no database behind it)."""

    kind: str  # coupon, promocode, referral
    pk: int
    typed: str  # as the session carries it: what the effects answer with
    campaign_ids: frozenset[int]
    usage_limit: int = 0
    usage_counter: int = 0
    start: dt.datetime | None = None
    expiry: dt.datetime | None = None
    recipient: str = ""  # a coupon's recipient, a referral's bound friend
    advocate: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    reservation_required: bool = False
    reserved: bool = False  # by the session's customer
    reservation_limit: int | None = None
    reservation_counter: int = 0
    discount_left: Decimal | None = None
    profile_redemptions: int = 0
    # The coupon's own per-customer limit (Talon.One's Coupon.limits: redeemCoupon per Profile).
    profile_limit: int | None = None
    # Promo codes: to whom the code was issued, and whether it was used already.
    issued_to: int | None = None
    issued: bool = True
    redeemed: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind[0]}{self.pk}"


@dataclass
class Loaded:
    typed: tuple[str, ...] = ()
    found: list[CodeFacts] = field(default_factory=list)
    by_typed: dict[str, CodeFacts] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)  # by CodeFacts.key

    def add(self, typed: str, code: CodeFacts, obj: Any) -> None:
        self.found.append(code)
        self.by_typed[typed] = code
        self.objects[code.key] = obj


# ---- loading -----------------------------------------------------------------------------------------------


def load_coupons(facts: Facts, *, lock: bool) -> Loaded:
    session = facts.session
    if session is None:
        return Loaded()
    typed = tuple(dict.fromkeys(c for c in session.coupon_codes if isinstance(c, str) and c.strip()))
    loaded = Loaded(typed=typed)
    if not typed:
        return loaded
    case = facts.app.code_case
    profile_id = facts.profile.pk if facts.profile is not None else None
    wanted = {normalize(t, case) for t in typed} | {t.strip() for t in typed}
    coupons = _locked(
        Coupon.objects.filter(application_id=facts.app.id, value__in=wanted)
        .annotate(
            held=Exists(CouponReservation.objects.filter(coupon=OuterRef("pk"), profile_id=profile_id)),
            used_by_profile=_profile_redemptions(profile_id),
        )
        .order_by("pk"),
        lock,
    )
    by_value = {c.value: c for c in coupons}
    rest = []
    for code in typed:
        coupon = by_value.get(normalize(code, case)) or by_value.get(code.strip())
        if coupon is None:
            rest.append(code)
            continue
        loaded.add(code, _coupon_facts(code, coupon), coupon)
    if rest:
        _load_promo_codes(facts, loaded, rest, lock=lock)
    return loaded


def _locked(queryset: Any, locking: bool) -> list[Any]:
    return list(lock(queryset) if locking else queryset)


def _profile_redemptions(profile_id: int | None) -> Any:
    if profile_id is None:
        return Value(0)
    used = (
        Redemption.objects.filter(coupon=OuterRef("pk"), profile_id=profile_id, rolled_back_at=None)
        .order_by()
        .values("coupon")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(used), Value(0))


def _coupon_facts(typed: str, coupon: Coupon) -> CodeFacts:
    return CodeFacts(
        kind="coupon",
        pk=coupon.pk,
        typed=typed,
        campaign_ids=frozenset((coupon.campaign_id,)),
        usage_limit=coupon.usage_limit,
        usage_counter=coupon.usage_counter,
        start=coupon.start_date,
        expiry=coupon.expiry_date,
        recipient=coupon.recipient_integration_id,
        attributes=coupon.attributes,
        reservation_required=coupon.is_reservation_mandatory,
        reserved=bool(getattr(coupon, "held", False)) or coupon.implicitly_reserved,
        reservation_limit=coupon.reservation_limit,
        reservation_counter=coupon.reservation_counter,
        discount_left=coupon.discount_remainder,
        profile_redemptions=int(getattr(coupon, "used_by_profile", 0) or 0),
        profile_limit=_profile_limit(coupon.limits),
    )


def _profile_limit(limits: Any) -> int | None:
    found = [
        int(limit["limit"])
        for limit in limits or []
        if limit.get("action") == "redeemCoupon" and "Profile" in (limit.get("entities") or ())
    ]
    return min(found) if found else None


def _load_promo_codes(facts: Facts, loaded: Loaded, typed: list[str], *, lock: bool) -> None:
    """Codes of promo-code groups that campaigns of the application accept. Upload keeps a code's case:
    under a case-insensitive application a code typed in another case still matches when the pool's codes
    are all upper or all lower case (the usual), through the unique index."""
    insensitive = facts.app.code_case != "sensitive"
    variants = {t.strip() for t in typed}
    if insensitive:
        variants |= {v.upper() for v in variants} | {v.lower() for v in variants}
    rows = _locked(
        PromoCode.objects.filter(
            environment_id=facts.app.environment_id,
            code__in=variants,
            group__campaign_sources__campaign__application_id=facts.app.id,
        )
        .annotate(campaign_id=F("group__campaign_sources__campaign_id"))
        .order_by("pk"),
        lock,
    )
    campaigns: dict[int, set[int]] = defaultdict(set)
    promos: dict[int, PromoCode] = {}
    for row in rows:
        campaigns[row.pk].add(row.campaign_id)
        promos[row.pk] = row
    for code in typed:
        wanted = code.strip()
        promo = next((p for p in promos.values() if p.code == wanted), None)
        if promo is None and insensitive:
            promo = next((p for p in promos.values() if p.code.lower() == wanted.lower()), None)
        if promo is None:
            continue
        loaded.add(
            code,
            CodeFacts(
                kind="promocode",
                pk=promo.pk,
                typed=code,
                campaign_ids=frozenset(campaigns[promo.pk]),
                usage_limit=1,
                usage_counter=1 if promo.redeemed_at is not None else 0,
                issued_to=promo.issued_to_id,
                issued=promo.issued_at is not None,
                redeemed=promo.redeemed_at is not None,
            ),
            promo,
        )


def load_referral(facts: Facts, *, lock: bool) -> Loaded:
    session = facts.session
    code = session.referral_code.strip() if session is not None else ""
    loaded = Loaded(typed=(session.referral_code,) if code and session is not None else ())
    if not code or session is None:
        return loaded
    wanted = {code, normalize(code, facts.app.code_case)}
    found = _locked(
        Referral.objects.filter(application_id=facts.app.id, code__in=wanted).order_by("pk"), lock
    )
    referral = next((r for r in found if r.code == normalize(code, facts.app.code_case)), None) or next(
        iter(found), None
    )
    if referral is not None:
        loaded.add(
            session.referral_code,
            CodeFacts(
                kind="referral",
                pk=referral.pk,
                typed=session.referral_code,
                campaign_ids=frozenset((referral.campaign_id,)),
                usage_limit=referral.usage_limit,
                usage_counter=referral.usage_counter,
                start=referral.start_date,
                expiry=referral.expiry_date,
                recipient=referral.friend_integration_id,
                advocate=referral.advocate_integration_id,
                attributes=referral.attributes,
            ),
            referral,
        )
    return loaded


# ---- the rule ----------------------------------------------------------------------------------------------


def problem(code: CodeFacts, facts: Facts) -> str:
    """Why the code may not be used in this evaluation (Talon.One's rejection reason), or ""."""
    profile = facts.profile
    if code.kind == "promocode":
        # The same rule as promocodes.services.promo_codes_mark_redeemed: issued to this customer, unused.
        if not code.issued:
            return "CouponNotFound"
        if profile is None:
            return "ProfileRequired"
        if code.issued_to != profile.pk:
            return "CouponRecipientDoesNotMatch"
        return "CampaignLimitReached" if code.redeemed else ""
    prefix = "Referral" if code.kind == "referral" else "Coupon"
    if code.start is not None and code.start > facts.now:
        return f"{prefix}StartDateInFuture"
    if code.expiry is not None and code.expiry <= facts.now:
        return f"{prefix}Expired"
    if code.kind == "referral":
        if profile is None:
            return "ProfileRequired"
        if profile.integration_id == code.advocate:
            return "ReferralRecipientIdSameAsAdvocate"
        if code.recipient and code.recipient != profile.integration_id:
            return "ReferralRecipientDoesNotMatch"
        if code.usage_limit and code.usage_counter >= code.usage_limit:
            return "ReferralLimitReached"
        return ""
    if code.recipient:
        if profile is None:
            return "ProfileRequired"
        if code.recipient != profile.integration_id:
            return "CouponRecipientDoesNotMatch"
    if code.reservation_required and not code.reserved:
        return "ProfileRequired" if profile is None else "CouponReservationRequired"
    if code.usage_limit and code.usage_counter >= code.usage_limit:
        return "CampaignLimitReached"
    if code.discount_left is not None and code.discount_left <= 0:
        return "CampaignLimitReached"
    if code.profile_limit is not None:
        if profile is None:
            return "ProfileRequired"
        if code.profile_redemptions >= code.profile_limit:
            return "ProfileLimitReached"
    return ""


# ---- close -------------------------------------------------------------------------------------------------


def commit(scope: Any, work: Any, *, session: Any, profile: Any, now: dt.datetime) -> dict[str, list[Any]]:
    """What a close (or an event) commits for this kind of code: the redemptions, then what rules made."""
    outcome = work.outcome
    loaded: Loaded = work.loaded.get(scope.condition) or Loaded()
    if session is not None:
        _redeem(scope, loaded, outcome.effects, session=session, profile=profile, now=now)
    if scope.condition == "couponValid":
        _reserve(outcome.effects, now=now)
        return {"createdCoupons": _create_coupons(work, outcome.effects, now=now)}
    return {"createdReferrals": _create_referrals(work, outcome.effects, now=now)}


def _redeem(
    scope: Any, loaded: Loaded, effects: list[Any], *, session: Any, profile: Any, now: dt.datetime
) -> None:
    rows = []
    for effect in effects:
        if effect.effect_type != scope.accept_type:
            continue
        code = loaded.by_typed[effect.props["value"]]
        discount = sum((e.amount for e in effects if e.code == code.key), ZERO)
        if not _count_use(code, discount, profile=profile, now=now):
            raise Conflict(f"Code {code.typed} was used up while the session closed; retry the request")
        rows.append(
            Redemption(
                application_id=session.application_id,
                kind=code.kind,
                coupon_id=code.pk if code.kind == "coupon" else None,
                referral_id=code.pk if code.kind == "referral" else None,
                promo_code_id=code.pk if code.kind == "promocode" else None,
                campaign_id=effect.campaign.id,
                code=code.typed[:100],
                session=session,
                profile=profile,
                discount=discount,
                created=now,
            )
        )
    if rows:
        Redemption.objects.bulk_create(rows)


def _count_use(code: CodeFacts, discount: Decimal, *, profile: Any, now: dt.datetime) -> bool:
    """The single statement that counts one use, refusing a use past the limit (even without row locks)."""
    if code.kind == "promocode":
        return bool(promo_codes_mark_redeemed(PromoCode.objects.filter(pk=code.pk), profile=profile, now=now))
    within = Q(usage_limit=0) | Q(usage_counter__lt=F("usage_limit"))
    if code.kind == "referral":
        return bool(Referral.objects.filter(within, pk=code.pk).update(usage_counter=F("usage_counter") + 1))
    coupons = Coupon.objects.filter(within, pk=code.pk)
    if discount:
        coupons = coupons.filter(
            Q(discount_limit=None) | Q(discount_counter__lte=F("discount_limit") - discount)
        )
    return bool(
        coupons.update(
            usage_counter=F("usage_counter") + 1, discount_counter=Round(F("discount_counter") + discount, 4)
        )
    )


def _reserve(effects: list[Any], *, now: dt.datetime) -> None:
    made = [e.data for e in effects if e.effect_type == "reserveCoupon" and e.props["isNewReservation"]]
    for data in made:
        coupon = Coupon.objects.filter(pk=data["coupon"])
        room = Q(reservation_limit=None) | Q(reservation_counter__lt=F("reservation_limit"))
        if coupon.filter(room).update(reservation_counter=F("reservation_counter") + 1):
            CouponReservation.objects.bulk_create(
                [
                    CouponReservation(
                        coupon_id=data["coupon"], profile_id=data["profile"], by_rule=True, created=now
                    )
                ],
                ignore_conflicts=True,
            )


def _create_coupons(work: Any, effects: list[Any], *, now: dt.datetime) -> list[dict[str, Any]]:
    made = [
        Coupon(
            application_id=work.facts.app.id,
            campaign_id=e.campaign.id,
            value=e.props["value"],
            usage_limit=e.data["usage_limit"],
            expiry_date=dt.datetime.fromisoformat(e.data["expiry"]) if e.data.get("expiry") else None,
            recipient_integration_id=e.data["recipient"],
            referral_id=e.data.get("referral"),
            reservation=False,
            created=now,
        )
        for e in effects
        if e.effect_type == "couponCreated"
    ]
    return [coupon_json(c) for c in Coupon.objects.bulk_create(made)] if made else []


def _create_referrals(work: Any, effects: list[Any], *, now: dt.datetime) -> list[dict[str, Any]]:
    made = [
        Referral(
            application_id=work.facts.app.id,
            campaign_id=e.campaign.id,
            code=e.props["value"],
            advocate_integration_id=e.data["advocate"],
            usage_limit=e.data["usage_limit"],
            created=now,
        )
        for e in effects
        if e.effect_type == "referralCreated"
    ]
    return [referral_json(r) for r in Referral.objects.bulk_create(made)] if made else []


# ---- cancel and reopen -------------------------------------------------------------------------------------


@dataclass
class Undo:
    redemptions: list[Redemption] = field(default_factory=list)
    # The acceptance each redemption came from: its envelope answers the rollback.
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)


def rollback_load(scope: Any, session: Any) -> Undo:
    redemptions = list(
        Redemption.objects.filter(session=session, rolled_back_at=None, kind__in=scope.kinds).order_by("pk")
    )
    if not redemptions:
        return Undo()
    for model, column in ((Coupon, "coupon_id"), (PromoCode, "promo_code_id"), (Referral, "referral_id")):
        ids = sorted({getattr(r, column) for r in redemptions if getattr(r, column)})
        if ids:
            _locked(model.objects.filter(pk__in=ids).order_by("pk").values_list("pk", flat=True), True)
    envelopes: dict[str, dict[str, Any]] = {
        record["props"]["value"]: dict(record)
        for record in EffectRecord.objects.filter(session=session, effect_type=scope.accept_type).values(
            "campaign_id", "ruleset_id", "rule_index", "rule_name", "props"
        )
    }
    return Undo(redemptions, envelopes)


def rollback_effects(scope: Any, ctx: Any, undo: Undo | None) -> list[dict[str, Any]]:
    effects = []
    for redemption in undo.redemptions if undo is not None else []:
        redemption.rolled_back_at = ctx.now
        record = undo.envelopes.get(redemption.code, {}) if undo is not None else {}
        effects.append(
            {
                "campaignId": redemption.campaign_id,
                "rulesetId": record.get("ruleset_id", 0),
                "ruleIndex": record.get("rule_index", 0),
                "ruleName": record.get("rule_name", ""),
                "effectType": scope.rollback_type,
                "props": {"value": redemption.code},
            }
        )
    return effects


def release(scope: Any, undo: Undo | None) -> None:
    """Give the codes back: counters down by what the session used, promo codes unredeemed."""
    if undo is None or not undo.redemptions:
        return
    done = [r for r in undo.redemptions if r.rolled_back_at is not None]
    Redemption.objects.bulk_update(done, ["rolled_back_at"])
    uses: Counter[int] = Counter()
    discounts: dict[int, Decimal] = defaultdict(Decimal)
    for r in done:
        if r.kind == "coupon" and r.coupon_id:
            uses[r.coupon_id] += 1
            discounts[r.coupon_id] += r.discount
        elif r.kind == "referral" and r.referral_id:
            Referral.objects.filter(pk=r.referral_id).update(usage_counter=F("usage_counter") - 1)
        elif r.kind == "promocode" and r.promo_code_id:
            promo_codes_unredeem(PromoCode.objects.filter(pk=r.promo_code_id), profile_id=r.profile_id)
    for coupon_id, count in sorted(uses.items()):
        Coupon.objects.filter(pk=coupon_id).update(
            usage_counter=F("usage_counter") - count,
            discount_counter=Round(F("discount_counter") - discounts[coupon_id], 4),
        )


# ---- responseContent ---------------------------------------------------------------------------------------


def coupons_content(loaded: Loaded | None, profile: Any) -> list[dict[str, Any]]:
    """Talon.One's IntegrationCoupon for each coupon of the session (promo codes are not coupons there)."""
    if loaded is None:
        return []
    return [
        {**coupon_json(loaded.objects[code.key]), "profileRedemptionCount": code.profile_redemptions}
        for code in loaded.found
        if code.kind == "coupon"
    ]


def referral_content(loaded: Loaded | None) -> dict[str, Any] | None:
    if loaded is None or not loaded.found:
        return None
    referral = loaded.objects[loaded.found[0].key]
    friends = (
        Redemption.objects.filter(referral=referral, rolled_back_at=None, profile__isnull=False)
        .values_list("profile__integration_id", flat=True)
        .distinct()
    )
    return inventory_referral_json(referral, referred_customers=friends)


def promo_code_orders(ids: set[int]) -> dict[int, tuple[int, str]]:
    """The order each promo code was used in at checkout: (session id, session integration ID)."""
    rows = Redemption.objects.filter(
        kind="promocode", promo_code_id__in=ids, rolled_back_at=None
    ).values_list("promo_code_id", "session_id", "session__integration_id")
    return {code: (session, integration_id) for code, session, integration_id in rows}


REDEMPTION_ORDERS.append(promo_code_orders)  # the customer's Promo codes tab names the order
