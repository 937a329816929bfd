"""Campaign-engine objects -> Talon.One's JSON shapes (Campaign, Ruleset, CampaignEvaluationGroup, ...)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from patronage.core.money import as_json_number

from .models import Campaign, EvaluationGroup, Ruleset

# Talon.One responses name a user; changes made by the system (or a deleted user) show as 0.
SYSTEM_USER = 0


def _number(value: Any) -> float | int:
    return as_json_number(Decimal(str(value)))


def limits_json(limits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "action": limit["action"],
            "limit": _number(limit["limit"]),
            "entities": list(limit.get("entities") or []),
            **({"period": limit["period"]} if limit.get("period") else {}),
        }
        for limit in limits or []
    ]


def campaign_json(campaign: Campaign, *, budgets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": campaign.pk,
        "created": campaign.created,
        "applicationId": campaign.application_id,
        "userId": campaign.created_by_id or SYSTEM_USER,
        "name": campaign.name,
        "description": campaign.description,
        "attributes": campaign.attributes,
        "state": campaign.state,
        "tags": campaign.tags,
        "features": campaign.features,
        "limits": limits_json(campaign.limits),
        "campaignGroups": [],
        "type": campaign.type,
        "linkedStoreIds": [int(s) for s in campaign.linked_stores if str(s).isdigit()],
        "frontendState": campaign.frontend_state(),
        "storesImported": False,
        "updated": campaign.updated,
        "evaluationGroupId": campaign.evaluation_group_id,
    }
    if campaign.start_time is not None:
        shown["startTime"] = campaign.start_time
    if campaign.end_time is not None:
        shown["endTime"] = campaign.end_time
    if campaign.active_ruleset_id is not None:
        shown["activeRulesetId"] = campaign.active_ruleset_id
    if budgets is not None:
        shown["budgets"] = budgets
    return shown


def ruleset_json(ruleset: Ruleset) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": ruleset.pk,
        "created": ruleset.created,
        "userId": ruleset.user_id or SYSTEM_USER,
        "rules": ruleset.rules,
        "bindings": ruleset.bindings,
        "campaignId": ruleset.campaign_id,
        "activate": ruleset.activated_at is not None,
    }
    if ruleset.activated_at is not None:
        shown["activatedAt"] = ruleset.activated_at
    return shown


def evaluation_group_json(group: EvaluationGroup) -> dict[str, Any]:
    return {
        "id": group.pk,
        "applicationId": group.application_id,
        "name": group.name,
        "parentId": group.parent_id or 0,
        "description": group.description,
        "evaluationMode": group.mode,
        "evaluationScope": group.scope,
        "locked": group.locked,
    }
