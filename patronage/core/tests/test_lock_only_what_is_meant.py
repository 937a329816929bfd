"""A service that locks a row locks that row: not the environment (or anything else) its query joins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError, connection

from patronage.customers.models import CustomerProfile
from patronage.customers.services import ProfileInput, profile_update
from patronage.mailings.services import mailing_start
from patronage.testing.mailings import make_customers, make_mailing
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _environment_free(environment: Environment) -> str:
    """From another connection: can the environment row be locked right now?"""
    answer: list[str] = []

    def probe() -> None:
        try:
            with connection.cursor() as cursor:
                try:
                    cursor.execute(
                        f"SELECT id FROM {Environment._meta.db_table} WHERE id = %s FOR NO KEY UPDATE NOWAIT",
                        [environment.pk],
                    )
                    answer.append("free")
                except OperationalError:
                    answer.append("busy")
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(timeout=30)
    return answer[0]


def _probing_after_each_lock(environment: Environment, work: Callable[[], Any]) -> list[str]:
    seen: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if " FOR UPDATE" in sql or " FOR NO KEY UPDATE" in sql:
            seen.append(_environment_free(environment))
        return result

    with connection.execute_wrapper(wrapper):
        work()
    return seen


def test_starting_a_mailing_locks_the_mailing_not_its_environment() -> None:
    environment = environment_get("live")
    make_customers(environment, 2)
    mailing = make_mailing(environment)
    # when
    seen = _probing_after_each_lock(environment, lambda: mailing_start(mailing=mailing, enqueue=False))
    # then: while the mailing was locked, another writer could still take the environment
    assert seen and set(seen) == {"free"}


def test_a_staff_edit_of_a_customer_locks_the_customer_not_its_environment() -> None:
    environment = environment_get("live")
    (profile,) = make_customers(environment, 1)
    # when
    seen = _probing_after_each_lock(
        environment, lambda: profile_update(profile=profile, data=ProfileInput(name="Renamed"))
    )
    # then
    assert seen and set(seen) == {"free"}
    assert CustomerProfile.objects.get(pk=profile.pk).name == "Renamed"
