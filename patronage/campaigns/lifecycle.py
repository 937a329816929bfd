"""The campaign engine in the session path (registered in ``customer_sessions.engine.SESSION_ENGINES``).

- **load**: the application's plan (compiled rules, see ``plan``), the facts of the request, what the rules'
  loaders fetch (segment membership, webhooks), the budget counters (locked when the session closes, after
  the profile and the session: the documented lock order), and for rollbacks the session's ledger.
- **evaluate**: the pure engine (``evaluation``) for open and closing sessions; the rollback effects
  derived from the ledger for a cancel of a closed session, a return or a reopen.
- **persist**: on close, the effect ledger rows, the budget counters (conditional UPDATEs: never past the
  limit, even on SQLite), attribute updates and webhook deliveries (sent by the worker after commit); on
  rollbacks, the released amounts and counters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import F
from django.db.models.functions import Round

from patronage.core.errors import Conflict, ErrorCollector
from patronage.core.locking import lock
from patronage.core.money import as_json_number, round_money
from patronage.customer_sessions.engine import SessionContext, Transition
from patronage.customer_sessions.models import CartItem, CustomerSession, Event
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.customers.services import profile_apply_attributes, profile_save
from patronage.workspace.models import Application

from .evaluation import MONEY_ACTION, CounterKey, Emitted, Outcome, entity_keys, evaluate, period_key
from .facts import ZERO, AppFacts, EventFacts, Facts, ItemFacts, ProfileFacts, SessionFacts
from .models import BudgetCounter, EffectRecord, Webhook
from .plan import Plan, plan_for
from .registry import ENTITIES, FUNCTIONS, KEPT_ON_ROLLBACK, SCOPES

NAME = "campaigns"
DISCOUNT_TYPES = {"setDiscount", "setDiscountPerItem", "setDiscountPerAdditionalCost"}


# ---- facts -------------------------------------------------------------------------------------------


def app_facts(application: Application) -> AppFacts:
    return AppFacts(
        id=application.pk,
        name=application.name,
        currency=application.currency,
        time_zone=application.time_zone,
        default_discount_scope=application.default_discount_scope,
        cascading=application.enable_cascading_discounts,
        flattened=application.enable_flattened_cart_items,
        partial_discounts=application.enable_partial_discounts,
        environment_id=application.environment_id,
        code_case=application.coupon_code_case,
    )


def profile_facts(profile: CustomerProfile | None) -> ProfileFacts | None:
    if profile is None:
        return None
    group = ""
    if profile.group_id is not None:
        group = CustomerGroup.objects.filter(pk=profile.group_id).values_list("name", flat=True).first() or ""
    from patronage.customers.attributes import profile_attributes

    return ProfileFacts(
        pk=profile.pk,
        integration_id=profile.integration_id,
        name=profile.name,
        email=profile.email or "",
        group=group,
        group_id=profile.group_id,
        orders=profile.closed_sessions,
        total_sales=profile.total_sales,
        birth_date=profile.birth_date,
        created=profile.created,
        attributes=profile_attributes(profile),
    )


def session_facts(session: CustomerSession, items: list[CartItem], *, flattened: bool) -> SessionFacts:
    lines = [
        ItemFacts(
            i.position, i.sku, i.name, i.category, i.price, i.quantity - i.returned_quantity, i.attributes
        )
        for i in items
        if i.quantity > i.returned_quantity
    ]
    return SessionFacts(
        integration_id=session.integration_id,
        state=session.state,
        store=session.store_integration_id,
        first_session=session.first_session,
        total=session.total,
        cart_item_total=session.cart_item_total,
        additional_cost_total=session.additional_cost_total,
        additional_costs={name: Decimal(c["price"]) for name, c in session.additional_costs.items()},
        items=tuple(u for line in lines for u in line.units()) if flattened else tuple(lines),
        attributes=session.attributes,
        coupon_codes=tuple(session.coupon_codes),
        referral_code=session.referral_code,
        identifiers=tuple(session.identifiers),
    )


def facts_for(
    application: Application,
    now: dt.datetime,
    *,
    session: SessionFacts | None = None,
    profile: CustomerProfile | None = None,
    event: EventFacts | None = None,
) -> Facts:
    app = app_facts(application)
    return Facts(
        app=app,
        now=now,
        local_now=now.astimezone(app.tz),
        session=session,
        profile=profile_facts(profile),
        event=event,
    )


# ---- loading -------------------------------------------------------------------------------------------


@dataclass
class Work:
    """This engine's part of a request: what load fetched and what evaluate produced."""

    plan: Plan | None = None
    facts: Facts | None = None
    loaded: dict[str, Any] = field(default_factory=dict)
    counters: dict[CounterKey, Decimal] = field(default_factory=dict)
    counter_ids: dict[CounterKey, int] = field(default_factory=dict)
    limits: dict[CounterKey, Decimal] = field(default_factory=dict)
    outcome: Outcome | None = None
    records: list[EffectRecord] = field(default_factory=list)
    releases: dict[int, Decimal] = field(default_factory=dict)  # counter id -> amount to give back
    # What each code scope (coupons, referrals) loaded for a rollback, by condition name.
    scoped: dict[str, Any] = field(default_factory=dict)


