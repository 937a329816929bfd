"""Admin pages whose saves go through services: what a form could not foresee (a code or name another
staff member took a moment ago) comes back as a ``DomainError``. The admin's transaction was rolled back,
nothing was saved; the page says why, in the service's words, and shows the form again."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from .errors import DomainError


class DomainErrorsAsMessages:
    """Mix into a ``ModelAdmin`` (before it)."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc,no-any-return]
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)  # type: ignore[attr-defined]
            return HttpResponseRedirect(request.get_full_path())
