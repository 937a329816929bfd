"""The campaign engine's part of the customer page, added through the customers app's hooks (it cannot
import this app): the customer's figures at the top (``PROFILE_FIGURES``) and an Events tab
(``PROFILE_TABS``) with the customer's last events."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest

from patronage.core.money import format_total
from patronage.customer_sessions.models import Event
from patronage.customers.admin import PROFILE_FIGURES, PROFILE_TABS, DrawnProfileTab, FigureTable
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application

from .figures import Figures, customer_figures
from .models import EffectRecord

COLUMNS = ["Application", "Discounted orders", "Undiscounted orders", "Accrued discounts", "Net revenue"]
EVENTS_SHOWN = 50
ATTRIBUTES_SHOWN = 200  # characters of an event's attributes in the tab


def _row(name: str, figures: Figures, currencies: list[str]) -> list[str]:
    return [
        name,
        f"{figures.discounted_orders:,}",
        f"{figures.undiscounted_orders:,}",
        format_total(figures.discounts, currencies),  # one currency: that currency's amount
        format_total(figures.net_revenue, currencies),
    ]


def figures_table(profile: CustomerProfile) -> FigureTable:
    """Seed 004's figures, per application (in its currency) and, for more than one, in total."""
    figures = customer_figures(profile)
    rows = [_row(f.name, f, [f.currency]) for f in figures.applications]
    total = _row("Total", figures.total, figures.currencies) if len(rows) > 1 else None
    return FigureTable("Orders and discounts", COLUMNS, rows, total=total, empty="No orders yet.")


PROFILE_FIGURES.append(figures_table)


class CustomerEventsTab(DrawnProfileTab):
    """Read-only: the customer's last events (tracked by the shop or made by their sessions), newest first.

    An inline needs a model related to the customer; events name theirs by integration ID, so the tab
    stands on the effect ledger's relation and draws the events itself (``DrawnProfileTab``).
    """

    model = EffectRecord
    verbose_name = "event"
    verbose_name_plural = "Events"
    template = "admin/campaigns/customer_events_tab.html"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("customer_sessions.view_event"))

    def tab_rows(self, profile: CustomerProfile) -> list[dict[str, Any]]:
        events = (
            Event.objects.filter(
                application__in=Application.objects.filter(environment_id=profile.environment_id),
                profile_integration_id=profile.integration_id,
            )
            .select_related("application")
            .order_by("-created", "-id")[:EVENTS_SHOWN]
        )
        return [
            {
                "type": event.type,
                "application": event.application.name,
                "created": event.created,
                "effects": len(event.effects),
                "attributes": _shortened(json.dumps(event.attributes, ensure_ascii=False, sort_keys=True)),
            }
            for event in events
        ]


def _shortened(text: str) -> str:
    return text if len(text) <= ATTRIBUTES_SHOWN else text[: ATTRIBUTES_SHOWN - 1] + "…"


PROFILE_TABS.append(CustomerEventsTab)
