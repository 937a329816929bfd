"""The back office as a staff member uses it: a real Chromium against a live server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.customers.services import profile_upsert
from patronage.testing.browser import screenshot
from patronage.testing.factories import make_api_key, make_application
from patronage.workspace.models import ApiKey, Application, Environment
from patronage.workspace.services import environment_get

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # The default PBKDF2 costs ~0.5 s per hash: once to create each user and once more to log in.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def submit_login(page: Page, username: str, lands_on: str = "/admin/") -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("#login-form").get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{lands_on}")


def login(page: Page, live_server: LiveServer, username: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    submit_login(page, username)


def make_superuser(username: str = "admin") -> Any:
    return get_user_model().objects.create_superuser(username, f"{username}@example.com", PASSWORD)


def integration_get(live_server: LiveServer, key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{live_server.url}/v2/customer_sessions/nope", headers={"Authorization": f"ApiKey-v1 {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def create_key_in_back_office(page: Page, live_server: LiveServer, app: Application, name: str) -> str:
    page.goto(f"{live_server.url}/admin/workspace/apikey/add/")
    page.select_option("select[name=application]", str(app.pk))
    page.fill("input[name=name]", name)
    page.locator("button[form=apikey_form][name=_save]").click()
    expect(page.get_by_text("only time it is shown")).to_be_visible()
    return page.locator("#api-key").inner_text().strip()


def test_staff_login_is_required_and_shows_the_dashboard(page: Page, live_server: LiveServer) -> None:
    # Given a superuser
    make_superuser()
    # When an anonymous visitor opens the back office
    page.goto(f"{live_server.url}/admin/")
    # Then they are sent to the login page, to come back afterwards
    assert page.url == f"{live_server.url}/admin/login/?next=/admin/"
    expect(page.locator("input[name=password]")).to_be_visible()
    # When they log in
    submit_login(page, "admin")
    # Then the dashboard links to the workspace and customers
    assert page.url == f"{live_server.url}/admin/"
    for label in ["Applications", "API keys", "Customer profiles"]:
        expect(page.get_by_role("link", name=label, exact=True).first).to_be_visible()


def test_a_new_api_key_is_shown_once_and_works(page: Page, live_server: LiveServer) -> None:
    # Given a logged-in superuser and a live application
    make_superuser()
    app = make_application(environment=Environment.LIVE, slug="corner-shop")
    login(page, live_server, "admin")
    # When they add an API key for it
    key = create_key_in_back_office(page, live_server, app, "Till 1")
    screenshot(page, "apikey-created")
    # Then the key is shown, and one click selects all of it, ready to copy
    assert len(key) >= 20 and " " not in key
    page.locator("#api-key").click()
    assert page.evaluate("window.getSelection().toString()").strip() == key
    # And the Integration API accepts it (an unknown session: 404, not 401)
    status, body = integration_get(live_server, key)
    assert status == 404, body
    # And only a digest is stored
    api_key = ApiKey.objects.get(application=app, name="Till 1")
    assert api_key.digest != key
    assert key not in {str(value) for value in ApiKey.objects.filter(pk=api_key.pk).values().get().values()}
    # And the key page never shows it again
    page.goto(f"{live_server.url}/admin/workspace/apikey/{api_key.pk}/change/")
    expect(page.get_by_text(api_key.prefix).first).to_be_visible()
    assert key not in page.content()
    page.reload()
    assert key not in page.content()
    expect(page.locator("#api-key")).to_have_count(0)


def test_revoking_a_key_from_the_list_after_confirmation(page: Page, live_server: LiveServer) -> None:
    # Given a key made in the back office
    make_superuser()
    app = make_application(environment=Environment.LIVE, slug="market-stall")
    login(page, live_server, "admin")
    key = create_key_in_back_office(page, live_server, app, "Old till")
    api_key = ApiKey.objects.get(application=app, name="Old till")
    # When they select it in the list and run "Revoke selected API keys"
    page.goto(f"{live_server.url}/admin/workspace/apikey/")
    page.locator(f"input.action-select[value='{api_key.pk}']").check()
    page.select_option("select[name=action]", label="Revoke selected API keys")
    page.get_by_title("Run the selected action").click()
    # Then a confirmation page asks first
    expect(page.get_by_text("Revoke 1 API key?")).to_be_visible()
    screenshot(page, "apikey-revoke-confirm")
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is None
    # When they confirm
    page.get_by_role("button", name="Yes, revoke").click()
    # Then the list shows the key as revoked
    expect(page.get_by_text("Revoked 1 API key(s).")).to_be_visible()
    row = page.locator("#result_list tbody tr", has_text="Old till")
    expect(row).to_contain_text("revoked")
    # And the Integration API refuses the key
    status, body = integration_get(live_server, key)
    assert status == 401
    assert body["message"] == "This API key has been revoked"


def test_staff_without_permissions_cannot_see_api_keys(page: Page, live_server: LiveServer) -> None:
    # Given an API key and a staff member with no permissions
    make_api_key(make_application(environment=Environment.LIVE, slug="kiosk"), name="Kiosk till")
    get_user_model().objects.create_user("clerk", "clerk@example.com", PASSWORD, is_staff=True)
    # When they log in
    login(page, live_server, "clerk")
    # Then the dashboard offers no API keys
    expect(page.locator("a[href$='/admin/workspace/apikey/']")).to_have_count(0)
    # And opening the API key list directly is refused
    response = page.goto(f"{live_server.url}/admin/workspace/apikey/")
    assert response is not None and response.status == 403
    assert "Kiosk till" not in page.content()


def test_customer_profiles_are_listed_and_searchable(page: Page, live_server: LiveServer) -> None:
    # Given two customer profiles in the live environment
    live = environment_get(Environment.LIVE)
    profile_upsert(
        environment=live,
        integration_id="cust-ada",
        attributes={"Name": "Ada Lovelace", "Email": "ada@example.com"},
    )
    profile_upsert(
        environment=live,
        integration_id="cust-grace",
        attributes={"Name": "Grace Hopper", "Email": "grace@example.com"},
    )
    make_superuser()
    login(page, live_server, "admin")
    # When a staff member opens the customer list
    page.goto(f"{live_server.url}/admin/customers/customerprofile/")
    # Then both profiles are listed, and customers can be added by hand (patronage/customers/tests has more)
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.get_by_text("Ada Lovelace")).to_be_visible()
    expect(page.get_by_text("Grace Hopper")).to_be_visible()
    expect(page.locator("a[href$='/customerprofile/add/']")).to_have_count(1)
    screenshot(page, "customer-profiles")
    # When they search by email
    page.fill("input[name=q]", "grace@example.com")
    page.press("input[name=q]", "Enter")
    # Then only that customer is listed
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("cust-grace")
    expect(page.get_by_text("Ada Lovelace")).to_have_count(0)
