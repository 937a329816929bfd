"""Signing in and out of the customer panel, as a customer sees it through the pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from patronage.core.throttle import SIGN_IN_ACCOUNT_LIMIT as LOGIN_FAILURE_LIMIT
from patronage.customers.models import CustomerProfile
from patronage.testing.factories import make_application
from patronage.workspace.models import Application, Environment

from .conftest import PASSWORD, make_customer

pytestmark = pytest.mark.django_db

WRONG = "The email or password is incorrect."


def url(shop: Application, page: str = "") -> str:
    return f"/panel/{shop.slug}/{page}"


def sign_in(client: Client, shop: Application, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(url(shop, "login/"), {"email": email, "password": password}, **extra)


def sign_in_with_next(client: Client, shop: Application, next_url: str) -> Any:
    return client.post(
        url(shop, "login/"), {"email": "anna@example.com", "password": PASSWORD, "next": next_url}
    )


def signed_in(client: Client, shop: Application) -> bool:
    return client.get(url(shop, "account/")).status_code == 200


def test_login_page_invites_first_timers_to_set_a_password(client: Client, shop: Application) -> None:
    # When a visitor opens the panel of a shop
    response = client.get(url(shop), follow=True)
    # Then they land on its login page, which names the shop and offers a first-password path
    assert response.redirect_chain == [(url(shop, "login/"), 302)]
    page = response.content.decode()
    assert shop.name in page
    assert "First time here?" in page and "Set your password" in page
    assert 'name="viewport"' in page


def test_a_customer_signs_in_with_email_in_any_case(
    client: Client, shop: Application, anna: CustomerProfile
) -> None:
    # When Anna signs in with her email typed in capitals
    response = sign_in(client, shop, "ANNA@Example.COM")
    # Then she lands on My offers, and her account page shows her details
    assert response.status_code == 302 and response["Location"] == url(shop, "offers/")
    page = client.get(url(shop, "account/")).content.decode()
    assert "Anna Nowak" in page and "anna@example.com" in page and "+1 415-555-0123" in page
    # And the sign-in is recorded
    anna.refresh_from_db()
    assert anna.last_login is not None


def test_signing_in_gives_a_new_session_key(client: Client, shop: Application, anna: CustomerProfile) -> None:
    # Given a visitor with a session from before signing in
    session = client.session
    session["visited"] = True
    session.save()
    before = session.session_key
    # When they sign in
    sign_in(client, shop, anna.email or "")
    # Then the session cookie carries a new key (a planted one is worth nothing)
    assert client.cookies["sessionid"].value != before


@pytest.mark.parametrize(
    ("email", "password"),
    [("anna@example.com", "not-her-password"), ("nobody@example.com", PASSWORD), ("", PASSWORD)],
    ids=["wrong password", "unknown email", "no email"],
)
def test_a_failed_sign_in_says_nothing_about_which_part_was_wrong(
    client: Client, shop: Application, anna: CustomerProfile, email: str, password: str
) -> None:
    response = sign_in(client, shop, email, password)
    assert response.status_code == 200
    page = response.content.decode()
    assert (WRONG in page) == bool(email)
    if not email:
        assert "This field is required." in page
    assert not signed_in(client, shop)


def test_a_customer_without_a_password_cannot_sign_in_yet(client: Client, shop: Application) -> None:
    # Given a customer the shop created through the API, with no panel password
    make_customer(shop.environment, email="ben@example.com", password=None)
    # When someone tries to sign in as them with an empty-looking guess
    response = sign_in(client, shop, "ben@example.com", "anything-at-all")
    # Then it fails like any other mismatch
    assert WRONG in response.content.decode()
    assert not signed_in(client, shop)


def test_customers_of_the_other_environment_are_not_accounts_here(
    client: Client, shop: Application, sandbox_app: Application
) -> None:
    # Given a customer who exists only in the sandbox environment
    make_customer(sandbox_app.environment, email="sandy@example.com")
    # When they try the live shop's panel
    response = sign_in(client, shop, "sandy@example.com")
    # Then they are refused there
    assert WRONG in response.content.decode()
    # But the sandbox shop's panel lets them in
    assert sign_in(client, sandbox_app, "sandy@example.com").status_code == 302
    assert signed_in(client, sandbox_app)
    assert not signed_in(client, shop)


def test_shops_of_one_environment_share_the_sign_in(
    client: Client, shop: Application, anna: CustomerProfile
) -> None:
    # Given a second live shop
    other = make_application(environment=Environment.LIVE, slug="second-shop", name="Second Shop")
    # When Anna signs in at the first
    sign_in(client, shop, "anna@example.com")
    # Then the second one knows her too: they share their customers
    assert signed_in(client, other)


def test_an_unknown_shop_is_a_not_found_page(client: Client, db: None) -> None:
    for path in ["/panel/no-such-shop/", "/panel/no-such-shop/login/", "/panel/no-such-shop/account/"]:
        response = client.get(path)
        assert response.status_code == 404
        assert "Page not found" in response.content.decode()


def test_a_signed_out_visitor_goes_to_login_and_comes_back(
    client: Client, shop: Application, anna: CustomerProfile
) -> None:
    # When a signed-out visitor opens the password page
    response = client.get(url(shop, "account/password/"))
    # Then they are asked to sign in first
    assert response["Location"] == url(shop, "login/") + "?next=%2Fpanel%2Flive-shop%2Faccount%2Fpassword%2F"
    # And the login page carries where they were going through the form
    page = client.get(response["Location"]).content.decode()
    assert 'name="next" value="/panel/live-shop/account/password/"' in page
    # So after signing in they arrive there
    response = sign_in_with_next(client, shop, "/panel/live-shop/account/password/")
    assert response["Location"] == url(shop, "account/password/")


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/", "/admin/", "/panel/other-shop/account/"]
)
def test_after_sign_in_never_goes_outside_the_shop_panel(
    client: Client, shop: Application, anna: CustomerProfile, next_url: str
) -> None:
    response = sign_in_with_next(client, shop, next_url)
    assert response["Location"] == url(shop, "offers/")


def test_signing_out_ends_the_panel_session_and_leaves_staff_signed_in(
    client: Client, shop: Application, anna: CustomerProfile
) -> None:
    # Given a browser where a staff member and Anna are both signed in
    staff = get_user_model().objects.create_user("staff", "staff@example.com", "x", is_staff=True)
    client.force_login(staff)
    sign_in(client, shop, "anna@example.com")
    assert signed_in(client, shop)
    # When Anna signs out (a GET link cannot do it for her)
    assert client.get(url(shop, "logout/")).status_code == 405
    response = client.post(url(shop, "logout/"), follow=True)
    # Then she is back on the login page, told so, and her pages are closed
    assert response.redirect_chain[-1][0] == url(shop, "login/")
    assert "You have signed out." in response.content.decode()
    assert not signed_in(client, shop)
    # And the staff member is still signed in to the back office
    assert client.get("/admin/").status_code == 200


def test_sign_out_needs_the_csrf_token(shop: Application, anna: CustomerProfile) -> None:
    # Given a browser with Anna signed in that enforces CSRF like a real one
    client = Client(enforce_csrf_checks=True)
    page = client.get(url(shop, "login/")).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    client.post(
        url(shop, "login/"), {"email": "anna@example.com", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert signed_in(client, shop)
    # When another site makes her browser post to the logout address
    response = client.post(url(shop, "logout/"))
    # Then it is refused and she stays signed in
    assert response.status_code == 403
    assert signed_in(client, shop)


def test_repeated_failures_lock_that_email_from_that_address(
    client: Client, shop: Application, anna: CustomerProfile
) -> None:
    # Given someone guessing Anna's password from one address
    for _ in range(LOGIN_FAILURE_LIMIT):
        assert WRONG in sign_in(client, shop, "anna@example.com", "guess").content.decode()
    # When they then try even the right password
    response = sign_in(client, shop, "anna@example.com")
    # Then they are told to wait, and not signed in
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed sign-ins; try again in 15 minutes, or reset your password." in page
    assert not signed_in(client, shop)
    # But Anna at home (another address) signs in as usual
    other = Client()
    assert sign_in(other, shop, "anna@example.com", REMOTE_ADDR="203.0.113.7").status_code == 302


def test_a_successful_sign_in_clears_earlier_failures(
    client: Client, shop: Application, anna: CustomerProfile
) -> None:
    # Given a few typos and then the right password
    for _ in range(LOGIN_FAILURE_LIMIT - 1):
        sign_in(client, shop, "anna@example.com", "typo")
    assert sign_in(client, shop, "anna@example.com").status_code == 302
    client.post(url(shop, "logout/"))
    # When she mistypes again later
    for _ in range(LOGIN_FAILURE_LIMIT - 1):
        sign_in(client, shop, "anna@example.com", "typo")
    # Then she is not locked out: the count started again
    assert sign_in(client, shop, "anna@example.com").status_code == 302