def load_for(plan: Plan, facts: Facts, *, lock_counters: bool) -> Work:
    work = Work(plan=plan, facts=facts)
    for name, uses in plan.uses.items():
        loader = FUNCTIONS[name].loader if name in FUNCTIONS else None
        if loader is not None:
            work.loaded[name] = loader(facts, uses)
    if facts.session is not None:  # the codes come before the budget counters in the lock order
        for name, scope in SCOPES.items():
            work.loaded[name] = scope.load(facts, lock=lock_counters)
    if plan.webhook_ids:
        work.loaded["webhooks"] = dict(
            Webhook.objects.filter(pk__in=plan.webhook_ids).values_list("pk", "name")
        )
    if plan.has_budgets:
        _load_counters(work, lock_counters=lock_counters)
    return work


def _counter_keys(work: Work) -> list[CounterKey]:
    assert work.plan is not None and work.facts is not None
    keys: list[CounterKey] = []
    for campaign in work.plan.campaigns.values():
        for budget in campaign.budgets:
            period = period_key(budget.period, work.facts.local_now)
            for scoped in _scoped_choices(work, budget, campaign.id):
                for entity in entity_keys(budget, work.facts, scoped) or []:
                    key = (campaign.id, budget.action, entity, period)
                    keys.append(key)
                    work.limits[key] = min(budget.limit, work.limits.get(key, budget.limit))
    return keys


def _scoped_choices(work: Work, budget: Any, campaign_id: int) -> list[dict[str, str]]:
    """For a budget keyed by codes (Coupon, Referral): one choice per loaded code of the campaign."""
    choices: list[dict[str, str]] = [{}]
    for name in budget.entities:
        entity = ENTITIES.get(name)
        if entity is None or not entity.scope:
            continue
        scope = next((s for s in SCOPES.values() if s.root == entity.scope), None)
        codes = scope.budget_keys(work.loaded.get(scope.condition), campaign_id) if scope is not None else []
        choices = [{**choice, entity.scope: code} for choice in choices for code in codes]
    return choices


def _load_counters(work: Work, *, lock_counters: bool) -> None:
    """The counters this request's budgets use. A closing session locks them (creating the missing ones
    first), in primary-key order, after the profile and the session; an open one only reads them."""
    keys = _counter_keys(work)
    if not keys:
        return
    if lock_counters:
        BudgetCounter.objects.bulk_create(
            [BudgetCounter(campaign_id=c, action=a, entity_key=e, period=p) for c, a, e, p in keys],
            ignore_conflicts=True,
        )
    campaign_ids = {k[0] for k in keys}
    rows = BudgetCounter.objects.filter(
        campaign_id__in=campaign_ids,
        entity_key__in={k[2] for k in keys},
        period__in={k[3] for k in keys},
    ).order_by("pk")
    if lock_counters:
        rows = lock(rows)
    wanted = set(keys)
    for pk, campaign_id, action, entity, period, counter in rows.values_list(
        "pk", "campaign_id", "action", "entity_key", "period", "counter"
    ):
        key = (campaign_id, action, entity, period)
        if key in wanted:
            work.counters[key], work.counter_ids[key] = counter, pk


