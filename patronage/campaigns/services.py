"""Writes to campaigns, rulesets, evaluation groups and webhooks (staff in the back office, scripts on the
Management API). Every write bumps the application's ``rules_version`` in the same transaction, so every
server process recompiles before its next request (see ``plan``)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from patronage.core import clock
from patronage.core.errors import ErrorCollector, ErrorDetail, NotFound, ValidationFailed
from patronage.workspace.models import Application

from .models import (
    FEATURES,
    Campaign,
    CampaignState,
    CampaignType,
    EvaluationGroup,
    EvaluationMode,
    EvaluationScope,
    Ruleset,
    Webhook,
)
from .plan import base_group, touch
from .registry import BUDGET_ACTIONS, ENTITIES
from .talang import compile_ruleset

PERIODS = ("daily", "weekly", "monthly", "yearly")
UNSET: Any = object()


@dataclass
class CampaignInput:
    """A campaign's settings; on update, fields left ``UNSET`` keep their value."""

    name: Any = UNSET
    description: Any = UNSET
    state: Any = UNSET
    start_time: Any = UNSET
    end_time: Any = UNSET
    tags: Any = UNSET
    features: Any = UNSET
    type: Any = UNSET
    linked_stores: Any = UNSET
    attributes: Any = UNSET
    limits: Any = UNSET
    evaluation_group_id: Any = UNSET
    template: Any = UNSET
    extra: dict[str, Any] = field(default_factory=dict)


def limits_check(limits: Any, *, pointer: str, errors: ErrorCollector) -> list[dict[str, Any]]:
    """Talon.One's LimitConfig list, checked and normalized."""
    if not isinstance(limits, list):
        errors.add("Budgets are a list of {action, limit, entities, period}", pointer=pointer)
        return []
    out = []
    for i, limit in enumerate(limits):
        here = f"{pointer}/{i}"
        if not isinstance(limit, dict):
            errors.add("A budget is {action, limit, entities, period}", pointer=here)
            continue
        action = limit.get("action")
        if action not in BUDGET_ACTIONS:
            errors.add(
                f"Unknown budget action {action!r}; one of {', '.join(BUDGET_ACTIONS)}",
                pointer=f"{here}/action",
            )
            continue
        try:
            amount = Decimal(str(limit.get("limit")))
            if not amount.is_finite() or amount < 0:
                raise InvalidOperation
        except InvalidOperation:
            errors.add("The limit is a number, 0 or more", pointer=f"{here}/limit")
            continue
        entities = limit.get("entities") or []
        unknown = [e for e in entities if e not in ENTITIES]
        if not isinstance(entities, list) or unknown:
            errors.add(
                f"Unknown budget scope {unknown[0] if unknown else entities!r}; use {', '.join(ENTITIES)}",
                pointer=f"{here}/entities",
            )
            continue
        period = limit.get("period") or ""
        if period and period not in PERIODS:
            errors.add(
                f"A budget resets daily, weekly, monthly or yearly, not {period!r}", pointer=f"{here}/period"
            )
            continue
        normalized = {"action": action, "limit": str(amount), "entities": sorted(set(entities))}
        if period:
            normalized["period"] = period
        out.append(normalized)
    return out


