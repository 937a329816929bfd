"""The engine's pure core: run the compiled campaigns of an application's evaluation tree over the facts
of one request and answer the effects, triggered campaigns and rule failure reasons.

No database, no clock, no side effect: everything comes in through :class:`Env` (the facts, what the
loaders fetched, the budget counters as they stood). Discounts are ``Decimal``, rounded to the
application currency's minor unit, and capped so that no price, additional cost or total goes below zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import product
from typing import Any

from patronage.core.money import as_json_number, round_money

from .facts import ZERO, Facts, ItemFacts, Remaining
from .registry import ENTITIES, SCOPES, CodeScope
from .talang import CompiledRule, RuleError

MONEY_ACTION = "setDiscount"  # the budget counted in money; every other action counts effects


@dataclass(frozen=True)
class Budget:
    """One of Talon.One's LimitConfig: ``action`` limited to ``limit`` per ``entities`` scope and period."""

    action: str
    limit: Decimal
    entities: tuple[str, ...] = ()
    period: str = ""  # "", daily, weekly, monthly, yearly

    @property
    def per_profile(self) -> bool:
        return "Profile" in self.entities


@dataclass
class PlanCampaign:
    id: int
    name: str
    ruleset_id: int
    rules: list[CompiledRule]
    budgets: list[Budget]
    group_id: int
    group_mode: str
    state: str = "enabled"
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    linked_stores: frozenset[str] = frozenset()


@dataclass
class PlanGroup:
    id: int
    name: str
    mode: str
    children: list[PlanGroup | PlanCampaign] = field(default_factory=list)


CounterKey = tuple[int, str, str, str]  # campaign, action, entity key, period


@dataclass
class Emitted:
    """An effect as the engine produced it, with what the ledger needs beside the wire envelope."""

    campaign: PlanCampaign
    rule_index: int
    rule_name: str
    effect_type: str
    props: dict[str, Any]
    amount: Decimal = ZERO
    position: int | None = None
    sub_position: int | None = None
    units: int = 1
    consumed: list[tuple[CounterKey, Decimal]] = field(default_factory=list)
    # Set when a rule ran for one code (a coupon): the envelope's triggeredByCoupon, and the code's key.
    extra: dict[str, Any] = field(default_factory=dict)
    code: str = ""
    # What the commit needs beyond the wire props (a created coupon's limit and validity, ...).
    data: dict[str, Any] = field(default_factory=dict)

    def envelope(self) -> dict[str, Any]:
        return {
            **self.extra,
            "campaignId": self.campaign.id,
            "rulesetId": self.campaign.ruleset_id,
            "ruleIndex": self.rule_index,
            "ruleName": self.rule_name,
            "effectType": self.effect_type,
            "props": {k: as_json_number(v) if isinstance(v, Decimal) else v for k, v in self.props.items()},
            "evaluationGroupID": self.campaign.group_id,
            "evaluationGroupMode": self.campaign.group_mode,
        }


@dataclass
class Outcome:
    effects: list[Emitted] = field(default_factory=list)
    triggered: list[PlanCampaign] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)


def period_key(period: str, local: dt.datetime) -> str:
    """The calendar period a budget counts in, in the application's time zone (weeks start on Monday)."""
    if not period:
        return ""
    if period == "daily":
        return local.date().isoformat()
    if period == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "monthly":
        return f"{local.year}-{local.month:02d}"
    return str(local.year)


def entity_keys(budget: Budget, facts: Facts, scoped: dict[str, str] | None = None) -> list[str] | None:
    """The counters a budget uses for this request ("" for a campaign budget); None when an entity it
    scopes by is missing (a Profile budget and an anonymous session, a Coupon budget and no coupon).
    ``scoped``: the key of the code each scope root is checking (see ``registry.CodeScope``)."""
    if not budget.entities:
        return [""]
    parts: list[list[str]] = []
    for name in budget.entities:
        entity = ENTITIES.get(name)
        if entity is not None and entity.scope:
            found = (scoped or {}).get(entity.scope)
            values = [found] if found else []
        else:
            values = entity.values(facts) if entity is not None else []
        if not values:
            return None
        parts.append([f"{name}={value}" for value in values])
    return ["|".join(combo) for combo in product(*parts)]


