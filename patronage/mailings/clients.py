"""What a message knows of its customer: a snapshot of the profile, taken in SQL.

A send prepares thousands of deliveries in one statement, so the snapshot is built by the database itself
(``jsonb_build_object`` / ``json_object``) as part of the statement that claims a batch, and stored on the
delivery. Preparation renders each message from it once, to learn which promo codes the message shows;
delivery renders it again from the same snapshot and codes, and rendering is deterministic, so the customer
gets exactly the message preparation saw, whatever happened to their profile in between. The preview takes
its snapshot through the same SQL, so it cannot disagree with a send.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import connection

from patronage.core.bulk import table_name
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.promocodes.models import IssueKind
from patronage.promocodes.selectors import mailing_codes

from .templating import CLIENT_FIELDS, Client, fold

_SALES_PLACES = Decimal(1).scaleb(-CustomerProfile._meta.get_field("total_sales").decimal_places)  # type: ignore[union-attr]


def snapshot_sql(
    *, profile: str = "p", group: str = "g", email: str | None = None, fields: Iterable[str] = CLIENT_FIELDS
) -> str:
    """The SQL expression of a customer's snapshot, given the aliases of the profile row and of its
    customer group (LEFT JOINed); ``email`` is the address the message goes to (the profile's by default).
    Only ``fields`` are kept (what the templates read, ``templating.Analysis.client_fields``).
    """
    columns = {
        "integration_id": f"{profile}.integration_id",
        "name": f"{profile}.name",
        "email": email or f"COALESCE({profile}.email, '')",
        "phone": f"{profile}.phone",
        "birth_date": f"{profile}.birth_date",
        "group": f"COALESCE({group}.name, '')",
        "tax_exempt": f"{profile}.tax_exempt",
        "orders": f"{profile}.closed_sessions",
        # As text: a JSON number would come back as a float.
        "total_sales": f"CAST({profile}.total_sales AS TEXT)",
        "created": f"{profile}.created",
        "attributes": f"{profile}.attributes",
    }
    if connection.vendor == "postgresql":
        build = "jsonb_build_object"
    else:
        # SQLite keeps JSON as text: json() embeds it as an object rather than a string.
        build, columns["attributes"] = "json_object", f"json({profile}.attributes)"
    kept = set(fields)
    pairs = ", ".join(f"'{name}', {sql}" for name, sql in columns.items() if name in kept)
    return f"{build}({pairs})"


def _moment(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    moment = dt.datetime.fromisoformat(value)
    # SQLite keeps UTC without an offset (Django's convention there).
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def client_from_snapshot(snapshot: Mapping[str, Any] | str) -> Client:
    """The template's ``client`` for a stored snapshot (a dict, or its JSON text as SQLite returns it)."""
    data: Mapping[str, Any] = json.loads(snapshot) if isinstance(snapshot, str) else snapshot
    # A snapshot keeps only what its templates read; the rest keeps the Client's defaults.
    get = data.get
    birth_date, attributes, sales = get("birth_date"), get("attributes"), get("total_sales")
    return Client(
        integration_id=get("integration_id") or "",
        name=get("name") or "",
        email=get("email") or "",
        phone=get("phone") or "",
        birth_date=dt.date.fromisoformat(birth_date) if birth_date else None,
        group=get("group") or "",
        tax_exempt=bool(get("tax_exempt")),
        orders=int(get("orders") or 0),
        total_sales=Decimal(sales).quantize(_SALES_PLACES) if sales else Decimal(0),
        created=_moment(get("created")),
        attributes=attributes if isinstance(attributes, dict) else {},
    )


def profile_snapshots(profile_ids: Iterable[int]) -> dict[int, Any]:
    """The snapshot of each of these customers as a send would take it now."""
    ids = list(profile_ids)
    if not ids:
        return {}
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.id, {snapshot_sql()} FROM {table_name(CustomerProfile)} p "
            f"LEFT JOIN {table_name(CustomerGroup)} g ON g.id = p.group_id WHERE p.id IN ({placeholders})",
            ids,
        )
        return dict(cursor.fetchall())


def prepared_clients(*, mailing_id: int, prepared: Sequence[tuple[int | None, Any]]) -> list[Client]:
    """The ``client`` of each prepared delivery, given as (profile id, snapshot), holding the codes the
    mailing issued it: rendering it again shows exactly the message preparation saw. One query for all."""
    issued = mailing_codes(
        mailing_id=mailing_id,
        profile_ids=[profile_id for profile_id, _ in prepared if profile_id is not None],
    )
    return [
        _with_codes(client_from_snapshot(snapshot), issued.get(profile_id or 0, ()))
        for profile_id, snapshot in prepared
    ]


def _with_codes(client: Client, issued: Iterable[tuple[str, str, str]]) -> Client:
    codes, last_codes = dict(client.codes), dict(client.last_codes)
    for kind, group_name, code in issued:
        (codes if kind == IssueKind.INITIAL else last_codes)[fold(group_name)] = code
    client.codes, client.last_codes = codes, last_codes
    return client
