from __future__ import annotations

from patronage.core import clock
from patronage.core.errors import AuthenticationFailed

from .models import ApiKey
from .services import digest_key


def api_key_authenticate(plaintext: str) -> ApiKey:
    """The active key for ``plaintext`` with its application and environment, or AuthenticationFailed."""
    api_key = (
        ApiKey.objects.select_related("application__environment").filter(digest=digest_key(plaintext)).first()
    )
    if api_key is None:
        raise AuthenticationFailed("Invalid API key")
    if api_key.revoked_at is not None:
        raise AuthenticationFailed("This API key has been revoked")
    if api_key.expires_at is not None and api_key.expires_at <= clock.now():
        raise AuthenticationFailed("This API key expired on " + api_key.expires_at.isoformat())
    return api_key
