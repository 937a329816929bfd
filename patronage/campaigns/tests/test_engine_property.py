"""The engine, property-based: random sequences of cart updates, closes, cancels, returns and reopens over
a few sessions of two customers, through the Integration API, each step held against a plain-Python
reading of the same campaigns (``Model``): the effects answered, the budget counters and each customer's
figures (orders, discounted orders and the discounts they kept, read from the effect ledger).

The campaigns, in evaluation order (stackable; no cascading, no flattening, no partial discounts):
- **Tenth**: 10% of the cart, within a campaign money budget of ``MONEY_LIMIT``: a discount the budget
  cannot cover whole is dropped;
- **Five**: 5 off, at most ``PER_CUSTOMER`` times per customer (a Profile budget of discount effects);
- **Lines**: 1 off each cart line (no budget): what a return rolls back, a share per returned unit.

Each example runs in a savepoint rolled back at its end; the application and its campaigns are shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
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

from patronage.campaigns.models import BudgetCounter, Campaign, EffectRecord
from patronage.campaigns.tests.helpers import rule as campaign_rule
from patronage.campaigns.tests.helpers import running_campaign
from patronage.customers.models import CustomerProfile
from patronage.testing.api import IntegrationClient
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db

ZERO = Decimal(0)
MONEY_LIMIT = Decimal(30)
PER_CUSTOMER = 2
CUSTOMERS = ("ann", "bob")
SLOTS = (("ann", "a"), ("ann", "b"), ("bob", "c"))  # session slots: their customer and id prefix
PRICES = (Decimal("0.99"), Decimal("2.50"), Decimal(4), Decimal(10), Decimal("19.99"))
OPEN, CLOSED, RETURNED, CANCELLED = "open", "closed", "partially_returned", "cancelled"
PROPERTY = settings(
    max_examples=40,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Cart = list[tuple[Decimal, int]]  # (unit price, quantity) per line
Effect = tuple[str, str, Decimal, int | None]  # campaign, effect type, value, cart position


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class Granted:
    """A discount a close committed, as the ledger holds it."""

    campaign: str
    amount: Decimal
    position: int | None = None
    units: int = 1
    returned: int = 0
    released: Decimal = ZERO
    standing: bool = True


@dataclass
class Session:
    customer: str
    integration_id: str
    state: str = ""  # "": not created yet
    cart: Cart = field(default_factory=list)
    returned: dict[int, int] = field(default_factory=dict)
    granted: list[Granted] = field(default_factory=list)
    close_answer: list[Effect] = field(default_factory=list)


@dataclass
class Model:
    """Plain Python: what the campaigns should do, and what the budgets should hold."""

    sessions: list[Session]
    money_used: Decimal = ZERO
    five_used: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CUSTOMERS, 0))

    def evaluate(self, session: Session) -> list[Effect]:
        left = sum((price * quantity for price, quantity in session.cart), ZERO)
        effects: list[Effect] = []
        tenth = min(cents(left / 10), left)
        if tenth > 0 and tenth <= MONEY_LIMIT - self.money_used:
            effects.append(("Tenth", "setDiscount", tenth, None))
            left -= tenth
        five = min(Decimal(5), left)
        if five > 0 and self.five_used[session.customer] < PER_CUSTOMER:
            effects.append(("Five", "setDiscount", five, None))
            left -= five
        for position, (price, quantity) in enumerate(session.cart):
            line = min(Decimal(1), price * quantity, left)
            if line > 0:
                effects.append(("Lines", "setDiscountPerItem", line, position))
                left -= line
        return effects

    def commit(self, session: Session, effects: list[Effect]) -> None:
        for campaign, _, value, position in effects:
            units = session.cart[position][1] if position is not None else 1
            session.granted.append(Granted(campaign, value, position, units))
            self._consume(session, campaign, value, 1)

    def _consume(self, session: Session, campaign: str, money: Decimal, count: int) -> None:
        if campaign == "Tenth":
            self.money_used += money
        elif campaign == "Five":
            self.five_used[session.customer] += count

    def roll_back(self, session: Session) -> list[Effect]:
        """A cancel of a closed (or partly returned) session, or a reopen: everything still standing."""
        effects = []
        for granted in session.granted:
            if not granted.standing:
                continue
            value = granted.amount - granted.released
            granted.released, granted.standing = granted.amount, False
            self._consume(session, granted.campaign, -value, -1)
            effects.append(self._rollback(granted, value))
        return effects

    def give_back(self, session: Session, position: int, count: int) -> list[Effect]:
        """A return: the returned units' share of their line's discount."""
        effects = []
        for granted in session.granted:
            if not granted.standing or granted.position != position:
                continue
            taking = min(count, granted.units - granted.returned)
            if taking <= 0:
                continue
            granted.returned += taking
            if granted.returned >= granted.units:
                value = granted.amount - granted.released
                granted.standing = False
            else:
                value = cents(granted.amount * taking / granted.units)
            granted.released += value
            effects.append(self._rollback(granted, value))
        return effects

    @staticmethod
    def _rollback(granted: Granted, value: Decimal) -> Effect:
        return (granted.campaign, "rollbackDiscount", value, granted.position)


def answered(body: dict[str, Any], names: dict[int, str]) -> list[Effect]:
    out = []
    for effect in body["effects"]:
        props = effect["props"]
        position = props.get("position", props.get("cartItemPosition"))
        out.append(
            (names[effect["campaignId"]], effect["effectType"], Decimal(str(props["value"])), position)
        )
    return out


class EngineMachine(RuleBasedStateMachine):
    api: IntegrationClient
    application: Application
    campaigns: dict[str, Campaign]

    def __init__(self) -> None:
        super().__init__()
        self.names = {c.pk: name for name, c in self.campaigns.items()}
        self.generation = 0
        self.model = Model([Session(customer, f"{prefix}0") for customer, prefix in SLOTS])
        self.atomic = transaction.atomic()
        self.atomic.__enter__()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # ---- helpers -----------------------------------------------------------------------------------------

    def _pick(self, data: st.DataObject, *states: str) -> int:
        eligible = [i for i, s in enumerate(self.model.sessions) if s.state in states]
        return data.draw(st.sampled_from(eligible), label="session")

    def _has(self, *states: str) -> bool:
        return any(s.state in states for s in self.model.sessions)

    def _put(self, session: Session, **fields: Any) -> list[Effect]:
        if session.state == "":
            fields["profileId"] = session.customer
        response = self.api.session(session.integration_id, **fields)
        assert response.status_code == 200, response.content
        return answered(response.json(), self.names)

    # ---- steps -------------------------------------------------------------------------------------------

    @precondition(lambda self: self._has("", OPEN, CANCELLED))
    @rule(
        data=st.data(),
        cart=st.lists(st.tuples(st.sampled_from(PRICES), st.integers(1, 3)), max_size=3),
    )
    def update(self, data: st.DataObject, cart: Cart) -> None:
        index = self._pick(data, "", OPEN, CANCELLED)
        session = self.model.sessions[index]
        if session.state == CANCELLED:  # the slot starts a new session
            self.generation += 1
            customer, prefix = SLOTS[index]
            session = self.model.sessions[index] = Session(customer, f"{prefix}{self.generation}")
        got = self._put(
            session,
            cartItems=[{"sku": f"P{p}", "name": "x", "price": float(p), "quantity": q} for p, q in cart],
        )
        session.state, session.cart = OPEN, list(cart)
        assert got == self.model.evaluate(session)

    @precondition(lambda self: self._has(OPEN))
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        session = self.model.sessions[self._pick(data, OPEN)]
        got = self._put(session, state="closed")
        expected = self.model.evaluate(session)
        assert got == expected
        self.model.commit(session, expected)
        session.state, session.close_answer, session.returned = CLOSED, expected, {}

    @precondition(lambda self: self._has(CLOSED))
    @rule(data=st.data())
    def close_again(self, data: st.DataObject) -> None:
        session = self.model.sessions[self._pick(data, CLOSED)]
        assert self._put(session, state="closed") == session.close_answer

    @precondition(lambda self: self._has(OPEN, CLOSED, RETURNED))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        session = self.model.sessions[self._pick(data, OPEN, CLOSED, RETURNED)]
        got = self._put(session, state="cancelled")
        assert got == ([] if session.state == OPEN else self.model.roll_back(session))
        session.state = CANCELLED

    @precondition(lambda self: self._has(CLOSED))
    @rule(data=st.data())
    def reopen(self, data: st.DataObject) -> None:
        session = self.model.sessions[self._pick(data, CLOSED)]
        response = self.api.put(f"/v2/customer_sessions/{session.integration_id}/reopen")
        assert response.status_code == 200, response.content
        assert answered(response.json(), self.names) == self.model.roll_back(session)
        session.state = OPEN

    @precondition(
        lambda self: any(
            s.state in (CLOSED, RETURNED) and any(q > s.returned.get(p, 0) for p, (_, q) in enumerate(s.cart))
            for s in self.model.sessions
        )
    )
    @rule(data=st.data())
    def return_units(self, data: st.DataObject) -> None:
        eligible = [
            i
            for i, s in enumerate(self.model.sessions)
            if s.state in (CLOSED, RETURNED)
            and any(q > s.returned.get(p, 0) for p, (_, q) in enumerate(s.cart))
        ]
        session = self.model.sessions[data.draw(st.sampled_from(eligible), label="session")]
        lines = [p for p, (_, q) in enumerate(session.cart) if q > session.returned.get(p, 0)]
        position = data.draw(st.sampled_from(lines), label="position")
        left = session.cart[position][1] - session.returned.get(position, 0)
        count = data.draw(st.integers(1, left), label="units")
        body = {"return": {"returnedCartItems": [{"position": position, "quantity": count}]}}
        response = self.api.post(f"/v2/customer_sessions/{session.integration_id}/returns", body)
        assert response.status_code == 201, response.content
        assert answered(response.json(), self.names) == self.model.give_back(session, position, count)
        session.returned[position] = session.returned.get(position, 0) + count
        session.state = RETURNED

    # ---- after every step --------------------------------------------------------------------------------

    @invariant()
    def budgets_hold_what_the_model_says(self) -> None:
        tenth, five = self.campaigns["Tenth"], self.campaigns["Five"]
        money = {c.entity_key: c.counter for c in BudgetCounter.objects.filter(campaign=tenth)}
        assert money.get("", ZERO) == self.model.money_used <= MONEY_LIMIT
        profiles = dict(
            CustomerProfile.objects.filter(integration_id__in=CUSTOMERS).values_list("integration_id", "pk")
        )
        counts = {
            c.entity_key: c.counter
            for c in BudgetCounter.objects.filter(campaign=five, action="setDiscountEffect")
        }
        for customer, used in self.model.five_used.items():
            key = f"Profile={profiles[customer]}" if customer in profiles else "(no profile yet)"
            assert counts.get(key, ZERO) == used <= PER_CUSTOMER

    @invariant()
    def customer_figures_come_from_the_ledger(self) -> None:
        for customer in CUSTOMERS:
            mine = [s for s in self.model.sessions if s.customer == customer]
            orders = [s for s in mine if s.state in (CLOSED, RETURNED)]
            discounted = [s for s in orders if any(g.standing for g in s.granted)]
            kept = sum((g.amount - g.released for s in mine for g in s.granted), ZERO)
            profile = CustomerProfile.objects.filter(integration_id=customer).first()
            if profile is None:
                assert not orders
                continue
            records = list(EffectRecord.objects.filter(profile=profile))
            assert profile.closed_sessions == len(orders)
            assert len({r.session_id for r in records if r.rolled_back_at is None}) == len(discounted)
            assert sum((r.amount - r.released for r in records), ZERO) == kept


@pytest.fixture
def campaigns(live_app: Application) -> dict[str, Campaign]:
    always = ["and", True]
    return {
        "Tenth": running_campaign(
            live_app,
            "Tenth",
            campaign_rule("Tenth", always, ["setDiscount", "Tenth", ["*", [".", "Session", "Total"], 0.1]]),
            limits=[{"action": "setDiscount", "limit": str(MONEY_LIMIT), "entities": []}],
        ),
        "Five": running_campaign(
            live_app,
            "Five",
            campaign_rule("Five", always, ["setDiscount", "Five", 5]),
            limits=[{"action": "setDiscountEffect", "limit": PER_CUSTOMER, "entities": ["Profile"]}],
        ),
        "Lines": running_campaign(
            live_app,
            "Lines",
            campaign_rule(
                "Lines", always, ["setDiscountPerItem", "Line", [".", "Session", "CartItems"], ["Item"], 1]
            ),
        ),
    }


def test_the_engine_does_what_the_model_says(
    api: IntegrationClient, live_app: Application, campaigns: dict[str, Campaign]
) -> None:
    class Machine(EngineMachine):
        pass

    Machine.api, Machine.application, Machine.campaigns = api, live_app, campaigns
    run_state_machine_as_test(Machine, settings=PROPERTY)
