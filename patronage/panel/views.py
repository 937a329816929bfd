"""Customer-panel pages. Thin: parse the form, call customers.accounts, render or redirect."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

import phonenumbers
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from patronage.core.errors import AuthenticationFailed, NotFound, ValidationFailed
from patronage.core.throttle import client_address
from patronage.customers import accounts
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application

from . import nav
from .auth import panel_customer, panel_login, panel_logout
from .forms import (
    AccountForm,
    LoginForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
    add_domain_errors,
)

# As Django's own reset view: the token moves from the URL into the session before the form is shown,
# so it cannot leak through the Referer header or browser history once the page is open.
RESET_URL_TOKEN = "set-password"
RESET_SESSION_TOKEN = "panel:reset_token"


def _render(
    request: HttpRequest,
    shop: Application | None,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    customer: CustomerProfile | None = None,
    current: str = "",
    status: int = 200,
) -> HttpResponse:
    links = nav.links(shop_slug=shop.slug, current=current) if shop and customer else []
    response = render(
        request,
        template,
        {"shop": shop, "customer": customer, "nav_links": links, **(context or {})},
        status=status,
    )
    if customer is not None:
        # Personal data: never kept by a shared computer's browser cache or a proxy.
        add_never_cache_headers(response)
    return response


def shop_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve ``<shop>`` from the URL to its application; the panel's own 404 page when unknown."""

    @wraps(view)
    def wrapper(request: HttpRequest, shop: str, **kwargs: Any) -> HttpResponse:
        try:
            application = accounts.shop_get(shop)
        except NotFound:
            return _render(request, None, "panel/not_found.html", status=404)
        return view(request, application, **kwargs)

    return wrapper


def customer_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page for the signed-in customer; others go to the login page and come back afterwards."""

    @shop_page
    @wraps(view)
    def wrapper(request: HttpRequest, shop: Application, **kwargs: Any) -> HttpResponse:
        customer = panel_customer(request, shop.environment)
        if customer is None:
            login_url = reverse("panel:login", kwargs={"shop": shop.slug})
            return redirect(f"{login_url}?{urlencode({'next': request.get_full_path()})}")
        return view(request, shop, customer, **kwargs)

    return wrapper


def _account_url(shop: Application) -> str:
    return reverse("panel:account", kwargs={"shop": shop.slug})


def _home_url(shop: Application) -> str:
    return nav.home_url(shop_slug=shop.slug)


def _safe_next(request: HttpRequest, shop: Application) -> str:
    """Where to go after signing in: a page of this shop's panel, never an outside address."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if allowed and target.startswith(reverse("panel:index", kwargs={"shop": shop.slug})):
        return target
    return ""


def _client_ip(request: HttpRequest) -> str:
    # The direct peer, or behind PATRONAGE_PROXY_COUNT proxies the address they saw (core.throttle).
    return client_address(request)


def _display_phone(phone: str) -> str:
    if not phone:
        return ""
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        return phone


@shop_page
def index(request: HttpRequest, shop: Application) -> HttpResponse:
    if panel_customer(request, shop.environment) is not None:
        return redirect(_home_url(shop))
    return redirect("panel:login", shop=shop.slug)


@shop_page
@sensitive_post_parameters("password")
def login(request: HttpRequest, shop: Application) -> HttpResponse:
    if panel_customer(request, shop.environment) is not None:
        return redirect(_safe_next(request, shop) or _home_url(shop))
    form = LoginForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        try:
            profile = accounts.account_authenticate(
                environment=shop.environment,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                client_ip=_client_ip(request),
            )
        except AuthenticationFailed as error:
            form.add_error(None, error.message)
            form.focus_password()
            status = 429 if isinstance(error, accounts.TooManyAttempts) else 200
        else:
            panel_login(request, profile)
            return redirect(_safe_next(request, shop) or _home_url(shop))
    context = {"form": form, "next": _safe_next(request, shop)}
    return _render(request, shop, "panel/login.html", context, status=status)


@require_POST
@shop_page
def logout(request: HttpRequest, shop: Application) -> HttpResponse:
    panel_logout(request, shop.environment)
    messages.success(request, "You have signed out.")
    return redirect("panel:login", shop=shop.slug)


