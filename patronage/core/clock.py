"""The one place code reads the time, so tests can travel in it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    return _frozen if _frozen is not None else dt.datetime.now(dt.UTC)


@contextmanager
def frozen_at(moment: dt.datetime) -> Iterator[None]:
    global _frozen
    previous, _frozen = _frozen, moment
    try:
        yield
    finally:
        _frozen = previous


def assume_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A datetime read from a request, made aware: a naive one is UTC (what the Talon.One SDK sends)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment
