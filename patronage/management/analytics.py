"""Management API for a customer's figures in one application, at Talon.One's path and in its shape
(``get_customer_analytics`` -> ``CustomerAnalytics``). Mounted by ``patronage.management.api`` under
/applications: ``/v1/applications/{applicationId}/customers/{customerId}/analytics`` of Talon.One is
``/api/v1/applications/{id}/customers/{id}/analytics`` here. The figures are derived from the orders and
the effect ledger (``patronage.campaigns.figures``)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from patronage.campaigns.figures import customer_figures
from patronage.core.errors import ErrorDetail, NotFound
from patronage.core.money import as_json_number, round_money
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application

from .access import management_auth, require

router = Router(auth=management_auth, tags=["Customers"])


class CustomerAnalytics(Schema):
    acceptedCoupons: int
    createdCoupons: int
    freeItems: int
    totalOrders: int
    totalDiscountedOrders: int
    totalRevenue: float
    totalDiscounts: float


def _not_found(message: str, parameter: str) -> NotFound:
    return NotFound(message, details=[ErrorDetail(NotFound.title, message, pointer=f"query:{parameter}")])


@router.get(
    "/{int:application_id}/customers/{int:customer_id}/analytics",
    response=CustomerAnalytics,
    summary="Get a customer's analytics in an application",
)
def get_customer_analytics(request: HttpRequest, application_id: int, customer_id: int) -> dict[str, object]:
    require(request, "customers.view_customerprofile")
    application = Application.objects.filter(pk=application_id).first()
    if application is None:
        raise _not_found(f"Application {application_id} not found", "applicationId")
    # Customers belong to an environment: another environment's customer is not this application's.
    profile = CustomerProfile.objects.filter(
        pk=customer_id, environment_id=application.environment_id
    ).first()
    if profile is None:
        raise _not_found(f"Customer {customer_id} not found in {application.name}", "customerId")
    figures = customer_figures(profile, application=application).total
    return {
        "acceptedCoupons": figures.accepted_coupons,
        "createdCoupons": figures.created_coupons,
        "freeItems": figures.free_items,
        "totalOrders": figures.orders,
        "totalDiscountedOrders": figures.discounted_orders,
        "totalRevenue": as_json_number(round_money(figures.revenue, application.currency)),
        "totalDiscounts": as_json_number(round_money(figures.discounts, application.currency)),
    }
