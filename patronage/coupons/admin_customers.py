"""The coupons app's part of the customer page (seed 004), added through the customers app's
``PROFILE_TABS`` hook: the Coupons, Referred customers and Sessions tabs, and the Return items page a
closed session's row links to.

Return items calls the very service the Integration API's ``POST /v2/customer_sessions/{id}/returns``
calls (``customer_sessions.services.session_return_items``) and tells, in words, what the return rolled back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse

from patronage.campaigns.models import Campaign
from patronage.core.errors import DomainError
from patronage.core.money import format_money
from patronage.customer_sessions.models import CustomerSession
from patronage.customer_sessions.services import session_return_items
from patronage.customers.admin import PROFILE_TABS, DrawnProfileTab
from patronage.customers.models import CustomerProfile

from . import customer_selectors as selectors
from .models import CouponReservation, Redemption

SESSIONS_PAGE_VAR = "sessions_page"
SESSIONS_STATE_VAR = "sessions_state"
SESSIONS_PER_PAGE = 20
RETURN_PERMISSION = "customer_sessions.change_customersession"
STATE_LABELS = dict(selectors.SESSION_STATES)


def _prefixed(formset: Any, prefix: str) -> Any:
    """The formset class with its own prefix: the tab's anchor (``#coupons``) and no clash with the other
    tabs drawn on the same model (the Orders tab is on sessions too)."""
    return type(formset.__name__, (formset,), {"get_default_prefix": classmethod(lambda cls: prefix)})


def coupon_edit_url(coupon_id: int) -> str:
    try:
        return reverse("admin:coupons_coupon_change", args=[coupon_id])
    except NoReverseMatch:  # the coupon admin is not installed
        return ""


def session_url(session_id: int) -> str:
    return reverse("admin:customer_sessions_customersession_change", args=[session_id])


def return_url(session_id: int) -> str:
    return reverse("customer_session_return", args=[session_id])


# --- Coupons ------------------------------------------------------------------------------------------------


class CustomerCouponsTab(DrawnProfileTab):
    """Read-only: the customer's personal, reserved and redeemed coupons, newest first."""

    model = CouponReservation
    verbose_name = "coupon"
    verbose_name_plural = "Coupons"
    template = "admin/coupons/customer_coupons_tab.html"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("coupons.view_coupon"))

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        return _prefixed(super().get_formset(request, obj, **kwargs), "coupons")

    def tab_rows(self, profile: CustomerProfile) -> list[dict[str, Any]]:
        return [
            {
                "row": row,
                "campaign_url": reverse("admin:campaigns_campaign_change", args=[row.coupon.campaign_id]),
                "edit_url": coupon_edit_url(row.coupon.pk),
                "sessions": [(link, session_url(link.pk)) for link in row.sessions],
            }
            for row in selectors.customer_coupons(profile)
        ]


# --- Referred customers -------------------------------------------------------------------------------------


class ReferredCustomersTab(DrawnProfileTab):
    """Read-only: the friends who used this customer's referral codes, newest first."""

    model = Redemption
    verbose_name = "referred customer"
    verbose_name_plural = "Referred customers"
    template = "admin/coupons/customer_referred_tab.html"
    SHOWN = 200

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("coupons.view_referral"))

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        return _prefixed(super().get_formset(request, obj, **kwargs), "referred-customers")

    def tab_rows(self, profile: CustomerProfile) -> list[dict[str, Any]]:
        rows = []
        for redemption in selectors.referred_customers(profile)[: self.SHOWN]:
            friend = redemption.profile
            rows.append(
                {
                    "redemption": redemption,
                    "session_url": session_url(redemption.session_id),
                    "friend": friend.integration_id if friend else redemption.session.profile_integration_id,
                    "friend_url": (
                        reverse("admin:customers_customerprofile_change", args=[friend.pk]) if friend else ""
                    ),
                }
            )
        return rows


# --- Sessions -----------------------------------------------------------------------------------------------


