"""The campaign engine without a session: a tracked event (``POST /v2/events``) and a rule-engine profile
update (``PUT /v2/customer_profiles/{id}?runRuleEngine=true``).

Talon.One commits these at once (there is no close to wait for): a run that is not dry records its
effects in the ledger (``EffectRecord`` with no session; the event when there is one), consumes its
budgets, applies attribute updates and queues webhooks, through the same ``lifecycle.commit`` as a
session's close. Lock order as everywhere (``patronage.core.locking``): the profile first, then the budget
counters; a lock held past ``PATRONAGE_LOCK_WAIT_MS`` by another request for the customer is a 409.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from patronage.core import clock
from patronage.core.errors import ErrorCollector
from patronage.core.locking import lock_wait_limit
from patronage.customer_sessions.models import Event
from patronage.customers.consent import ConsentActor
from patronage.customers.models import CustomerProfile
from patronage.customers.services import (
    activity_touch,
    profile_lock_or_create,
    profile_upsert,
    validate_integration_id,
)
from patronage.workspace.models import Application

from .evaluation import evaluate
from .facts import EventFacts
from .lifecycle import answered, commit, facts_for, load_for
from .plan import plan_for


@dataclass
class Answer:
    """What the engine answered for one standalone run (the envelope of Talon.One's responses)."""

    effects: list[dict[str, Any]] = field(default_factory=list)
    rule_failure_reasons: list[dict[str, Any]] = field(default_factory=list)
    triggered_campaigns: list[dict[str, Any]] = field(default_factory=list)
    created_coupons: list[dict[str, Any]] = field(default_factory=list)
    created_referrals: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EventResult:
    event: Event
    profile: CustomerProfile
    answer: Answer


def evaluate_standalone(
    *,
    application: Application,
    profile: CustomerProfile,
    event: Event | None = None,
    now: dt.datetime,
    dry: bool,
    only: list[int] | None = None,
    force_complete: bool = False,
    response_content: set[str] | frozenset[str] = frozenset(),
) -> Answer:
    """Run the application's campaigns over the profile (and the event) and, unless ``dry``, commit what
    they granted. The caller holds the profile's lock inside ``transaction.atomic``; the budget counters
    are locked here, after it."""
    plan = plan_for(application)
    facts = facts_for(
        application,
        now,
        profile=profile,
        event=EventFacts(type=event.type, attributes=event.attributes) if event is not None else None,
    )
    work = load_for(plan, facts, lock_counters=not dry)
    work.outcome, _ = evaluate(
        plan.root, facts, loaded=work.loaded, counters=work.counters, only=only, force_complete=force_complete
    )
    effects, failures, triggered = answered(work.outcome, set(response_content))
    answer = Answer(effects=effects, rule_failure_reasons=failures, triggered_campaigns=triggered)
    if not dry:
        answer.created_coupons, answer.created_referrals = commit(
            application=application, session=None, event=event, profile=profile, now=now, work=work
        )
    return answer


def event_track(
    *,
    application: Application,
    profile_id: str,
    type: str,
    attributes: dict[str, Any] | None = None,
    store_integration_id: str | None = None,
    dry: bool = False,
    evaluable_campaign_ids: list[int] | None = None,
    force_complete: bool = False,
    response_content: set[str] | None = None,
) -> EventResult:
    """Store an event of the customer (created when unknown) and answer the effects of the campaigns it
    triggers, committed at once. Only a dry run may name its campaigns (``evaluable_campaign_ids``, any
    state) or evaluate every group as stackable (``force_complete``)."""
    errors = ErrorCollector()
    validate_integration_id(profile_id, pointer="/profileId", errors=errors)
    if not type.strip():
        errors.add("The event type must not be empty", pointer="/type")
    if force_complete and not dry:
        errors.add(
            "forceCompleteEvaluation=true evaluates campaigns no real request would: send it with dry=true",
            pointer="query:forceCompleteEvaluation",
        )
    errors.raise_if_any()
    now = clock.now()
    with transaction.atomic(), lock_wait_limit():
        profile, _ = profile_lock_or_create(environment=application.environment, integration_id=profile_id)
        event = Event.objects.create(
            application=application,
            profile_integration_id=profile_id,
            store_integration_id=store_integration_id or "",
            type=type,
            attributes=attributes or {},
            created=now,
        )
        answer = evaluate_standalone(
            application=application,
            profile=profile,
            event=event,
            now=now,
            dry=dry,
            only=evaluable_campaign_ids if dry else None,
            force_complete=force_complete,
            response_content=response_content or set(),
        )
        event.effects = answer.effects
        Event.objects.filter(pk=event.pk).update(effects=event.effects)
        if activity_touch(profile, now):
            CustomerProfile.objects.filter(pk=profile.pk).update(last_activity=profile.last_activity)
    return EventResult(event=event, profile=profile, answer=answer)


def profile_update_evaluated(
    *,
    application: Application,
    integration_id: str,
    attributes: dict[str, Any],
    dry: bool = False,
    evaluable_campaign_ids: list[int] | None = None,
    response_content: set[str] | None = None,
    consent_by: ConsentActor | None = None,
) -> tuple[CustomerProfile, Answer]:
    """Update (or create) the profile, then run the campaigns over it alone (no session, no event) and
    commit what they granted, under the profile's lock taken by the update."""
    with transaction.atomic(), lock_wait_limit():
        profile, _ = profile_upsert(
            environment=application.environment,
            integration_id=integration_id,
            attributes=attributes,
            consent_by=consent_by,
        )
        answer = evaluate_standalone(
            application=application,
            profile=profile,
            now=clock.now(),
            dry=dry,
            only=evaluable_campaign_ids if dry else None,
            response_content=response_content or set(),
        )
    return profile, answer
