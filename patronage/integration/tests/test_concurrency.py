"""Races of real threads, each with its own PostgreSQL connection, against the Integration API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import OperationalError, connection, transaction

from patronage.core.rows import rows
from patronage.customer_sessions.models import CartItem, CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.testing.api import IntegrationClient
from patronage.testing.factories import make_api_key, make_application
from patronage.testing.threads import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 12


@pytest.fixture
def key() -> str:
    return make_api_key(make_application(environment="live"))


def test_parallel_profile_updates_lose_no_attribute(key: str) -> None:
    # when: each thread adds its own attribute to one (not yet existing) profile
    results = race(
        THREADS, lambda i: IntegrationClient(key).put("/v2/customer_profiles/p", {"attributes": {f"k{i}": i}})
    )
    # then: one profile, holding every attribute
    assert [r.status_code for r in results] == [200] * THREADS
    profile = CustomerProfile.objects.get(integration_id="p")
    assert profile.attributes == {f"k{i}": i for i in range(THREADS)}


def test_parallel_closes_count_every_order_on_the_customer(key: str) -> None:
    api = IntegrationClient(key)
    for i in range(THREADS):
        api.session(f"s{i}", profileId="c", cartItems=[{"sku": "A", "quantity": 1, "price": i + 1}])
    results = race(THREADS, lambda i: IntegrationClient(key).session(f"s{i}", state="closed"))
    assert [r.status_code for r in results] == [200] * THREADS
    profile = CustomerProfile.objects.get(integration_id="c")
    assert profile.closed_sessions == THREADS
    assert profile.total_sales == Decimal(sum(range(1, THREADS + 1)))


def test_parallel_updates_of_one_session_never_mix_carts_or_lose_attributes(key: str) -> None:
    def update(i: int) -> Any:
        cart = [{"sku": f"T{i}-{n}", "quantity": 1, "price": 1} for n in range(i + 1)]
        return IntegrationClient(key).session(
            "shared", profileId="c", cartItems=cart, attributes={f"a{i}": True}
        )

    results = race(THREADS, update)
    assert [r.status_code for r in results] == [200] * THREADS
    session = CustomerSession.objects.get(integration_id="shared")
    skus = list(CartItem.objects.filter(session=session).values_list("sku", flat=True))
    owners = {sku.split("-")[0] for sku in skus}
    assert len(owners) == 1, f"cart mixes writers: {skus}"
    assert len(skus) == int(owners.pop()[1:]) + 1
    assert session.total == len(skus)
    assert session.attributes == {f"a{i}": True for i in range(THREADS)}
    assert CustomerSession.objects.filter(integration_id="shared").count() == 1


def test_an_update_holds_the_customer_and_the_session_locked_until_it_commits(key: str) -> None:
    # given: an existing session of an existing customer (the one-statement lock path)
    IntegrationClient(key).session("s", profileId="c", cartItems=[{"sku": "A", "quantity": 1, "price": 1}])
    session = CustomerSession.objects.get(integration_id="s")

    def try_lock(table: str, pk: int | None) -> str:
        with connection.cursor() as cursor:
            try:
                cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR NO KEY UPDATE NOWAIT", [pk])
            except OperationalError:
                return "busy"
            return "free"

    # when: one transaction locks both, as an update does, and other connections try to take them
    with transaction.atomic():
        both = rows(CustomerProfile).lock_with(
            rows(CustomerSession),
            {"environment_id": session.application.environment_id, "integration_id": "c"},
            {"application_id": session.application_id, "integration_id": "s"},
        )
        assert both is not None and (both[0].pk, both[1].pk) == (session.profile_id, session.pk)
        targets = [
            (CustomerProfile._meta.db_table, session.profile_id),
            (CustomerSession._meta.db_table, session.pk),
        ]
        locked = race(2, lambda i: try_lock(*targets[i]))
    # then: both rows were held; once committed, both are free again
    assert locked == ["busy", "busy"]
    assert race(1, lambda i: try_lock(CustomerSession._meta.db_table, session.pk)) == ["free"]
    missing = rows(CustomerProfile).lock_with(
        rows(CustomerSession),
        {"environment_id": session.application.environment_id, "integration_id": "nobody"},
        {"application_id": session.application_id, "integration_id": "s"},
    )
    assert missing is None


def test_a_retried_request_is_applied_once_even_when_the_retries_race(key: str) -> None:
    api = IntegrationClient(key)
    api.session("order", profileId="c", cartItems=[{"sku": "A", "quantity": 10, "price": 5}], state="closed")
    body = {"return": {"returnedCartItems": [{"position": 0, "quantity": 1}]}}
    results = race(
        THREADS,
        lambda i: IntegrationClient(key).post(
            "/v2/customer_sessions/order/returns", body, headers={"Idempotency-Key": "once"}
        ),
    )
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {201, 409} and 201 in statuses
    assert len({r.content for r in results if r.status_code == 201}) == 1
    assert CartItem.objects.get(sku="A").returned_quantity == 1
    assert CustomerProfile.objects.get(integration_id="c").total_sales == Decimal("45")