def _rollback_load(work: Work, session: CustomerSession) -> None:
    """The session's ledger rows still standing, and the counters they consumed, locked in order."""
    for name, scope in SCOPES.items():  # codes before budget counters, as in the documented lock order
        work.scoped[name] = scope.rollback_load(session)
    work.records = list(
        EffectRecord.objects.filter(session=session, rolled_back_at=None)
        .order_by("pk")
        .select_related("campaign")
    )
    ids = sorted({int(c[0]) for r in work.records for c in r.consumed})
    if ids:
        list(lock(BudgetCounter.objects.filter(pk__in=ids).order_by("pk")).values_list("pk", flat=True))


# ---- the session hook ------------------------------------------------------------------------------------


ROLLBACKS = {Transition.REVOKE, Transition.RETURN, Transition.REOPEN}


class CampaignEngine:
    name = NAME

    def load(self, ctx: SessionContext) -> None:
        session = ctx.session
        assert session is not None
        if ctx.transition in ROLLBACKS:
            work = Work()
            _rollback_load(work, session)
            ctx.state[NAME] = work

    def evaluate(self, ctx: SessionContext) -> None:
        session = ctx.session
        assert session is not None
        if ctx.transition == Transition.CANCEL_OPEN:
            return  # nothing was committed, nothing to answer
        if ctx.transition in ROLLBACKS:
            ctx.effects = rollback_effects(ctx, ctx.state[NAME])
            return
        plan = plan_for(ctx.application)
        facts = facts_for(
            ctx.application,
            ctx.now,
            session=session_facts(session, ctx.items, flattened=ctx.application.enable_flattened_cart_items),
            profile=ctx.profile,
        )
        work = load_for(plan, facts, lock_counters=ctx.transition == Transition.CLOSE and not ctx.dry)
        work.outcome, _ = evaluate(
            plan.root, facts, loaded=work.loaded, counters=work.counters, only=ctx.evaluable_campaign_ids
        )
        ctx.state[NAME] = work
        answer(ctx, work.outcome)
        for scope in SCOPES.values():
            ctx.content.update(scope.content(ctx, work))

    def persist(self, ctx: SessionContext) -> None:
        work: Work | None = ctx.state.get(NAME)
        if work is None:
            return
        if ctx.transition == Transition.CLOSE and work.outcome is not None:
            ctx.created_coupons, ctx.created_referrals = commit(
                application=ctx.application,
                session=ctx.session,
                event=None,
                profile=ctx.profile,
                now=ctx.now,
                work=work,
            )
        elif ctx.transition in ROLLBACKS:
            _release(work)


def answer(ctx: SessionContext, outcome: Outcome) -> None:
    ctx.effects, ctx.rule_failure_reasons, ctx.triggered_campaigns = answered(outcome, ctx.response_content)


