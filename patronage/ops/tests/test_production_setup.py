"""An empty production database is set up from the shell: bootstrap without demo data, then an application
and its first API key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db


def patronage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patronage.cli", *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_an_empty_database_is_set_up_from_the_shell(tmp_path: Path) -> None:
    # given: an empty database and a fresh var folder, as on a new production machine
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "patronage.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "PATRONAGE_VAR_DIR": str(tmp_path / "var"),
        "PATRONAGE_ADMIN_EMAIL": "ops@shop.example",
    }
    # when: the operator bootstraps it without demo data, naming the admin
    boot = patronage("bootstrap", "--no-demo", "--admin-username", "ops", env=env)
    # then: the admin account is made with a password printed once, and no demo shop exists
    assert boot.returncode == 0, boot.stderr
    password = re.search(r"username ops, password (\S+)", boot.stdout)
    assert password is not None
    assert (tmp_path / "var" / "admin-credentials.txt").read_text() == (
        f"username: ops\npassword: {password.group(1)}\n"
    )
    assert "demo" not in boot.stdout.lower()
    assert patronage("application", "list", env=env).stdout == ""
    # when: it runs again
    again = patronage("bootstrap", "--no-demo", env=env)
    # then: nothing changes
    assert again.returncode == 0 and "exists already (ops); not changed" in again.stdout
    # when: the first application and its first API key are created
    made = patronage(
        "application", "create", "--name", "Berlin shop", "--slug", "berlin", "--environment", "live",
        "--currency", "EUR", "--time-zone", "Europe/Berlin", env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = patronage("apikey", "create", "--application", "berlin", "--environment", "live", env=env)
    # then: the key is printed and the application is listed with its currency and time zone
    assert key.returncode == 0, key.stderr
    assert len(key.stdout.strip()) > 30
    assert patronage("application", "list", env=env).stdout.split() == [
        "berlin", "live", "EUR", "Europe/Berlin", "Berlin", "shop",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--currency", "EURO", "--currency: Use an ISO 4217 code such as USD or EUR."),
        ("--currency", "E1R", "--currency: Use an ISO 4217 code such as USD or EUR."),
        ("--time-zone", "Europe/Atlantis", "--time-zone: 'Europe/Atlantis' is not a known IANA time zone"),
        ("--slug", "two words", "--slug: Enter a valid “slug”"),
        ("--name", "", "--name: This field cannot be blank."),
    ],
)
def test_application_create_names_the_option_it_refuses(option: str, value: str, message: str) -> None:
    # given: otherwise good options
    options = {"--name": "Shop", "--slug": "shop", "--currency": "EUR", "--time-zone": "UTC", option: value}
    argv = [item for pair in options.items() for item in pair]
    # when / then: the error names the option the user typed, and nothing is created
    with pytest.raises(CommandError) as error:
        call_command("application", "create", "--environment", "live", *argv)
    assert str(error.value).startswith(message)
    assert not Application.objects.exists()


def test_application_create_refuses_a_slug_in_use_and_takes_a_lower_case_currency() -> None:
    call_command("application", "create", "--name", "A", "--slug", "shop", "--environment", "sandbox",
                 "--currency", "pln")  # fmt: skip
    app = Application.objects.get(slug="shop")
    assert (app.environment.slug, app.currency, app.time_zone) == ("sandbox", "PLN", "UTC")
    with pytest.raises(CommandError, match="--slug: an application with slug 'shop' exists already"):
        call_command("application", "create", "--name", "B", "--slug", "shop", "--environment", "live")
    assert Application.objects.count() == 1


def test_bootstrap_refuses_a_bad_admin_email_and_keeps_the_first_admin(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with pytest.raises(CommandError, match="--admin-email: 'not-an-address' is not an email address"):
        call_command("bootstrap", "--no-migrate", "--no-demo", "--admin-email", "not-an-address")
    assert not get_user_model().objects.exists()
    call_command("bootstrap", "--no-migrate", "--no-demo", "--admin-username", "boss")
    call_command("bootstrap", "--no-migrate", "--no-demo", "--admin-username", "other")
    assert list(get_user_model().objects.values_list("username", "is_superuser")) == [("boss", True)]
    assert not Application.objects.exists()