class Env:
    """One evaluation's state: the facts, what was loaded, what is left to discount and budget usage."""

    def __init__(
        self,
        facts: Facts,
        *,
        loaded: dict[str, Any] | None = None,
        counters: dict[CounterKey, Decimal] | None = None,
    ) -> None:
        self.facts = facts
        self.loaded = loaded or {}
        self.counters = counters or {}
        self.remaining = Remaining.of(facts.session)
        self.original = Remaining.of(facts.session)
        self.usage: dict[CounterKey, Decimal] = {}
        self.effects: list[Emitted] = []
        self.failures: list[dict[str, Any]] = []
        self.bindings: dict[object, Any] = {}
        self.campaign: PlanCampaign | None = None
        self.rule: CompiledRule | None = None
        self.effect_index = 0
        self._budget_keys: dict[tuple[Any, ...], list[tuple[Budget, list[CounterKey] | None]]] = {}
        # The code each scope root is checking while a rule runs for one (see registry.CodeScope).
        self.scoped: dict[str, Any] = {}
        self.scoped_keys: dict[str, str] = {}
        self.stamp: dict[str, Any] = {}
        self.code_key = ""
        self.code_cap: Decimal | None = None
        self.verdicts: dict[str, str] = {}
        self.currency = facts.app.currency
        # Every group taken as stackable (a dry event's forceCompleteEvaluation): all matching campaigns run.
        self.force_complete = False

    # ---- reading ---------------------------------------------------------------------------------

    def root(self, name: str) -> Any:
        facts = self.facts
        if name == "Session":
            if facts.session is None:
                raise RuleError("there is no session here")
            return self
        if name == "Profile":
            if facts.profile is None:
                raise RuleError("the session has no customer")
            return facts.profile
        if name == "Event":
            if facts.event is None:
                raise RuleError("there is no event here")
            return facts.event
        if name in self.scoped:
            return self.scoped[name]
        if name != "Application":
            raise RuleError(f"there is no {name.lower()} here")
        return facts

    @property
    def session(self) -> Any:
        return self.facts.session

    def discounted_total(self, what: str) -> Decimal:
        """Totals after earlier discounts, when the application cascades them; the originals otherwise."""
        source = self.remaining if self.facts.app.cascading else self.original
        if what == "items":
            return source.cart_items
        if what == "costs":
            return source.additional_costs
        return source.cart_items + source.additional_costs

    def discounted_price(self, item: ItemFacts) -> Decimal:
        if not self.facts.app.cascading:
            return item.price
        left = self.remaining.items.get(item.key)
        if left is None:
            return item.price
        return left / item.quantity

    # ---- undo (catch, exclusive groups) ------------------------------------------------------------

    def mark(self) -> tuple[int, int, Remaining, dict[CounterKey, Decimal]]:
        return (len(self.effects), len(self.failures), self.remaining.copy(), dict(self.usage))

    def undo_to(self, mark: tuple[int, int, Remaining, dict[CounterKey, Decimal]]) -> None:
        effects, failures, remaining, usage = mark
        del self.effects[effects:]
        del self.failures[failures:]
        self.remaining, self.usage = remaining.copy(), dict(usage)

    # ---- budgets -----------------------------------------------------------------------------------

    def _budgets(self) -> list[tuple[Budget, list[CounterKey] | None]]:
        campaign = self.campaign
        assert campaign is not None
        cache_key = (campaign.id, *self.scoped_keys.values())
        found = self._budget_keys.get(cache_key)
        if found is None:
            found = []
            for budget in campaign.budgets:
                keys = entity_keys(budget, self.facts, self.scoped_keys)
                period = period_key(budget.period, self.facts.local_now)
                found.append(
                    (
                        budget,
                        None if keys is None else [(campaign.id, budget.action, k, period) for k in keys],
                    )
                )
            self._budget_keys[cache_key] = found
        return found

    def room(self, action: str) -> tuple[Decimal | None, str]:
        """What the campaign's budgets for ``action`` still allow (None: unlimited) and, when it is
        limited, the rejection reason a shortfall gets."""
        least: Decimal | None = None
        reason = ""
        for budget, keys in self._budgets():
            if budget.action != action:
                continue
            if keys is None:
                return ZERO, "ProfileRequired" if budget.per_profile else "CampaignLimitReached"
            for key in keys:
                left = budget.limit - self.counters.get(key, ZERO) - self.usage.get(key, ZERO)
                if least is None or left < least:
                    least = left
                    reason = "ProfileLimitReached" if budget.per_profile else "CampaignLimitReached"
        return (None if least is None else max(least, ZERO)), reason

    def _use(self, action: str, amount: Decimal) -> list[tuple[CounterKey, Decimal]]:
        used = []
        for budget, keys in self._budgets():
            if budget.action == action and keys:
                for key in keys:
                    self.usage[key] = self.usage.get(key, ZERO) + amount
                    used.append((key, amount))
        return used

    def problem(self, details: str) -> None:
        """An effect of the current rule could not be applied (a budget, nothing left to discount)."""
        self.failures.append(self._reason(details=details, effectIndex=self.effect_index))

    def _reason(self, **extra: Any) -> dict[str, Any]:
        campaign, rule = self.campaign, self.rule
        assert campaign is not None and rule is not None
        return {
            "campaignID": campaign.id,
            "campaignName": campaign.name,
            "rulesetID": campaign.ruleset_id,
            "ruleIndex": rule.index,
            "ruleName": rule.title,
            "evaluationGroupID": campaign.group_id,
            "evaluationGroupMode": campaign.group_mode,
            **extra,
        }

    # ---- emitting ----------------------------------------------------------------------------------

    def emit(
        self,
        effect_type: str,
        props: dict[str, Any],
        *,
        actions: Iterable[str] = (),
        amount: Decimal = ZERO,
        position: int | None = None,
        sub_position: int | None = None,
        units: int = 1,
        data: dict[str, Any] | None = None,
    ) -> bool:
        """Add an effect of the current rule, counting one of each budget ``action`` (and ``amount`` of
        money when a discount). An action without room drops the effect, with the reason."""
        counted = list(actions)
        for action in counted:
            left, reason = self.room(action)
            if left is not None and left < 1:
                self.problem(f"{reason}: the campaign's {action} budget is used up")
                return False
        campaign, rule = self.campaign, self.rule
        assert campaign is not None and rule is not None
        emitted = Emitted(
            campaign, rule.index, rule.title, effect_type, props, amount, position, sub_position, units
        )
        for action in counted:
            emitted.consumed += self._use(action, Decimal(1))
        if amount:
            emitted.consumed += self._use(MONEY_ACTION, amount)
        if self.code_key:
            emitted.extra, emitted.code = self.stamp, self.code_key
        if data:
            emitted.data = data
        self.effects.append(emitted)
        return True

    def code_discounted(self) -> Decimal:
        """What this evaluation already discounted with the code being checked."""
        key = self.code_key
        return sum((e.amount for e in self.effects if e.code == key), ZERO) if key else ZERO

    def _granted(self, desired: Decimal, cap: Decimal) -> tuple[Decimal, Decimal | None]:
        """The discount to grant: ``desired`` rounded, within ``cap`` (what is left to discount) and the
        money budget; the second value is the desired amount when a budget cut it down."""
        want = round_money(max(desired, ZERO), self.currency)
        value = min(want, max(cap, ZERO))
        if self.code_cap is not None:  # a gift-card style coupon: what is left of its value
            value = min(value, max(self.code_cap - self.code_discounted(), ZERO))
        left, reason = self.room(MONEY_ACTION)
        if left is not None and value > left:
            if not self.facts.app.partial_discounts or left <= 0:
                self.problem(f"{reason}: the campaign's discount budget cannot cover {value}")
                return ZERO, None
            return round_money(left, self.currency), want
        return value, None

    def discount_session(self, name: str, desired: Decimal, scope: str | None) -> None:
        scope = scope or self.facts.app.default_discount_scope
        left = self.remaining
        cap = {
            "cartItems": left.cart_items,
            "additionalCosts": left.additional_costs,
        }.get(scope, left.cart_items + left.additional_costs)
        value, wanted = self._granted(desired, cap)
        if value <= 0:
            return
        props: dict[str, Any] = {"name": name, "value": value, "scope": scope}
        if wanted is not None:
            props["desiredValue"] = wanted
        if self.emit("setDiscount", props, actions=("setDiscountEffect",), amount=value):
            from_items = (
                value
                if scope == "cartItems"
                else min(value, left.cart_items)
                if scope != "additionalCosts"
                else ZERO
            )
            left.session_discount_items += from_items
            left.session_discount_costs += value - from_items

    def discount_item(self, name: str, item: ItemFacts, desired: Decimal) -> None:
        left = self.remaining
        key = item.key if item.key in left.items else (item.position, None)
        line_left = left.items.get(key, ZERO)
        value, wanted = self._granted(desired, min(line_left, left.cart_items))
        if value <= 0:
            return
        props: dict[str, Any] = {"name": name, "value": value, "position": item.position, "scope": "price"}
        if item.sub_position is not None:
            props["subPosition"] = item.sub_position
        if wanted is not None:
            props["desiredValue"] = wanted
        if self.emit(
            "setDiscountPerItem",
            props,
            actions=("setDiscountEffect",),
            amount=value,
            position=item.position,
            sub_position=item.sub_position,
            units=item.quantity,
        ):
            left.items[key] = line_left - value

    def discount_cost(self, name: str, cost: str, desired: Decimal) -> None:
        left = self.remaining
        if cost not in left.costs:
            raise RuleError(f"the session has no additional cost {cost!r}")
        value, wanted = self._granted(desired, min(left.costs[cost], left.additional_costs))
        if value <= 0:
            return
        props: dict[str, Any] = {
            "name": name,
            "additionalCostId": list(left.costs).index(cost),
            "additionalCost": cost,
            "value": value,
        }
        if wanted is not None:
            props["desiredValue"] = wanted
        if self.emit("setDiscountPerAdditionalCost", props, actions=("setDiscountEffect",), amount=value):
            left.costs[cost] -= value


