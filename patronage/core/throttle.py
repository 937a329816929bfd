"""Throttles for guarded actions (signing in, reset mails), shared by the customer panel and the back office.

An attempt is counted *before* the guarded work (the password check) by one atomic statement,
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING count``, and refused once that count passes the limit. Check
and count are one step, so however many requests arrive at once at most ``limit`` of them reach the password
check (PostgreSQL serializes the upserts of one key on its row; SQLite has one writer at a time). Counts live
in the database (``core.ThrottleCount``), so every server process sees the same ones.

Sign-ins are limited twice: per account from one address (the owner signs in from elsewhere as usual) and per
address whatever the account (one address trying many emails). A success forgets the account's count and gives
its attempt back to the address, so only failures add up there. The answer is the same whether the account
exists or not, and a refused attempt checks no password at all.

The counting statement must not run inside a transaction that a failed sign-in rolls back (it commits on its
own in the views, which run in autocommit).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.http import HttpRequest

from patronage.core import clock
from patronage.core.errors import AuthenticationFailed

from .models import ThrottleCount

SIGN_IN_WINDOW = dt.timedelta(minutes=15)
# Failed sign-ins of one account from one address, per window.
SIGN_IN_ACCOUNT_LIMIT = 10
# Failed sign-ins from one address, whatever the accounts (``PATRONAGE_SIGN_IN_ADDRESS_LIMIT``).
SIGN_IN_ADDRESS_LIMIT = 50
# Expired rows are deleted by every this many counted attempts of a process (a small indexed DELETE).
_PURGE_EVERY = 200
_taken = 0


class TooManyAttempts(AuthenticationFailed):
    code = "too_many_attempts"
    title = "Too many attempts"

    def __init__(self, message: str, *, retry_after: dt.timedelta) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Throttle:
    """At most ``limit`` attempts per key in a fixed window that starts with the key's first attempt."""

    scope: str
    default_limit: int
    window: dt.timedelta
    # A setting that, when present, replaces ``default_limit``.
    setting: str = ""

    @property
    def limit(self) -> int:
        return (
            int(getattr(settings, self.setting, self.default_limit)) if self.setting else self.default_limit
        )

    def key(self, *parts: object) -> str:
        # Hashed: emails and addresses never sit in the table, and any part fits.
        digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
        return f"{self.scope}:{digest}"

    def take(self, key: str) -> dt.timedelta | None:
        """Count one attempt: None when it is within the limit, else how long until the window ends."""
        now = clock.now()
        adapt = connection.ops.adapt_datetimefield_value
        quote = connection.ops.quote_name
        table = quote(ThrottleCount._meta.db_table)
        key_column, count, ends = quote("key"), quote("count"), quote("window_ends")
        sql = (
            f"INSERT INTO {table} ({key_column}, {count}, {ends}) VALUES (%s, 1, %s) "
            f"ON CONFLICT ({key_column}) DO UPDATE SET "
            f"{count} = CASE WHEN {table}.{ends} > %s THEN {table}.{count} + 1 ELSE 1 END, "
            f"{ends} = CASE WHEN {table}.{ends} > %s THEN {table}.{ends} ELSE excluded.{ends} END "
            f"RETURNING {count}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [key, adapt(now + self.window), adapt(now), adapt(now)])
            (taken,) = cursor.fetchone()
        _purge_now_and_then(now)
        if taken <= self.limit:
            return None
        ends_at = ThrottleCount.objects.filter(pk=key).values_list("window_ends", flat=True).first()
        return max(dt.timedelta(0), (ends_at or now + self.window) - now)

    def give_back(self, key: str) -> None:
        """Take one attempt off the count (a success that should not count against the key)."""
        ThrottleCount.objects.filter(pk=key, count__gt=0).update(count=F("count") - 1)

    def forget(self, key: str) -> None:
        ThrottleCount.objects.filter(pk=key).delete()

    def count(self, key: str) -> int:
        now = clock.now()
        return (
            ThrottleCount.objects.filter(pk=key, window_ends__gt=now).values_list("count", flat=True).first()
            or 0
        )


def _purge_now_and_then(now: dt.datetime) -> None:
    global _taken
    _taken += 1
    if _taken % _PURGE_EVERY == 0:
        ThrottleCount.objects.filter(window_ends__lt=now).delete()


# --- signing in ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInThrottle:
    """The two limits of one sign-in page (the panel's, the back office's)."""

    account: Throttle
    address: Throttle

    @classmethod
    def named(cls, realm: str) -> SignInThrottle:
        return cls(
            account=Throttle(f"{realm}-sign-in", SIGN_IN_ACCOUNT_LIMIT, SIGN_IN_WINDOW),
            address=Throttle(
                f"{realm}-sign-in-address",
                SIGN_IN_ADDRESS_LIMIT,
                SIGN_IN_WINDOW,
                setting="PATRONAGE_SIGN_IN_ADDRESS_LIMIT",
            ),
        )

    def _keys(self, account: str, address: str) -> tuple[str, str]:
        return self.account.key(account.strip().lower(), address), self.address.key(address)

    def attempt(self, *, account: str, address: str, advice: str = "") -> None:
        """Count a sign-in attempt before checking its password; ``TooManyAttempts`` when over a limit.

        ``account`` is what the person typed (an email, a username), existing or not: the answer never
        tells which. ``advice`` ends the message (e.g. "or reset your password").
        """
        account_key, address_key = self._keys(account, address)
        waits = [wait for wait in (self.account.take(account_key), self.address.take(address_key)) if wait]
        if waits:
            wait = max(waits)
            minutes = max(1, math.ceil(wait.total_seconds() / 60))
            message = f"Too many failed sign-ins; try again in {minutes} minute{'s' if minutes != 1 else ''}"
            raise TooManyAttempts(f"{message}{', ' + advice if advice else ''}.", retry_after=wait)

    def succeeded(self, *, account: str, address: str) -> None:
        """The password was right: the account's count starts again and the address gets its attempt back."""
        account_key, address_key = self._keys(account, address)
        self.account.forget(account_key)
        self.address.give_back(address_key)


def client_address(request: HttpRequest) -> str:
    """The address a request came from, as throttles count it.

    The direct peer, unless ``PATRONAGE_PROXY_COUNT`` reverse proxies stand in front: then the address the
    outermost of them saw, read from ``X-Forwarded-For`` counted from the right (entries further left are
    whatever the client claimed). Without that setting behind a proxy every client shares the proxy's
    address, and the per-address sign-in limit applies to all of them together.
    """
    peer = str(request.META.get("REMOTE_ADDR", ""))
    proxies = int(getattr(settings, "PATRONAGE_PROXY_COUNT", 0))
    if proxies <= 0:
        return peer
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    return forwarded[-proxies] if len(forwarded) >= proxies else peer
