"""The shared sign-in throttle: counted atomically, so concurrent attempts never slip past the limit."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from patronage.core import clock
from patronage.core.errors import AuthenticationFailed
from patronage.core.throttle import SIGN_IN_ACCOUNT_LIMIT, SignInThrottle, Throttle, TooManyAttempts
from patronage.customers import accounts
from patronage.testing.factories import make_application
from patronage.testing.threads import race as race_threads
from patronage.workspace.models import Environment

THREADS = 40


def race(attempt: Any) -> list[Any]:
    """``attempt(i)`` in THREADS threads released at once, each on its own connection: their outcomes."""
    return race_threads(THREADS, attempt, timeout=300)


@pytest.mark.django_db
def test_the_window_starts_again_once_it_has_passed() -> None:
    throttle = Throttle("test", 2, dt.timedelta(minutes=15))
    key = throttle.key("anna")
    start = clock.now()
    with clock.frozen_at(start):
        assert throttle.take(key) is None and throttle.take(key) is None
        assert throttle.take(key) == dt.timedelta(minutes=15)
    with clock.frozen_at(start + dt.timedelta(minutes=14)):
        assert throttle.take(key) == dt.timedelta(minutes=1)
    with clock.frozen_at(start + dt.timedelta(minutes=15, seconds=1)):
        assert throttle.take(key) is None
        assert throttle.count(key) == 1


@pytest.mark.django_db
def test_the_message_says_how_long_to_wait() -> None:
    guard = SignInThrottle.named("test")
    start = clock.now()
    with clock.frozen_at(start):
        for _ in range(SIGN_IN_ACCOUNT_LIMIT):
            guard.attempt(account="anna", address="198.51.100.1")
    with (
        clock.frozen_at(start + dt.timedelta(minutes=14, seconds=30)),
        pytest.raises(TooManyAttempts) as caught,
    ):
        guard.attempt(account="anna", address="198.51.100.1")
    assert caught.value.message == "Too many failed sign-ins; try again in 1 minute."


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_forty_concurrent_panel_sign_ins_at_most_the_limit_reach_the_password_check() -> None:
    # Given forty guesses at Anna's password sent at the same instant from one address (real, slow hashing)
    shop = make_application(environment=Environment.LIVE, slug="race-shop")

    def guess(i: int) -> Any:
        return accounts.account_authenticate(
            environment=shop.environment,
            email="anna@example.com",
            password=f"guess-{i}",
            client_ip="198.51.100.1",
        )

    results = race(guess)
    # Then at most the limit were checked (a wrong password); every other one was refused before the check
    checked = [r for r in results if type(r) is AuthenticationFailed]
    refused = [r for r in results if isinstance(r, TooManyAttempts)]
    assert len(checked) + len(refused) == THREADS, results
    assert len(checked) == SIGN_IN_ACCOUNT_LIMIT


@pytest.mark.django_db(transaction=True)
def test_of_forty_concurrent_panel_sign_ins_with_different_emails_the_address_limit_holds(
    settings: Any,
) -> None:
    # Given one address trying forty different emails at once (on SQLite too: one statement counts)
    settings.PATRONAGE_SIGN_IN_ADDRESS_LIMIT = 15
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    shop = make_application(environment=Environment.LIVE, slug="race-shop")

    def guess(i: int) -> Any:
        return accounts.account_authenticate(
            environment=shop.environment,
            email=f"user{i}@example.com",
            password="guess",
            client_ip="198.51.100.2",
        )

    results = race(guess)
    # Then exactly the address limit reached the password check
    assert sum(1 for r in results if type(r) is AuthenticationFailed) == 15
    assert sum(1 for r in results if isinstance(r, TooManyAttempts)) == THREADS - 15


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_forty_concurrent_back_office_sign_ins_at_most_the_limit_reach_the_password_check(
    settings: Any,
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_user_model().objects.create_superuser("boss", "boss@example.com", "right-pass-123")

    def guess(i: int) -> int:
        response = Client().post("/admin/login/", {"username": "boss", "password": f"guess-{i}"})
        return response.status_code

    results = race(guess)
    assert sorted(results) == [200] * SIGN_IN_ACCOUNT_LIMIT + [429] * (THREADS - SIGN_IN_ACCOUNT_LIMIT)