# ---- the tree --------------------------------------------------------------------------------------


def takes_part(campaign: PlanCampaign, facts: Facts, only: set[int] | None) -> bool:
    """Whether a campaign runs: enabled and within its schedule at the evaluation time, and, when it has
    linked stores, for a session of one of them. A dry run's list runs its campaigns whatever their state."""
    if only is not None:
        if campaign.id not in only or campaign.state == "archived":
            return False
    elif campaign.state != "enabled":
        return False
    if campaign.start is not None and campaign.start > facts.now:
        return False
    if campaign.end is not None and campaign.end <= facts.now:
        return False
    if campaign.linked_stores:
        store = facts.session.store if facts.session is not None else ""
        return store in campaign.linked_stores
    return True


def _run_campaign(campaign: PlanCampaign, env: Env) -> bool:
    env.campaign, env.bindings = campaign, {}
    triggered = False
    for rule in campaign.rules:
        env.rule = rule
        scopes = [SCOPES[name] for name in rule.uses if name in SCOPES] if rule.uses else []
        if scopes:
            triggered = _run_for_codes(rule, scopes, env) or triggered
        else:
            triggered = _run_rule(rule, env) or triggered
    return triggered


def _failed_condition(rule: CompiledRule, env: Env) -> tuple[int | None, str]:
    for index, condition in enumerate(rule.conditions):
        try:
            ok = condition(env)
        except RuleError as exc:
            return index, f"could not be evaluated: {exc}"
        if not ok:
            return index, ""
    return None, ""


