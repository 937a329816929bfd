"""Referral codes: made by the Integration API for one advocate or many, imported from CSV, listed, changed,
deleted and exported by staff.

Codes made here ignore the campaign's referral budgets (as Talon.One's API does): budgets bind the rule
effect that creates referrals, not the shop's own calls. A code is unique within its application, stored in
the application's case (:func:`patronage.coupons.models.normalize`). Writes are services
(``referral_<verb>``), reads are selectors (``referrals_of``, ``referral_export_lines``).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.contrib.admin.models import CHANGE, DELETION
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from patronage.campaigns.models import Campaign
from patronage.core import clock
from patronage.core.audit import audit
from patronage.core.csvio import Columns, CsvReader, check_header, format_row, neutralize, restore
from patronage.core.errors import Conflict, ErrorCollector, ErrorDetail, NotFound, ValidationFailed
from patronage.workspace.models import Application

from .codes import DEFAULT_ALPHABET, check_pattern, random_codes
from .models import MAX_CODE_LENGTH, MAX_USAGE_LIMIT, MIN_CODE_LENGTH, Referral, normalize

FEATURE = "referrals"
# Talon.One's campaigns carry referralSettings (pattern, alphabet); ours have no such setting yet, so codes
# of every campaign come from this pattern unless a request names its own.
DEFAULT_PATTERN = "REF-########"
MAX_ADVOCATES = 1000
MAX_ID = 1000

IMPORT_COLUMNS = Columns(
    required=("code", "advocateprofileintegrationid"),
    optional=("friendprofileintegrationid", "startdate", "expirydate", "limitval", "attributes"),
    # What an export adds: accepted on import (an export re-imports) and never read.
    ignored=("id", "created", "campaignid", "counter", "batchid", "importid"),
)
EXPORT_COLUMNS = (
    "id",
    "created",
    "campaignid",
    "code",
    "advocateprofileintegrationid",
    "friendprofileintegrationid",
    "startdate",
    "expirydate",
    "limitval",
    "counter",
    "batchid",
    "importid",
    "attributes",
)


# --- selectors --------------------------------------------------------------------------------------------


def referral_campaign(
    application: Application, campaign_id: int, *, pointer: str = "/campaignId"
) -> Campaign:
    """The application's campaign that may hold referral codes (404 when it is not the application's,
    400 when it lacks the feature "referrals")."""
    campaign = Campaign.objects.filter(application=application, pk=campaign_id, deleted_at=None).first()
    if campaign is None:
        message = f"Campaign {campaign_id} not found in application {application.pk}"
        raise NotFound(message, details=[ErrorDetail(NotFound.title, message, pointer=pointer)])
    if FEATURE not in (campaign.features or []):
        message = (
            f"Campaign {campaign_id} ({campaign.name}) does not have the feature {FEATURE!r}: "
            "turn it on in the campaign's settings to make referral codes for it"
        )
        raise ValidationFailed(
            message, details=[ErrorDetail(ValidationFailed.title, message, pointer=pointer)]
        )
    return campaign


def referral_of(campaign: Campaign, referral_id: int) -> Referral:
    referral = Referral.objects.filter(campaign=campaign, pk=referral_id).first()
    if referral is None:
        raise NotFound(f"Referral {referral_id} not found in campaign {campaign.pk}")
    return referral


def referrals_of(
    application: Application,
    *,
    campaign: Campaign | None = None,
    code: str = "",
    created_before: dt.datetime | None = None,
    created_after: dt.datetime | None = None,
    valid: str = "",
    usable: bool | None = None,
    advocate: str = "",
    batch_id: str = "",
    now: dt.datetime | None = None,
) -> QuerySet[Referral]:
    """The application's referrals matching every filter given (Talon.One's filters of its referral lists).

    ``valid``: ``expired`` (an expiry date in the past), ``validNow`` (started, not expired) or
    ``validFuture`` (a start date in the future). ``usable``: uses left (an unlimited code always has).
    """
    rows = Referral.objects.filter(application=application)
    if campaign is not None:
        rows = rows.filter(campaign=campaign)
    if code:
        rows = rows.filter(code__icontains=code.strip())
    if created_before is not None:
        rows = rows.filter(created__lt=created_before)
    if created_after is not None:
        rows = rows.filter(created__gt=created_after)
    now = now or clock.now()
    if valid == "expired":
        rows = rows.filter(expiry_date__lte=now)
    elif valid == "validNow":
        rows = rows.filter(Q(start_date=None) | Q(start_date__lte=now)).filter(
            Q(expiry_date=None) | Q(expiry_date__gt=now)
        )
    elif valid == "validFuture":
        rows = rows.filter(start_date__gt=now)
    elif valid:
        message = f"valid takes expired, validNow or validFuture, not {valid!r}"
        raise ValidationFailed(
            message, details=[ErrorDetail("Invalid value", message, pointer="query:valid")]
        )
    if usable is True:
        rows = rows.filter(Q(usage_limit=0) | Q(usage_counter__lt=F("usage_limit")))
    elif usable is False:
        rows = rows.exclude(usage_limit=0).filter(usage_counter__gte=F("usage_limit"))
    if advocate:
        rows = rows.filter(advocate_integration_id=advocate)
    if batch_id:
        rows = rows.filter(batch_id=batch_id)
    return rows


def _date_cell(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def referral_export_lines(rows: QuerySet[Referral]) -> Iterator[str]:
    """The CSV file, header first, one line per referral; streamed (flat memory) and formula-safe."""
    yield format_row(EXPORT_COLUMNS)
    for r in rows.order_by("id").iterator(chunk_size=2000):
        yield format_row(
            neutralize(cell)
            for cell in (
                str(r.pk),
                _date_cell(r.created),
                str(r.campaign_id),
                r.code,
                r.advocate_integration_id,
                r.friend_integration_id,
                _date_cell(r.start_date),
                _date_cell(r.expiry_date),
                str(r.usage_limit),
                str(r.usage_counter),
                r.batch_id,
                "" if r.import_id is None else str(r.import_id),
                json.dumps(r.attributes, ensure_ascii=False) if r.attributes else "",
            )
        )


# --- checks -----------------------------------------------------------------------------------------------


def _check_fields(
    errors: ErrorCollector,
    *,
    usage_limit: int,
    start_date: dt.datetime | None,
    expiry_date: dt.datetime | None,
    attributes: Any,
    pointer: str = "",
    line: int | None = None,
) -> None:
    if not 0 <= usage_limit <= MAX_USAGE_LIMIT:
        errors.add(
            f"The usage limit must be 0 (unlimited) to {MAX_USAGE_LIMIT:,}, not {usage_limit}",
            pointer=f"{pointer}/usageLimit" if line is None else "limitval",
            line=line,
        )
    if start_date is not None and expiry_date is not None and expiry_date <= start_date:
        errors.add(
            "The expiry date must be after the start date",
            pointer=f"{pointer}/expiryDate" if line is None else "expirydate",
            line=line,
        )
    if attributes is not None and not isinstance(attributes, dict):
        errors.add(
            "The attributes must be a JSON object",
            pointer=f"{pointer}/attributes" if line is None else "attributes",
            line=line,
        )


def _check_integration_id(errors: ErrorCollector, value: str, *, pointer: str, what: str) -> None:
    if not value or not value.strip():
        errors.add(f"The {what} must not be empty", pointer=pointer)
    elif len(value) > MAX_ID:
        errors.add(f"The {what} must be at most {MAX_ID} characters", pointer=pointer)


def _taken(application: Application, codes: Iterable[str]) -> set[str]:
    codes = list(codes)
    taken: set[str] = set()
    for start in range(0, len(codes), 5000):
        taken.update(
            Referral.objects.filter(
                application=application, code__in=codes[start : start + 5000]
            ).values_list("code", flat=True)
        )
    return taken


def _fresh_codes(application: Application, pattern: str, alphabet: str, count: int) -> list[str]:
    """``count`` codes of the pattern that no referral of the application has yet."""
    case = application.coupon_code_case
    made: list[str] = []
    while len(made) < count:
        drawn = set(random_codes(pattern, alphabet, count - len(made), case=case)) - set(made)
        made.extend(drawn - _taken(application, drawn))
    return made


def _insert(referrals: list[Referral]) -> list[Referral]:
    try:
        with transaction.atomic():
            return Referral.objects.bulk_create(referrals, batch_size=1000)
    except IntegrityError as exc:
        raise Conflict(
            "Another request made one of these referral codes at the same moment; send the request again"
        ) from exc


# --- services ---------------------------------------------------------------------------------------------


@transaction.atomic
def referral_create(
    *,
    application: Application,
    campaign_id: int,
    advocate: str,
    friend: str = "",
    start_date: dt.datetime | None = None,
    expiry_date: dt.datetime | None = None,
    usage_limit: int = 1,
    attributes: dict[str, Any] | None = None,
    code: str = "",
) -> Referral:
    """One code for ``advocate`` (Talon.One's create_referral); ``friend`` binds it to one friend. The code
    is made from the default pattern unless staff type one (``code``, kept in the application's case)."""
    campaign = referral_campaign(application, campaign_id)
    start_date, expiry_date = clock.assume_utc(start_date), clock.assume_utc(expiry_date)
    errors = ErrorCollector()
    _check_integration_id(errors, advocate, pointer="/advocateProfileIntegrationId", what="advocate's ID")
    if friend and len(friend) > MAX_ID:
        errors.add(
            f"The friend's ID must be at most {MAX_ID} characters", pointer="/friendProfileIntegrationId"
        )
    if friend and friend == advocate:
        errors.add("The friend cannot be the advocate", pointer="/friendProfileIntegrationId")
    _check_fields(
        errors, usage_limit=usage_limit, start_date=start_date, expiry_date=expiry_date, attributes=attributes
    )
    code = normalize(code, application.coupon_code_case)
    if code and not MIN_CODE_LENGTH <= len(code) <= MAX_CODE_LENGTH:
        errors.add(f"A code must be {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} characters", pointer="/code")
    elif code and _taken(application, [code]):
        errors.add(f"The code {code} is already used by another referral of this shop", pointer="/code")
    errors.raise_if_any()
    if not code:
        (code,) = _fresh_codes(application, DEFAULT_PATTERN, DEFAULT_ALPHABET, 1)
    (referral,) = _insert(
        [
            Referral(
                application=application,
                campaign=campaign,
                code=code,
                advocate_integration_id=advocate,
                friend_integration_id=friend or "",
                usage_limit=usage_limit,
                start_date=start_date,
                expiry_date=expiry_date,
                attributes=attributes or {},
                created=clock.now(),
            )
        ]
    )
    return referral


@transaction.atomic
def referrals_create_for_advocates(
    *,
    application: Application,
    campaign_id: int,
    advocates: list[str],
    start_date: dt.datetime | None = None,
    expiry_date: dt.datetime | None = None,
    usage_limit: int = 1,
    attributes: dict[str, Any] | None = None,
    alphabet: list[str] | str | None = None,
    pattern: str | None = None,
) -> list[Referral]:
    """One code per advocate, in the order given (Talon.One's create_referrals_for_multiple_advocates),
    all sharing one batch ID. A repeated advocate gets one code."""
    campaign = referral_campaign(application, campaign_id)
    start_date, expiry_date = clock.assume_utc(start_date), clock.assume_utc(expiry_date)
    errors = ErrorCollector()
    if not advocates:
        errors.add("Name at least one advocate", pointer="/advocateProfileIntegrationIds")
    if len(advocates) > MAX_ADVOCATES:
        errors.add(
            f"At most {MAX_ADVOCATES} advocates per call, not {len(advocates)}",
            pointer="/advocateProfileIntegrationIds",
        )
    for index, advocate in enumerate(advocates):
        _check_integration_id(
            errors, advocate, pointer=f"/advocateProfileIntegrationIds/{index}", what="advocate's ID"
        )
    _check_fields(
        errors, usage_limit=usage_limit, start_date=start_date, expiry_date=expiry_date, attributes=attributes
    )
    errors.raise_if_any()
    unique = list(dict.fromkeys(advocates))
    chars = "".join(alphabet) if alphabet else DEFAULT_ALPHABET
    pattern = pattern or DEFAULT_PATTERN
    try:
        check_pattern(pattern, chars, len(unique))
    except ValidationFailed as exc:
        raise ValidationFailed(
            exc.message,
            details=[ErrorDetail(ValidationFailed.title, exc.message, pointer="/referralPattern")],
        ) from None
    codes = _fresh_codes(application, pattern, chars, len(unique))
    now = clock.now()
    batch = uuid.uuid4().hex[:20]
    return _insert(
        [
            Referral(
                application=application,
                campaign=campaign,
                code=code,
                advocate_integration_id=advocate,
                usage_limit=usage_limit,
                start_date=start_date,
                expiry_date=expiry_date,
                attributes=attributes or {},
                batch_id=batch,
                created=now,
            )
            for advocate, code in zip(unique, codes, strict=True)
        ]
    )


@transaction.atomic
def referral_update(
    *,
    referral: Referral,
    friend: str = "",
    start_date: dt.datetime | None = None,
    expiry_date: dt.datetime | None = None,
    usage_limit: int | None = None,
    attributes: dict[str, Any] | None = None,
    actor: Any = None,
) -> Referral:
    """Talon.One's update_referral: the friend and the dates are replaced (left out = none), the usage limit
    and the attributes only when given."""
    start_date, expiry_date = clock.assume_utc(start_date), clock.assume_utc(expiry_date)
    referral = Referral.objects.select_for_update(no_key=True, of=("self",)).get(pk=referral.pk)
    limit = referral.usage_limit if usage_limit is None else usage_limit
    errors = ErrorCollector()
    if friend and len(friend) > MAX_ID:
        errors.add(
            f"The friend's ID must be at most {MAX_ID} characters", pointer="/friendProfileIntegrationId"
        )
    if friend and friend == referral.advocate_integration_id:
        errors.add("The friend cannot be the advocate", pointer="/friendProfileIntegrationId")
    _check_fields(
        errors, usage_limit=limit, start_date=start_date, expiry_date=expiry_date, attributes=attributes
    )
    if limit != 0 and limit < referral.usage_counter:
        errors.add(
            f"The code was used {referral.usage_counter} times already: the usage limit cannot be lower",
            pointer="/usageLimit",
        )
    errors.raise_if_any()
    referral.friend_integration_id = friend or ""
    referral.start_date = start_date
    referral.expiry_date = expiry_date
    referral.usage_limit = limit
    if attributes is not None:
        referral.attributes = attributes
    referral.save(
        update_fields=["friend_integration_id", "start_date", "expiry_date", "usage_limit", "attributes"]
    )
    audit(actor, referral, CHANGE, "Changed the referral code's friend, limit, dates and attributes")
    return referral


@transaction.atomic
def referral_delete(*, referral: Referral, actor: Any = None) -> None:
    """The code goes; the redemptions it had go with it (the sessions keep their effects)."""
    audit(actor, referral, DELETION, f"Deleted the referral code {referral.code}")
    referral.delete()


@transaction.atomic
def referrals_delete(*, queryset: QuerySet[Referral]) -> int:
    return int(queryset.delete()[1].get(Referral._meta.label, 0))


# --- import -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    import_id: int
    created: int
    created_at: dt.datetime


def _parse_when(text: str) -> dt.datetime | None:
    text = text.strip()
    if not text:
        return None
    value = parse_datetime(text.replace(" ", "T", 1) if len(text) > 10 else text)
    if value is None:
        day = parse_date(text)
        if day is None:
            raise ValueError(text)
        value = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return clock.assume_utc(value)


def referrals_import(*, campaign: Campaign, source: IO[bytes], actor: Any = None) -> ImportResult:
    """Talon.One's import_referrals: CSV with ``code`` and ``advocateprofileintegrationid`` (required),
    ``startdate``, ``expirydate``, ``limitval`` (default 1), ``attributes`` (a JSON object). All or nothing:
    any bad line refuses the file, every problem named by its line. Advocate profiles are not created."""
    if FEATURE not in (campaign.features or []):
        raise ValidationFailed(f"Campaign {campaign.name} does not have the feature {FEATURE!r}")
    application = campaign.application
    case = application.coupon_code_case
    reader = CsvReader(source)
    header = check_header(reader.header, IMPORT_COLUMNS)
    errors = ErrorCollector()
    rows: list[tuple[int, Referral]] = []
    seen: dict[str, int] = {}
    now = clock.now()
    for line, record in reader:
        cells = {name: restore(cell).strip() for name, cell in zip(header, record, strict=False)}
        if len(record) > len(header):
            errors.add(f"line {line} has {len(record)} cells, the header {len(header)}", line=line)
            continue
        before = len(errors.problems)
        code = normalize(cells.get("code", ""), case)
        if len(code) < MIN_CODE_LENGTH or len(code) > MAX_CODE_LENGTH:
            errors.add(
                f"line {line}: the code {code!r} must be {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} characters",
                line=line,
                pointer="code",
            )
        elif code in seen:
            errors.add(
                f"line {line}: the code {code} is also on line {seen[code]}", line=line, pointer="code"
            )
        else:
            seen[code] = line
        advocate = cells.get("advocateprofileintegrationid", "")
        if not advocate:
            errors.add(
                f"line {line}: the advocate's ID is empty", line=line, pointer="advocateprofileintegrationid"
            )
        elif len(advocate) > MAX_ID:
            errors.add(
                f"line {line}: the advocate's ID is longer than {MAX_ID} characters",
                line=line,
                pointer="advocateprofileintegrationid",
            )
        friend = cells.get("friendprofileintegrationid", "")
        dates: dict[str, dt.datetime | None] = {}
        for column in ("startdate", "expirydate"):
            try:
                dates[column] = _parse_when(cells.get(column, ""))
            except ValueError:
                errors.add(
                    f"line {line}: {column} {cells[column]!r} is not a date "
                    "(use RFC 3339: 2025-11-10T23:00:00Z)",
                    line=line,
                    pointer=column,
                )
                dates[column] = None
        limit_text = cells.get("limitval", "")
        limit = 1
        if limit_text:
            try:
                limit = int(limit_text)
            except ValueError:
                errors.add(
                    f"line {line}: limitval {limit_text!r} is not a whole number",
                    line=line,
                    pointer="limitval",
                )
        attributes: Any = {}
        if cells.get("attributes"):
            try:
                attributes = json.loads(cells["attributes"])
            except ValueError:
                errors.add(f"line {line}: attributes are not valid JSON", line=line, pointer="attributes")
        sub = ErrorCollector()
        _check_fields(
            sub,
            usage_limit=limit,
            start_date=dates["startdate"],
            expiry_date=dates["expirydate"],
            attributes=attributes,
            line=line,
        )
        for problem in sub.problems:
            errors.add(f"line {line}: {problem.details}", line=line, pointer=problem.pointer)
        if len(errors.problems) == before:
            rows.append(
                (
                    line,
                    Referral(
                        application=application,
                        campaign=campaign,
                        code=code,
                        advocate_integration_id=advocate,
                        friend_integration_id=friend,
                        usage_limit=limit,
                        start_date=dates["startdate"],
                        expiry_date=dates["expirydate"],
                        attributes=attributes or {},
                        created=now,
                    ),
                )
            )
    if not seen and not errors.problems:
        errors.add("The file has no referrals: add lines below the header", line=reader.line)
    taken = _taken(application, seen)
    for code in sorted(taken, key=seen.__getitem__):
        errors.add(
            f"line {seen[code]}: the code {code} is already used by another referral of this application",
            line=seen[code],
            pointer="code",
        )
    errors.problems.sort(key=lambda p: p.line or 0)
    errors.raise_if_any("The file was not imported")
    with transaction.atomic():
        last = Referral.objects.filter(application=application).aggregate(last=Max("import_id"))["last"]
        import_id = (last or 0) + 1
        referrals = [referral for _, referral in rows]
        for referral in referrals:
            referral.import_id = import_id
        _insert(referrals)
        audit(actor, campaign, CHANGE, f"Imported {len(referrals)} referral codes (import {import_id})")
    return ImportResult(import_id=import_id, created=len(referrals), created_at=now)
