"""The "My offers" page: what the signed-in customer sees in this shop, their favourites and claims.

Which offers are shown is decided by offers.selectors.offers_visible alone; the actions go through
offers.services, which refuse an offer the customer cannot see (hidden, ended, unknown) with NotFound.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from patronage.core.errors import NotFound
from patronage.customers.models import CustomerProfile
from patronage.offers.models import Offer
from patronage.offers.selectors import offers_visible_with_marks
from patronage.offers.services import offer_claim, offer_favourite_set
from patronage.workspace.models import Application

from .views import _render, customer_page

FAVOURITES = "favourites"
GONE = "This offer is no longer available to you."


def _list_url(shop: Application, *, show: str = "", offer_id: int | None = None) -> str:
    url = reverse("panel:offers", kwargs={"shop": shop.slug})
    if show == FAVOURITES:
        url += f"?show={FAVOURITES}"
    # Back at the card that was tapped: on a phone the list is long and the top is far away.
    return url + (f"#offer-{offer_id}" if offer_id else "")


def _offer_name(offer_id: int) -> str:
    return Offer.objects.filter(pk=offer_id).values_list("name", flat=True).first() or "The offer"


@customer_page
def offer_list(request: HttpRequest, shop: Application, customer: CustomerProfile) -> HttpResponse:
    show = FAVOURITES if request.GET.get("show") == FAVOURITES else ""
    offers = list(offers_visible_with_marks(application=shop, profile=customer))
    favourites = [offer for offer in offers if offer.is_favourite]  # type: ignore[attr-defined]
    context = {
        "offers": favourites if show == FAVOURITES else offers,
        "show": show,
        "all_count": len(offers),
        "favourite_count": len(favourites),
    }
    return _render(request, shop, "panel/offers.html", context, customer=customer, current="panel:offers")


@customer_page
def favourite_set(
    request: HttpRequest, shop: Application, customer: CustomerProfile, offer_id: int
) -> HttpResponse:
    # A GET lands here only after signing in again from a form posted by an expired session.
    if request.method != "POST":
        return redirect(_list_url(shop))
    show = request.POST.get("show", "")
    favourite = request.POST.get("favourite") == "1"
    try:
        offer_favourite_set(offer_id=offer_id, profile=customer, application=shop, favourite=favourite)
    except NotFound:
        messages.error(request, GONE)
        return redirect(_list_url(shop, show=show))
    name = _offer_name(offer_id)
    if favourite:
        messages.success(request, f"“{name}” is now in your favourites.")
    else:
        messages.success(request, f"“{name}” is no longer in your favourites.")
    return redirect(_list_url(shop, show=show, offer_id=None if show and not favourite else offer_id))


@customer_page
def claim(request: HttpRequest, shop: Application, customer: CustomerProfile, offer_id: int) -> HttpResponse:
    if request.method != "POST":  # as in favourite_set
        return redirect(_list_url(shop))
    show = request.POST.get("show", "")
    try:
        taken = offer_claim(offer_id=offer_id, profile=customer, application=shop)
    except NotFound:
        messages.error(request, GONE)
        return redirect(_list_url(shop, show=show))
    messages.success(request, f"You claimed “{taken.offer.name}”.")
    return redirect(_list_url(shop, show=show, offer_id=offer_id))