def _run_rule(rule: CompiledRule, env: Env) -> bool:
    failed_at, details = _failed_condition(rule, env)
    if failed_at is None:
        _run_effects(rule.effects, env)
        return True
    env.failures.append(env._reason(conditionIndex=failed_at, details=details or "condition not met"))
    _run_effects(rule.failure_effects, env)
    return False


def _run_for_codes(rule: CompiledRule, scopes: list[CodeScope], env: Env) -> bool:
    """A rule that checks codes (``couponValid``) runs once per code of its campaign the session carries,
    and each code is accepted or rejected on its own. Without one, the condition is simply false."""
    campaign = env.campaign
    assert campaign is not None
    lists = [scope.candidates(env, campaign) for scope in scopes]
    if not all(lists):
        return _run_rule(rule, env)
    triggered = False
    for codes in product(*lists):
        env.scoped = {scope.root: code for scope, code in zip(scopes, codes, strict=True)}
        env.scoped_keys = {scope.root: scope.key(code) for scope, code in zip(scopes, codes, strict=True)}
        env.stamp = {
            k: v for scope, code in zip(scopes, codes, strict=True) for k, v in scope.stamp(code).items()
        }
        env.code_key = "|".join(env.scoped_keys.values())
        caps = [
            c
            for scope, code in zip(scopes, codes, strict=True)
            if (c := scope.discount_left(env, code)) is not None
        ]
        env.code_cap = min(caps) if caps else None
        env.verdicts = {}
        try:
            triggered = _run_code_rule(rule, scopes, list(codes), env) or triggered
        finally:
            env.scoped, env.scoped_keys, env.stamp, env.code_key, env.code_cap = {}, {}, {}, "", None
    return triggered


