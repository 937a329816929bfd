"""Coupons, promo codes and referral codes in the campaign engine.

What rules can say (registered here, the engine core knows none of it by name):

- ``["couponValid"]``: the coupon being checked may be used here. A rule using it runs once per code of
  its campaign the session carries (``couponCodes``): the campaign's coupons, and the issued codes of the
  promo-code groups the campaign accepts. ``[".", "Coupon", "Attributes", "name"]`` reads the coupon's
  attributes, ``[".", "Coupon", "Value"]`` its code.
- ``["referralValid"]``: the same for the session's ``referralCode``; ``[".", "Referral", "Advocate"]`` is
  the advocate's integration ID (to reward them).
- ``["createCoupon", recipient?, usageLimit?, validDays?]``: a personal coupon of the campaign, made when
  the session closes (or at once for events), listed in ``createdCoupons``; never rolled back.
- ``["createReferral", usageLimit?]``: a referral code for the session's customer, in ``createdReferrals``.
- ``["reserveCoupon"]``: reserve the coupon being checked for the session's customer, within the coupon's
  reservation limit.

Every code the session carries gets ``acceptCoupon`` or ``rejectCoupon`` (``acceptReferral`` /
``rejectReferral``) with Talon.One's reason; a bad code is an effect, never an HTTP error. Redemptions
count when the session closes (:mod:`.redemption` writes them under the locks :meth:`CouponScope.load`
took) and come back on cancel and reopen.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from patronage.campaigns.builtins import as_text, plain_effect
from patronage.campaigns.evaluation import Emitted, Env, PlanCampaign, PlanGroup, takes_part
from patronage.campaigns.registry import (
    Attribute,
    CodeScope,
    Entity,
    Function,
    T,
    register_attribute,
    register_budget_action,
    register_effect,
    register_entity,
    register_function,
    register_scope,
)
from patronage.campaigns.talang import CompiledRule, RuleError, to_decimal

from . import redemption
from .codes import DEFAULT_ALPHABET, random_code
from .models import normalize
from .redemption import CodeFacts, Loaded

COUPON_PATTERN = "####-####-####"
REFERRAL_PATTERN = "REF-########"

# The envelope of an answer for a code no campaign owns (Talon.One requires a campaign on every effect).
_NOBODY = PlanCampaign(id=0, name="", ruleset_id=0, rules=[], budgets=[], group_id=0, group_mode="")
_NO_RULE = CompiledRule(0, "", [], [], [])


class _Scope(CodeScope):
    """What coupons and referral codes share; the subclasses say which codes and which reasons."""

    accept_type = ""
    reject_type = ""
    action = ""  # the budget action a redemption counts
    not_found = ""
    not_running = ""
    not_triggered = ""

    def _loaded(self, env: Env) -> Loaded:
        return env.loaded.get(self.condition) or Loaded()

    def candidates(self, env: Env, campaign: Any) -> list[Any]:
        return [code for code in self._loaded(env).found if campaign.id in code.campaign_ids]

    def key(self, code: CodeFacts) -> str:
        return code.key

    def check(self, env: Env, code: CodeFacts) -> str:
        reason = redemption.problem(code, env.facts)
        env.verdicts[self.condition] = reason
        return reason

    def discount_left(self, env: Env, code: CodeFacts) -> Decimal | None:
        return code.discount_left

    def accept(self, env: Env, code: CodeFacts) -> str:
        if any(e.effect_type == self.accept_type and e.props["value"] == code.typed for e in env.effects):
            return ""  # another rule of the campaign accepted it: one redemption per code
        left, reason = env.room(self.action)
        if left is not None and left < 1:
            return reason
        env.emit(self.accept_type, {"value": code.typed}, actions=(self.action,))
        return ""

    def reject(self, env: Env, code: CodeFacts, reason: str, condition_index: int | None) -> None:
        props: dict[str, Any] = {"value": code.typed, "rejectionReason": reason}
        if condition_index is not None:
            props["conditionIndex"] = condition_index
        env.emit(self.reject_type, props)

    def settle(self, env: Env, root: Any, only: set[int] | None) -> None:
        """Keep one answer per code (an acceptance wins over another rule's rejection), then answer the
        codes no rule looked at: unknown, of a campaign that is not running, or of one that did not
        trigger (its rules do not check the code, or its evaluation group applied another campaign)."""
        loaded = self._loaded(env)
        if not loaded.typed:
            return
        accepted = {e.props["value"] for e in env.effects if e.effect_type == self.accept_type}
        seen: set[str] = set()
        kept: list[Emitted] = []
        for effect in env.effects:
            if effect.effect_type == self.reject_type:
                value = effect.props["value"]
                if value in accepted or value in seen:
                    continue
                seen.add(value)
            kept.append(effect)
        env.effects[:] = kept
        decided = accepted | seen
        campaigns = _campaigns(root)
        for typed in loaded.typed:
            if typed in decided:
                continue
            code = loaded.by_typed.get(typed)
            owner, reason = _NOBODY, self.not_found
            if code is not None:
                mine = [campaigns[i] for i in sorted(code.campaign_ids) if i in campaigns]
                running = [c for c in mine if takes_part(c, env.facts, only)]
                owner = (running or mine or [_NOBODY])[0]
                reason = self.not_triggered if running else self.not_running
            _answer(env, owner, self.reject_type, {"value": typed, "rejectionReason": reason})
            decided.add(typed)

    # ---- around evaluation -----------------------------------------------------------------------------

    def budget_keys(self, loaded: Any, campaign_id: int) -> list[str]:
        found = loaded.found if isinstance(loaded, Loaded) else []
        return [code.key for code in found if campaign_id in code.campaign_ids]

    def commit(self, work: Any, session: Any, profile: Any, now: dt.datetime) -> dict[str, list[Any]]:
        return redemption.commit(self, work, session=session, profile=profile, now=now)

    def rollback_load(self, session: Any) -> Any:
        return redemption.rollback_load(self, session)

    def rollback(self, ctx: Any, state: Any) -> list[dict[str, Any]]:
        return redemption.rollback_effects(self, ctx, state)

    def release(self, state: Any) -> None:
        redemption.release(self, state)


class CouponScope(_Scope):
    condition = "couponValid"
    root = "Coupon"
    accept_type, reject_type = "acceptCoupon", "rejectCoupon"
    rollback_type = "rollbackCoupon"
    action = "redeemCoupon"
    not_found = "CouponNotFound"
    not_running = "CouponPartOfNotRunningCampaign"
    not_triggered = "CouponPartOfNotTriggeredCampaign"
    kinds = ("coupon", "promocode")

    def stamp(self, code: CodeFacts) -> dict[str, Any]:
        return {"triggeredByCoupon": code.pk} if code.kind == "coupon" else {}

    def load(self, facts: Any, *, lock: bool) -> Loaded:
        return redemption.load_coupons(facts, lock=lock)

    def content(self, ctx: Any, work: Any) -> dict[str, Any]:
        if "coupons" not in ctx.response_content:
            return {}
        return {"coupons": redemption.coupons_content(work.loaded.get(self.condition), ctx.profile)}


class ReferralScope(_Scope):
    condition = "referralValid"
    root = "Referral"
    accept_type, reject_type = "acceptReferral", "rejectReferral"
    rollback_type = "rollbackReferral"
    action = "redeemReferral"
    not_found = "ReferralNotFound"
    not_running = "ReferralPartOfNotRunningCampaign"
    not_triggered = "ReferralPartOfNotTriggeredCampaign"
    kinds = ("referral",)

    def load(self, facts: Any, *, lock: bool) -> Loaded:
        return redemption.load_referral(facts, lock=lock)

    def content(self, ctx: Any, work: Any) -> dict[str, Any]:
        if "referral" not in ctx.response_content:
            return {}
        found = redemption.referral_content(work.loaded.get(self.condition))
        return {"referral": found} if found is not None else {}


def _campaigns(root: PlanGroup) -> dict[int, PlanCampaign]:
    """The plan's campaigns, by ID (the tree is small: walked only when a code needs an answer)."""
    found: dict[int, PlanCampaign] = {}
    stack: list[PlanGroup | PlanCampaign] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, PlanCampaign):
            found[node.id] = node
        else:
            stack.extend(node.children)
    return found


