from __future__ import annotations

import time

from django.conf import settings

from patronage.core import clock
from patronage.core.errors import AuthenticationFailed

from .models import ApiKey, ManagementKey, digest_key

# digest -> (monotonic deadline, key row). Saves a query on every API call; only keys that exist are kept,
# so random guesses cannot fill it. Revocation clears the entry in this process at once and reaches other
# server processes within PATRONAGE_API_KEY_CACHE_SECONDS.
_recent: dict[str, tuple[float, ApiKey]] = {}


def forget_api_key(digest: str) -> None:
    _recent.pop(digest, None)


def _lookup(digest: str) -> ApiKey | None:
    hit = _recent.get(digest)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    api_key = ApiKey.objects.select_related("application__environment").filter(digest=digest).first()
    if api_key is not None and settings.PATRONAGE_API_KEY_CACHE_SECONDS > 0:
        _recent[digest] = (now + settings.PATRONAGE_API_KEY_CACHE_SECONDS, api_key)
    return api_key


def api_key_authenticate(plaintext: str) -> ApiKey:
    """The active key for ``plaintext`` with its application and environment, or AuthenticationFailed."""
    api_key = _lookup(digest_key(plaintext))
    if api_key is None:
        raise AuthenticationFailed("Invalid API key")
    if api_key.revoked_at is not None:
        raise AuthenticationFailed("This API key has been revoked")
    if api_key.expires_at is not None and api_key.expires_at <= clock.now():
        raise AuthenticationFailed("This API key expired on " + api_key.expires_at.isoformat())
    return api_key


def management_key_authenticate(plaintext: str) -> ManagementKey:
    """The usable Management API key for ``plaintext``, with its user, or AuthenticationFailed.

    Never cached: the owner is read afresh on each request, so a key stops at once when its user is
    deactivated, loses staff status or a permission (permissions are checked against this user afterwards).
    """
    key = ManagementKey.objects.select_related("user").filter(digest=digest_key(plaintext)).first()
    if key is None:
        raise AuthenticationFailed("Invalid Management API key")
    if key.revoked_at is not None:
        raise AuthenticationFailed("This Management API key has been revoked")
    if key.expires_at is not None and key.expires_at <= clock.now():
        raise AuthenticationFailed("This Management API key expired on " + key.expires_at.isoformat())
    if not (key.user.is_active and key.user.is_staff):
        raise AuthenticationFailed("The staff account this Management API key belongs to is no longer active")
    return key
