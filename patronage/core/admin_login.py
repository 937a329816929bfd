"""The back-office sign-in, throttled like the customer panel's (``core.throttle``).

``LoginForm`` is the admin site's login form (``UNFOLD["LOGIN"]["form"]`` in settings); ``login`` serves
``/admin/login/`` through the site's own view and answers 429 when the attempt was refused.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from unfold.forms import AuthenticationForm

from .throttle import SignInThrottle, TooManyAttempts, client_address

_sign_in = SignInThrottle.named("admin")


class LoginForm(AuthenticationForm):
    """Counts each attempt before the password is checked; refuses them for a while after repeated failures.

    The refusal reads the same whether the username exists or not, and checks no password.
    """

    throttled = False

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()  # Django's own "this field is required"
        address = client_address(self.request) if self.request is not None else ""
        try:
            _sign_in.attempt(account=username, address=address)
        except TooManyAttempts as exc:
            self.throttled = True
            raise ValidationError(exc.message, code="too_many_attempts") from exc
        cleaned = super().clean()  # raises for a wrong password, an inactive or a non-staff account
        _sign_in.succeeded(account=username, address=address)
        return cleaned


def login(request: HttpRequest) -> HttpResponse:
    response = admin.site.login(request)
    context = getattr(response, "context_data", None) or {}
    if getattr(context.get("form"), "throttled", False):
        response.status_code = 429
    return response