def _run_code_rule(rule: CompiledRule, scopes: list[CodeScope], codes: list[Any], env: Env) -> bool:
    failed_at, details = _failed_condition(rule, env)
    if failed_at is not None:
        for scope, code in zip(scopes, codes, strict=True):
            reason = env.verdicts.get(scope.condition) or f"{scope.root}RejectedByCondition"
            scope.reject(env, code, reason, failed_at)
        env.failures.append(env._reason(conditionIndex=failed_at, details=details or "condition not met"))
        _run_effects(rule.failure_effects, env)
        return False
    mark = env.mark()
    for scope, code in zip(scopes, codes, strict=True):
        reason = scope.accept(env, code)
        if reason:
            env.undo_to(mark)
            for other, value in zip(scopes, codes, strict=True):
                other.reject(env, value, reason, None)
            return False
    accepted, failures = len(env.effects), len(env.failures)
    _run_effects(rule.effects, env)
    if rule.effects and len(env.effects) == accepted and len(env.failures) > failures:
        # Every effect of the rule failed (a budget, nothing left to discount): the code gives nothing.
        problems = env.failures[failures:]
        env.undo_to(mark)
        for scope, code in zip(scopes, codes, strict=True):
            scope.reject(env, code, "EffectCouldNotBeApplied", None)
        env.failures.extend(problems)
        return False
    return True


def _run_effects(effects: list[Any], env: Env) -> None:
    for index, effect in enumerate(effects):
        env.effect_index = index
        mark = env.mark()
        try:
            effect(env)
        except RuleError as exc:
            env.undo_to(mark)
            env.problem(f"could not be applied: {exc}")


@dataclass
class _Trial:
    child: PlanGroup | PlanCampaign
    triggered: bool
    discount: Decimal
    after: tuple[list[Emitted], list[dict[str, Any]], Remaining, dict[CounterKey, Decimal]]
    triggered_campaigns: list[PlanCampaign]


