from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import models, transaction

from patronage.core import clock
from patronage.core.errors import ValidationFailed

from .models import ApiKey, Application, Environment, ManagementKey, digest_key
from .selectors import forget_api_key

KEY_BYTES = 32


def environment_get(slug: str) -> Environment:
    """One of the two environments, recreated if missing (a migration makes them; a DB flush drops them)."""
    if slug not in dict(Environment.SLUGS):
        raise ValidationFailed(f"Unknown environment {slug!r}: use sandbox or live")
    environment, _ = Environment.objects.get_or_create(
        slug=slug, defaults={"name": dict(Environment.SLUGS)[slug]}
    )
    return environment


def environments_ensure() -> None:
    """Both environments exist (forms that offer them as choices call this first)."""
    for slug, _ in Environment.SLUGS:
        environment_get(slug)


def application_create(
    *,
    name: str,
    slug: str,
    environment: str,
    currency: str = "USD",
    time_zone: str = "UTC",
    description: str = "",
) -> Application:
    env = environment_get(environment)
    app = Application(
        name=name, slug=slug, environment=env, currency=currency, time_zone=time_zone, description=description
    )
    app.full_clean()
    app.save()
    return app


def _audit(actor: Any, obj: ApiKey | ManagementKey, flag: int, message: str) -> None:
    if actor is not None and actor.pk is not None:
        LogEntry.objects.log_actions(
            user_id=actor.pk, queryset=[obj], action_flag=flag, change_message=message, single_object=True
        )


def api_key_check_expiry(expires_at: dt.datetime | None) -> None:
    if expires_at is not None and expires_at <= clock.now():
        raise ValidationFailed("The expiry date must be in the future.")


def _new_key() -> str:
    # Never a leading "-": the key's prefix is what `patronage apikey revoke PREFIX` takes, and a command
    # line reads "-..." as an option (1 key in 64 would be unrevocable without "--").
    while (plaintext := secrets.token_urlsafe(KEY_BYTES)).startswith("-"):
        pass
    return plaintext


@transaction.atomic
def api_key_create(
    *, application: Application, name: str, expires_at: dt.datetime | None = None, actor: Any = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored and never shown again."""
    api_key_check_expiry(expires_at)
    plaintext = _new_key()
    api_key = ApiKey.objects.create(
        application=application,
        name=name,
        prefix=plaintext[:8],
        digest=digest_key(plaintext),
        expires_at=expires_at,
    )
    _audit(actor, api_key, ADDITION, "Created")
    return api_key, plaintext


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Any = None) -> ApiKey:
    if ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=clock.now()):
        _audit(actor, api_key, CHANGE, "Revoked")
    forget_api_key(api_key.digest)
    api_key.refresh_from_db()
    return api_key


# A key used again within this many seconds of its recorded last use is not written again.
LAST_USE_RESOLUTION = dt.timedelta(minutes=1)


def management_key_check_owner(*, user: Any, actor: Any = None) -> None:
    """A key belongs to an active staff user; staff make keys for themselves, superusers for anyone."""
    if not (user.is_active and user.is_staff):
        raise ValidationFailed(f"{user.get_username()} is not an active staff user: only staff can own keys.")
    if actor is not None and actor.pk != user.pk and not actor.is_superuser:
        raise ValidationFailed("You can create Management API keys only for yourself.")


@transaction.atomic
def management_key_create(
    *, user: Any, name: str, expires_at: dt.datetime | None = None, actor: Any = None
) -> tuple[ManagementKey, str]:
    """Create a Management API key of ``user``; return it with its plaintext, shown once and never stored."""
    management_key_check_owner(user=user, actor=actor)
    api_key_check_expiry(expires_at)
    if not name.strip():
        raise ValidationFailed("Give the key a name: what is it for?")
    plaintext = _new_key()
    key = ManagementKey.objects.create(
        user=user,
        name=name.strip(),
        prefix=plaintext[:8],
        digest=digest_key(plaintext),
        expires_at=expires_at,
    )
    _audit(actor, key, ADDITION, "Created")
    return key, plaintext


@transaction.atomic
def management_key_revoke(*, key: ManagementKey, actor: Any = None) -> ManagementKey:
    if ManagementKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=clock.now()):
        _audit(actor, key, CHANGE, "Revoked")
    key.refresh_from_db()
    return key


def management_key_touch(key: ManagementKey) -> bool:
    """Record that ``key`` was just used: at most one write a minute per key, whatever the request rate.

    Returns whether this call wrote. The conditional UPDATE lets only one of concurrent requests (in any
    server process) write; the others, and every use within the minute, write nothing.
    """
    now = clock.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USE_RESOLUTION:
        return False
    stale = models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lte=now - LAST_USE_RESOLUTION)
    written = ManagementKey.objects.filter(stale, pk=key.pk).update(last_used_at=now) > 0
    key.last_used_at = now
    return written
