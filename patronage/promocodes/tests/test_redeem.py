"""Redeeming a promo code at checkout: once, and only by the customer it was issued to."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection

from patronage.core import clock
from patronage.core.errors import Conflict, NotFound, ValidationFailed
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import PromoCode
from patronage.promocodes.services import promo_code_group_create, promo_code_redeem
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

MOMENT = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)


def customer(environment: Environment, name: str) -> CustomerProfile:
    return CustomerProfile.objects.create(
        environment=environment, integration_id=name, email=f"{name}@example.com"
    )


def issue(code: str, to: CustomerProfile) -> None:
    PromoCode.objects.filter(code=code).update(issued_to=to, issued_at=clock.now())


@pytest.fixture
def live(db: None) -> Environment:
    environment = environment_get(Environment.LIVE)
    promo_code_group_create(environment=environment, name="Gifts", codes=["GIFT1", "GIFT2"])
    return environment


def test_the_customer_redeems_the_code_issued_to_them_once(live: Environment) -> None:
    ann = customer(live, "ann")
    issue("GIFT1", ann)
    with clock.frozen_at(MOMENT):
        promo = promo_code_redeem(environment=live, code=" GIFT1 ", profile=ann)
    assert (promo.redeemed_at, promo.redeemed_by_id) == (MOMENT, ann.pk)
    # a second redeem says when the code was used
    with pytest.raises(Conflict, match="already used on 2025-03-01 09:30:00 UTC by this customer"):
        promo_code_redeem(environment=live, code="GIFT1", profile=ann)


def test_a_code_issued_to_ann_cannot_be_redeemed_by_bob(live: Environment) -> None:
    ann, bob = customer(live, "ann"), customer(live, "bob")
    issue("GIFT1", ann)
    with pytest.raises(Conflict, match="issued to another customer"):
        promo_code_redeem(environment=live, code="GIFT1", profile=bob)
    assert PromoCode.objects.get(code="GIFT1").redeemed_at is None


def test_a_code_never_issued_cannot_be_redeemed(live: Environment) -> None:
    ann = customer(live, "ann")
    with pytest.raises(Conflict, match="not issued to anyone yet"):
        promo_code_redeem(environment=live, code="GIFT2", profile=ann)
    assert PromoCode.objects.get(code="GIFT2").redeemed_at is None


def test_unknown_codes_and_customers_of_other_environments(live: Environment) -> None:
    ann = customer(live, "ann")
    with pytest.raises(NotFound):
        promo_code_redeem(environment=live, code="NOPE", profile=ann)
    # codes are case-sensitive
    with pytest.raises(NotFound):
        promo_code_redeem(environment=live, code="gift1", profile=ann)
    stranger = customer(environment_get(Environment.SANDBOX), "ann")
    with pytest.raises(ValidationFailed):
        promo_code_redeem(environment=live, code="GIFT1", profile=stranger)


THREADS = 12


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_concurrent_redeems_exactly_one_wins() -> None:
    # given: one issued code and twelve checkouts of it at the same instant, each on its own connection
    live = environment_get(Environment.LIVE)
    promo_code_group_create(environment=live, name="Race", codes=["RACE"])
    ann = customer(live, "ann")
    issue("RACE", ann)
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = promo_code_redeem(environment=live, code="RACE", profile=ann)
        except Exception as exc:  # counted below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then: one redeem won, every other one is a Conflict naming the time of that one
    winners = [r for r in results if isinstance(r, PromoCode)]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert (len(winners), len(losers)) == (1, THREADS - 1)
    used = f"{winners[0].redeemed_at:%Y-%m-%d %H:%M:%S}"
    assert all(used in loser.message for loser in losers)
