"""The public unsubscribe page: ``/unsubscribe/<token>/``, no sign-in.

- ``GET`` (a person following the link in a message) withdraws the customer's marketing consent at once and
  shows a page saying so, with a button to undo.
- ``POST`` (RFC 8058 one-click: the mailbox provider posts ``List-Unsubscribe=One-Click``) withdraws it too.
  It comes from another site without a CSRF token, so the view is exempt; the signed token is the proof.
- ``POST .../undo/`` (the page's button, CSRF-protected) grants consent again.

Every change is recorded in the customer's consent history ("Unsubscribe link"). A token that was changed
or not made here gets a friendly 400 page; one for a customer who no longer exists a 404 page.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from patronage.core.errors import NotFound
from patronage.customers.consent import ConsentActor, consent_set
from patronage.customers.models import CustomerProfile

from .selectors import unsubscribe_names
from .unsubscribe import PREVIEW_TOKEN, Unsubscribe, token_read


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, f"unsubscribe/{template}", context, status=status)
    # Personal: never kept by a shared browser cache or a proxy.
    add_never_cache_headers(response)
    # The token stays out of other sites' logs; same-origin (not no-referrer) so the undo form's Origin
    # header is sent and passes the CSRF check.
    response["Referrer-Policy"] = "same-origin"
    return response


def _resolve(request: HttpRequest, token: str) -> tuple[Unsubscribe | None, HttpResponse | None]:
    if token == PREVIEW_TOKEN:
        return None, _page(request, "preview.html", {})
    found = token_read(token)
    if found is None:
        return None, _page(request, "invalid.html", {}, status=400)
    exists = CustomerProfile.objects.filter(pk=found.profile_id, environment_id=found.environment_id).exists()
    if not exists:
        return None, _page(request, "gone.html", {"brand": unsubscribe_names(found).brand}, status=404)
    return found, None


def _set(request: HttpRequest, token: str, found: Unsubscribe, *, accepts: bool) -> HttpResponse:
    names = unsubscribe_names(found)
    actor = (
        ConsentActor.link(names.mailing)
        if not accepts
        else ConsentActor(ConsentActor.link().source, detail="undone on the unsubscribe page")
    )
    try:
        profile = consent_set(profile_id=found.profile_id, accepts=accepts, actor=actor)
    except NotFound:
        return _page(request, "gone.html", {"brand": names.brand}, status=404)
    context = {
        "brand": names.brand,
        "email": profile.email or "",
        "subscribed": profile.accepts_marketing,
        "undo_url": reverse("unsubscribe_undo", args=[token]),
        "unsubscribe_url": reverse("unsubscribe", args=[token]),
    }
    return _page(request, "done.html", context)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    found, refused = _resolve(request, token)
    if refused is not None or found is None:
        return refused or HttpResponse(status=400)
    if request.method == "HEAD":
        # Link checkers probe with HEAD: that is not someone asking to leave.
        return HttpResponse(content_type="text/html; charset=utf-8")
    return _set(request, token, found, accepts=False)


@require_POST
def undo(request: HttpRequest, token: str) -> HttpResponse:
    found, refused = _resolve(request, token)
    if refused is not None or found is None:
        return refused or HttpResponse(status=400)
    return _set(request, token, found, accepts=True)


# Mounted at /unsubscribe/ by patronage/urls.py.
urlpatterns = [
    path("<str:token>/", unsubscribe, name="unsubscribe"),
    path("<str:token>/undo/", undo, name="unsubscribe_undo"),
]
