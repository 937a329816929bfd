"""Row locking helpers and the one lock order every service follows.

Lock order (PostgreSQL ``SELECT ... FOR NO KEY UPDATE``), always in this sequence, rows of one model by pk:

    customer profile -> customer session -> coupon / promo code -> loyalty ledger

Taking locks in one order is what keeps two requests from deadlocking. Keep locked blocks small.

Lock only the rows you mean. ``select_for_update()`` locks every row the query reads, so with
``select_related(...)`` it also locks the joined rows (the environment of a mailing, a profile, an offer:
every writer of that environment would queue behind it). Always say ``of=("self",)`` (``lock()`` does);
a statement that means to lock two tables names both (``rows(...).lock_with``).
SQLite ignores row locks; there, ``transaction_mode=IMMEDIATE`` serializes writers instead and the
invariants are also held by unique/check constraints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction

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
