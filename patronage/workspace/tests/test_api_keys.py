from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from django.core.management import CommandError, call_command

from patronage.core import clock
from patronage.testing.api import IntegrationClient
from patronage.testing.factories import make_api_key
from patronage.workspace.models import ApiKey, Application
from patronage.workspace.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_keys_are_stored_as_digests_only(live_app: Application) -> None:
    api_key, plaintext = api_key_create(application=live_app, name="till")
    assert api_key.digest == hashlib.sha256(plaintext.encode()).hexdigest()
    stored = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert plaintext not in {str(v) for v in stored.values()}
    assert api_key.prefix == plaintext[:8]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Missing credentials: send the header 'Authorization: ApiKey-v1 <key>'"),
        ("Bearer abc", "The Authorization header must read 'ApiKey-v1 <key>'"),
        ("ApiKey-v1 wrong", "Invalid API key"),
    ],
)
def test_bad_credentials_get_401_with_a_clear_message(
    client: object, live_app: Application, header: str | None, message: str
) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/v2/customer_sessions/x", headers=headers)  # type: ignore[attr-defined]
    assert response.status_code == 401
    assert response.json()["message"] == message


def test_revoked_and_expired_keys_are_refused(live_app: Application) -> None:
    revoked, revoked_plain = api_key_create(application=live_app, name="old till")
    api_key_revoke(api_key=revoked)
    expiring = make_api_key(live_app, expires_at=clock.now() + dt.timedelta(hours=1))
    assert IntegrationClient(revoked_plain).get("/v2/customer_sessions/x").json()["message"] == (
        "This API key has been revoked"
    )
    assert (
        IntegrationClient(expiring).get("/v2/customer_sessions/x").status_code == 404
    )  # valid: unknown session
    with clock.frozen_at(clock.now() + dt.timedelta(hours=2)):
        response = IntegrationClient(expiring).get("/v2/customer_sessions/x")
    assert response.status_code == 401
    assert response.json()["message"].startswith("This API key expired on ")


def test_an_expiry_in_the_past_is_refused(live_app: Application) -> None:
    from patronage.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        api_key_create(application=live_app, name="x", expires_at=clock.now() - dt.timedelta(days=1))


def test_cli_creates_lists_and_revokes_keys(live_app: Application) -> None:
    out = io.StringIO()
    call_command(
        "apikey",
        "create",
        "--application",
        live_app.slug,
        "--environment",
        "live",
        stdout=out,
        stderr=io.StringIO(),
    )
    key = out.getvalue().strip()
    assert IntegrationClient(key).get("/v2/customer_sessions/x").status_code == 404
    listing = io.StringIO()
    call_command("apikey", "list", "--application", live_app.slug, stdout=listing)
    assert key[:8] in listing.getvalue() and key not in listing.getvalue()
    call_command("apikey", "revoke", "--application", live_app.slug, key[:8], stdout=io.StringIO())
    assert IntegrationClient(key).get("/v2/customer_sessions/x").status_code == 401


def test_a_key_never_starts_with_a_dash_so_its_prefix_can_be_revoked_from_the_cli(
    live_app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the random source first draws a key starting with "-" (1 draw in 64 does)
    draws = iter(["-dashfirst" + "x" * 33, "plainfirst" + "y" * 33])
    monkeypatch.setattr("patronage.workspace.services.secrets.token_urlsafe", lambda n: next(draws))
    # when
    _, plaintext = api_key_create(application=live_app, name="till")
    # then: the dashed draw was discarded, and the CLI revokes the key by its prefix
    assert plaintext.startswith("plainfirst")
    call_command("apikey", "revoke", "--application", live_app.slug, plaintext[:8], stdout=io.StringIO())
    assert ApiKey.objects.get(prefix=plaintext[:8]).revoked_at is not None


def test_cli_guards_the_environment_and_names_unknown_shops(live_app: Application) -> None:
    with pytest.raises(CommandError, match="is in live, not sandbox"):
        call_command("apikey", "create", "--application", live_app.slug, "--environment", "sandbox")
    with pytest.raises(CommandError, match="No application with slug 'nope'"):
        call_command("apikey", "create", "--application", "nope")
