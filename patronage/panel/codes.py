"""The "My codes" page: the signed-in customer's coupons and the promo codes our mailings sent them.

Which codes are shown is decided by ``coupons.customer_selectors.panel_codes`` alone; this view only renders.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from patronage.coupons.customer_selectors import panel_codes
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application

from .views import _render, customer_page


@customer_page
def code_list(request: HttpRequest, shop: Application, customer: CustomerProfile) -> HttpResponse:
    codes = panel_codes(application=shop, profile=customer)
    return _render(
        request, shop, "panel/codes.html", {"codes": codes}, customer=customer, current="panel:codes"
    )
