"""Reads of campaigns for the APIs and the back office: filtered lists and what their budgets have used."""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet, Sum

from patronage.core import clock
from patronage.workspace.models import Application

from .evaluation import period_key
from .models import BudgetCounter, Campaign, CampaignState


def _tag_text(term: str) -> str:
    """``term`` as it reads inside the stored JSON text of a tags list: SQLite keeps Django's ASCII-escaped
    JSON (\\u00e9), PostgreSQL's jsonb prints the characters themselves."""
    return json.dumps(term, ensure_ascii=connection.vendor != "postgresql")[1:-1]


def campaigns_of(
    application: Application, *, name: str = "", tags: str = "", state: str = ""
) -> QuerySet[Campaign]:
    """The application's campaigns (deleted ones never), matched as Talon.One's list matches them: ``name``
    and ``tags`` case-insensitively as parts of the text, either one when both are given; ``state`` is
    Talon.One's campaignState, where "enabled" covers scheduled, running and expired campaigns alike."""
    campaigns = Campaign.objects.filter(application=application, deleted_at=None)
    words = Q()
    if name:
        words |= Q(name__icontains=name)
    if tags:
        words |= Q(tags__icontains=_tag_text(tags))
    campaigns = campaigns.filter(words)
    now = clock.now()
    schedule_open = (Q(start_time=None) | Q(start_time__lte=now)) & (Q(end_time=None) | Q(end_time__gt=now))
    if state == "running":
        campaigns = campaigns.filter(schedule_open, state=CampaignState.ENABLED)
    elif state == "expired":
        campaigns = campaigns.filter(state=CampaignState.ENABLED, end_time__lte=now)
    elif state:
        campaigns = campaigns.filter(state=state)
    return campaigns


def budgets_of(campaigns: Iterable[Campaign]) -> dict[int, list[dict[str, Any]]]:
    """Talon.One's ``CampaignBudget`` list of each campaign: every campaign-wide budget (no ``entities``)
    with what it has used in its current period, in one query for all the campaigns.

    Budgets scoped by customer, coupon or store have one counter per entity, which no single figure sums
    up; Talon.One reports those elsewhere, and so do we."""
    campaigns = list(campaigns)
    wanted: dict[int, list[tuple[str, Decimal, str]]] = {}
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    now = clock.now()
    for campaign in campaigns:
        time_zone = campaign.application.time_zone
        local = now.astimezone(zones.setdefault(time_zone, zoneinfo.ZoneInfo(time_zone)))
        wanted[campaign.pk] = [
            (limit["action"], Decimal(str(limit["limit"])), period_key(limit.get("period") or "", local))
            for limit in campaign.limits or []
            if not limit.get("entities")
        ]
    keys = {(pk, action, period) for pk, budgets in wanted.items() for action, _, period in budgets}
    used: dict[tuple[int, str, str], Decimal] = {}
    if keys:
        rows = (
            BudgetCounter.objects.filter(
                campaign_id__in={k[0] for k in keys},
                action__in={k[1] for k in keys},
                period__in={k[2] for k in keys},
                entity_key="",
            )
            .order_by()
            .values_list("campaign_id", "action", "period")
            .annotate(used=Sum("counter"))
        )
        used = {(pk, action, period): total for pk, action, period, total in rows}
    return {
        pk: [
            {"action": action, "limit": limit, "counter": used.get((pk, action, period), Decimal("0"))}
            for action, limit, period in budgets
        ]
        for pk, budgets in wanted.items()
    }


def budget_usage(campaign: Campaign) -> list[dict[str, Any]]:
    """``budgets_of`` for one campaign."""
    return budgets_of([campaign])[campaign.pk]