def _answer(env: Env, campaign: PlanCampaign, effect_type: str, props: dict[str, Any]) -> None:
    """An effect outside any rule run: the envelope names the code's campaign (or none) and its first rule."""
    rule = campaign.rules[0] if campaign.rules else _NO_RULE
    env.effects.append(Emitted(campaign, rule.index, rule.title, effect_type, props))


# ---- conditions and attributes -----------------------------------------------------------------------------

COUPONS = CouponScope()
REFERRALS = ReferralScope()
register_scope(COUPONS)
register_scope(REFERRALS)


def _validity(scope: _Scope) -> Any:
    def build(_args: list[Any]) -> Any:
        def valid(env: Env) -> bool:
            code = env.scoped.get(scope.root)
            return code is not None and not scope.check(env, code)

        return valid

    return build


register_function(
    Function(
        "couponValid",
        (),
        T.BOOLEAN,
        _validity(COUPONS),
        "Coupon code is valid",
        "The session carries a code of this campaign (a coupon, or an issued promo code of a group the "
        "campaign accepts) that may be used now; it is redeemed when the session closes.",
        literal_args=True,
    )
)
register_function(
    Function(
        "referralValid",
        (),
        T.BOOLEAN,
        _validity(REFERRALS),
        "Referral code is valid",
        "The session's referral code belongs to this campaign and may be used by this customer now.",
        literal_args=True,
    )
)
register_attribute(
    Attribute("Coupon", "Value", T.STRING, lambda c: c.typed, "Coupon code"),
    Attribute("Coupon", "Attributes", T.ANY, lambda c: c.attributes, "Coupon attribute", nested=True),
    Attribute("Referral", "Code", T.STRING, lambda c: c.typed, "Referral code"),
    Attribute("Referral", "Advocate", T.STRING, lambda c: c.advocate, "Advocate's integration ID"),
    Attribute("Referral", "Attributes", T.ANY, lambda c: c.attributes, "Referral attribute", nested=True),
)
register_entity(Entity("Coupon", lambda f: [], "CampaignLimitReached", scope="Coupon"))
register_entity(Entity("Referral", lambda f: [], "CampaignLimitReached", scope="Referral"))
register_budget_action("redeemCoupon", "Coupon redemptions")
register_budget_action("redeemReferral", "Referral redemptions")
register_budget_action("createCoupon", "Coupons created by rules", kept_on_rollback=True)
register_budget_action("createReferral", "Referral codes created by rules", kept_on_rollback=True)
register_budget_action("reserveCoupon", "Coupon reservations made by rules")


