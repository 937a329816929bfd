from __future__ import annotations

from patronage.core.errors import ErrorDetail, NotFound
from patronage.workspace.models import Application

from .models import CustomerSession
from .services import SessionResult, cart_items


def session_get(*, application: Application, integration_id: str) -> SessionResult:
    session = (
        CustomerSession.objects.select_related("profile")
        .filter(application=application, integration_id=integration_id)
        .first()
    )
    if session is None:
        message = f"Customer session {integration_id} not found"
        raise NotFound(message, details=[ErrorDetail(NotFound.title, message, pointer="/customerSessionId")])
    return SessionResult(session=session, items=cart_items(session), profile=session.profile)