@shop_page
def password_reset(request: HttpRequest, shop: Application) -> HttpResponse:
    first_time = request.GET.get("first") == "1"
    form = PasswordResetForm(request.POST if request.method == "POST" else None)
    if form.is_valid():

        def link(uidb64: str, token: str) -> str:
            path = reverse(
                "panel:password_reset_confirm", kwargs={"shop": shop.slug, "uidb64": uidb64, "token": token}
            )
            return request.build_absolute_uri(path)

        accounts.password_reset_request(
            shop=shop, email=form.cleaned_data["email"], client_ip=_client_ip(request), link=link
        )
        return redirect("panel:password_reset_sent", shop=shop.slug)
    context = {"form": form, "first_time": first_time}
    return _render(request, shop, "panel/password_reset.html", context)


@shop_page
def password_reset_sent(request: HttpRequest, shop: Application) -> HttpResponse:
    return _render(request, shop, "panel/password_reset_sent.html")


@shop_page
@sensitive_post_parameters("new_password1", "new_password2")
def password_reset_confirm(request: HttpRequest, shop: Application, uidb64: str, token: str) -> HttpResponse:
    if token != RESET_URL_TOKEN:
        if accounts.password_reset_profile(environment=shop.environment, uidb64=uidb64, token=token):
            request.session[RESET_SESSION_TOKEN] = token
            return redirect(
                "panel:password_reset_confirm", shop=shop.slug, uidb64=uidb64, token=RESET_URL_TOKEN
            )
        return _render(request, shop, "panel/password_reset_invalid.html")
    profile = accounts.password_reset_profile(
        environment=shop.environment, uidb64=uidb64, token=request.session.get(RESET_SESSION_TOKEN, "")
    )
    if profile is None:
        return _render(request, shop, "panel/password_reset_invalid.html")
    form = SetPasswordForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            profile = accounts.account_set_password(
                profile=profile,
                password=form.cleaned_data["new_password1"],
                confirmation=form.cleaned_data["new_password2"],
                login=True,
            )
        except ValidationFailed as error:
            add_domain_errors(form, error)
        else:
            request.session.pop(RESET_SESSION_TOKEN, None)
            panel_login(request, profile)
            messages.success(request, "Your password is set and you are signed in.")
            return redirect(_account_url(shop))
    context = {"form": form, "first_time": not profile.password, "email": profile.email}
    return _render(request, shop, "panel/password_reset_confirm.html", context)


@customer_page
def account(request: HttpRequest, shop: Application, customer: CustomerProfile) -> HttpResponse:
    initial = {
        "name": customer.name,
        "phone": _display_phone(customer.phone),
        "accepts_marketing": customer.accepts_marketing,
    }
    form = AccountForm(request.POST if request.method == "POST" else None, initial=initial)
    if form.is_valid():
        try:
            accounts.account_update(
                profile=customer,
                name=form.cleaned_data["name"],
                phone=form.cleaned_data["phone"],
                accepts_marketing=form.cleaned_data["accepts_marketing"],
                shop_name=shop.name,
            )
        except ValidationFailed as error:
            add_domain_errors(form, error)
        else:
            messages.success(request, "Your details have been saved.")
            return redirect(_account_url(shop))
    context = {"form": form, "phone_display": _display_phone(customer.phone)}
    return _render(request, shop, "panel/account.html", context, customer=customer, current="panel:account")


@customer_page
@sensitive_post_parameters("current_password", "new_password1", "new_password2")
def password_change(request: HttpRequest, shop: Application, customer: CustomerProfile) -> HttpResponse:
    form = PasswordChangeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            profile = accounts.account_change_password(
                profile=customer,
                current_password=form.cleaned_data["current_password"],
                password=form.cleaned_data["new_password1"],
                confirmation=form.cleaned_data["new_password2"],
            )
        except ValidationFailed as error:
            add_domain_errors(form, error)
        else:
            panel_login(request, profile)
            messages.success(request, "Your password has been changed. Other devices are signed out.")
            return redirect(_account_url(shop))
    return _render(
        request,
        shop,
        "panel/password_change.html",
        {"form": form},
        customer=customer,
        current="panel:account",
    )
