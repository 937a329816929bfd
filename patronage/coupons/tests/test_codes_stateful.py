"""Codes at checkout, property-based: random sequences of carts carrying codes, closes, cancels, returns,
reopens and promo-code redemptions through ``promo_code_redeem``, over the sessions of two customers,
through the Integration API; each step held against a plain-Python reading (``Model``) of which codes are
accepted or rejected (and why), what a close redeems, what a cancel or a reopen rolls back (and a return
does not), and the counters that follow.

The codes:
- ``SAVE2``: a coupon of the **Coupons** campaign (10 off with ``couponValid``), usable ``COUPON_LIMIT``
  times; typed in either case (the application ignores case; the effects answer with what was typed);
- ``PROMO-1``: a promo code of a mailing's group the **Coupons** campaign accepts, issued to ann: usable
  once, by her, at a checkout or through the promo-code API, whichever comes first;
- ``REF-ZED``: zed's referral code of the **Friends** campaign (5 off with ``referralValid``), usable
  ``REFERRAL_LIMIT`` times;
- ``NOBODYS-1``: a code nobody has: always rejected, an answer of no campaign, never redeemed;
- ``WELCOME``: a shared coupon of the **Welcome** campaign (3 off), any number of uses, but once per
  customer (a Coupon+Profile ``redeemCoupon`` budget of 1): a cancel or a reopen gives their use back.

Each example runs in a savepoint rolled back at its end; the application, its campaigns and codes are shared.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from patronage.campaigns.models import BudgetCounter
from patronage.campaigns.tests.helpers import rule as campaign_rule
from patronage.campaigns.tests.helpers import running_campaign
from patronage.core import clock
from patronage.core.errors import Conflict
from patronage.coupons.models import CampaignCodeSource, Coupon, Redemption, Referral
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import PromoCode, PromoCodeGroup
from patronage.promocodes.services import promo_code_redeem
from patronage.testing.api import IntegrationClient
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db

COUPON_LIMIT = 2
REFERRAL_LIMIT = 2
COUPON, PROMO, REFERRAL, UNKNOWN, WELCOME = "SAVE2", "PROMO-1", "REF-ZED", "NOBODYS-1", "WELCOME"
CUSTOMERS = ("ann", "bob")
CART: list[dict[str, Any]] = [
    {"name": "Mug", "sku": "MUG", "quantity": 2, "price": 10},
    {"name": "Beans", "sku": "BEAN", "quantity": 1, "price": 30},
]  # 50: room for every discount at once
UNITS = [line["quantity"] for line in CART]
OPEN, CLOSED, RETURNED, CANCELLED = "open", "closed", "partially_returned", "cancelled"
CODE_EFFECTS = {"acceptCoupon", "rejectCoupon", "acceptReferral", "rejectReferral"}
ROLLBACKS = {"rollbackCoupon", "rollbackReferral"}
PROPERTY = settings(
    max_examples=25,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Answer = tuple[str, str, str]  # effect type, code as typed, rejection reason ("" when none)


@dataclass
class Session:
    customer: str
    integration_id: str
    state: str = ""  # "": not created yet
    coupon_codes: list[str] = field(default_factory=list)
    referral_code: str = ""
    returned: list[int] = field(default_factory=lambda: [0] * len(UNITS))
    redeemed: list[tuple[str, str]] = field(default_factory=list)  # (kind, typed) a close counted
    close_answer: list[Answer] = field(default_factory=list)


@dataclass
class Model:
    """Plain Python: which codes may be used now, and what the counters hold."""

    sessions: list[Session]
    coupon_used: int = 0
    referral_used: int = 0
    promo_by: str = ""  # "": unused; "api": redeemed through the API; else the session that redeemed it
    welcomed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CUSTOMERS, 0))

    def evaluate(self, session: Session) -> list[Answer]:
        answers: list[Answer] = []
        for typed in session.coupon_codes:
            if typed == UNKNOWN:
                why = "CouponNotFound"
            elif typed == WELCOME:
                why = "ProfileLimitReached" if self.welcomed[session.customer] >= 1 else ""
            elif typed.upper() == COUPON:
                why = "CampaignLimitReached" if self.coupon_used >= COUPON_LIMIT else ""
            elif session.customer != "ann":
                why = "CouponRecipientDoesNotMatch"
            else:
                why = "CampaignLimitReached" if self.promo_by else ""
            answers.append(("rejectCoupon" if why else "acceptCoupon", typed, why))
        if session.referral_code:
            why = "ReferralLimitReached" if self.referral_used >= REFERRAL_LIMIT else ""
            answers.append(("rejectReferral" if why else "acceptReferral", session.referral_code, why))
        return sorted(answers)

    @staticmethod
    def discounts(answers: list[Answer]) -> list[Decimal]:
        worth = {WELCOME: Decimal(3), REFERRAL: Decimal(5)}
        return sorted(
            worth.get(typed.upper(), Decimal(10))
            for kind, typed, _ in answers
            if kind in ("acceptCoupon", "acceptReferral")
        )

    def commit(self, session: Session, answers: list[Answer]) -> None:
        for kind, typed, _ in answers:
            if kind == "acceptReferral":
                self.referral_used += 1
                session.redeemed.append(("referral", typed))
            elif kind == "acceptCoupon" and typed == WELCOME:
                self.welcomed[session.customer] += 1
                session.redeemed.append(("coupon", typed))
            elif kind == "acceptCoupon" and typed.upper() == COUPON:
                self.coupon_used += 1
                session.redeemed.append(("coupon", typed))
            elif kind == "acceptCoupon":
                self.promo_by = session.integration_id
                session.redeemed.append(("promocode", typed))

    def roll_back(self, session: Session) -> list[tuple[str, str]]:
        """A cancel of a closed (or partly returned) session, or a reopen: every code it redeemed."""
        effects = []
        for kind, typed in session.redeemed:
            if kind == "referral":
                self.referral_used -= 1
                effects.append(("rollbackReferral", typed))
                continue
            if typed == WELCOME:
                self.welcomed[session.customer] -= 1
            elif kind == "coupon":
                self.coupon_used -= 1
            else:
                self.promo_by = ""
            effects.append(("rollbackCoupon", typed))
        session.redeemed = []
        return sorted(effects)


def code_answers(body: dict[str, Any]) -> list[Answer]:
    return sorted(
        (e["effectType"], e["props"]["value"], e["props"].get("rejectionReason", ""))
        for e in body["effects"]
        if e["effectType"] in CODE_EFFECTS
    )


def discounts(body: dict[str, Any]) -> list[Decimal]:
    return sorted(
        Decimal(str(e["props"]["value"])) for e in body["effects"] if e["effectType"] == "setDiscount"
    )


def rollbacks(body: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (e["effectType"], e["props"]["value"]) for e in body["effects"] if e["effectType"] in ROLLBACKS
    )


class CodesMachine(RuleBasedStateMachine):
    api: IntegrationClient
    application: Application
    coupon: Coupon
    welcome: Coupon
    promo: PromoCode
    referral: Referral

    def __init__(self) -> None:
        super().__init__()
        self.model = Model([])
        self.atomic = transaction.atomic()
        self.atomic.__enter__()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # ---- helpers -----------------------------------------------------------------------------------------

    def _pick(self, data: st.DataObject, *states: str) -> Session:
        eligible = [s for s in self.model.sessions if s.state in states]
        return data.draw(st.sampled_from(eligible), label="session")

    def _has(self, *states: str) -> bool:
        return any(s.state in states for s in self.model.sessions)

    def _put(self, session: Session, **fields: Any) -> dict[str, Any]:
        response = self.api.session(session.integration_id, **fields)
        assert response.status_code == 200, response.content
        return response.json()

    # ---- steps -------------------------------------------------------------------------------------------

    @rule(
        data=st.data(),
        customer=st.sampled_from(CUSTOMERS),
        fresh=st.booleans(),
        coupon=st.sampled_from(["", COUPON, COUPON.lower()]),
        promo=st.booleans(),
        welcome=st.booleans(),
        unknown=st.booleans(),
        referral=st.sampled_from(["", REFERRAL, REFERRAL.lower()]),
        state=st.sampled_from([OPEN, CLOSED]),
    )
    def carry(
        self,
        data: st.DataObject,
        customer: str,
        fresh: bool,
        coupon: str,
        promo: bool,
        welcome: bool,
        unknown: bool,
        referral: str,
        state: str,
    ) -> None:
        """Given a customer's new cart (or one of their open ones), when it carries these codes (and closes in
        the same request, or not), then each is accepted or rejected as the model says, each accepted one
        gives its discount, and a close redeems those accepted."""
        mine = [s for s in self.model.sessions if s.customer == customer and s.state == OPEN]
        if fresh or not mine:
            session = Session(customer, f"s{len(self.model.sessions)}")
            self.model.sessions.append(session)
        else:
            session = data.draw(st.sampled_from(mine), label="session")
        wanted = (coupon, PROMO if promo else "", WELCOME if welcome else "", UNKNOWN if unknown else "")
        session.coupon_codes = [c for c in wanted if c]
        session.referral_code = referral
        body = self._put(
            session,
            profileId=session.customer,
            cartItems=CART,
            couponCodes=session.coupon_codes,
            referralCode=referral,
            state=state,
        )
        expected = self.model.evaluate(session)
        assert code_answers(body) == expected
        assert discounts(body) == self.model.discounts(expected)
        assert not rollbacks(body)
        session.state = state
        if state == CLOSED:
            self.model.commit(session, expected)
            session.returned, session.close_answer = [0] * len(UNITS), expected

    @precondition(lambda self: self._has(OPEN))
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        """When an open cart closes, then its codes are checked again, and those accepted are redeemed."""
        session = self._pick(data, OPEN)
        body = self._put(session, state="closed")
        expected = self.model.evaluate(session)
        assert code_answers(body) == expected
        assert discounts(body) == self.model.discounts(expected)
        self.model.commit(session, expected)
        session.state, session.returned, session.close_answer = CLOSED, [0] * len(UNITS), expected

    @precondition(lambda self: self._has(CLOSED))
    @rule(data=st.data())
    def close_again(self, data: st.DataObject) -> None:
        """When a closed session is closed again (a retry), then it answers what its close answered and
        redeems nothing more (the invariants hold the counters)."""
        session = self._pick(data, CLOSED)
        assert code_answers(self._put(session, state="closed")) == session.close_answer

    @precondition(lambda self: self._has(OPEN, CLOSED, RETURNED))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """When a session is cancelled, then the codes its close redeemed are rolled back, and only those."""
        session = self._pick(data, OPEN, CLOSED, RETURNED)
        body = self._put(session, state="cancelled")
        assert rollbacks(body) == self.model.roll_back(session)
        assert not code_answers(body)
        session.state = CANCELLED

    @precondition(lambda self: self._has(CLOSED))
    @rule(data=st.data())
    def reopen(self, data: st.DataObject) -> None:
        """When a closed session is reopened, then its codes are rolled back, usable again."""
        session = self._pick(data, CLOSED)
        response = self.api.put(f"/v2/customer_sessions/{session.integration_id}/reopen")
        assert response.status_code == 200, response.content
        assert rollbacks(response.json()) == self.model.roll_back(session)
        session.state = OPEN

    @precondition(
        lambda self: any(s.state in (CLOSED, RETURNED) and s.returned != UNITS for s in self.model.sessions)
    )
    @rule(data=st.data())
    def return_items(self, data: st.DataObject) -> None:
        """When items of an order come back, then no code is rolled back (only per-item discounts are)."""
        eligible = [s for s in self.model.sessions if s.state in (CLOSED, RETURNED) and s.returned != UNITS]
        session = data.draw(st.sampled_from(eligible), label="session")
        lines = [p for p, units in enumerate(UNITS) if session.returned[p] < units]
        position = data.draw(st.sampled_from(lines), label="position")
        body = {"return": {"returnedCartItems": [{"position": position, "quantity": 1}]}}
        response = self.api.post(f"/v2/customer_sessions/{session.integration_id}/returns", body)
        assert response.status_code == 201, response.content
        assert not rollbacks(response.json())
        session.returned[position] += 1
        session.state = RETURNED

    @rule(customer=st.sampled_from(CUSTOMERS))
    def redeem_promo_code(self, customer: str) -> None:
        """When the promo code is redeemed through the promo-code API, then only ann, and only while it is
        unused (by a checkout or the API), succeeds."""
        profile = CustomerProfile.objects.get(
            environment=self.application.environment, integration_id=customer
        )
        if customer == "ann" and not self.model.promo_by:
            promo_code_redeem(environment=self.application.environment, code=PROMO, profile=profile)
            self.model.promo_by = "api"
        else:
            with pytest.raises(Conflict):
                promo_code_redeem(environment=self.application.environment, code=PROMO, profile=profile)

    # ---- after every step --------------------------------------------------------------------------------

    @invariant()
    def coupon_counts_its_standing_redemptions(self) -> None:
        counter = Coupon.objects.get(pk=self.coupon.pk).usage_counter
        rows = Redemption.objects.filter(coupon=self.coupon, rolled_back_at=None).count()
        assert counter == rows == self.model.coupon_used <= COUPON_LIMIT

    @invariant()
    def promo_code_is_redeemed_iff_the_model_says_so(self) -> None:
        promo = PromoCode.objects.select_related("redeemed_by").get(pk=self.promo.pk)
        assert (promo.redeemed_at is not None) == bool(self.model.promo_by)
        if self.model.promo_by:
            assert promo.redeemed_by is not None and promo.redeemed_by.integration_id == "ann"
        rows = Redemption.objects.filter(promo_code_id=self.promo.pk, rolled_back_at=None).count()
        assert rows == (1 if self.model.promo_by not in ("", "api") else 0)

    @invariant()
    def referral_counts_its_standing_redemptions(self) -> None:
        counter = Referral.objects.get(pk=self.referral.pk).usage_counter
        rows = Redemption.objects.filter(referral=self.referral, rolled_back_at=None).count()
        assert counter == rows == self.model.referral_used <= REFERRAL_LIMIT

    @invariant()
    def a_shared_code_is_used_once_per_customer(self) -> None:
        used = Counter(
            Redemption.objects.filter(coupon=self.welcome, rolled_back_at=None).values_list(
                "profile__integration_id", flat=True
            )
        )
        assert {c: used[c] for c in CUSTOMERS} == self.model.welcomed
        assert all(n <= 1 for n in used.values())
        counters = BudgetCounter.objects.filter(campaign_id=self.welcome.campaign_id, action="redeemCoupon")
        assert sum((c.counter for c in counters), Decimal(0)) == sum(self.model.welcomed.values())
        assert Coupon.objects.get(pk=self.welcome.pk).usage_counter == sum(self.model.welcomed.values())

    @invariant()
    def each_session_holds_what_its_close_redeemed(self) -> None:
        standing = Counter(
            Redemption.objects.filter(application=self.application, rolled_back_at=None).values_list(
                "session__integration_id", "kind", "code"
            )
        )
        expected = Counter(
            (s.integration_id, kind, typed) for s in self.model.sessions for kind, typed in s.redeemed
        )
        assert standing == expected


@pytest.fixture
def codes(live_app: Application, api: IntegrationClient) -> dict[str, Any]:
    coupons = running_campaign(
        live_app,
        "Coupons",
        campaign_rule("Ten off", ["and", ["couponValid"]], ["setDiscount", "Coupon", 10]),
        features=["coupons"],
    )
    friends = running_campaign(
        live_app,
        "Friends",
        campaign_rule("Friend", ["and", ["referralValid"]], ["setDiscount", "Friend", 5]),
        features=["referrals"],
    )
    welcome = running_campaign(
        live_app,
        "Welcome",
        campaign_rule("Welcome", ["and", ["couponValid"]], ["setDiscount", "Welcome", 3]),
        features=["coupons"],
        limits=[{"action": "redeemCoupon", "limit": 1, "entities": ["Coupon", "Profile"]}],
    )
    group = PromoCodeGroup.objects.create(environment=live_app.environment, name="Mailing")
    CampaignCodeSource.objects.create(campaign=coupons, group=group)
    for customer in CUSTOMERS:  # both customers exist before the examples (the API redeems for a profile)
        assert api.session(f"hello-{customer}", profileId=customer).status_code == 200
    ann = CustomerProfile.objects.get(environment=live_app.environment, integration_id="ann")
    return {
        "coupon": Coupon.objects.create(
            application=live_app, campaign=coupons, value=COUPON, usage_limit=COUPON_LIMIT
        ),
        "welcome": Coupon.objects.create(
            application=live_app, campaign=welcome, value=WELCOME, usage_limit=0
        ),
        "promo": PromoCode.objects.create(
            environment=live_app.environment, group=group, code=PROMO, issued_to=ann, issued_at=clock.now()
        ),
        "referral": Referral.objects.create(
            application=live_app,
            campaign=friends,
            code=REFERRAL,
            advocate_integration_id="zed",
            usage_limit=REFERRAL_LIMIT,
        ),
    }


def test_codes_at_checkout_do_what_the_model_says(
    api: IntegrationClient, live_app: Application, codes: dict[str, Any]
) -> None:
    class Machine(CodesMachine):
        pass

    Machine.api, Machine.application = api, live_app
    Machine.coupon, Machine.promo, Machine.referral = codes["coupon"], codes["promo"], codes["referral"]
    Machine.welcome = codes["welcome"]
    run_state_machine_as_test(Machine, settings=PROPERTY)
