"""What every Management API router checks first: who calls, their permissions and the environment named.

Kept apart from ``api`` (which mounts the routers) so routers import it at module level without a cycle.

A caller is a staff user, known either by a Management API key (``Authorization: ManagementKey-v1 <key>``,
for scripts) or by the back-office session cookie (for the back office's own calls). Either way
``request.user`` is that user, and ``require`` checks its permissions at request time: a key never does more
than its user can do now.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyHeader
from ninja.security.base import AuthBase
from ninja.utils import check_csrf

from patronage.core.errors import AuthenticationFailed, DomainError, ErrorDetail, ValidationFailed
from patronage.workspace.models import Environment, ManagementKey
from patronage.workspace.selectors import management_key_authenticate
from patronage.workspace.services import management_key_touch

SCHEME = "ManagementKey-v1"
INTEGRATION_SCHEME = "ApiKey-v1"
MISSING_AUTH = f"Log in to the back office, or send the header 'Authorization: {SCHEME} <key>'"


class PermissionDenied(DomainError):
    code = "permission_denied"
    title = "Forbidden"


def _unauthorized(message: str) -> AuthenticationFailed:
    return AuthenticationFailed(
        message, details=[ErrorDetail("Unauthorized", message, pointer="header:Authorization")]
    )


class ManagementApiKey(APIKeyHeader):
    """``Authorization: ManagementKey-v1 <key>``, as Talon.One's Management API and SDK send it.

    Any other Authorization scheme is left to the session (a proxy's Basic auth in front of the back office
    must not break its calls), except an Integration API key, which gets a 401 saying which key to use.
    A key-authenticated request needs no CSRF token: a browser never sends this header on its own.
    """

    param_name = "Authorization"
    openapi_description = (
        f"'{SCHEME} <key>': a Management API key, made in the back office (Workspace > Management API keys) "
        "or with `patronage managementkey create`. It acts with its staff user's permissions."
    )

    def authenticate(self, request: HttpRequest, key: str | None) -> ManagementKey | None:
        scheme, _, secret = (key or "").strip().partition(" ")
        if scheme == INTEGRATION_SCHEME:
            raise _unauthorized(
                f"This is an Integration API key ({INTEGRATION_SCHEME}); "
                f"the Management API takes a Management API key: 'Authorization: {SCHEME} <key>'"
            )
        if scheme != SCHEME:
            return None
        if not secret.strip():
            raise _unauthorized(f"The Authorization header must read '{SCHEME} <key>'")
        try:
            management_key = management_key_authenticate(secret.strip())
        except AuthenticationFailed as exc:
            raise _unauthorized(exc.message) from None
        management_key_touch(management_key)
        request.user = management_key.user
        return management_key


class StaffSession(AuthBase):
    """The back-office session cookie of an active staff user; writes need the CSRF token, as in the admin.

    Without a signed-in user this answers nothing (so the caller gets the 401 body), before any CSRF check:
    an anonymous write is unauthenticated, not forged.
    """

    openapi_type = "apiKey"
    openapi_in = "cookie"
    openapi_name = settings.SESSION_COOKIE_NAME
    openapi_description = "The back-office session (log in at /admin/); writes need the X-CSRFToken header."

    def __call__(self, request: HttpRequest) -> Any:
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request) is not None:
            message = (
                "CSRF check failed: the back office's own calls send the X-CSRFToken header; "
                f"scripts use a Management API key ('Authorization: {SCHEME} <key>')"
            )
            raise PermissionDenied(message, details=[ErrorDetail("Forbidden", message)])
        return user


# Every Management API operation takes either; the key first, so a script's key wins over a stray cookie.
management_auth = [ManagementApiKey(), StaffSession()]


def require(request: HttpRequest, *perms: str) -> None:
    """403 (``PermissionDenied``) naming the first of ``perms`` the staff user lacks."""
    for perm in perms:
        if not request.user.has_perm(perm):
            message = f"Your account lacks the permission {perm}"
            raise PermissionDenied(message, details=[ErrorDetail("Forbidden", message)])


def environment_named(slug: str, pointer: str) -> Environment:
    """The environment a request names, or ValidationFailed pointing at where it was named."""
    environment = Environment.objects.filter(slug=slug).first()
    if environment is None:
        raise ValidationFailed(
            f"No environment {slug!r} (sandbox or live)",
            details=[ErrorDetail(ValidationFailed.title, f"No environment {slug!r}", pointer=pointer)],
        )
    return environment
