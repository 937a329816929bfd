from __future__ import annotations

from typing import Any

import pytest

from patronage.customers.models import CustomerProfile
from patronage.customers.services import profile_upsert
from patronage.testing.smtp import smtp_server  # noqa: F401  (fixture)
from patronage.workspace.models import Application, Environment

PASSWORD = "plum-orchard-42"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # The default PBKDF2 costs ~0.5 s per hash; these tests hash a few times each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_customer(
    environment: Environment,
    *,
    email: str = "anna@example.com",
    password: str | None = PASSWORD,
    integration_id: str | None = None,
    **attributes: Any,
) -> CustomerProfile:
    profile, _ = profile_upsert(
        environment=environment,
        integration_id=integration_id or email,
        attributes={"Email": email, **attributes},
    )
    if password:
        profile.set_password(password)
        profile.save(update_fields=["password"])
    return profile


@pytest.fixture
def shop(live_app: Application) -> Application:
    return live_app


@pytest.fixture
def anna(shop: Application) -> CustomerProfile:
    return make_customer(shop.environment, Name="Anna Nowak", PhoneNumber="+14155550123")
