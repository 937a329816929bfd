"""Signing in to the back office: repeated failures are throttled like the customer panel's."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from patronage.core.throttle import SIGN_IN_ACCOUNT_LIMIT

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "right-pass-123"
WAIT = "Too many failed sign-ins; try again in 15 minutes."


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def boss() -> Any:
    return get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)


def sign_in(client: Client, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, **extra)


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_thirty_wrong_passwords_then_the_right_one_is_refused(boss: Any) -> None:
    # Given someone guessing the boss's password from one address
    client = Client()
    answers = [sign_in(client, "boss", f"guess-{n}") for n in range(30)]
    # Then the first guesses are told the password is wrong, and the later ones to wait
    assert all(r.status_code == 200 for r in answers[:SIGN_IN_ACCOUNT_LIMIT])
    assert "correct username and password" in answers[0].content.decode()
    assert all(r.status_code == 429 for r in answers[SIGN_IN_ACCOUNT_LIMIT:])
    assert WAIT in answers[-1].content.decode()
    # When they then try the right password
    response = sign_in(client, "boss")
    # Then it is refused too, and nobody is signed in
    assert response.status_code == 429 and WAIT in response.content.decode()
    assert not signed_in(client)
    # But the boss at the office (another address) signs in as usual
    office = Client(REMOTE_ADDR="203.0.113.7")
    assert sign_in(office, "boss").status_code == 302
    assert signed_in(office)


def test_an_unknown_username_is_throttled_with_the_same_words(boss: Any) -> None:
    # Given guesses at a username that does not exist and at one that does
    client = Client()
    for _ in range(SIGN_IN_ACCOUNT_LIMIT):
        sign_in(client, "nobody", "guess")
        sign_in(client, "boss", "guess")
    # When both are tried once more
    unknown, known = sign_in(client, "nobody", "guess"), sign_in(client, "boss", "guess")
    # Then both answers read the same: nothing tells which account exists
    assert unknown.status_code == known.status_code == 429
    assert WAIT in unknown.content.decode() and WAIT in known.content.decode()


def test_a_successful_sign_in_starts_the_count_again(boss: Any) -> None:
    client = Client()
    for _ in range(SIGN_IN_ACCOUNT_LIMIT - 1):
        sign_in(client, "boss", "typo")
    assert sign_in(client, "boss").status_code == 302
    client.post("/admin/logout/")
    for _ in range(SIGN_IN_ACCOUNT_LIMIT - 1):
        sign_in(client, "boss", "typo")
    assert sign_in(client, "boss").status_code == 302


def test_many_usernames_from_one_address_are_throttled(boss: Any, settings: Any) -> None:
    # Given one address trying a different username each time
    settings.PATRONAGE_SIGN_IN_ADDRESS_LIMIT = 12
    client = Client()
    answers = [sign_in(client, f"user{n}", "guess").status_code for n in range(15)]
    # Then it is stopped after the address limit, and the boss is refused from there too
    assert answers == [200] * 12 + [429] * 3
    assert sign_in(client, "boss").status_code == 429
    # While the boss signs in from another address
    assert sign_in(Client(REMOTE_ADDR="203.0.113.7"), "boss").status_code == 302


def test_behind_a_proxy_each_client_address_counts_on_its_own(boss: Any, settings: Any) -> None:
    # Given one reverse proxy in front, which appends the address it saw to X-Forwarded-For
    settings.PATRONAGE_PROXY_COUNT = 1
    attacker = {"HTTP_X_FORWARDED_FOR": "203.0.113.7, 198.51.100.9"}  # the first part is the client's claim
    for n in range(SIGN_IN_ACCOUNT_LIMIT):
        sign_in(Client(), "boss", f"guess-{n}", **attacker)
    assert sign_in(Client(), "boss", **attacker).status_code == 429
    # When the attacker claims another address, the proxy still names theirs: refused
    assert sign_in(Client(), "boss", HTTP_X_FORWARDED_FOR="192.0.2.1, 198.51.100.9").status_code == 429
    # And the boss, through the same proxy from their own address, signs in
    assert sign_in(Client(), "boss", HTTP_X_FORWARDED_FOR="192.0.2.44").status_code == 302