def _check(
    application: Application, data: CampaignInput, campaign: Campaign | None, errors: ErrorCollector
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if data.name is not UNSET:
        name = (data.name or "").strip()
        if not name:
            errors.add("Give the campaign a name", pointer="/name")
        elif len(name) > 200:
            errors.add("A campaign name has at most 200 characters", pointer="/name")
        elif (
            Campaign.objects.filter(application=application, name=name, deleted_at=None)
            .exclude(pk=campaign.pk if campaign else 0)
            .exists()
        ):
            errors.add(f"{application.name} already has a campaign named {name!r}", pointer="/name")
        values["name"] = name
    if data.state is not UNSET:
        if data.state not in CampaignState.values:
            errors.add("The state is enabled, disabled or archived", pointer="/state")
        values["state"] = data.state
    if data.type is not UNSET:
        if data.type not in CampaignType.values:
            errors.add("The type is advanced or cartItem", pointer="/type")
        values["type"] = data.type
    if data.features is not UNSET:
        unknown = [f for f in data.features or [] if f not in FEATURES]
        if unknown:
            errors.add(f"Unknown feature {unknown[0]!r}; one of {', '.join(FEATURES)}", pointer="/features")
        values["features"] = list(dict.fromkeys(data.features or []))
    for name in ("description", "tags", "attributes"):
        value = getattr(data, name)
        if value is not UNSET:
            values[name] = (
                value if value is not None else {"description": "", "tags": [], "attributes": {}}[name]
            )
    if data.linked_stores is not UNSET:
        values["linked_stores"] = [str(s) for s in data.linked_stores or []]
    if data.template is not UNSET:
        values["template"] = data.template or ""
    for name in ("start_time", "end_time"):
        value = getattr(data, name)
        if value is not UNSET:
            if value is not None and value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            values[name] = value
    start = values.get("start_time", campaign.start_time if campaign else None)
    end = values.get("end_time", campaign.end_time if campaign else None)
    if start and end and end <= start:
        errors.add("The campaign must end after it starts", pointer="/endTime")
    if data.limits is not UNSET:
        values["limits"] = limits_check(data.limits or [], pointer="/limits", errors=errors)
    if data.evaluation_group_id is not UNSET and data.evaluation_group_id is not None:
        group = EvaluationGroup.objects.filter(application=application, pk=data.evaluation_group_id).first()
        if group is None:
            errors.add(
                f"{application.name} has no evaluation group {data.evaluation_group_id}",
                pointer="/evaluationGroupId",
            )
        values["evaluation_group"] = group
    return values


def _next_position(**filters: Any) -> int:
    campaigns = Campaign.objects.filter(deleted_at=None, **filters).aggregate(m=Max("position"))["m"] or 0
    groups = (
        EvaluationGroup.objects.filter(parent_id=filters.get("evaluation_group_id")).aggregate(
            m=Max("position")
        )["m"]
        or 0
    )
    return max(campaigns, groups) + 1


@transaction.atomic
def campaign_create(*, application: Application, data: CampaignInput, user: Any = None) -> Campaign:
    errors = ErrorCollector()
    if data.name is UNSET:
        data.name = ""
    values = _check(application, data, None, errors)
    errors.raise_if_any()
    group = values.pop("evaluation_group", None) or base_group(application)
    now = clock.now()
    campaign = Campaign(
        application=application,
        evaluation_group=group,
        position=_next_position(evaluation_group_id=group.pk),
        created=now,
        updated=now,
        created_by=user,
        updated_by=user,
        **values,
    )
    try:
        with transaction.atomic():
            campaign.save()
    except IntegrityError as exc:  # lost a race for the name
        raise ValidationFailed(
            f"{application.name} already has a campaign named {campaign.name!r}",
            details=[ErrorDetail(ValidationFailed.title, "The name is taken", pointer="/name")],
        ) from exc
    touch(application.pk)
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, data: CampaignInput, user: Any = None) -> Campaign:
    errors = ErrorCollector()
    values = _check(campaign.application, data, campaign, errors)
    errors.raise_if_any()
    group = values.pop("evaluation_group", None)
    if group is not None and group.pk != campaign.evaluation_group_id:
        campaign.evaluation_group = group
        campaign.position = _next_position(evaluation_group_id=group.pk)
    for name, value in values.items():
        setattr(campaign, name, value)
    campaign.updated, campaign.updated_by = clock.now(), user
    campaign.save()
    touch(campaign.application_id)
    return campaign


@transaction.atomic
def campaign_delete(*, campaign: Campaign) -> None:
    """The campaign leaves every list, the API and evaluation; its row stays for the ledger's history."""
    campaign.deleted_at = clock.now()
    campaign.state = CampaignState.ARCHIVED
    campaign.save(update_fields=["deleted_at", "state"])
    touch(campaign.application_id)


@transaction.atomic
def ruleset_create(
    *, campaign: Campaign, rules: Any, bindings: Any = None, activate: bool = True, user: Any = None
) -> Ruleset:
    """A new version of the campaign's rules; checked (a 400 pointing into the rules when wrong) and, with
    ``activate``, made the one the campaign runs."""
    compile_ruleset(rules, bindings or [])
    version = (campaign.rulesets.aggregate(m=Max("version"))["m"] or 0) + 1
    now = clock.now()
    ruleset = Ruleset.objects.create(
        campaign=campaign,
        version=version,
        rules=rules,
        bindings=bindings or [],
        user=user,
        created=now,
        activated_at=now if activate else None,
    )
    if activate:
        campaign.active_ruleset = ruleset
        campaign.updated, campaign.updated_by = now, user
        campaign.save(update_fields=["active_ruleset", "updated", "updated_by"])
    touch(campaign.application_id)
    return ruleset


# ---- evaluation groups ---------------------------------------------------------------------------------