def answered(
    outcome: Outcome, response_content: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The effects' envelopes, and the rule failure reasons and triggered campaigns when asked for."""
    from .presenters import campaign_json  # the triggered campaigns, in full, only when asked for

    failures = outcome.failures if "ruleFailureReasons" in response_content else []
    triggered = []
    if "triggeredCampaigns" in response_content and outcome.triggered:
        triggered = campaign_json_many([c.id for c in outcome.triggered], campaign_json)
    return [e.envelope() for e in outcome.effects], failures, triggered


def campaign_json_many(ids: list[int], present: Any) -> list[dict[str, Any]]:
    from .models import Campaign

    found = {c.pk: c for c in Campaign.objects.filter(pk__in=ids)}
    return [present(found[i]) for i in ids if i in found]


# ---- commit (a session's close; an event or a rule-engine profile update at once) ------------------------


def commit(
    *,
    application: Application,
    session: CustomerSession | None,
    event: Event | None,
    profile: CustomerProfile | None,
    now: dt.datetime,
    work: Work,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Record what an evaluation granted and consume its budgets, exactly once: for a session when its
    state moved from open to closed under its row lock; for an event or a profile update (no session)
    when it runs, under the profile's lock, with the counters locked by ``load_for``."""
    outcome = work.outcome
    assert outcome is not None
    records: list[EffectRecord] = []
    usage: dict[CounterKey, Decimal] = {}
    for emitted in outcome.effects:
        if not emitted.campaign.id:  # an answer no campaign owns (an unknown code): nothing to record
            continue
        consumed = []
        for key, amount in emitted.consumed:
            usage[key] = usage.get(key, ZERO) + amount
            consumed.append([work.counter_ids[key], str(amount), key[1]])
        records.append(
            _record(application, session, event, profile, now=now, emitted=emitted, consumed=consumed)
        )
    _consume(work, usage)
    EffectRecord.objects.bulk_create(records)
    created: dict[str, list[dict[str, Any]]] = {"createdCoupons": [], "createdReferrals": []}
    for scope in SCOPES.values():
        for kind, made in scope.commit(work, session, profile, now).items():
            created[kind] += made
    _apply_attribute_updates(session, profile, outcome.effects)
    _webhooks(application, session, outcome.effects)
    return created["createdCoupons"], created["createdReferrals"]


def _record(
    application: Application,
    session: CustomerSession | None,
    event: Event | None,
    profile: CustomerProfile | None,
    *,
    now: dt.datetime,
    emitted: Emitted,
    consumed: list[list[Any]],
) -> EffectRecord:
    return EffectRecord(
        application_id=application.pk,
        session=session,
        event=event,
        profile=profile,
        campaign_id=emitted.campaign.id,
        ruleset_id=emitted.campaign.ruleset_id,
        rule_index=emitted.rule_index,
        rule_name=emitted.rule_name[:255],
        effect_type=emitted.effect_type,
        props=_json_props(emitted.props),
        amount=emitted.amount,
        position=emitted.position,
        sub_position=emitted.sub_position,
        units=emitted.units,
        consumed=consumed,
        created=now,
    )


def _json_props(props: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in props.items()}


def _consume(work: Work, usage: dict[CounterKey, Decimal]) -> None:
    for key, amount in sorted(usage.items(), key=lambda kv: work.counter_ids[kv[0]]):
        if not amount:
            continue
        moved = BudgetCounter.objects.filter(
            pk=work.counter_ids[key], counter__lte=work.limits[key] - amount
        ).update(counter=_settled(F("counter") + amount))
        if not moved:  # the evaluation read the counter under its lock: only a concurrent writer can do this
            raise Conflict("A campaign budget changed while the session closed; retry the request")


def _settled(total: Any) -> Round:
    """A counter's new value at the column's 4 decimals: SQLite computes in binary floating point, and
    0.4 + 2 - 2 - 0.4 there is -5.6e-17, which the non-negative check refuses (and which would make an
    exactly full budget look over its limit)."""
    return Round(total, 4)


def _apply_attribute_updates(
    session: CustomerSession | None, profile: CustomerProfile | None, effects: list[Emitted]
) -> None:
    updates = [e.props for e in effects if e.effect_type == "updateAttribute"]
    if not updates:
        return
    session_attrs: dict[str, Any] = {}
    profile_attrs: dict[str, Any] = {}
    for props in updates:
        target, _, name = props["path"].partition(".")
        (session_attrs if target == "Session" else profile_attrs)[name] = props["value"]
    if session_attrs and session is not None:
        session.attributes = {**session.attributes, **session_attrs}
        CustomerSession.objects.filter(pk=session.pk).update(attributes=session.attributes)
    if profile_attrs and profile is not None:
        errors = ErrorCollector()
        profile_apply_attributes(profile, profile_attrs, pointer="/effects", errors=errors)
        if not errors.problems:  # a value the profile refuses (e.g. a malformed email) is not applied
            profile_save(profile, email_pointer="/effects")


def _webhooks(application: Application, session: CustomerSession | None, effects: list[Emitted]) -> None:
    calls = [e for e in effects if e.effect_type == "triggerWebhook"]
    if not calls:
        return
    from .webhooks import deliveries_create

    deliveries_create(
        application=application,
        session=session,
        calls=[(e.campaign.id, int(e.props["webhookId"]), e.props.get("payload") or {}) for e in calls],
    )


# ---- rollbacks -------------------------------------------------------------------------------------------


def rollback_effects(ctx: SessionContext, work: Work) -> list[dict[str, Any]]:
    """What a cancel of a closed session, a return or a reopen undoes: a ``rollbackDiscount`` per discount
    still standing (per returned unit for returns), with the money and counters to release."""
    effects: list[dict[str, Any]] = []
    now = ctx.now
    for record in work.records:
        if record.effect_type not in DISCOUNT_TYPES:
            if ctx.transition != Transition.RETURN:
                record.rolled_back_at = now
                _release_counters(work, record, whole=True)
            continue
        if ctx.transition == Transition.RETURN:
            effects += _return_rollback(ctx, work, record)
            continue
        value = record.remaining
        record.released, record.rolled_back_at = record.amount, now
        _release_counters(work, record, whole=True)
        effects.append(_rollback(record, value))
    if ctx.transition != Transition.RETURN:
        for name, scope in SCOPES.items():
            effects += scope.rollback(ctx, work.scoped.get(name))
    return effects


def _return_rollback(ctx: SessionContext, work: Work, record: EffectRecord) -> list[dict[str, Any]]:
    if record.position is None or record.position not in ctx.returned:
        return []  # session-level discounts stay: a return is not re-evaluated (docs/RULES.md)
    before, count = ctx.returned_before.get(record.position, 0), ctx.returned[record.position]
    if record.sub_position is not None:
        if not before <= record.sub_position < before + count:
            return []
        value = record.remaining
        record.released, record.returned_units, record.rolled_back_at = record.amount, 1, ctx.now
        _release_counters(work, record, whole=True)
        return [_rollback(record, value, sub_position=record.sub_position)]
    # A line's discount: give back its share per returned unit, the last unit takes what is left.
    units = max(record.units, 1)
    taking = min(count, units - record.returned_units)
    if taking <= 0:
        return []
    record.returned_units += taking
    if record.returned_units >= units:
        value = record.remaining
        record.rolled_back_at = ctx.now
    else:
        value = round_money(record.amount * taking / units, ctx.application.currency)
    record.released += value
    _release_counters(work, record, whole=record.rolled_back_at is not None, money=value)
    return [_rollback(record, value)]


def _rollback(record: EffectRecord, value: Decimal, *, sub_position: int | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"name": record.props.get("name", ""), "value": as_json_number(value)}
    if record.effect_type == "setDiscountPerItem":
        props["cartItemPosition"] = record.position
        if record.sub_position is not None or sub_position is not None:
            props["cartItemSubPosition"] = record.sub_position if sub_position is None else sub_position
        props["scope"] = record.props.get("scope", "price")
    elif record.effect_type == "setDiscountPerAdditionalCost":
        props["additionalCostId"] = record.props.get("additionalCostId", 0)
        props["additionalCost"] = record.props.get("additionalCost", "")
    else:
        props["scope"] = record.props.get("scope", "sessionTotal")
    return {
        "campaignId": record.campaign_id,
        "rulesetId": record.ruleset_id,
        "ruleIndex": record.rule_index,
        "ruleName": record.rule_name,
        "effectType": "rollbackDiscount",
        "props": props,
    }


def _release_counters(work: Work, record: EffectRecord, *, whole: bool, money: Decimal | None = None) -> None:
    """Give back what the record consumed: all of it when it is undone whole; for a partial return only
    the returned share of its money (counts of effects stay until the effect is undone whole)."""
    kept = []
    for counter_id, amount, action in record.consumed:
        amount = Decimal(amount)
        if action in KEPT_ON_ROLLBACK:  # e.g. coupons a rule created stay created, and counted
            kept.append([counter_id, str(amount), action])
            continue
        give = amount if whole else min(money or ZERO, amount) if action == MONEY_ACTION else ZERO
        if give:
            work.releases[int(counter_id)] = work.releases.get(int(counter_id), ZERO) + give
        if amount - give:
            kept.append([counter_id, str(amount - give), action])
    record.consumed = kept


def _release(work: Work) -> None:
    for name, scope in SCOPES.items():
        scope.release(work.scoped.get(name))
    if work.records:
        EffectRecord.objects.bulk_update(
            work.records, ["released", "returned_units", "rolled_back_at", "consumed"]
        )
    for counter_id, amount in sorted(work.releases.items()):
        if amount:
            BudgetCounter.objects.filter(pk=counter_id).update(counter=_settled(F("counter") - amount))
