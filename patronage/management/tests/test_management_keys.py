"""Management API keys as scripts use them: made with the CLI, sent as ``ManagementKey-v1``, real requests."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patronage.core import clock
from patronage.core.errors import ValidationFailed
from patronage.workspace.models import Application, ManagementKey
from patronage.workspace.services import (
    management_key_create,
    management_key_revoke,
    management_key_touch,
)

pytestmark = pytest.mark.django_db

EVERYONE = {"type": "group", "match": "all", "negate": False, "children": []}
NEW_SEGMENT = {"environment": "live", "name": "Everyone", "rules": EVERYONE}


def staff_user(username: str = "scripter", *perms: str, **fields: Any) -> Any:
    user = get_user_model().objects.create_user(username, password="pw-123456", is_staff=True, **fields)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    return user


def cli_key(*args: str) -> str:
    out = io.StringIO()
    call_command("managementkey", "create", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


class Script:
    """A caller with no cookies, a browser's CSRF enforcement, and the key in the Authorization header."""

    def __init__(self, key: str, scheme: str = "ManagementKey-v1") -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.authorization = f"{scheme} {key}"

    def get(self, url: str) -> Any:
        return self.client.get("/api/v1" + url, headers={"Authorization": self.authorization})

    def post(self, url: str, body: Any) -> Any:
        return self.client.post(
            "/api/v1" + url,
            json.dumps(body),
            content_type="application/json",
            headers={"Authorization": self.authorization},
        )


def assert_error_body(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "errors", "StatusCode"} and body["StatusCode"] == status
    assert body["errors"] and {"title", "details"} <= set(body["errors"][0])
    return body


def test_a_key_made_with_the_cli_reads_and_writes_without_a_csrf_token(live_app: Application) -> None:
    # given: a staff user who may view applications and add segments, and a key made for them from the shell
    staff_user("scripter", "view_application", "add_segment", "view_segment")
    key = cli_key("--name", "nightly export", "--user", "scripter")
    script = Script(key)
    # when: the script reads, then writes (no cookie, no CSRF token)
    listing = script.get("/applications")
    created = script.post("/segments", NEW_SEGMENT)
    # then: both work, the write is the key's user's
    assert listing.status_code == 200 and listing.json()["items"][0]["slug"] == live_app.slug
    assert created.status_code == 201, created.content
    assert created.json()["name"] == "Everyone"
    assert script.get("/segments?environment=live").json()["count"] == 1


def test_the_key_is_stored_as_a_digest_with_a_prefix_for_display() -> None:
    user = staff_user()
    key, plaintext = management_key_create(user=user, name="x")
    stored = ManagementKey.objects.filter(pk=key.pk).values().get()
    assert stored["digest"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert stored["prefix"] == plaintext[:8]
    assert plaintext not in {str(value) for value in stored.values()}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("ManagementKey-v1 not-a-key", "Invalid Management API key"),
        ("ManagementKey-v1 ", "The Authorization header must read 'ManagementKey-v1 <key>'"),
        ("ApiKey-v1 abc", "This is an Integration API key (ApiKey-v1); the Management API takes"),
    ],
)
def test_a_wrong_key_is_401_in_the_error_body(live_app: Application, header: str, message: str) -> None:
    response = Client().get("/api/v1/applications", headers={"Authorization": header})
    body = assert_error_body(response, 401)
    assert body["message"].startswith(message)
    assert body["errors"][0]["source"] == {"parameter": "Authorization"}
    assert response["WWW-Authenticate"] == "ManagementKey-v1"


def test_revoked_and_expired_keys_are_401(live_app: Application) -> None:
    # given: a key revoked from the CLI, and a key that expires in an hour
    staff_user("scripter", "view_application")
    revoked = cli_key("--name", "old", "--user", "scripter")
    call_command("managementkey", "revoke", revoked[:8], stdout=io.StringIO())
    expiring = cli_key("--name", "temp", "--user", "scripter", "--expires", "2999-01-01")
    # then: the revoked key is refused at once; the other works until it expires
    body = assert_error_body(Script(revoked).get("/applications"), 401)
    assert body["message"] == "This Management API key has been revoked"
    assert Script(expiring).get("/applications").status_code == 200
    with clock.frozen_at(dt.datetime(2999, 1, 1, tzinfo=dt.UTC)):
        body = assert_error_body(Script(expiring).get("/applications"), 401)
    assert body["message"] == "This Management API key expired on 2999-01-01T00:00:00+00:00"


