"""Making many coupons at once: codes drawn from a pattern, written set-based whatever their number.

How rows reach the table
    The new values (and, for an import, each line's own fields) go into a TEMP staging table of this
    connection: ``COPY`` on PostgreSQL, ``executemany`` on SQLite. One ``INSERT ... SELECT ... ON CONFLICT
    (application, value) DO NOTHING`` per chunk then adds those that are neither a coupon of the application
    (the unique constraint) nor a promo code of its environment (an anti-join), in value order: sorted
    inserts touch the unique index's pages one after the other instead of at random, which is most of the
    cost of a million codes. A drawn code that collided is simply not inserted; generation draws again
    for the shortfall ("topping up").

Background generation
    :func:`coupon_generation_run` is the body of the worker's task (and of ``bench/coupons.py``): one
    transaction per chunk, each raising ``CouponGeneration.made`` in the same commit, so the back office
    shows progress and a job cut short leaves whole chunks of valid coupons behind (its status says so).

Randomness
    Codes are bearer tokens: random characters come from ``secrets.token_bytes``, turned into the alphabet's
    characters by rejection sampling (no bias), a buffer at a time, in C (``bytes.translate``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction

from patronage.campaigns.models import Campaign
from patronage.core import clock
from patronage.core.bulk import column_names, db_value, table_name
from patronage.core.errors import ErrorCollector, NotFound, ValidationFailed
from patronage.promocodes.models import PromoCode

from .codes import DEFAULT_ALPHABET, PLACEHOLDER, check_pattern
from .models import (
    MAX_CODE_LENGTH,
    MAX_USAGE_LIMIT,
    MIN_CODE_LENGTH,
    Coupon,
    CouponGeneration,
    GenerationStatus,
    normalize,
)

logger = logging.getLogger(__name__)

DEFAULT_PATTERN = "#" * 8
MAX_DISCOUNT_LIMIT = Decimal("1e15")
MAX_RECIPIENT_LENGTH = 1000
# Rows per INSERT ... SELECT (and per commit of a background generation).
CHUNK = 100_000
# How many times a chunk is drawn again for collisions before giving up (a pattern with 10x headroom
# needs one top-up round at most, in practice).
MAX_TOP_UPS = 20


# ---- the fields every new coupon of a call shares ---------------------------------------------------------


@dataclass
class CouponFields:
    """What a batch of new coupons shares besides the value (Talon.One's NewCoupons without the pattern)."""

    usage_limit: int = 1
    discount_limit: Decimal | None = None
    reservation_limit: int | None = None
    start_date: dt.datetime | None = None
    expiry_date: dt.datetime | None = None
    recipient_integration_id: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    limits: list[Any] = field(default_factory=list)
    is_reservation_mandatory: bool = False
    implicitly_reserved: bool = False

    def check(self, errors: ErrorCollector | None = None, *, prefix: str = "/") -> None:
        own = errors is None
        errors = errors or ErrorCollector()
        check_usage_limit(self.usage_limit, errors, pointer=f"{prefix}usageLimit")
        if self.discount_limit is not None and not (0 <= self.discount_limit <= MAX_DISCOUNT_LIMIT):
            errors.add("The discount limit must be between 0 and 10^15", pointer=f"{prefix}discountLimit")
        if self.reservation_limit is not None and not (0 <= self.reservation_limit <= MAX_USAGE_LIMIT):
            errors.add(
                f"The reservation limit must be between 0 and {MAX_USAGE_LIMIT:,}",
                pointer=f"{prefix}reservationLimit",
            )
        if self.start_date and self.expiry_date and self.expiry_date <= self.start_date:
            errors.add("The expiry date must come after the start date", pointer=f"{prefix}expiryDate")
        if len(self.recipient_integration_id) > MAX_RECIPIENT_LENGTH:
            errors.add(
                f"A recipient's integration ID has at most {MAX_RECIPIENT_LENGTH} characters",
                pointer=f"{prefix}recipientIntegrationId",
            )
        if not isinstance(self.attributes, dict):
            errors.add("Attributes must be a JSON object", pointer=f"{prefix}attributes")
        if own:
            errors.raise_if_any("The coupons' settings are not valid")

    def as_params(self) -> dict[str, Any]:
        """JSON-safe, for ``CouponGeneration.params``."""
        out = asdict(self)
        out["discount_limit"] = None if self.discount_limit is None else str(self.discount_limit)
        for name in ("start_date", "expiry_date"):
            value = out[name]
            out[name] = value.isoformat() if value is not None else None
        return out

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> CouponFields:
        """From keyword arguments of ``coupons_create`` (or their JSON form); unknown keys are ignored."""
        names = set(cls.__dataclass_fields__)
        values = {name: params[name] for name in names if name in params and params[name] is not None}
        if "discount_limit" in values:
            values["discount_limit"] = parse_decimal(values["discount_limit"], "discount limit")
        for name in ("start_date", "expiry_date"):
            if name in values:
                values[name] = parse_datetime(values[name], name.replace("_", " "))
        for name in ("usage_limit", "reservation_limit"):
            if name in values:
                values[name] = parse_int(values[name], name.replace("_", " "))
        if "recipient_integration_id" in values:
            values["recipient_integration_id"] = str(values["recipient_integration_id"]).strip()
        return cls(**values)


def check_usage_limit(value: int, errors: ErrorCollector, *, pointer: str = "/usageLimit") -> None:
    if not (0 <= value <= MAX_USAGE_LIMIT):
        errors.add(f"The usage limit must be between 0 (unlimited) and {MAX_USAGE_LIMIT:,}", pointer=pointer)


def parse_decimal(value: Any, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValidationFailed(f"The {what} {value!r} is not a number") from None
    if not number.is_finite():
        raise ValidationFailed(f"The {what} {value!r} is not a number")
    return number


def parse_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ValidationFailed(f"The {what} must be a whole number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"The {what} {value!r} is not a whole number") from None


def parse_datetime(value: Any, what: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValidationFailed(
                f"The {what} {value!r} is not a date and time (RFC 3339, e.g. 2026-12-31T23:59:59Z)"
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


# ---- drawing codes -----------------------------------------------------------------------------------------


class CodeDrawer:
    """Random codes of a pattern in the application's case, fast enough for a million at a time."""

    def __init__(self, pattern: str, alphabet: str, case: str) -> None:
        self.pool = "".join(dict.fromkeys(normalize(alphabet, case)))
        fixed = normalize(pattern.replace(PLACEHOLDER, "\0"), case)
        self.parts = fixed.split("\0")  # the fixed text around each random character
        self.width = len(self.parts) - 1
        self.contiguous = all(part == "" for part in self.parts[1:-1])
        self.fast = len(self.pool) <= 256 and all(ord(c) < 256 for c in self.pool)
        if self.fast:
            n = len(self.pool)
            keep = 256 - 256 % n  # bytes at or above this would favour the first characters
            self.reject = bytes(range(keep, 256))
            self.table = bytes.maketrans(bytes(range(keep)), (self.pool * (keep // n)).encode("latin-1"))
            self.template = "%s".join(self.parts)
        self.capacity = len(self.pool) ** self.width

    def _characters(self, count: int) -> str:
        """``count`` random characters of the pool."""
        if not self.fast:
            choice = secrets.choice
            return "".join(choice(self.pool) for _ in range(count))
        out: list[bytes] = []
        have = 0
        while have < count:
            chunk = secrets.token_bytes(int((count - have) * 1.1) + 64)
            chunk = chunk.translate(None, self.reject)
            out.append(chunk)
            have += len(chunk)
        return b"".join(out)[:count].translate(self.table).decode("latin-1")

    def draw(self, count: int) -> list[str]:
        """``count`` codes, distinct among themselves."""
        if count > self.capacity:
            raise ValidationFailed(f"The pattern makes fewer than {count:,} different codes")
        made: set[str] = set()
        width = self.width
        while len(made) < count:
            need = count - len(made)
            chars = self._characters(need * width)
            if self.contiguous:
                head, tail = self.parts[0], self.parts[-1]
                made.update(head + chars[i : i + width] + tail for i in range(0, need * width, width))
            else:
                template = self.template
                made.update(template % tuple(chars[i : i + width]) for i in range(0, need * width, width))
        return list(made)


# ---- staging and merging -----------------------------------------------------------------------------------

# Per-line columns a staging table may carry, with their PostgreSQL type (SQLite takes any).
STAGED_TYPES = {
    "line": "bigint",
    "value": "text",
    "usage_limit": "integer",
    "discount_limit": "numeric",
    "start_date": "timestamptz",
    "expiry_date": "timestamptz",
    "recipient_integration_id": "text",
    "attributes": "jsonb",
}
# Every column a new coupon is written with, besides those staged.
WRITTEN = (
    "application",
    "campaign",
    "value",
    "usage_limit",
    "usage_counter",
    "discount_limit",
    "discount_counter",
    "reservation_limit",
    "reservation_counter",
    "start_date",
    "expiry_date",
    "recipient_integration_id",
    "attributes",
    "limits",
    "batch_id",
    "import_id",
    "reservation",
    "is_reservation_mandatory",
    "implicitly_reserved",
    "created",
)


def copy_cell(value: Any) -> str:
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    text = value if isinstance(value, str) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


class Staging:
    """A TEMP table of this connection with ``columns`` (of :data:`STAGED_TYPES`); dropped by :meth:`drop`
    (or with the transaction that made it, when that rolls back)."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self.postgres = connection.vendor == "postgresql"
        self.table = f"coupon_stage_{uuid.uuid4().hex[:12]}"
        kinds = ", ".join(
            f"{name} {STAGED_TYPES[name] if self.postgres else ''}".strip() for name in self.columns
        )
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE {self.table} ({kinds})")

    def load_text(self, text: str) -> None:
        """Rows already in COPY's text format (PostgreSQL only)."""
        columns = ", ".join(self.columns)
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {self.table} ({columns}) FROM STDIN") as copy,
        ):
            copy.write(text.encode())

    def load(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows of Python values in column order; JSON columns as text."""
        if not rows:
            return
        if self.postgres:
            if len(self.columns) == 1:
                self.load_text("".join([copy_cell(row[0]) + "\n" for row in rows]))
            else:
                self.load_text("".join(["\t".join([copy_cell(cell) for cell in row]) + "\n" for row in rows]))
            return
        marks = ", ".join(["%s"] * len(self.columns))
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES ({marks})", rows)

    def analyze(self) -> None:
        """Give the planner the staged rows' statistics (a TEMP table has none): a million staged lines are
        then hash-joined against the application's codes instead of probed one by one."""
        if self.postgres:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {self.table}")

    def clear(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {self.table}")

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql.format(stage=self.table), params)
            return list(cursor.fetchall())

    def taken(self, application_id: int, environment_id: int) -> list[tuple[int, str, str]]:
        """(line, value, "coupon" | "promo code") of staged values the application already uses, by line."""
        coupons, promos = table_name(Coupon), table_name(PromoCode)
        return [
            (int(line), value, what)
            for line, value, what in self.fetch(
                f"""SELECT s.line, s.value, 'coupon' FROM {{stage}} s
                JOIN {coupons} c ON c.application_id = %s AND c.value = s.value
                UNION ALL
                SELECT s.line, s.value, 'promo code' FROM {{stage}} s
                JOIN {promos} p ON p.environment_id = %s AND p.code = s.value
                ORDER BY 1""",
                [application_id, environment_id],
            )
        ]

    def merge(self, *, campaign: Campaign, fixed: dict[str, Any], limit: int | None = None) -> int:
        """Insert the staged rows as coupons of ``campaign``: staged columns from the table, the others
        from ``fixed`` (field name -> value). Values taken already are left out. Returns rows inserted;
        at most ``limit`` (then the coupons taken are left out before counting, by an anti-join)."""
        values = {
            "application": campaign.application_id,
            "campaign": campaign.pk,
            "usage_counter": 0,
            "discount_counter": Decimal("0"),
            "reservation_counter": 0,
            "created": clock.now(),
            "usage_limit": 1,
            "recipient_integration_id": "",
            "attributes": {},
            "limits": [],
            "batch_id": "",
            "reservation": True,
            "is_reservation_mandatory": False,
            "implicitly_reserved": False,
            **fixed,
        }
        expressions: list[str] = []
        params: list[Any] = []
        for name in WRITTEN:
            if name in self.columns:
                staged = f"s.{name}"
                if name == "attributes":
                    staged = "COALESCE(s.attributes, '{}')"
                expressions.append(staged)
            elif name == "reservation" and "recipient_integration_id" in self.columns:
                # A personal code is not for others to reserve.
                expressions.append("(s.recipient_integration_id = '')")
            else:
                value = values.get(name)
                params.append(
                    db_value(Coupon, name, value) if name not in ("application", "campaign") else value
                )
                expressions.append("%s")
        promos, coupons = table_name(PromoCode), table_name(Coupon)
        params.append(campaign.application.environment_id)
        only = ""
        if limit is not None:
            only = (
                f" AND NOT EXISTS (SELECT 1 FROM {coupons} c"
                " WHERE c.application_id = %s AND c.value = s.value) ORDER BY s.value LIMIT %s"
            )
            params += [campaign.application_id, limit]
        else:
            only = " ORDER BY s.value"
        sql = (
            f"INSERT INTO {coupons} ({column_names(Coupon, WRITTEN)}) "
            f"SELECT {', '.join(expressions)} FROM {self.table} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {promos} p WHERE p.environment_id = %s AND p.code = s.value)"
            f"{only} ON CONFLICT (application_id, value) DO NOTHING"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)


def fixed_fields(fields: CouponFields, *, batch_id: str, import_id: int | None = None) -> dict[str, Any]:
    return {
        "usage_limit": fields.usage_limit,
        "discount_limit": fields.discount_limit,
        "reservation_limit": fields.reservation_limit,
        "start_date": fields.start_date,
        "expiry_date": fields.expiry_date,
        "recipient_integration_id": fields.recipient_integration_id,
        "attributes": fields.attributes,
        "limits": fields.limits,
        "batch_id": batch_id,
        "import_id": import_id,
        # A personal code is not for others to reserve.
        "reservation": not fields.recipient_integration_id,
        "is_reservation_mandatory": fields.is_reservation_mandatory,
        "implicitly_reserved": fields.implicitly_reserved,
    }


def new_batch_id() -> str:
    return uuid.uuid4().hex[:16]


def write_generated(
    *,
    campaign: Campaign,
    count: int,
    pattern: str,
    alphabet: str,
    fields: CouponFields,
    batch_id: str,
    chunk: int = CHUNK,
    on_chunk: Callable[[int], None] | None = None,
    after_chunk: Callable[[int], None] | None = None,
) -> int:
    """Draw and insert ``count`` coupons; returns how many were made. Raises ``ValidationFailed`` when
    the pattern has too few unused codes left.

    Each chunk is one ``transaction.atomic`` block: outside a transaction (a background job) every chunk
    commits on its own; inside one, the caller's transaction holds it all. ``on_chunk(made_so_far)`` runs
    inside each chunk's block, ``after_chunk(made_so_far)`` after it.
    """
    drawer = CodeDrawer(pattern, alphabet, campaign.application.coupon_code_case)
    fixed = fixed_fields(fields, batch_id=batch_id)
    made = 0
    while made < count:
        size = min(chunk, count - made)
        with transaction.atomic():
            staging = Staging(["value"])
            added, draw = 0, size
            for attempt in range(MAX_TOP_UPS):
                staging.load([(code,) for code in drawer.draw(draw)])
                # Top-ups draw more than the shortfall when many codes collide, and insert only that.
                inserted = staging.merge(
                    campaign=campaign, fixed=fixed, limit=size - added if attempt else None
                )
                added += inserted
                staging.clear()
                if added >= size:
                    break
                short = size - added
                draw = min(drawer.capacity, short * min(20, max(2, -(-draw // max(inserted, 1)))))
            staging.drop()
            made += added
            if on_chunk is not None:
                on_chunk(made)
        if after_chunk is not None:
            after_chunk(made)
        if added < size:
            raise ValidationFailed(
                f"Only {made:,} of {count:,} codes could be made: the pattern {pattern!r} has too few "
                "unused codes left in this application. Use a longer pattern."
            )
    return made


def write_values(
    *,
    campaign: Campaign,
    rows: Iterable[tuple[str, str]],
    fields: CouponFields,
    batch_id: str,
) -> int:
    """Insert (value, recipient) rows sharing ``fields``; returns rows inserted (taken values left out)."""
    fixed = fixed_fields(fields, batch_id=batch_id)
    fixed.pop("recipient_integration_id")
    staging = Staging(["value", "recipient_integration_id"])
    staging.load(list(rows))
    inserted = staging.merge(campaign=campaign, fixed=fixed)
    staging.drop()
    return inserted


# ---- the background job ------------------------------------------------------------------------------------


def generation_settings(params: dict[str, Any]) -> tuple[str, str, CouponFields]:
    pattern = str(params.get("pattern") or DEFAULT_PATTERN)
    alphabet = str(params.get("alphabet") or DEFAULT_ALPHABET)
    return pattern, alphabet, CouponFields.from_params(params)


def coupon_generation_run(
    *, generation_id: int, progress: Callable[[int, int], None] | None = None
) -> CouponGeneration:
    """Make the coupons of a queued generation, a chunk per commit, recording ``made`` as it goes.

    ``progress(made, requested)`` is called after each chunk (the CLI and the benchmark print it).
    Never raises for a problem of the request (the job ends ``failed`` with the reason); unexpected errors
    fail the job and are re-raised for the worker's log.
    """
    claimed = CouponGeneration.objects.filter(pk=generation_id, status=GenerationStatus.QUEUED).update(
        status=GenerationStatus.RUNNING
    )
    generation = (
        CouponGeneration.objects.select_related("campaign__application").filter(pk=generation_id).first()
    )
    if generation is None:
        raise NotFound(f"Coupon generation {generation_id} not found")
    if not claimed:
        logger.warning("Coupon generation %s is not queued any more; not running it again", generation_id)
        return generation

    def chunk_done(made: int) -> None:
        CouponGeneration.objects.filter(pk=generation_id).update(made=made)
        generation.made = made

    def chunk_committed(made: int) -> None:
        if progress is not None:
            progress(made, generation.requested)

    status, error = GenerationStatus.DONE, ""
    try:
        pattern, alphabet, fields = generation_settings(generation.params)
        check_pattern(pattern, alphabet, generation.requested)
        write_generated(
            campaign=generation.campaign,
            count=generation.requested,
            pattern=pattern,
            alphabet=alphabet,
            fields=fields,
            batch_id=generation.batch_id,
            chunk=CHUNK,
            on_chunk=chunk_done,
            after_chunk=chunk_committed,
        )
    except ValidationFailed as exc:
        status, error = GenerationStatus.FAILED, exc.message
    except BaseException:
        CouponGeneration.objects.filter(pk=generation_id).update(
            status=GenerationStatus.FAILED,
            error="The generation stopped on an unexpected error; the coupons made so far are kept.",
            finished=clock.now(),
        )
        raise
    finished = clock.now()
    CouponGeneration.objects.filter(pk=generation_id).update(status=status, error=error, finished=finished)
    generation.status, generation.error, generation.finished = status, error, finished
    return generation


def params_json(params: dict[str, Any]) -> dict[str, Any]:
    """Generation params made JSON-safe (dates as ISO text, decimals as text)."""
    return json.loads(json.dumps(params, default=str))


__all__ = [
    "CHUNK",
    "DEFAULT_PATTERN",
    "MAX_CODE_LENGTH",
    "MIN_CODE_LENGTH",
    "CodeDrawer",
    "CouponFields",
    "Staging",
    "coupon_generation_run",
    "write_generated",
    "write_values",
]