def _group_check(
    application: Application,
    *,
    name: Any,
    parent_id: Any,
    mode: Any,
    scope: Any,
    group: EvaluationGroup | None,
) -> EvaluationGroup | None:
    errors = ErrorCollector()
    if not isinstance(name, str) or not name.strip():
        errors.add("Give the group a name", pointer="/name")
    if mode not in EvaluationMode.values:
        errors.add(
            "The mode is stackable, listOrder, lowestDiscount or highestDiscount", pointer="/evaluationMode"
        )
    if scope not in EvaluationScope.values:
        errors.add("The scope is session or cartItem", pointer="/evaluationScope")
    parent = EvaluationGroup.objects.filter(application=application, pk=parent_id).first()
    if parent is None:
        errors.add(f"{application.name} has no evaluation group {parent_id}", pointer="/parentId")
    else:
        depth, node = 1, parent
        while node.parent_id is not None:
            depth, node = depth + 1, node.parent  # type: ignore[assignment]
            if group is not None and node.pk == group.pk:
                errors.add("A group cannot sit inside itself", pointer="/parentId")
                break
        if depth > EvaluationGroup.MAX_DEPTH:
            errors.add("Groups nest at most two levels below the base group", pointer="/parentId")
        if group is not None and parent.pk == group.pk:
            errors.add("A group cannot sit inside itself", pointer="/parentId")
    errors.raise_if_any()
    return parent


@transaction.atomic
def evaluation_group_create(
    *,
    application: Application,
    name: str,
    parent_id: int | None = None,
    mode: str = "stackable",
    scope: str = "session",
    description: str = "",
    locked: bool = False,
) -> EvaluationGroup:
    base = base_group(application)
    parent = _group_check(
        application, name=name, parent_id=parent_id or base.pk, mode=mode, scope=scope, group=None
    )
    assert parent is not None
    group = EvaluationGroup.objects.create(
        application=application,
        name=name.strip(),
        parent=parent,
        mode=mode,
        scope=scope,
        description=description or "",
        locked=locked,
        position=_next_position(evaluation_group_id=parent.pk),
    )
    touch(application.pk)
    return group


@transaction.atomic
def evaluation_group_update(
    *,
    group: EvaluationGroup,
    name: str,
    parent_id: int | None,
    mode: str,
    scope: str,
    description: str = "",
    locked: bool = False,
) -> EvaluationGroup:
    if group.is_base:
        if mode not in EvaluationMode.values:
            raise ValidationFailed("The mode is stackable, listOrder, lowestDiscount or highestDiscount")
        group.name, group.mode, group.description = name or group.name, mode, description or ""
    else:
        parent = _group_check(
            group.application, name=name, parent_id=parent_id, mode=mode, scope=scope, group=group
        )
        group.name, group.parent, group.mode, group.scope = name.strip(), parent, mode, scope
        group.description, group.locked = description or "", locked
    group.save()
    touch(group.application_id)
    return group


@transaction.atomic
def evaluation_group_delete(*, group: EvaluationGroup) -> None:
    if group.is_base:
        raise ValidationFailed("The base group cannot be deleted")
    if group.children.exists() or group.campaigns.filter(deleted_at=None).exists():
        raise ValidationFailed(f"Move the campaigns and groups out of {group.name!r} before deleting it")
    group.delete()
    touch(group.application_id)


@transaction.atomic
def evaluation_order_set(
    *, application: Application, group: EvaluationGroup, children: list[tuple[str, int]]
) -> None:
    """Set the order of a group's children: ``[("campaign", id) | ("group", id), ...]`` top to bottom."""
    for position, (kind, pk) in enumerate(children, start=1):
        model = Campaign if kind == "campaign" else EvaluationGroup
        parent_field = "evaluation_group" if kind == "campaign" else "parent"
        model.objects.filter(application=application, pk=pk, **{parent_field: group}).update(
            position=position
        )
    touch(application.pk)


def campaign_of(application: Application, campaign_id: int) -> Campaign:
    campaign = Campaign.objects.filter(application=application, pk=campaign_id, deleted_at=None).first()
    if campaign is None:
        raise NotFound(
            f"Campaign {campaign_id} not found",
            details=[ErrorDetail(NotFound.title, f"Campaign {campaign_id} not found", pointer="/campaignId")],
        )
    return campaign


@transaction.atomic
def webhook_create(*, application: Application, name: str, url: str, enabled: bool = True) -> Webhook:
    return Webhook.objects.create(
        application=application, name=name, url=url, enabled=enabled, secret=secrets.token_hex(32)
    )
