"""Writes of coupons: create from a pattern (now, or as a background job), personal codes for a list of
recipients, update one or a batch, delete one or by filter. Imports are in ``imports.py``.

Rules every path keeps
    - A code has at least 4 characters and is unique in its application, across its coupons and the promo
      codes of its environment; it is stored in the application's case (``models.normalize``).
    - ``usage_limit`` is 0 (unlimited) to 999,999; a limit is never set below what was already used.
    - Many rows are written set-based (``generation.py``), never one query per coupon.
    - Staff writes leave an audit row against the campaign; task enqueues happen on commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from django.contrib.admin.models import CHANGE
from django.db import transaction
from django.db.models import F, Q

from patronage.campaigns.models import Campaign
from patronage.core.audit import audit
from patronage.core.errors import Conflict, ErrorCollector, ErrorDetail, ValidationFailed

from .codes import DEFAULT_ALPHABET, check_pattern, taken_values
from .exports import coupons_export_rows
from .generation import (
    DEFAULT_PATTERN,
    MAX_RECIPIENT_LENGTH,
    MAX_TOP_UPS,
    CodeDrawer,
    CouponFields,
    coupon_generation_run,
    generation_settings,
    new_batch_id,
    params_json,
    write_generated,
    write_values,
)
from .models import MAX_CODE_LENGTH, MIN_CODE_LENGTH, Coupon, CouponGeneration, normalize
from .selectors import CouponFilters, coupons_filtered

MAX_SYNC_COUPONS = 20_000  # Talon.One's limit for one create_coupons call
MAX_GENERATED_COUPONS = 1_000_000
MAX_RECIPIENTS = 1000

__all__ = [
    "MAX_GENERATED_COUPONS",
    "MAX_RECIPIENTS",
    "MAX_SYNC_COUPONS",
    "coupon_delete",
    "coupon_generation_run",
    "coupon_generation_start",
    "coupon_update",
    "coupons_create",
    "coupons_delete",
    "coupons_export_rows",
    "coupons_for_recipients",
    "coupons_import",
    "coupons_update_batch",
]


def _count(count: int, most: int, *, pointer: str = "/numberOfCoupons") -> None:
    if isinstance(count, bool) or not isinstance(count, int) or not (1 <= count <= most):
        raise ValidationFailed(
            f"The number of coupons must be between 1 and {most:,}, not {count!r}",
            details=[ErrorDetail(ValidationFailed.title, f"between 1 and {most:,}", pointer=pointer)],
        )


def _fields(**values: Any) -> CouponFields:
    fields = CouponFields.from_params(values)
    fields.check()
    return fields


def _audit(actor: Any, campaign: Campaign, message: str) -> None:
    audit(actor, campaign, CHANGE, message)


@transaction.atomic
def coupons_create(
    *,
    campaign: Campaign,
    count: int,
    pattern: str = DEFAULT_PATTERN,
    alphabet: str = DEFAULT_ALPHABET,
    usage_limit: int = 1,
    discount_limit: Decimal | None = None,
    reservation_limit: int | None = None,
    start_date: dt.datetime | None = None,
    expiry_date: dt.datetime | None = None,
    recipient_integration_id: str = "",
    attributes: dict[str, Any] | None = None,
    is_reservation_mandatory: bool = False,
    implicitly_reserved: bool = False,
    limits: list[Any] | None = None,
    actor: Any = None,
) -> list[Coupon]:
    """``count`` (at most 20,000) new coupons of ``campaign`` from ``pattern`` (``#`` = a random character
    of ``alphabet``), sharing a fresh ``batch_id``; in id order."""
    _count(count, MAX_SYNC_COUPONS)
    check_pattern(pattern or DEFAULT_PATTERN, alphabet or DEFAULT_ALPHABET, count)
    fields = _fields(
        usage_limit=usage_limit,
        discount_limit=discount_limit,
        reservation_limit=reservation_limit,
        start_date=start_date,
        expiry_date=expiry_date,
        recipient_integration_id=recipient_integration_id,
        attributes=attributes if attributes is not None else {},
        limits=limits if limits is not None else [],
        is_reservation_mandatory=is_reservation_mandatory,
        implicitly_reserved=implicitly_reserved,
    )
    batch_id = new_batch_id()
    write_generated(
        campaign=campaign,
        count=count,
        pattern=pattern or DEFAULT_PATTERN,
        alphabet=alphabet or DEFAULT_ALPHABET,
        fields=fields,
        batch_id=batch_id,
    )
    _audit(actor, campaign, f"Created {count:,} coupons from the pattern {pattern} (batch {batch_id})")
    return list(Coupon.objects.filter(campaign=campaign, batch_id=batch_id).order_by("id"))


@transaction.atomic
def coupons_for_recipients(
    *,
    campaign: Campaign,
    recipients: list[str],
    pattern: str = DEFAULT_PATTERN,
    alphabet: str = DEFAULT_ALPHABET,
    usage_limit: int = 1,
    discount_limit: Decimal | None = None,
    reservation_limit: int | None = None,
    start_date: dt.datetime | None = None,
    expiry_date: dt.datetime | None = None,
    attributes: dict[str, Any] | None = None,
    actor: Any = None,
) -> list[Coupon]:
    """One personal code (only that customer may redeem it) per recipient integration ID, at most 1,000;
    a recipient named twice gets one code. In the order of ``recipients``."""
    wanted = list(dict.fromkeys(r.strip() for r in recipients if r and r.strip()))
    if not wanted:
        raise ValidationFailed("Name at least one recipient (a customer's integration ID)")
    if len(wanted) > MAX_RECIPIENTS:
        raise ValidationFailed(f"At most {MAX_RECIPIENTS:,} recipients at a time, not {len(wanted):,}")
    long = [r for r in wanted if len(r) > MAX_RECIPIENT_LENGTH]
    if long:
        raise ValidationFailed(
            f"A recipient's integration ID has at most {MAX_RECIPIENT_LENGTH} characters: {long[0][:40]}..."
        )
    check_pattern(pattern or DEFAULT_PATTERN, alphabet or DEFAULT_ALPHABET, len(wanted))
    fields = _fields(
        usage_limit=usage_limit,
        discount_limit=discount_limit,
        reservation_limit=reservation_limit,
        start_date=start_date,
        expiry_date=expiry_date,
        attributes=attributes if attributes is not None else {},
    )
    batch_id = new_batch_id()
    drawer = CodeDrawer(
        pattern or DEFAULT_PATTERN, alphabet or DEFAULT_ALPHABET, campaign.application.coupon_code_case
    )
    missing = wanted
    for _ in range(MAX_TOP_UPS):
        write_values(
            campaign=campaign,
            rows=zip(drawer.draw(len(missing)), missing, strict=True),
            fields=fields,
            batch_id=batch_id,
        )
        done = set(
            Coupon.objects.filter(campaign=campaign, batch_id=batch_id).values_list(
                "recipient_integration_id", flat=True
            )
        )
        missing = [r for r in wanted if r not in done]
        if not missing:
            break
    if missing:
        raise ValidationFailed(
            f"The pattern {pattern!r} has too few unused codes left in this application; use a longer one"
        )
    _audit(actor, campaign, f"Created {len(wanted):,} personal coupons (batch {batch_id})")
    by_recipient = {
        c.recipient_integration_id: c for c in Coupon.objects.filter(campaign=campaign, batch_id=batch_id)
    }
    return [by_recipient[r] for r in wanted]


@transaction.atomic
def coupon_generation_start(
    *, campaign: Campaign, count: int, params: dict[str, Any], actor: Any = None
) -> CouponGeneration:
    """Queue a background job making ``count`` (at most 1,000,000) coupons of ``campaign``.

    ``params`` are ``coupons_create``'s keyword arguments (``pattern``, ``alphabet``, ``usage_limit``,
    ``discount_limit``, ``start_date``, ``expiry_date``, ``recipient_integration_id``, ``attributes``,
    ``is_reservation_mandatory``, ``implicitly_reserved``); they are checked now, so a job never fails
    for a bad setting. The worker runs :func:`coupon_generation_run` after commit.
    """
    from .tasks import generate_coupons

    _count(count, MAX_GENERATED_COUPONS)
    pattern, alphabet, fields = generation_settings(params)
    check_pattern(pattern, alphabet, count)
    fields.check()
    generation = CouponGeneration.objects.create(
        campaign=campaign,
        requested=count,
        params=params_json({"pattern": pattern, "alphabet": alphabet, **fields.as_params()}),
        batch_id=new_batch_id(),
        created_by=actor if actor is not None and actor.pk is not None else None,
    )
    _audit(actor, campaign, f"Started generating {count:,} coupons from the pattern {pattern}")
    transaction.on_commit(lambda: generate_coupons.enqueue(generation.pk))
    return generation


# ---- updates ---------------------------------------------------------------------------------------------

UPDATABLE = (
    "usage_limit",
    "discount_limit",
    "reservation_limit",
    "start_date",
    "expiry_date",
    "recipient_integration_id",
    "attributes",
    "limits",
    "is_reservation_mandatory",
    "implicitly_reserved",
)
BATCH_UPDATABLE = (
    "usage_limit",
    "discount_limit",
    "reservation_limit",
    "start_date",
    "expiry_date",
    "attributes",
)


def _cleaned(data: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationFailed(f"These coupon fields cannot be changed here: {', '.join(unknown)}")
    clean: dict[str, Any] = dict(data)
    merged = CouponFields.from_params({k: v for k, v in clean.items() if v is not None})
    for name in clean:
        if clean[name] is not None:
            clean[name] = getattr(merged, name)
    if "recipient_integration_id" in clean and clean["recipient_integration_id"] is None:
        clean["recipient_integration_id"] = ""
    if "attributes" in clean and clean["attributes"] is None:
        clean["attributes"] = {}
    if "limits" in clean and clean["limits"] is None:
        clean["limits"] = []
    if "usage_limit" in clean and clean["usage_limit"] is None:
        clean["usage_limit"] = 1
    return clean


def _check_fields(clean: dict[str, Any], current: Coupon | None = None) -> None:
    probe = CouponFields()
    for name, value in clean.items():
        if hasattr(probe, name):
            setattr(probe, name, value)
    if current is not None:
        for name in ("start_date", "expiry_date"):
            if name not in clean:
                setattr(probe, name, getattr(current, name))
    errors = ErrorCollector()
    probe.check(errors)
    errors.raise_if_any("The coupon's new values are not valid")


@transaction.atomic
def coupon_update(*, coupon: Coupon, data: dict[str, Any], actor: Any = None) -> Coupon:
    """Set the fields in ``data`` (names of :data:`UPDATABLE`); the others stay. The Management API's PUT
    passes ``start_date``, ``expiry_date`` and ``recipient_integration_id`` as None when the body leaves
    them out (Talon.One's PUT-replace)."""
    clean = _cleaned(data, UPDATABLE)
    _check_fields(clean, coupon)
    locked = Coupon.objects.select_for_update(no_key=True, of=("self",)).get(pk=coupon.pk)
    limit = clean.get("usage_limit")
    if limit and limit < locked.usage_counter:
        raise Conflict(
            f"Coupon {locked.value} was already used {locked.usage_counter} times: its usage limit cannot "
            f"go below that (0 means unlimited)"
        )
    cap = clean.get("discount_limit")
    if cap is not None and cap < locked.discount_counter:
        raise Conflict(
            f"Coupon {locked.value} already gave {locked.discount_counter} of discount: its discount limit "
            "cannot go below that"
        )
    for name, value in clean.items():
        setattr(locked, name, value)
    if "recipient_integration_id" in clean:
        locked.reservation = not locked.recipient_integration_id
    locked.save()
    _audit(actor, locked.campaign, f"Changed coupon {locked.value}: {', '.join(sorted(clean))}")
    return locked


@transaction.atomic
def coupons_update_batch(
    *, campaign: Campaign, batch_id: str | None, data: dict[str, Any], actor: Any = None
) -> int:
    """Set the fields in ``data`` on every coupon of a batch (all the campaign's coupons when ``batch_id``
    is empty) in one statement; the number of coupons changed."""
    clean = _cleaned(data, BATCH_UPDATABLE)
    _check_fields(clean)
    rows = Coupon.objects.filter(campaign=campaign)
    if batch_id:
        rows = rows.filter(batch_id=batch_id)
    limit = clean.get("usage_limit")
    if limit:
        used = rows.filter(usage_counter__gt=limit).count()
        if used:
            raise Conflict(
                f"{used:,} coupons of this batch were used more than {limit} times: the usage limit cannot "
                "go below what was used (0 means unlimited)"
            )
    cap = clean.get("discount_limit")
    if cap is not None and rows.filter(discount_counter__gt=cap).exists():
        raise Conflict("Some coupons of this batch already gave more discount than the new discount limit")
    changed = rows.update(**clean) if clean else rows.count()
    which = f"batch {batch_id}" if batch_id else "all coupons"
    _audit(actor, campaign, f"Changed {changed:,} coupons ({which}): {', '.join(sorted(clean))}")
    return changed


# ---- deletes ---------------------------------------------------------------------------------------------


@transaction.atomic
def coupon_delete(*, coupon: Coupon, actor: Any = None) -> None:
    campaign, value = coupon.campaign, coupon.value
    coupon.delete()
    _audit(actor, campaign, f"Deleted coupon {value}")


@transaction.atomic
def coupons_delete(*, campaign: Campaign, filters: CouponFilters | None = None, actor: Any = None) -> int:
    """Delete the campaign's coupons matching ``filters`` (all of them when there is none); how many."""
    rows = coupons_filtered(campaign=campaign, filters=filters or CouponFilters())
    _, per_model = rows.order_by().delete()
    deleted = int(per_model.get(Coupon._meta.label, 0))
    _audit(actor, campaign, f"Deleted {deleted:,} coupons")
    return deleted


# ---- single values -----------------------------------------------------------------------------------------


def coupon_value_check(*, campaign: Campaign, value: str) -> str:
    """A value a person typed for a new coupon, normalized; ValidationFailed or Conflict when unusable."""
    normalized = normalize(value, campaign.application.coupon_code_case)
    if len(normalized) < MIN_CODE_LENGTH:
        raise ValidationFailed(
            f"A coupon code has at least {MIN_CODE_LENGTH} characters; {normalized!r} has {len(normalized)}"
        )
    if len(normalized) > MAX_CODE_LENGTH:
        raise ValidationFailed(f"A coupon code has at most {MAX_CODE_LENGTH} characters")
    if taken_values(campaign.application, [normalized]):
        raise Conflict(f"{normalized} is already a coupon or promo code of this application")
    return normalized


def coupons_usable_q() -> Q:
    return Q(usage_limit=0) | Q(usage_counter__lt=F("usage_limit"))


# ---- import -------------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    created: int = 0
    total: int = 0  # lines with a coupon after the header
    # Bad lines (``ErrorDetail.line``, ``.pointer`` = column, ``.details`` = reason), by line; when bad lines
    # were skipped, those left out.
    problems: list[ErrorDetail] = field(default_factory=list)


@transaction.atomic
def coupons_import(
    *,
    campaign: Campaign,
    source: IO[bytes],
    skip_bad_lines: bool = False,
    skip_duplicates: bool = False,
    actor: Any = None,
    import_id: int | None = None,
) -> ImportResult:
    """A CSV of coupons (Talon.One's columns, see ``imports.py``) into ``campaign`` at once.

    All or nothing: a bad line raises ``ValidationFailed`` whose ``details`` are every bad line (by number),
    and nothing is written; with ``skip_bad_lines`` the good lines are imported and the bad ones returned.
    Large files belong in an import job (kind ``coupons``), which runs the same code.
    """
    from .imports import import_coupons_csv

    found: list[ErrorDetail] = []
    outcome = import_coupons_csv(
        campaign=campaign,
        source=source,
        size=getattr(source, "size", 0) or 0,
        skip_bad_rows=skip_bad_lines,
        skip_duplicates=skip_duplicates,
        problems=found.extend,
        import_id=import_id,
    )
    if not outcome.applied:
        bad = outcome.bad_rows
        raise ValidationFailed(
            f"Nothing was imported: {bad:,} line{'s' if bad != 1 else ''} of the file "
            f"{'have' if bad != 1 else 'has'} problems (the first: line {found[0].line}, {found[0].details})",
            details=found,
        )
    _audit(actor, campaign, f"Imported {outcome.created:,} coupons from a file")
    return ImportResult(created=outcome.created, total=outcome.total_rows, problems=found)
