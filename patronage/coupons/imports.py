"""Coupons from a CSV file into a campaign: ``patronage import coupons --campaign ID FILE``, the back
office's Import/Export ("Coupons", opened from a campaign with ``?kind=coupons&campaign=<id>``) and the
Management API's ``import_coupons``.

The file
    Talon.One's columns, a header line first: ``value`` (required), ``expirydate``, ``startdate``
    (RFC 3339, e.g. ``2026-12-31T23:59:59Z``; no offset means UTC), ``recipientintegrationid``,
    ``limitval`` (usage limit, default 1, 0 = unlimited), ``discountlimit`` and ``attributes`` (a JSON
    object). The other columns of a coupon export are accepted and ignored, so an export imports again.

Checks, each reported with its line
    A value under 4 or over 100 characters or with spaces inside, a value twice in the file, a value
    already used in the application (a coupon) or its environment (a promo code), a bad date, a bad
    number, bad JSON. As every import: nothing is written when a line is bad, unless bad lines are
    skipped (then the good lines are imported and the bad ones listed). ``skip_duplicates`` (Talon.One's
    ``skipDuplicates``) skips values that are repeated or already used, but still stops on other problems.

Speed
    Lines are checked in Python as they are read (parsed dates, numbers and attributes are remembered, as
    files repeat them), then all go through one staging table (``COPY`` on PostgreSQL) and one
    ``INSERT ... SELECT`` in value order (see ``generation.py``), in one transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.db import connection, transaction

from patronage.campaigns.models import Campaign
from patronage.core.bulk import db_value
from patronage.core.csvio import Columns, CountingReader, check_header, restore
from patronage.core.errors import Conflict, ErrorDetail, NotFound, ValidationFailed
from patronage.dataio.registry import (
    Importer,
    ImportOption,
    ImportOutcome,
    ProblemSink,
    Progress,
    register_importer,
)
from patronage.workspace.models import CodeCase, Environment

from .exports import EXPORT_COLUMNS
from .generation import MAX_DISCOUNT_LIMIT, MAX_RECIPIENT_LENGTH, Staging, new_batch_id
from .models import MAX_CODE_LENGTH, MAX_USAGE_LIMIT, MIN_CODE_LENGTH, Coupon

KIND = "coupons"
IMPORT_COLUMNS = (
    "value",
    "expirydate",
    "startdate",
    "recipientintegrationid",
    "limitval",
    "discountlimit",
    "attributes",
)
# Columns of a coupon export that an import does not read: an export re-imports as it is.
EXPORT_ONLY = tuple(column for column in EXPORT_COLUMNS if column not in IMPORT_COLUMNS)
COLUMNS = Columns(required=("value",), optional=IMPORT_COLUMNS[1:], ignored=EXPORT_ONLY)
STAGED = (
    "line",
    "value",
    "usage_limit",
    "discount_limit",
    "start_date",
    "expiry_date",
    "recipient_integration_id",
    "attributes",
)
PROGRESS_LINES = 50_000
NULL = "\\N"  # COPY's NULL
CACHE_LIMIT = 10_000
SAMPLE = (
    "value,expirydate,startdate,recipientintegrationid,limitval,discountlimit,attributes\n"
    "SPRING-7Q2K,2026-12-31T23:59:59Z,,,1,,\n"
    'GIFT-M4XZ-9HTC,,,customer-42,0,50,"{""channel"": ""print""}"\n'
)


class _BadCell(Exception):
    def __init__(self, column: str, reason: str) -> None:
        self.column = column
        self.reason = reason


class _Parsers:
    """Cell parsers remembering what they parsed (a file repeats its dates, limits and attributes)."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.dates: dict[str, str] = {}
        self.limits: dict[str, str] = {}
        self.discounts: dict[str, str] = {}
        self.attributes: dict[str, str] = {}

    def date(self, cell: str, column: str) -> str:
        known = self.dates.get(cell)
        if known is not None:
            return known
        try:
            parsed = dt.datetime.fromisoformat(cell.strip())
        except ValueError:
            raise _BadCell(column, f"{cell!r} is not a date and time (e.g. 2026-12-31T23:59:59Z)") from None
        parsed = parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
        text = parsed.isoformat() if self.postgres else str(db_value(Coupon, "expiry_date", parsed))
        if len(self.dates) < CACHE_LIMIT:
            self.dates[cell] = text
        return text

    def limit(self, cell: str) -> str:
        known = self.limits.get(cell)
        if known is not None:
            return known
        text = cell.strip()
        if not text.isdigit() or int(text) > MAX_USAGE_LIMIT:
            raise _BadCell(
                "limitval", f"{cell!r} is not a usage limit (a whole number, 0 to {MAX_USAGE_LIMIT})"
            )
        text = str(int(text))
        if len(self.limits) < CACHE_LIMIT:
            self.limits[cell] = text
        return text

    def discount(self, cell: str) -> str:
        known = self.discounts.get(cell)
        if known is not None:
            return known
        try:
            number = Decimal(cell.strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite() or not (0 <= number <= MAX_DISCOUNT_LIMIT):
            raise _BadCell("discountlimit", f"{cell!r} is not a discount limit (a number, 0 to 10^15)")
        text = str(number)
        if len(self.discounts) < CACHE_LIMIT:
            self.discounts[cell] = text
        return text

    def attributes_of(self, cell: str) -> str:
        known = self.attributes.get(cell)
        if known is not None:
            return known
        try:
            value = json.loads(cell)
        except json.JSONDecodeError as exc:
            raise _BadCell("attributes", f"the attributes are not valid JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise _BadCell("attributes", 'the attributes must be a JSON object, e.g. {"channel": "print"}')
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if len(self.attributes) < CACHE_LIMIT:
            self.attributes[cell] = text
        return text


def _copy_text(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _case(case: str) -> Any:
    if case == CodeCase.UPPER:
        return str.upper
    if case == CodeCase.LOWER:
        return str.lower
    return None


@transaction.atomic
def import_coupons_csv(
    *,
    campaign: Campaign,
    source: IO[bytes],
    size: int = 0,
    skip_bad_rows: bool = False,
    skip_duplicates: bool = False,
    progress: Progress | None = None,
    problems: ProblemSink | None = None,
    import_id: int | None = None,
) -> ImportOutcome:
    """Import a CSV of coupons into ``campaign`` (see the module's docstring); all or nothing unless
    ``skip_bad_rows``. A file that cannot be read at all (encoding, header, CSV) raises ValidationFailed."""
    report: ProblemSink = problems or (lambda found: None)
    tell: Progress = progress or (lambda **kwargs: None)
    application = campaign.application
    postgres = connection.vendor == "postgresql"
    counter = CountingReader(source)
    text = io.TextIOWrapper(io.BufferedReader(counter, buffer_size=1 << 20), encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationFailed(f"The header line cannot be read: {exc}") from exc
    if header is None:
        raise ValidationFailed("The file is empty: it needs a header line first (value, expirydate, ...)")
    names = check_header(header, COLUMNS)
    width = len(names)
    at = {name: names.index(name) for name in IMPORT_COLUMNS if name in names}
    i_value = at["value"]
    i_expiry, i_start = at.get("expirydate"), at.get("startdate")
    i_recipient, i_limit = at.get("recipientintegrationid"), at.get("limitval")
    i_discount, i_attributes = at.get("discountlimit"), at.get("attributes")
    if i_discount is None and "discount_limitval" in names:  # an export's name for it
        i_discount = names.index("discount_limitval")
    fold = _case(application.coupon_code_case)
    parse = _Parsers(postgres)

    seen: dict[str, int] = {}
    copy_lines: list[str] = []
    rows: list[tuple[Any, ...]] = []
    found: list[ErrorDetail] = []
    bad_lines: set[int] = set()
    duplicate_lines: set[int] = set()
    total = 0
    last = reader.line_num

    def bad(line: int, column: str, reason: str, *, duplicate: bool = False) -> None:
        found.append(ErrorDetail(title=ValidationFailed.title, details=reason, pointer=column, line=line))
        (duplicate_lines if duplicate else bad_lines).add(line)

    try:
        for record in reader:
            line = last + 1
            last = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            total += 1
            if total % PROGRESS_LINES == 0:
                tell(
                    phase="Reading and checking coupons",
                    rows=total,
                    fraction=0.5 * min(1.0, counter.count / size) if size else 0.0,
                )
            if len(record) != width:
                if len(record) > width:
                    bad(line, "", f"the line has {len(record)} cells, the header {width}")
                    continue
                record = record + [""] * (width - len(record))
            value = restore(record[i_value]).strip()
            if fold is not None:
                value = fold(value)
            if len(value) < MIN_CODE_LENGTH:
                bad(line, "value", f"the code {value!r} is too short: at least {MIN_CODE_LENGTH} characters")
                continue
            if len(value) > MAX_CODE_LENGTH:
                bad(line, "value", f"the code is too long: at most {MAX_CODE_LENGTH} characters")
                continue
            if not value.isprintable() or " " in value:
                bad(line, "value", f"the code {value!r} has spaces or control characters")
                continue
            first = seen.get(value)
            if first is not None:
                bad(line, "value", f"{value} is a duplicate of line {first}", duplicate=True)
                continue
            seen[value] = line
            try:
                cell = record[i_expiry] if i_expiry is not None else ""
                expiry = parse.date(cell, "expirydate") if cell else None
                cell = record[i_start] if i_start is not None else ""
                start = parse.date(cell, "startdate") if cell else None
                cell = record[i_limit] if i_limit is not None else ""
                limit = parse.limit(cell) if cell.strip() else "1"
                cell = record[i_discount] if i_discount is not None else ""
                discount = parse.discount(cell) if cell.strip() else None
                cell = record[i_attributes] if i_attributes is not None else ""
                attributes = parse.attributes_of(restore(cell)) if cell.strip() else None
                recipient = restore(record[i_recipient]).strip() if i_recipient is not None else ""
                if len(recipient) > MAX_RECIPIENT_LENGTH:
                    raise _BadCell(
                        "recipientintegrationid",
                        f"the recipient has more than {MAX_RECIPIENT_LENGTH} characters",
                    )
                if expiry and start and expiry <= start:  # both UTC in one format: text order is time order
                    raise _BadCell("expirydate", "the expiry date must come after the start date")
            except _BadCell as problem:
                bad(line, problem.column, problem.reason)
                continue
            if postgres:
                copy_lines.append(
                    f"{line}\t{_copy_text(value)}\t{limit}\t{discount or NULL}\t{start or NULL}\t"
                    f"{expiry or NULL}\t{_copy_text(recipient)}\t"
                    f"{_copy_text(attributes) if attributes else NULL}\n"
                )
            else:
                rows.append((line, value, int(limit), discount, start, expiry, recipient, attributes))
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            f"The file is not UTF-8 text (near line {last + 1}): save it as “CSV UTF-8” and upload it again",
            details=[ErrorDetail("Invalid value", "not UTF-8", line=last + 1)],
        ) from exc
    except csv.Error as exc:
        raise ValidationFailed(
            f"Line {reader.line_num} is not valid CSV: {exc}",
            details=[ErrorDetail("Invalid value", str(exc), line=reader.line_num)],
        ) from exc

    tell(phase="Checking codes against the application", rows=total, fraction=0.55)
    staging = Staging(STAGED)
    if postgres:
        staging.load_text("".join(copy_lines))
    else:
        staging.load(rows)
    staged = len(copy_lines) + len(rows)
    del copy_lines, rows
    staging.analyze()
    taken = staging.taken(application.pk, application.environment_id)
    for line, value, what in taken:
        where = "a coupon of this application" if what == "coupon" else "a promo code of this environment"
        bad(line, "value", f"{value} is already {where}", duplicate=True)
    found.sort(key=lambda problem: problem.line or 0)
    report(found)
    outcome = ImportOutcome(total_rows=total, bad_rows=len(bad_lines | duplicate_lines))
    blocking = bad_lines if not skip_bad_rows else set()
    if not (skip_bad_rows or skip_duplicates) and duplicate_lines:
        blocking = blocking | duplicate_lines
    if blocking:
        staging.drop()
        return outcome
    tell(phase="Saving coupons", rows=total, fraction=0.7)
    fixed: dict[str, Any] = {
        "batch_id": new_batch_id(),
        "import_id": import_id,
        "limits": [],
        "reservation_limit": None,
    }
    created = staging.merge(campaign=campaign, fixed=fixed)
    staging.drop()
    expected = staged - len({line for line, _, _ in taken})
    if created < expected:
        # Another import or generation took some of the values meanwhile.
        raise Conflict(
            f"{expected - created:,} codes of the file were added elsewhere while it was imported; nothing "
            "was imported. Upload it again to see which."
        )
    outcome.created = created
    outcome.skipped = outcome.bad_rows
    outcome.applied = True
    return outcome


# ---- the dataio import kind ----------------------------------------------------------------------------


def _campaign_of(value: str, environment: Environment | None) -> Campaign:
    campaigns = Campaign.objects.select_related("application__environment")
    if environment is not None:
        campaigns = campaigns.filter(application__environment=environment)
    text = str(value).strip()
    found = campaigns.filter(pk=int(text)).first() if text.isdigit() else None
    if found is None:
        named = list(campaigns.filter(name__iexact=text)[:2])
        if len(named) > 1:
            raise ValidationFailed(f"Several campaigns are named {text!r}: give the campaign's ID")
        found = named[0] if named else None
    if found is None:
        where = f" in {environment}" if environment is not None else ""
        raise NotFound(f"No campaign {text!r}{where}")
    return found


def _clean_campaign(value: str, environment: Environment | None) -> int:
    return _campaign_of(value, environment).pk


def _describe_campaign(value: Any) -> str:
    campaign = Campaign.objects.select_related("application").filter(pk=value).first()
    return f"{campaign.name} ({campaign.application.name})" if campaign else f"campaign #{value} (deleted)"


def _campaign_environment(value: Any) -> str | None:
    return Campaign.objects.filter(pk=value).values_list("application__environment__slug", flat=True).first()


def _clean_flag(value: str, environment: Environment | None) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


CAMPAIGN_OPTION = ImportOption(
    name="campaign",
    label="Campaign",
    help="the campaign the coupons are for: its ID or name (required)",
    clean=_clean_campaign,
    describe=_describe_campaign,
    environment_of=_campaign_environment,
)
SKIP_DUPLICATES_OPTION = ImportOption(
    name="skip_duplicates",
    label="Skip codes already used",
    help="yes: codes repeated in the file or already used are left out instead of stopping the import",
    clean=_clean_flag,
    describe=lambda value: "yes" if value else "no",
)


def import_coupons(
    *,
    source: IO[bytes],
    size: int,
    environment: Environment,
    skip_bad_rows: bool,
    progress: Progress,
    problems: ProblemSink,
    options: dict[str, Any] | None = None,
    job: Any = None,
) -> ImportOutcome:
    campaign_id = (options or {}).get("campaign")
    if not campaign_id:
        raise ValidationFailed("Choose the campaign the coupons are for (--campaign ID)")
    campaign = (
        Campaign.objects.select_related("application__environment")
        .filter(pk=campaign_id, application__environment=environment)
        .first()
    )
    if campaign is None:
        raise ValidationFailed(
            f"The campaign this import is for (#{campaign_id}) was deleted or is not in {environment}"
        )
    return import_coupons_csv(
        campaign=campaign,
        source=source,
        size=size,
        skip_bad_rows=skip_bad_rows,
        skip_duplicates=bool((options or {}).get("skip_duplicates")),
        progress=progress,
        problems=problems,
        import_id=job.pk if job is not None else None,
    )


def check_coupons_header(header: Sequence[str]) -> list[str]:
    return check_header(header, COLUMNS)


IMPORTER = Importer(
    kind=KIND,
    label="Coupons",
    run=import_coupons,
    check_header=check_coupons_header,
    sample=lambda: SAMPLE,
    help=(
        "Talon.One's columns: value (required), expirydate, startdate, recipientintegrationid, limitval "
        "(usage limit, default 1, 0 = unlimited), discountlimit, attributes (JSON). Codes must be new to the "
        "application."
    ),
    permissions=("coupons.add_coupon",),
    options=(CAMPAIGN_OPTION, SKIP_DUPLICATES_OPTION),
    counts=("created", "skipped"),
    takes_job=True,
)


def register() -> None:
    """Called from ``CouponsConfig.ready()``."""
    register_importer(IMPORTER)