def _run(child: PlanGroup | PlanCampaign, env: Env, only: set[int] | None, out: list[PlanCampaign]) -> bool:
    if isinstance(child, PlanCampaign):
        if not takes_part(child, env.facts, only):
            return False
        if _run_campaign(child, env):
            out.append(child)
            return True
        return False
    return _run_group(child, env, only, out)


def _run_group(group: PlanGroup, env: Env, only: set[int] | None, out: list[PlanCampaign]) -> bool:
    if group.mode == "stackable" or env.force_complete:
        triggered = False
        for child in group.children:
            triggered = _run(child, env, only, out) or triggered
        return triggered
    # Exclusive modes: each child is tried from the same starting point, one is kept.
    start = env.mark()
    trials: list[_Trial] = []
    for child in group.children:
        env.undo_to(start)
        before = len(env.effects)
        won: list[PlanCampaign] = []
        triggered = _run(child, env, only, won)
        discount = sum((e.amount for e in env.effects[before:]), ZERO)
        trials.append(
            _Trial(
                child,
                triggered,
                discount,
                (list(env.effects), list(env.failures), env.remaining.copy(), dict(env.usage)),
                won,
            )
        )
        # listOrder runs the later children too: the ones that would have triggered are reported as losers.
    env.undo_to(start)
    fired = [t for t in trials if t.triggered]
    if not fired:
        for trial in trials:
            env.failures.extend(trial.after[1][start[1] :])
        return False
    if group.mode == "listOrder":
        winner = fired[0]
    elif group.mode == "lowestDiscount":
        winner = min(fired, key=lambda t: t.discount)
    else:
        winner = max(fired, key=lambda t: t.discount)
    effects, failures, remaining, usage = winner.after
    env.effects[:], env.failures[:] = effects, failures
    env.remaining, env.usage = remaining, usage
    out.extend(winner.triggered_campaigns)
    for trial in trials:
        if trial is winner:
            continue
        env.failures.extend(trial.after[1][start[1] :])  # its own rules' reasons stand
        if trial.triggered:
            for campaign in trial.triggered_campaigns:
                env.failures.append(
                    {
                        "campaignID": campaign.id,
                        "campaignName": campaign.name,
                        "rulesetID": campaign.ruleset_id,
                        "ruleIndex": 0,
                        "ruleName": campaign.rules[0].title if campaign.rules else "",
                        "evaluationGroupID": group.id,
                        "evaluationGroupMode": group.mode,
                        "details": (
                            f"CampaignNotTriggered: evaluation group {group.name!r} ({group.mode}) applied "
                            f"{_names(winner.triggered_campaigns)} instead"
                        ),
                    }
                )
    return True


def _names(campaigns: list[PlanCampaign]) -> str:
    return ", ".join(repr(c.name) for c in campaigns) or "another campaign"


def evaluate(
    root: PlanGroup,
    facts: Facts,
    *,
    loaded: dict[str, Any] | None = None,
    counters: dict[CounterKey, Decimal] | None = None,
    only: Iterable[int] | None = None,
    force_complete: bool = False,
) -> tuple[Outcome, Env]:
    """Run the tree over the facts. ``only`` (a dry run's ``evaluableCampaignIds``) limits the campaigns
    to those, whatever their state (archived ones excepted). ``force_complete`` runs every group as
    stackable, whatever its exclusive mode (Talon.One's ``forceCompleteEvaluation``, for dry events)."""
    env = Env(facts, loaded=loaded, counters=counters)
    env.force_complete = force_complete
    triggered: list[PlanCampaign] = []
    chosen = set(only) if only is not None else None
    _run_group(root, env, chosen, triggered)
    for scope in SCOPES.values():
        scope.settle(env, root, chosen)
    return Outcome(env.effects, triggered, env.failures), env
