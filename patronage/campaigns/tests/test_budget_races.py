"""Campaign budgets under real parallel closes: threads with their own PostgreSQL connections race to
close sessions against one budget, which grants exactly what it holds and never more; and two requests
for one customer, one holding its locks past ``PATRONAGE_LOCK_WAIT_MS``, answer 409 rather than queue."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from patronage.campaigns.models import BudgetCounter, Campaign, EffectRecord
from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.customer_sessions.models import CustomerSession
from patronage.customer_sessions.services import SessionInput, session_update
from patronage.customers.models import CustomerProfile
from patronage.testing.api import IntegrationClient
from patronage.testing.factories import make_api_key, make_application
from patronage.testing.threads import race
from patronage.workspace.models import Application

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 30
CART = [{"sku": "A", "name": "A", "quantity": 1, "price": 40}]


@pytest.fixture
def app() -> Application:
    return make_application(environment="live")


@pytest.fixture
def patient(settings: Any) -> None:
    # Thirty closes queue on one budget counter: each waits its turn instead of answering 409.
    settings.PATRONAGE_LOCK_WAIT_MS = 60_000


def close_all(key: str, count: int) -> list[Any]:
    """Open ``count`` sessions of as many customers, then close them all at the same instant."""
    api = IntegrationClient(key)
    for i in range(count):
        assert api.session(f"s{i}", profileId=f"c{i}", cartItems=CART).status_code == 200
    return race(count, lambda i: IntegrationClient(key).session(f"s{i}", state="closed"))


def granted(results: list[Any]) -> list[float]:
    assert [r.status_code for r in results] == [200] * len(results), [
        r.content for r in results if r.status_code != 200
    ]
    return [
        e["props"]["value"] for r in results for e in r.json()["effects"] if e["effectType"] == "setDiscount"
    ]


def counter(campaign: Campaign, action: str) -> Decimal:
    return BudgetCounter.objects.get(campaign=campaign, action=action, entity_key="", period="").counter


def test_a_budget_of_ten_discounts_grants_exactly_ten_to_thirty_parallel_closes(
    app: Application, patient: None
) -> None:
    # given a campaign whose budget allows ten discounts, and thirty open sessions that all qualify
    campaign = running_campaign(
        app,
        "Ten times",
        rule("Five off", ["and", True], ["setDiscount", "Five off", 5]),
        limits=[{"action": "setDiscountEffect", "limit": 10, "entities": []}],
    )
    # when they all close at once
    results = close_all(make_api_key(app), THREADS)
    # then exactly ten closes got the discount, the ledger holds ten, the counter says ten
    assert granted(results) == [5] * 10
    assert EffectRecord.objects.filter(campaign=campaign).count() == 10
    assert counter(campaign, "setDiscountEffect") == 10
    assert CustomerSession.objects.filter(state="closed").count() == THREADS


def test_a_money_budget_grants_only_whole_discounts_it_can_cover(app: Application, patient: None) -> None:
    # given 100 to give away in discounts of 15, and no partial discounts
    campaign = running_campaign(
        app,
        "Hundred",
        rule("Fifteen off", ["and", True], ["setDiscount", "Fifteen off", 15]),
        limits=[{"action": "setDiscount", "limit": 100, "entities": []}],
    )
    results = close_all(make_api_key(app), THREADS)
    # then six discounts (90): a seventh would pass the limit, and is not trimmed to 10
    assert granted(results) == [15] * 6
    assert counter(campaign, "setDiscount") == 90
    assert sum(EffectRecord.objects.filter(campaign=campaign).values_list("amount", flat=True)) == 90


def test_a_request_for_a_customer_whose_locks_are_held_too_long_answers_409(
    app: Application, settings: Any
) -> None:
    # given a short lock wait, a campaign with a budget, and a customer with an open session
    settings.PATRONAGE_LOCK_WAIT_MS = 200
    campaign = running_campaign(
        app,
        "Once",
        rule("Five off", ["and", True], ["setDiscount", "Five off", 5]),
        limits=[{"action": "setDiscountEffect", "limit": 1, "entities": ["Profile"]}],
    )
    key = make_api_key(app)
    api = IntegrationClient(key)
    api.session("first", profileId="c", cartItems=CART)
    api.session("second", profileId="c", cartItems=CART)
    holding, answered = threading.Event(), threading.Event()

    def slow_close() -> str:
        # one request closes the first session and its transaction stays open (holding the customer,
        # the session and the budget counter) until the other request has answered
        with transaction.atomic():
            session_update(application=app, integration_id="first", data=SessionInput(state="closed"))
            holding.set()
            answered.wait(timeout=30)
        return "committed"

    def parallel_close() -> Any:
        holding.wait(timeout=30)
        try:
            return IntegrationClient(key).session("second", state="closed")
        finally:
            answered.set()

    first, second = race(2, lambda i: slow_close() if i == 0 else parallel_close())
    # then the parallel request was refused with Talon.One's 409, and nothing of it was applied
    assert first == "committed"
    assert second.status_code == 409
    body = second.json()
    assert body["message"].startswith("Too many requests or limit reached")
    assert CustomerSession.objects.get(integration_id="second").state == "open"
    # the slow one committed its discount, and a retry now finds the customer's budget used
    assert counter_of_profile(campaign) == 1
    retry = api.session("second", state="closed")
    assert retry.status_code == 200 and retry.json()["effects"] == []
    assert CustomerProfile.objects.get(integration_id="c").closed_sessions == 2


def counter_of_profile(campaign: Campaign) -> Decimal:
    return BudgetCounter.objects.get(campaign=campaign, action="setDiscountEffect").counter
