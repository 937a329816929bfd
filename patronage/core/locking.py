"""Row locking helpers and the one lock order every service follows.

Lock order (PostgreSQL ``SELECT ... FOR NO KEY UPDATE``), always in this sequence, rows of one model by pk:

    customer profile -> customer session -> coupon / promo code -> referral -> budget counters
    -> loyalty ledger

Taking locks in one order is what keeps two requests from deadlocking. Keep locked blocks small.

Lock only the rows you mean. ``select_for_update()`` locks every row the query reads, so with
``select_related(...)`` it also locks the joined rows (the environment of a mailing, a profile, an offer:
every writer of that environment would queue behind it). Always say ``of=("self",)`` (``lock()`` does);
a statement that means to lock two tables names both (``rows(...).lock_with``).
SQLite ignores row locks; there, ``transaction_mode=IMMEDIATE`` serializes writers instead and the
invariants are also held by unique/check constraints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, models, transaction

from .errors import Conflict
from .rows import rows

M = TypeVar("M", bound=models.Model)


def lock(queryset: models.QuerySet[M]) -> models.QuerySet[M]:
    """``queryset``'s own rows locked ``FOR NO KEY UPDATE``; rows it joins (``select_related``) are read."""
    return queryset.select_for_update(no_key=True, of=("self",))


def get_or_create_locked(
    queryset: models.QuerySet[M], *, defaults: Callable[[], dict[str, Any]], **lookup: Any
) -> tuple[M, bool]:
    """Return the row matching ``lookup`` locked for update, creating it when missing.

    ``lookup`` is plain column equality (use ``*_id`` for foreign keys). Two callers racing to create the
    same row both end with the one row: the loser's INSERT fails on
    the unique constraint inside a savepoint and it then locks the winner's row.
    ``defaults`` is only called when the row is created, so it may query.
    Must run inside ``transaction.atomic``.
    """
    table = rows(queryset.model)
    found = table.get(lock=True, **lookup)
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            return queryset.create(**lookup, **defaults()), True
    except IntegrityError:
        found = table.get(lock=True, **lookup)
        if found is None:  # the clash was on another unique constraint
            raise
        return found, False


PARALLEL_REQUESTS = (
    "Too many requests or limit reached: another request for this customer or session is still running; "
    "avoid parallel requests for one customer and retry"
)


@contextmanager
def lock_wait_limit() -> Iterator[None]:
    """Inside ``transaction.atomic``: a row lock not granted within ``PATRONAGE_LOCK_WAIT_MS`` becomes
    a :class:`Conflict` (Talon.One answers parallel requests for one customer with 409) instead of a
    request that queues for as long as the other one runs. PostgreSQL only; SQLite writers queue on
    ``IMMEDIATE`` transactions and its busy timeout."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)", [f"{settings.PATRONAGE_LOCK_WAIT_MS}ms"]
        )
    try:
        yield  # the setting is local to the transaction: it ends with it
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":  # lock_not_available
            raise Conflict(PARALLEL_REQUESTS) from exc
        raise
