"""Coupons to CSV with Talon.One's export columns (``export_coupons``), streamed: memory stays flat
whatever the number of coupons (a server-side cursor on PostgreSQL, ``iterator`` chunks on SQLite).

Every cell passes through ``csvio.neutralize`` (a code such as ``=HYPERLINK(...)`` opens as text in a
spreadsheet, and imports back unchanged), and the columns a coupon import reads (``value``,
``expirydate``, ``startdate``, ``recipientintegrationid``, ``limitval``, ``attributes``) are among them,
so an export re-imports into another campaign.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from patronage.core.csvio import format_row, neutralize

from .models import Coupon

EXPORT_COLUMNS = (
    "accountid",
    "applicationid",
    "attributes",
    "batchid",
    "campaignid",
    "counter",
    "created",
    "deleted",
    "deleted_changelogid",
    "discount_counter",
    "discount_limitval",
    "expirydate",
    "id",
    "importid",
    "is_reservation_mandatory",
    "limits",
    "limitval",
    "recipientintegrationid",
    "referralid",
    "reservation",
    "reservation_counter",
    "reservation_limitval",
    "startdate",
    "value",
)
ACCOUNT_ID = 1  # Patronage has one account: every row carries the same
FIELDS = (
    "id",
    "application_id",
    "campaign_id",
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
    "referral_id",
    "reservation",
    "is_reservation_mandatory",
    "created",
)
CHUNK = 5000


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _number(value: Decimal | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else ""


def _flag(value: bool) -> str:
    return "true" if value else "false"


def coupon_cells(row: dict[str, Any]) -> list[str]:
    """One coupon (a ``values()`` row of :data:`FIELDS`) as the export's cells, not yet neutralized."""
    return [
        str(ACCOUNT_ID),
        str(row["application_id"]),
        _json(row["attributes"]),
        row["batch_id"],
        str(row["campaign_id"]),
        str(row["usage_counter"]),
        _when(row["created"]),
        "false",
        "0",
        _number(row["discount_counter"]),
        _number(row["discount_limit"]),
        _when(row["expiry_date"]),
        str(row["id"]),
        _number(row["import_id"]),
        _flag(row["is_reservation_mandatory"]),
        _json(row["limits"]),
        str(row["usage_limit"]),
        row["recipient_integration_id"],
        _number(row["referral_id"]),
        _flag(row["reservation"]),
        _number(row["reservation_counter"]),
        _number(row["reservation_limit"]),
        _when(row["start_date"]),
        row["value"],
    ]


def coupons_export_rows(*, queryset: QuerySet[Coupon]) -> Iterator[str]:
    """The CSV, a line at a time: the header, then one line per coupon of ``queryset`` in its order."""
    yield format_row(EXPORT_COLUMNS)
    for row in queryset.values(*FIELDS).iterator(chunk_size=CHUNK):
        yield format_row([neutralize(cell) for cell in coupon_cells(row)])
