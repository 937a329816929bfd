"""The back office's home page: what a marketer checks daily, for one environment (Live unless the switch
says otherwise). Unfold calls ``dashboard_callback`` (settings.UNFOLD["DASHBOARD_CALLBACK"]) before it
renders ``home/dashboard.html``.

Every figure is one indexed query, so the page stays fast at millions of customers and orders:
customers by ``profile_env_created_id`` (an index-only count), orders of the last 30 days by
``session_app_state_closed`` (a range of it per shop), promo codes by the group index and the partial index
of active codes. Mailings and imports are small tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest
from django.urls import reverse

from patronage.core import clock
from patronage.core.money import format_money
from patronage.customer_sessions.models import ORDER_STATES, CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.dataio.models import ImportJob
from patronage.mailings.models import Mailing
from patronage.promocodes.models import PromoCodeGroup
from patronage.promocodes.selectors import with_counts
from patronage.workspace.models import Application, Environment
from patronage.workspace.services import environments_ensure

DAYS = 30
# A group runs low when fewer than this share of its codes are still active (not issued to anyone).
LOW_SHARE = Decimal("0.10")


@dataclass
class Day:
    date: dt.date
    orders: int = 0
    sales: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class Link:
    label: str
    url: str
    note: str = ""


@dataclass
class Dashboard:
    environment: Environment
    since: dt.datetime
    customers: int
    new_customers: int
    orders: int
    sales: list[str]  # one formatted total per currency of the environment's shops, e.g. "EUR 1,154.55"
    days: list[Day]
    mailings: list[Link]
    imports: list[Link]
    low_groups: list[Link]


def _orders(
    environment: Environment, since: dt.datetime, today: dt.date
) -> tuple[list[Day], dict[str, Decimal]]:
    shops = dict(Application.objects.filter(environment=environment).values_list("pk", "currency"))
    days = {today - dt.timedelta(days=n): Day(today - dt.timedelta(days=n)) for n in range(DAYS - 1, -1, -1)}
    totals: dict[str, Decimal] = {}
    if not shops:
        return list(days.values()), totals
    rows = (
        CustomerSession.objects.filter(
            application_id__in=list(shops), state__in=list(ORDER_STATES), closed_at__gte=since
        )
        .annotate(day=TruncDate("closed_at"))
        .values("application_id", "day")
        .annotate(n=Count("id"), amount=Sum(F("total") - F("returned_total")))
        .order_by()
    )
    for row in rows:
        day = days.get(row["day"])
        if day is None:
            continue
        currency = shops[row["application_id"]]
        day.orders += row["n"]
        day.sales[currency] = day.sales.get(currency, Decimal(0)) + (row["amount"] or 0)
        totals[currency] = totals.get(currency, Decimal(0)) + (row["amount"] or 0)
    return list(days.values()), totals


def _low_groups(environment: Environment) -> list[Link]:
    # The counts the promo-code list shows (promocodes.selectors.with_counts), only for groups running low.
    groups = (
        with_counts(PromoCodeGroup.objects.filter(environment=environment))
        .filter(total__gt=0, active__lt=LOW_SHARE * F("total"))  # type: ignore[misc]
        .order_by("name")
    )
    low = []
    for group in groups:
        total, active = group.total, group.active  # type: ignore[attr-defined]
        low.append(
            Link(
                group.name,
                reverse("admin:promocodes_promocodegroup_change", args=[group.pk]),
                f"{active:,} of {total:,} codes active ({active * 100 // total}%)",
            )
        )
    return low


def dashboard(environment: Environment, now: dt.datetime | None = None) -> Dashboard:
    """The home page's figures for one environment, as of ``now`` (days are UTC days)."""
    now = now or clock.now()
    today = now.date()
    since = dt.datetime.combine(today - dt.timedelta(days=DAYS - 1), dt.time(), tzinfo=dt.UTC)
    customers = CustomerProfile.objects.filter(environment=environment)
    days, totals = _orders(environment, since, today)
    mailings = [
        Link(
            m.name,
            reverse("admin:mailings_mailing_progress", args=[m.pk]),
            f"{m.recipient_count:,} recipients",
        )
        for m in Mailing.objects.filter(environment=environment, status=Mailing.Status.SENDING).order_by(
            "-id"
        )
    ]
    imports = [
        Link(
            f"{job.filename}",
            reverse("admin:dataio_importjob_change", args=[job.pk]),
            job.get_status_display()
            + (f", {job.percent}%" if job.status == ImportJob.Status.RUNNING else ""),
        )
        for job in ImportJob.objects.filter(
            environment=environment, status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]
        ).order_by("-id")
    ]
    return Dashboard(
        environment=environment,
        since=since,
        customers=customers.count(),
        new_customers=customers.filter(created__gte=now - dt.timedelta(days=DAYS)).count(),
        orders=sum(d.orders for d in days),
        sales=[format_money(amount, currency) for currency, amount in sorted(totals.items())],
        days=days,
        mailings=mailings,
        imports=imports,
        low_groups=_low_groups(environment),
    )


# --- the chart -------------------------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 600, 120, 2


def chart_bars(days: list[Day]) -> list[dict[str, Any]]:
    """Bars of an inline SVG chart (no script, no CDN): orders per day, each with its own tooltip."""
    most = max((d.orders for d in days), default=0) or 1
    width = CHART_WIDTH / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        height = round(day.orders * (CHART_HEIGHT - 4) / most, 1) if day.orders else 0
        sales = ", ".join(format_money(amount, currency) for currency, amount in sorted(day.sales.items()))
        bars.append(
            {
                "x": round(i * width + BAR_GAP / 2, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "width": round(width - BAR_GAP, 1),
                "height": height,
                "title": f"{day.date:%Y-%m-%d}: {day.orders:,} order{'s' if day.orders != 1 else ''}"
                + (f", {sales}" if sales else ""),
            }
        )
    return bars


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    environments_ensure()
    environments = list(Environment.objects.order_by("-slug"))  # live, sandbox
    chosen = request.GET.get("environment") or Environment.LIVE
    environment = next((e for e in environments if e.slug == chosen), None) or next(
        e for e in environments if e.slug == Environment.LIVE
    )
    figures = dashboard(environment)
    context.update(
        {
            "dashboard": figures,
            "environments": environments,
            "chart": {"width": CHART_WIDTH, "height": CHART_HEIGHT, "bars": chart_bars(figures.days)},
            "links": {
                "customers": reverse("admin:customers_customerprofile_changelist")
                + f"?environment={environment.slug}",
                "mailings": reverse("admin:mailings_mailing_changelist"),
                "imports": reverse("admin:dataio_importjob_changelist"),
                "groups": reverse("admin:promocodes_promocodegroup_changelist"),
            },
        }
    )
    return context
