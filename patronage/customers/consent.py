"""The audit of marketing consent: every change leaves a ``ConsentChange`` row, written in the same
transaction as the change, saying when, from what to what, and through what.

Each path that changes consent says who it is with a :class:`ConsentActor` (``ConsentActor.staff(user)``,
``ConsentActor.api_key(key)``, ...) and records through :func:`consent_record` (one customer) or
:func:`consent_record_many` (a batch: one INSERT, never a query per row). The CSV import writes its rows
set-based from its staging table (``customers.imports``). Only real changes are recorded; a customer
created with consent gets one row without an old value ("granted at creation").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from patronage.core import clock
from patronage.core.errors import NotFound
from patronage.core.locking import lock

from .models import ConsentChange, CustomerProfile

Source = ConsentChange.Source
DETAIL_MAX = ConsentChange._meta.get_field("detail").max_length or 255
BULK_BATCH = 1000


@dataclass(frozen=True)
class ConsentActor:
    """Through what a change is made: the channel, the staff user if any, and which file, key or link."""

    source: str
    staff_user_id: int | None = None
    detail: str = ""

    @classmethod
    def staff(cls, user: Any) -> ConsentActor:
        if user is None or getattr(user, "pk", None) is None:
            return cls(Source.BACK_OFFICE)
        return cls(Source.BACK_OFFICE, user.pk, user.get_username())

    @classmethod
    def api_key(cls, key: Any) -> ConsentActor:
        """The key's name and prefix (never the key itself)."""
        if key is None:
            return cls(Source.API)
        return cls(Source.API, detail=f"API key {key.name} ({key.prefix}…)")

    @classmethod
    def panel(cls, shop_name: str = "") -> ConsentActor:
        return cls(Source.PANEL, detail=f"{shop_name} customer panel" if shop_name else "")

    @classmethod
    def import_job(cls, job: Any) -> ConsentActor:
        if job is None:
            return cls(Source.IMPORT)
        return cls(Source.IMPORT, job.created_by_id, f"file {job.filename} (import job #{job.pk})")

    @classmethod
    def link(cls, mailing: str = "") -> ConsentActor:
        return cls(Source.LINK, detail=f"from the mailing {mailing}" if mailing else "")


def _row(
    profile_id: int, old: bool | None, new: bool, actor: ConsentActor, now: dt.datetime
) -> ConsentChange:
    return ConsentChange(
        profile_id=profile_id,
        created=now,
        old_value=old,
        new_value=new,
        source=actor.source,
        staff_user_id=actor.staff_user_id,
        detail=actor.detail[:DETAIL_MAX],
    )


def _is_change(old: bool | None, new: bool) -> bool:
    """A real change; a new customer (``old`` None) counts only when created with consent."""
    return old != new and not (old is None and not new)


def consent_record(
    *, profile_id: int, old: bool | None, new: bool, actor: ConsentActor, now: dt.datetime | None = None
) -> ConsentChange | None:
    """Record one change (``old=None``: the customer was just created). Nothing when nothing changed, or
    when a new customer starts without consent."""
    if not _is_change(old, new):
        return None
    row = _row(profile_id, old, new, actor, now or clock.now())
    row.save(force_insert=True)
    return row


def consent_record_many(
    *, changes: Iterable[tuple[int, bool | None, bool]], actor: ConsentActor, now: dt.datetime | None = None
) -> int:
    """Record a batch of ``(profile id, old or None, new)`` in bulk INSERTs; returns how many were real."""
    moment = now or clock.now()
    rows = [
        _row(profile_id, old, new, actor, moment) for profile_id, old, new in changes if _is_change(old, new)
    ]
    ConsentChange.objects.bulk_create(rows, batch_size=BULK_BATCH)
    return len(rows)


@transaction.atomic
def consent_set(*, profile_id: int, accepts: bool, actor: ConsentActor) -> CustomerProfile:
    """Set one customer's marketing consent (the unsubscribe link, its undo) and record the change.

    Only the consent column is written: a concurrent edit of other fields is never undone.
    """
    profile = lock(CustomerProfile.objects.filter(pk=profile_id)).first()
    if profile is None:
        raise NotFound("This customer no longer exists")
    old = profile.accepts_marketing
    if old != accepts:
        profile.accepts_marketing = accepts
        profile.save(update_fields=["accepts_marketing"])
        consent_record(profile_id=profile.pk, old=old, new=accepts, actor=actor)
    return profile


HISTORY_SHOWN = 100


@dataclass(frozen=True)
class ConsentHistory:
    rows: list[ConsentChange]  # newest first, at most HISTORY_SHOWN
    total: int


def consent_history(profile: CustomerProfile, *, limit: int = HISTORY_SHOWN) -> ConsentHistory:
    """The customer's consent changes, newest first, capped at ``limit`` (with the total count)."""
    changes = ConsentChange.objects.filter(profile=profile)
    rows = list(changes.select_related("staff_user").order_by("-created", "-id")[:limit])
    total = len(rows) if len(rows) < limit else changes.count()
    return ConsentHistory(rows, total)
