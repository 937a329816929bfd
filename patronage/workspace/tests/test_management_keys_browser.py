"""Management API keys in the back office, as staff make and revoke them: a real Chromium and live server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.testing.browser import screenshot
from patronage.testing.factories import make_application
from patronage.workspace.models import Environment, ManagementKey
from patronage.workspace.services import management_key_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def login(page: Page, live_server: LiveServer, username: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("#login-form").get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")


def management_get(live_server: LiveServer, key: str, path: str = "/api/v1/applications") -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{live_server.url}{path}", headers={"Authorization": f"ManagementKey-v1 {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_superuser_makes_a_key_for_a_colleague_and_sees_it_once(
    page: Page, live_server: LiveServer
) -> None:
    # Given a superuser, a staff colleague who may view applications, and a live shop
    get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)
    colleague = get_user_model().objects.create_user("ci-bot", "ci@example.com", PASSWORD, is_staff=True)
    colleague.user_permissions.set(Permission.objects.filter(codename="view_application"))
    make_application(environment=Environment.LIVE, slug="corner-shop")
    login(page, live_server, "admin")
    # When they open Workspace > Management API keys from the sidebar and add one for the colleague
    page.get_by_role("link", name="Management API keys", exact=True).first.click()
    page.wait_for_url("**/admin/workspace/managementkey/")
    page.goto(f"{live_server.url}/admin/workspace/managementkey/add/")
    expect(page.locator("select[name=user] option:checked")).to_have_text("admin")  # themselves by default
    page.select_option("select[name=user]", label="ci-bot")
    page.fill("input[name=name]", "Nightly export")
    screenshot(page, "managementkey-add")
    page.locator("button[form=managementkey_form][name=_save]").click()
    # Then the key is shown once, with how to send it
    expect(page.get_by_text("only time it is shown")).to_be_visible()
    expect(page.get_by_text("Management API key created for ci-bot")).to_be_visible()
    key = page.locator("#management-key").inner_text().strip()
    screenshot(page, "managementkey-created")
    assert len(key) >= 40 and " " not in key
    page.locator("#management-key").click()
    assert page.evaluate("window.getSelection().toString()").strip() == key
    # And the Management API accepts it, as the colleague
    status, body = management_get(live_server, key)
    assert status == 200, body
    assert body["items"][0]["slug"] == "corner-shop"
    # And the list shows its owner, prefix and last use, never the key
    stored = ManagementKey.objects.get(name="Nightly export")
    assert stored.user == colleague and stored.last_used_at is not None
    page.goto(f"{live_server.url}/admin/workspace/managementkey/")
    row = page.locator("#result_list tbody tr", has_text="Nightly export")
    expect(row).to_contain_text("ci-bot")
    expect(row).to_contain_text(stored.prefix)
    expect(row).to_contain_text("active")
    expect(row.locator("td.field-expires_at")).to_have_text("never")
    screenshot(page, "managementkey-list")
    assert key not in page.content()
    page.goto(f"{live_server.url}/admin/workspace/managementkey/{stored.pk}/change/")
    expect(page.get_by_text(stored.prefix).first).to_be_visible()
    assert key not in page.content()
    expect(page.locator("#management-key")).to_have_count(0)


def test_staff_make_and_revoke_only_their_own_keys(page: Page, live_server: LiveServer) -> None:
    # Given a staff member allowed to manage Management API keys, and a colleague's key
    clerk = get_user_model().objects.create_user("clerk", "clerk@example.com", PASSWORD, is_staff=True)
    clerk.user_permissions.set(
        Permission.objects.filter(
            codename__in=["add_managementkey", "view_managementkey", "view_application"]
        )
    )
    other = get_user_model().objects.create_user("other", "other@example.com", PASSWORD, is_staff=True)
    management_key_create(user=other, name="Colleague's script")
    login(page, live_server, "clerk")
    # When they add a key: there is no owner to choose, it is theirs
    page.goto(f"{live_server.url}/admin/workspace/managementkey/add/")
    expect(page.locator("select[name=user]")).to_have_count(0)
    page.fill("input[name=name]", "My report")
    page.locator("button[form=managementkey_form][name=_save]").click()
    key = page.locator("#management-key").inner_text().strip()
    assert ManagementKey.objects.get(name="My report").user == clerk
    assert management_get(live_server, key)[0] == 200
    # And the list shows only their own key
    page.goto(f"{live_server.url}/admin/workspace/managementkey/")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    assert "Colleague's script" not in page.content()
    # When they revoke it from the list: a confirmation page asks first
    mine = ManagementKey.objects.get(name="My report")
    page.locator(f"input.action-select[value='{mine.pk}']").check()
    page.select_option("select[name=action]", label="Revoke selected Management API keys")
    page.get_by_title("Run the selected action").click()
    expect(page.get_by_text("Revoke 1 Management API key?")).to_be_visible()
    screenshot(page, "managementkey-revoke-confirm")
    assert ManagementKey.objects.get(pk=mine.pk).revoked_at is None
    page.get_by_role("button", name="Yes, revoke").click()
    # Then the list says so and the API refuses the key at once
    expect(page.get_by_text("Revoked 1 Management API key(s).")).to_be_visible()
    expect(page.locator("#result_list tbody tr", has_text="My report")).to_contain_text("revoked")
    status, body = management_get(live_server, key)
    assert status == 401 and body["message"] == "This Management API key has been revoked"