def test_a_key_without_the_permission_is_403(live_app: Application) -> None:
    staff_user("scripter", "view_application")
    script = Script(cli_key("--name", "reader", "--user", "scripter"))
    body = assert_error_body(script.post("/segments", NEW_SEGMENT), 403)
    assert body["message"] == "Your account lacks the permission segments.add_segment"


def test_a_key_loses_what_its_user_loses_at_once(live_app: Application) -> None:
    # given: a key that works for its user
    user = staff_user("scripter", "view_application")
    script = Script(cli_key("--name", "reader", "--user", "scripter"))
    assert script.get("/applications").status_code == 200
    # when: the user loses the permission
    user.user_permissions.clear()
    # then: the key is refused it on the next request
    assert_error_body(script.get("/applications"), 403)
    # when: the user gets it back through a role, then is deactivated
    role = user.groups.create(name="Readers")
    role.permissions.set(Permission.objects.filter(codename="view_application"))
    assert script.get("/applications").status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    # then: the key stops altogether (401: it no longer stands for anyone)
    body = assert_error_body(script.get("/applications"), 401)
    assert "no longer active" in body["message"]


def test_a_superusers_key_is_accepted_by_every_management_router(live_app: Application) -> None:
    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456")
    script = Script(cli_key("--name", "everything"))  # the only superuser: no --user needed
    for url in [
        "/applications",
        f"/applications/{live_app.pk}",
        "/customer_profiles?environment=live",
        "/offers?environment=live",
        "/promocode-groups?environment=live",
        "/segments?environment=live",
        "/segments/fields?environment=live",
    ]:
        assert script.get(url).status_code == 200, url


def test_every_operation_documents_both_ways_to_authenticate() -> None:
    # The OpenAPI document is what a router mounted later would show up in first.
    document = Client().get("/api/v1/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert (
        schemes["ManagementApiKey"]["in"] == "header"
        and schemes["ManagementApiKey"]["name"] == "Authorization"
    )
    assert schemes["StaffSession"]["in"] == "cookie"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == "/api/v1/health":
                continue
            assert operation.get("security") == [{"ManagementApiKey": []}, {"StaffSession": []}], (
                method,
                path,
            )