class CustomerSessionsTab(DrawnProfileTab):
    """Every session of the customer, newest first, paginated and filtered by state, with a Return items
    action on orders."""

    model = CustomerSession
    verbose_name = "session"
    verbose_name_plural = "Sessions"
    template = "admin/coupons/customer_sessions_tab.html"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("customer_sessions.view_customersession"))

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = _prefixed(super().get_formset(request, obj, **kwargs), "customer-sessions")
        if obj is not None:
            state = request.GET.get(SESSIONS_STATE_VAR, "")
            if state not in dict(selectors.SESSION_STATES):
                state = ""
            page = selectors.customer_sessions_page(
                obj, page=request.GET.get(SESSIONS_PAGE_VAR, 1), per_page=SESSIONS_PER_PAGE, state=state
            )
            can_return = request.user.has_perm(RETURN_PERMISSION)
            formset.tab_rows = [
                {
                    "session": session,
                    "url": session_url(session.pk),
                    "return_url": (
                        return_url(session.pk) if can_return and session.state in selectors.RETURNABLE else ""
                    ),
                    "items": session.units - session.returned_units,  # type: ignore[attr-defined]
                    "state": STATE_LABELS.get(session.state, session.state),
                }
                for session in page.object_list
            ]
            formset.sessions_page = page
            formset.sessions_state = state
            formset.sessions_states = [
                (value, label, _query(request, **{SESSIONS_STATE_VAR: value, SESSIONS_PAGE_VAR: ""}))
                for value, label in [("", "All"), *selectors.SESSION_STATES]
            ]
            formset.sessions_previous = (
                _query(request, **{SESSIONS_PAGE_VAR: str(page.previous_page_number())})
                if page.has_previous()
                else ""
            )
            formset.sessions_next = (
                _query(request, **{SESSIONS_PAGE_VAR: str(page.next_page_number())})
                if page.has_next()
                else ""
            )
        return formset

    def tab_rows(self, profile: CustomerProfile) -> list[Any]:
        return []  # drawn in get_formset: the page and the filter come from the request


def _query(request: HttpRequest, **changes: str) -> str:
    query = request.GET.copy()
    for name, value in changes.items():
        if value:
            query[name] = value
        else:
            query.pop(name, None)
    encoded = query.urlencode()
    return f"?{encoded}#customer-sessions" if encoded else "?#customer-sessions"


PROFILE_TABS.extend([CustomerCouponsTab, ReferredCustomersTab, CustomerSessionsTab])


# --- Return items -------------------------------------------------------------------------------------------


def _line_name(position: int, items: dict[int, Any]) -> str:
    item = items.get(position)
    label = f"line {position + 1}"
    if item is not None:
        label += f" ({item.name or item.sku})"
    return label


def effect_text(
    effect: dict[str, Any], *, campaigns: dict[int, str], items: dict[int, Any], currency: str
) -> str:
    """One rollback effect the return answered, in the words of a support agent."""
    kind, props = effect.get("effectType", ""), effect.get("props") or {}
    campaign = campaigns.get(effect.get("campaignId") or 0, "")
    text = f"{kind}: {props}"
    if kind == "rollbackDiscount":
        amount = format_money(Decimal(str(props.get("value", 0))), currency)
        where = "on the session total"
        if "cartItemPosition" in props:
            where = f"on {_line_name(int(props['cartItemPosition']), items)}"
            if "cartItemSubPosition" in props:
                where += f", unit {int(props['cartItemSubPosition']) + 1}"
        elif props.get("additionalCost"):
            where = f"on the additional cost “{props['additionalCost']}”"
        text = f"Discount “{props.get('name', '')}” of {amount} {where} rolled back."
    elif kind == "rollbackCoupon":
        text = f"Coupon {props.get('couponCode', '')} given back: it can be used again."
    elif kind == "rollbackReferral":
        text = f"Referral code {props.get('referralCode', '')} given back: it can be used again."
    elif kind == "rollbackAddedLoyaltyPoints":
        text = f"{props.get('value', '')} loyalty points the order earned taken back."
    elif kind == "rollbackDeductedLoyaltyPoints":
        text = f"{props.get('value', '')} loyalty points spent on the order given back."
    elif kind == "rollbackIncreasedAchievementProgress":
        text = f"Achievement progress of {props.get('progressTrackerDelta', '')} taken back."
    return f"Campaign “{campaign}”: {text[0].lower()}{text[1:]}" if campaign else text


