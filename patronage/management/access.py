"""What every Management API router checks first: the caller's permissions and the environment named.

Kept apart from ``api`` (which mounts the routers) so routers import it at module level without a cycle.
"""

from __future__ import annotations

from django.http import HttpRequest

from patronage.core.errors import DomainError, ErrorDetail, ValidationFailed
from patronage.workspace.models import Environment


class PermissionDenied(DomainError):
    code = "permission_denied"
    title = "Forbidden"


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