def test_the_back_office_session_keeps_working_and_its_writes_need_the_csrf_token(
    live_app: Application,
) -> None:
    # given: a signed-in staff member in a browser that enforces CSRF
    user = staff_user("clerk", "view_application", "add_segment")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    # then: reads work with the cookie alone
    assert browser.get("/api/v1/applications").status_code == 200
    # and: a write without the token is refused as forged, in the error body
    forged = browser.post("/api/v1/segments", json.dumps(NEW_SEGMENT), content_type="application/json")
    assert assert_error_body(forged, 403)["message"].startswith("CSRF check failed")
    # and: with the token (as the back office's own pages send it) the write works
    token = browser.get("/admin/").cookies["csrftoken"].value
    browser.cookies["csrftoken"] = token
    sent = browser.post(
        "/api/v1/segments",
        json.dumps(NEW_SEGMENT),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert sent.status_code == 201, sent.content


def test_a_proxys_basic_auth_header_does_not_hide_the_session(live_app: Application) -> None:
    user = staff_user("clerk", "view_application")
    browser = Client()
    browser.force_login(user)
    response = browser.get("/api/v1/applications", headers={"Authorization": "Basic c3RhZ2luZzpzZWNyZXQ="})
    assert response.status_code == 200


def test_anonymous_writes_get_the_401_body_not_a_csrf_refusal(live_app: Application) -> None:
    anonymous = Client(enforce_csrf_checks=True)
    for url in ["/api/v1/segments", "/api/v1/offers", "/api/v1/promocodes/redeem"]:
        response = anonymous.post(url, json.dumps(NEW_SEGMENT), content_type="application/json")
        body = assert_error_body(response, 401)
        assert (
            body["message"]
            == "Log in to the back office, or send the header 'Authorization: ManagementKey-v1 <key>'"
        )
        assert response["WWW-Authenticate"] == "ManagementKey-v1"


def test_the_last_use_is_recorded_at_most_once_a_minute(live_app: Application) -> None:
    # given: a fresh key
    staff_user("scripter", "view_application")
    key = cli_key("--name", "poller", "--user", "scripter")
    script = Script(key)
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

    def writes_during_a_call(at: dt.datetime) -> int:
        with clock.frozen_at(at), CaptureQueriesContext(connection) as queries:
            assert script.get("/applications").status_code == 200
        return sum(
            1 for query in queries if query["sql"].startswith("UPDATE") and "managementkey" in query["sql"]
        )

    # when / then: the first use is written, uses within the minute are not, the next minute's is
    assert writes_during_a_call(start) == 1
    stored = ManagementKey.objects.get(prefix=key[:8])
    assert stored.last_used_at == start
    assert writes_during_a_call(start + dt.timedelta(seconds=59)) == 0
    assert writes_during_a_call(start + dt.timedelta(seconds=61)) == 1
    assert ManagementKey.objects.get(pk=stored.pk).last_used_at == start + dt.timedelta(seconds=61)


def test_staff_make_keys_only_for_themselves_and_only_staff_own_keys() -> None:
    clerk, other = staff_user("clerk"), staff_user("other")
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456")
    customer = get_user_model().objects.create_user("shopper")
    with pytest.raises(ValidationFailed, match="only for yourself"):
        management_key_create(user=other, name="x", actor=clerk)
    assert management_key_create(user=clerk, name="mine", actor=clerk)[0].user == clerk
    assert management_key_create(user=other, name="for other", actor=boss)[0].user == other
    with pytest.raises(ValidationFailed, match="not an active staff user"):
        management_key_create(user=customer, name="x", actor=boss)
    with pytest.raises(ValidationFailed, match="future"):
        management_key_create(user=clerk, name="x", expires_at=clock.now() - dt.timedelta(seconds=1))


def test_cli_lists_without_secrets_revokes_by_prefix_and_names_its_mistakes() -> None:
    # given: two superusers, so the CLI cannot guess whose key it is
    get_user_model().objects.create_superuser("ann", "ann@example.com", "pw")
    get_user_model().objects.create_superuser("bob", "bob@example.com", "pw")
    with pytest.raises(CommandError, match=r"Several superusers \(ann, bob\).*--user"):
        cli_key("--name", "x")
    with pytest.raises(CommandError, match="No user 'nobody'"):
        cli_key("--name", "x", "--user", "nobody")
    with pytest.raises(CommandError, match="needs a time zone"):
        cli_key("--name", "x", "--user", "ann", "--expires", "2999-01-01T10:00")
    with pytest.raises(CommandError, match="use YYYY-MM-DD"):
        cli_key("--name", "x", "--user", "ann", "--expires", "tomorrow")
    # when: a key is made, listed and revoked
    key = cli_key("--name", "sync", "--user", "ann", "--expires", "2999-01-31T18:00:00+01:00")
    listing = io.StringIO()
    call_command("managementkey", "list", "--user", "ann", stdout=listing)
    assert key[:8] in listing.getvalue() and key not in listing.getvalue()
    assert "active" in listing.getvalue() and "2999-01-31T17:00:00+00:00" in listing.getvalue()
    out = io.StringIO()
    call_command("managementkey", "revoke", key[:8], stdout=out)
    # then
    assert "Revoked sync" in out.getvalue() and "of ann" in out.getvalue()
    assert ManagementKey.objects.get(prefix=key[:8]).status == "revoked"
    with pytest.raises(CommandError, match="No Management API key starts with 'zzzzzzzzz'"):
        call_command("managementkey", "revoke", "zzzzzzzzz")


def test_revoking_twice_keeps_the_first_time() -> None:
    key, _ = management_key_create(user=staff_user(), name="x")
    first = management_key_revoke(key=key).revoked_at
    with clock.frozen_at(clock.now() + dt.timedelta(hours=1)):
        assert management_key_revoke(key=key).revoked_at == first


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_uses_write_the_last_use_once() -> None:
    # given: a key never used, loaded by 8 request threads at once (each sees "never used")
    key, _ = management_key_create(user=staff_user(), name="busy")
    barrier = threading.Barrier(8)
    written: list[bool] = []

    def request() -> None:
        try:
            mine = ManagementKey.objects.get(pk=key.pk)
            barrier.wait()
            written.append(management_key_touch(mine))
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: exactly one of them wrote
    assert sorted(written) == [False] * 7 + [True]
    assert ManagementKey.objects.get(pk=key.pk).last_used_at is not None