def _wanted(
    request: HttpRequest, lines: list[selectors.ReturnLine]
) -> tuple[list[tuple[int, int]], list[str]]:
    """The quantities typed per line, and what is wrong with them (in words)."""
    wanted, problems = [], []
    for line in lines:
        raw = request.POST.get(f"qty-{line.item.position}", "").strip() or "0"
        try:
            quantity = int(raw)
        except ValueError:
            problems.append(f"Line {line.item.position + 1}: “{raw}” is not a whole number.")
            continue
        if quantity < 0 or quantity > line.remaining:
            problems.append(
                f"Line {line.item.position + 1} ({line.item.name or line.item.sku}): "
                f"between 0 and {line.remaining} can be returned, not {quantity}."
            )
        elif quantity:
            wanted.append((line.item.position, quantity))
    if not wanted and not problems:
        problems.append("Type how many to return on at least one line.")
    return wanted, problems


def return_items_view(request: HttpRequest, session_id: int) -> HttpResponse:
    """Step 1 (GET): the lines with a quantity each. Step 2 (POST ``review``): what will be returned, to
    confirm. Step 3 (POST ``confirm``): the return, then this page again with what it rolled back."""
    if not request.user.has_perm(RETURN_PERMISSION):
        raise PermissionDenied
    session = get_object_or_404(
        CustomerSession.objects.select_related("application", "profile"), pk=session_id
    )
    lines = selectors.returnable_lines(session)
    items = {line.item.position: line.item for line in lines}
    profile_url = (
        reverse("admin:customers_customerprofile_change", args=[session.profile_id]) + "#customer-sessions"
        if session.profile_id
        else ""
    )
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": f"Return items of session {session.integration_id}",
        "session": session,
        "session_url": session_url(session.pk),
        "profile_url": profile_url,
        "state": STATE_LABELS.get(session.state, session.state),
        "returnable": session.state in selectors.RETURNABLE,
        "lines": lines,
        "typed": {},
        "problems": [],
        "step": "choose",
    }
    if request.method == "POST" and context["returnable"]:
        wanted, problems = _wanted(request, lines)
        context["typed"] = {f"qty-{p}": q for p, q in wanted}
        if problems:
            context["problems"] = problems
        elif request.POST.get("step") == "confirm":
            return _return(request, session, wanted, items)
        else:
            context["step"] = "confirm"
            context["chosen"] = [(items[p], q) for p, q in wanted]
    currency = session.application.currency
    context["line_rows"] = [
        (line, context["typed"].get(f"qty-{line.item.position}", 0), format_money(line.item.price, currency))
        for line in context["lines"]
    ]
    return TemplateResponse(request, "admin/coupons/customer_session_return.html", context)


def _return(
    request: HttpRequest, session: CustomerSession, wanted: list[tuple[int, int]], items: dict[int, Any]
) -> HttpResponse:
    try:
        with transaction.atomic():
            result = session_return_items(
                application=session.application,
                integration_id=session.integration_id,
                returned=[(position, quantity) for position, quantity in wanted],
            )
            summary = ", ".join(f"{q} of {_line_name(p, items)}" for p, q in wanted)
            assert request.user.pk is not None  # admin_view: staff only
            LogEntry.objects.log_actions(
                user_id=request.user.pk,
                queryset=[session],
                action_flag=CHANGE,
                change_message=f"Returned {summary}",
                single_object=True,
            )
    except DomainError as error:
        for detail in error.details:
            messages.error(request, detail.details)
        return redirect(return_url(session.pk))
    campaign_ids = {e.get("campaignId") for e in result.effects if e.get("campaignId")}
    campaigns = dict(Campaign.objects.filter(pk__in=campaign_ids).values_list("pk", "name"))
    messages.success(request, f"Returned {summary} of session {session.integration_id}.")
    rollbacks = [
        effect_text(effect, campaigns=campaigns, items=items, currency=session.application.currency)
        for effect in result.effects
        if str(effect.get("effectType", "")).startswith("rollback")
    ]
    for text in rollbacks:
        messages.info(request, text)
    if not rollbacks:
        messages.info(request, "Nothing was rolled back: no discount or code depended on the returned items.")
    return redirect(return_url(session.pk))


urlpatterns: list[URLPattern] = [
    path(
        "customer_sessions/customersession/<int:session_id>/return/",
        admin.site.admin_view(return_items_view),
        name="customer_session_return",
    ),
]
