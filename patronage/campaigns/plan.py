"""An application's evaluation plan: its evaluation tree with every campaign's active ruleset compiled,
cached per process.

How an edit reaches every server process: each campaign, ruleset or evaluation-group write bumps
``Application.rules_version`` in its own transaction (``touch``). Every engine request reads that number
(one primary-key query) and rebuilds its process's plan when it differs, so the next request after the
edit commits uses it, in every process, with no polling and no message bus. Requests never parse JSON
rules: compiling happens once per version and process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import F

from patronage.workspace.models import Application

from .evaluation import Budget, PlanCampaign, PlanGroup
from .models import Campaign, CampaignState, EvaluationGroup
from .talang import RulesetInvalid, compile_ruleset


@dataclass
class Plan:
    version: int
    root: PlanGroup
    campaigns: dict[int, PlanCampaign] = field(default_factory=dict)
    # Loader-backed function -> every literal argument list its rules use.
    uses: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    webhook_ids: set[int] = field(default_factory=set)

    @property
    def has_budgets(self) -> bool:
        return any(c.budgets for c in self.campaigns.values())


_cache: dict[int, Plan] = {}
_lock = threading.Lock()


def touch(application_id: int) -> None:
    """Tell every process that this application's campaigns changed (call inside the writing transaction)."""
    Application.objects.filter(pk=application_id).update(rules_version=F("rules_version") + 1)


def base_group(application: Application) -> EvaluationGroup:
    """The application's base evaluation group (stackable), made on first use."""
    group, _ = EvaluationGroup.objects.get_or_create(
        application=application, parent=None, defaults={"name": "Base group"}
    )
    return group


def budgets_of(limits: Any) -> list[Budget]:
    return [
        Budget(
            action=str(limit["action"]),
            limit=Decimal(str(limit["limit"])),
            entities=tuple(limit.get("entities") or ()),
            period=str(limit.get("period") or ""),
        )
        for limit in limits or []
    ]


def build(application_id: int, version: int) -> Plan:
    groups = list(EvaluationGroup.objects.filter(application_id=application_id))
    campaigns = list(
        Campaign.objects.filter(application_id=application_id, deleted_at=None)
        .exclude(state=CampaignState.ARCHIVED)
        .select_related("active_ruleset")
    )
    nodes = {g.pk: PlanGroup(g.pk, g.name, g.mode) for g in groups}
    ordered: list[tuple[int, int, int, PlanGroup | PlanCampaign]] = []
    root = next((nodes[g.pk] for g in groups if g.parent_id is None), PlanGroup(0, "Base group", "stackable"))
    plan = Plan(version=version, root=root)
    for g in groups:
        if g.parent_id is not None and g.parent_id in nodes:
            ordered.append((g.parent_id, g.position, g.pk, nodes[g.pk]))
    for c in campaigns:
        ruleset = c.active_ruleset
        if ruleset is None:
            continue
        try:
            rules = compile_ruleset(ruleset.rules, ruleset.bindings)
        except RulesetInvalid:
            continue  # saved before a registered function went away: the campaign sits out
        group = nodes.get(c.evaluation_group_id, root)
        node = PlanCampaign(
            id=c.pk,
            name=c.name,
            ruleset_id=ruleset.pk,
            rules=rules,
            budgets=budgets_of(c.limits),
            group_id=group.id,
            group_mode=group.mode,
            state=c.state,
            start=c.start_time,
            end=c.end_time,
            linked_stores=frozenset(str(s) for s in c.linked_stores or ()),
        )
        plan.campaigns[c.pk] = node
        for rule in rules:
            for name, uses in rule.uses.items():
                plan.uses.setdefault(name, []).extend(uses)
        plan.webhook_ids.update(_webhook_ids(ruleset.rules))
        ordered.append((group.id, c.position, -c.pk, node))
    ordered.sort(key=lambda row: (row[1], abs(row[2])))
    for parent_id, _, _, child in ordered:
        nodes.get(parent_id, root).children.append(child)
    return plan


def _webhook_ids(node: Any) -> set[int]:
    if isinstance(node, list):
        found = set()
        if len(node) >= 2 and node[0] == "triggerWebhook" and isinstance(node[1], int):
            found.add(node[1])
        for child in node:
            found |= _webhook_ids(child)
        return found
    if isinstance(node, dict):
        return set().union(*(_webhook_ids(v) for v in node.values())) if node else set()
    return set()


def plan_for(application: Application) -> Plan:
    """The current plan of this application: one query for its version, a rebuild only after an edit."""
    version = (
        Application.objects.filter(pk=application.pk).values_list("rules_version", flat=True).first() or 0
    )
    plan = _cache.get(application.pk)
    if plan is not None and plan.version == version:
        return plan
    with _lock:
        plan = _cache.get(application.pk)
        if plan is None or plan.version != version:
            plan = build(application.pk, version)
            _cache[application.pk] = plan
    return plan


def forget_plans() -> None:
    """Drop every cached plan (tests, whose rolled-back transactions reuse IDs and versions)."""
    with _lock:
        _cache.clear()
