from __future__ import annotations

from django.http import HttpRequest
from ninja.security import APIKeyHeader

from patronage.core.errors import AuthenticationFailed, ErrorDetail
from patronage.workspace.models import ApiKey
from patronage.workspace.selectors import api_key_authenticate

SCHEME = "ApiKey-v1"


class IntegrationApiKey(APIKeyHeader):
    """``Authorization: ApiKey-v1 <key>``, as Talon.One's Integration API and SDK send it."""

    param_name = "Authorization"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        if not key:
            return None
        scheme, _, secret = key.partition(" ")
        if scheme != SCHEME or not secret.strip():
            message = f"The Authorization header must read '{SCHEME} <key>'"
            raise AuthenticationFailed(
                message, details=[ErrorDetail("Unauthorized", message, pointer="header:Authorization")]
            )
        try:
            return api_key_authenticate(secret.strip())
        except AuthenticationFailed as exc:
            exc.details = [ErrorDetail("Unauthorized", exc.message, pointer="header:Authorization")]
            raise
