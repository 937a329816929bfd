"""A customer's figures (seed 004's profile page, Talon.One's CustomerAnalytics), derived from their orders
and the effect ledger, never from a second bookkeeping: what a cancel, a return or a reopen changed in the
sessions and ledger rows is what the figures show.

- orders: the customer's sessions that count as orders (closed or partially returned);
- discounted orders: those with a discount still standing in the ledger (granted minus released > 0);
- accrued discounts: the sum of those discounts still standing;
- revenue: what the orders sold, returns deducted; net revenue: revenue minus accrued discounts;
- free items, accepted and created coupons: the ledger's records of those effects not rolled back.

Three aggregate queries whatever the number of orders (orders, standing discounts and effect counts, each
per application), and one for the applications' names and currencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Sum

from patronage.customer_sessions.models import ORDER_STATES, CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application

from .lifecycle import DISCOUNT_TYPES
from .models import EffectRecord

ZERO = Decimal("0")
COUNTED = {
    "addFreeItem": "free_items",
    "acceptCoupon": "accepted_coupons",
    "couponCreated": "created_coupons",
}


def _money() -> DecimalField:
    return DecimalField(max_digits=18, decimal_places=4)


@dataclass
class Figures:
    """One application's figures for a customer (or the total over their applications)."""

    application_id: int | None
    name: str
    currency: str
    orders: int = 0
    discounted_orders: int = 0
    revenue: Decimal = ZERO
    discounts: Decimal = ZERO
    free_items: int = 0
    accepted_coupons: int = 0
    created_coupons: int = 0

    @property
    def undiscounted_orders(self) -> int:
        return self.orders - self.discounted_orders

    @property
    def net_revenue(self) -> Decimal:
        return self.revenue - self.discounts

    def add(self, other: Figures) -> None:
        for name in SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))


SUMMED = (
    "orders",
    "discounted_orders",
    "revenue",
    "discounts",
    "free_items",
    "accepted_coupons",
    "created_coupons",
)


@dataclass
class CustomerFigures:
    applications: list[Figures] = field(default_factory=list)  # by application name
    total: Figures = field(default_factory=lambda: Figures(None, "Total", ""))

    @property
    def currencies(self) -> list[str]:
        return [f.currency for f in self.applications]


def customer_figures(profile: CustomerProfile, *, application: Application | None = None) -> CustomerFigures:
    """The customer's figures per application they have orders or ledger rows in (only ``application``'s
    when given), and their total."""
    orders = CustomerSession.objects.filter(profile=profile, state__in=ORDER_STATES)
    records = EffectRecord.objects.filter(profile=profile)
    if application is not None:
        orders, records = orders.filter(application=application), records.filter(application=application)
    found: dict[int, Figures] = {}

    def of(application_id: int) -> Figures:
        return found.setdefault(application_id, Figures(application_id, "", ""))

    for row in orders.values("application_id").annotate(
        orders=Count("pk"),
        revenue=Sum(ExpressionWrapper(F("total") - F("returned_total"), output_field=_money())),
    ):
        figures = of(row["application_id"])
        figures.orders, figures.revenue = row["orders"], row["revenue"] or ZERO
    standing = (
        EffectRecord.objects.filter(
            session__in=orders.values("pk"), effect_type__in=DISCOUNT_TYPES, amount__gt=F("released")
        )
        .values("application_id")
        .annotate(
            discounted=Count("session_id", distinct=True),
            discounts=Sum(ExpressionWrapper(F("amount") - F("released"), output_field=_money())),
        )
    )
    for row in standing:
        figures = of(row["application_id"])
        figures.discounted_orders, figures.discounts = row["discounted"], row["discounts"] or ZERO
    counted = (
        records.filter(rolled_back_at=None, effect_type__in=COUNTED)
        .values("application_id", "effect_type")
        .annotate(n=Count("pk"))
    )
    for row in counted:
        setattr(of(row["application_id"]), COUNTED[row["effect_type"]], row["n"])
    _name(found, application)
    result = CustomerFigures(
        applications=sorted(found.values(), key=lambda f: (f.name, f.application_id or 0))
    )
    for figures in result.applications:
        result.total.add(figures)
    return result


def _name(found: dict[int, Figures], application: Application | None) -> None:
    if application is not None:
        apps = {application.pk: (application.name, application.currency)}
    else:
        apps = {
            pk: (name, currency)
            for pk, name, currency in Application.objects.filter(pk__in=found).values_list(
                "pk", "name", "currency"
            )
        }
    for pk, figures in found.items():
        figures.name, figures.currency = apps.get(pk, ("", ""))
