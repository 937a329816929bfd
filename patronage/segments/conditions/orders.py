"""Orders: closed sessions (closed or partially returned), what they add up to, and when the last was."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from patronage.customer_sessions.models import ORDER_STATES, CustomerSession

from .. import registry
from ..fields import Column, count_q, instant_range, number_q, period_q
from ..registry import Clause, Condition, Context
from .periods import PERIOD

ORDERS = "Orders"


def _orders() -> QuerySet[CustomerSession]:
    return CustomerSession.objects.filter(state__in=list(ORDER_STATES), profile__isnull=False)


def order_count(clause: Clause, ctx: Context) -> Q:
    if not clause.params:
        # Kept on the profile by the session services: no need to count.
        return number_q(Column("closed_sessions"), clause.operator, clause.value)
    orders = _orders().filter(period_q(clause, ctx, "closed_at"))
    return count_q(orders, clause.operator, clause.value, ctx)


def last_order(clause: Clause, ctx: Context) -> Q:
    """The latest order's close time, without computing it per customer: "the last order is in [lower,
    upper)" is "some order is in [lower, upper) and none is at or after upper"."""
    mine = _orders().filter(profile=OuterRef("pk"))
    if clause.operator == "is_set":
        return Q(Exists(mine))
    lower, upper = instant_range(clause.operator, clause.value, ctx)
    some = mine.filter(closed_at__gte=lower) if lower is not None else mine
    if upper is not None:
        some = some.filter(closed_at__lt=upper)
    query = Q(Exists(some))
    if upper is not None:
        query &= ~Q(Exists(mine.filter(closed_at__gte=upper)))
    return query


def register() -> None:
    registry.register(
        Condition(
            "orders.count",
            "Number of orders",
            ORDERS,
            "count",
            order_count,
            params=PERIOD,
            help="Closed sessions; with a period, those closed in it",
        ),
        Condition(
            "orders.total_spent",
            "Total spent",
            ORDERS,
            "number",
            lambda clause, ctx: number_q(Column("total_sales"), clause.operator, clause.value),
            operators=("eq", "ne", "lt", "lte", "gt", "gte", "between"),
        ),
        Condition(
            "orders.last_order",
            "Last order",
            ORDERS,
            "instant",
            last_order,
            help="'is set': has ordered at all",
        ),
    )