# ---- effects -----------------------------------------------------------------------------------------------


def _committing(env: Env) -> bool:
    """Codes are made when what triggers them is committed: a closing session, an event, a profile update."""
    session = env.facts.session
    return session is None or session.state == "closed"


def _whole(run: Any, env: Env, default: int, what: str) -> int:
    if run is None:
        return default
    number = to_decimal(run(env))
    if number != number.to_integral_value() or number < 0:
        raise RuleError(f"{what} must be a whole number of at least 0, not {number}")
    return int(number)


def _create_coupon(runs: list[Any]) -> Any:
    recipient_run, limit_run, days_run = runs

    def run(env: Env) -> None:
        if not _committing(env):
            return
        profile = env.facts.profile
        recipient = as_text(recipient_run, env) if recipient_run is not None else ""
        if not recipient and profile is not None:
            recipient = profile.integration_id
        if not recipient:
            raise RuleError("a created coupon needs a customer: the session has none")
        limit = _whole(limit_run, env, 1, "the usage limit")
        days = _whole(days_run, env, 0, "the days of validity")
        value = normalize(random_code(COUPON_PATTERN, DEFAULT_ALPHABET), env.facts.app.code_case)
        expiry = env.facts.now + dt.timedelta(days=days) if days else None
        env.emit(
            "couponCreated",
            {"value": value, "profileId": recipient},
            actions=("createCoupon",),
            data={
                "usage_limit": limit,
                "expiry": expiry.isoformat() if expiry else None,
                "recipient": recipient,
                # An advocate's reward names the referral that earned it.
                "referral": env.scoped["Referral"].pk if "Referral" in env.scoped else None,
            },
        )

    return run


def _create_referral(runs: list[Any]) -> Any:
    (limit_run,) = runs

    def run(env: Env) -> None:
        if not _committing(env):
            return
        profile = env.facts.profile
        if profile is None:
            raise RuleError("a referral code needs an advocate: the session has no customer")
        value = normalize(random_code(REFERRAL_PATTERN, DEFAULT_ALPHABET), env.facts.app.code_case)
        env.emit(
            "referralCreated",
            {"value": value},
            actions=("createReferral",),
            data={
                "advocate": profile.integration_id,
                "usage_limit": _whole(limit_run, env, 1, "the usage limit"),
            },
        )

    return run


def _reserve_coupon(_runs: list[Any]) -> Any:
    def run(env: Env) -> None:
        code = env.scoped.get("Coupon")
        if code is None or code.kind != "coupon":
            raise RuleError("there is no coupon to reserve: use it in a rule that checks couponValid")
        profile = env.facts.profile
        if profile is None:
            raise RuleError("a reservation needs a customer: the session has none")
        limit = code.reservation_limit
        if not code.reserved and limit is not None and code.reservation_counter >= limit:
            env.problem(f"the coupon's reservation limit of {limit} is reached")
            return
        env.emit(
            "reserveCoupon",
            {
                "couponValue": code.typed,
                "profileIntegrationId": profile.integration_id,
                "isNewReservation": not code.reserved,
            },
            actions=("reserveCoupon",) if not code.reserved else (),
            data={"coupon": code.pk, "profile": profile.pk},
        )

    return run


register_effect(
    plain_effect(
        "createCoupon",
        (T.STRING, T.NUMBER, T.NUMBER),
        _create_coupon,
        optional=3,
        label="Create a coupon",
        help="A personal coupon of this campaign for the customer (or the recipient given), with a usage "
        "limit (1 when left out) and days of validity (none: never expires). Made when the session closes.",
    )
)
register_effect(
    plain_effect(
        "createReferral",
        (T.NUMBER,),
        _create_referral,
        optional=1,
        label="Create a referral code",
        help="A referral code of this campaign for the session's customer to share, usable that many times "
        "(1 when left out, 0: unlimited). Made when the session closes.",
    )
)
register_effect(
    plain_effect(
        "reserveCoupon",
        (),
        _reserve_coupon,
        label="Reserve the coupon",
        help="Reserve the coupon being checked for the customer (it shows in their codes), within the "
        "coupon's reservation limit.",
    )
)
