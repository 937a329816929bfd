"""Forgotten and first passwords by email, through a real SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from patronage.core import clock
from patronage.customers.accounts import RESET_MAIL_LIMIT
from patronage.customers.models import CustomerProfile
from patronage.testing.smtp import ReceivedMail, SmtpServer
from patronage.workspace.models import Application

from .conftest import PASSWORD, make_customer

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "walnut-lantern-77"
SENT = "If an account exists for that address, we have sent it a link"
DEAD_LINK = "This link no longer works"

Capture = Callable[..., Any]


def url(shop: Application, page: str = "") -> str:
    return f"/panel/{shop.slug}/{page}"


def request_link(client: Client, shop: Application, email: str, capture: Capture) -> Any:
    # The mail leaves after commit; the test's transaction never commits, so run the callbacks.
    with capture(execute=True):
        return client.post(url(shop, "reset/"), {"email": email}, follow=True)


def link_path(mail: ReceivedMail) -> str:
    (link,) = [link for link in mail.links() if "/reset/" in link]
    return urlsplit(link).path


def choose_password(client: Client, path: str, password: str, repeat: str | None = None) -> Any:
    response = client.get(path, follow=True)
    form_path = response.redirect_chain[-1][0] if response.redirect_chain else path
    return client.post(
        form_path, {"new_password1": password, "new_password2": repeat or password}, follow=True
    )


def sign_in(client: Client, shop: Application, email: str, password: str) -> int:
    return client.post(url(shop, "login/"), {"email": email, "password": password}).status_code


def test_a_forgotten_password_is_reset_through_the_emailed_link(
    client: Client,
    shop: Application,
    anna: CustomerProfile,
    smtp_server: SmtpServer,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # When Anna asks for a reset link
    response = request_link(client, shop, "Anna@Example.com", django_capture_on_commit_callbacks)
    # Then she is told to check her email
    assert response.redirect_chain[-1][0] == url(shop, "reset/sent/")
    assert SENT in response.content.decode()
    # And one mail, text and HTML, arrives for her from the shop
    (mail,) = smtp_server.wait_for(1)
    assert mail.to == ["anna@example.com"]
    assert mail.subject == f"Reset your password for {shop.name}"
    assert mail.sender.startswith(shop.name)
    assert "Hello Anna Nowak," in mail.text
    assert "Choose a new password" in mail.html
    path = link_path(mail)
    assert path.startswith(url(shop, "reset/"))
    assert f'href="http://testserver{path}"' in mail.html

    # When she follows the link and chooses a new password
    response = choose_password(client, path, NEW_PASSWORD)
    # Then she is signed in on her account page
    assert response.redirect_chain[-1][0] == url(shop, "account/")
    assert "Your password is set and you are signed in." in response.content.decode()
    # And the token left the address bar for the session before the form showed
    assert all("set-password" in hop or hop == url(shop, "account/") for hop, _ in response.redirect_chain)

    # And the old password no longer works, the new one does
    fresh = Client()
    assert sign_in(fresh, shop, "anna@example.com", PASSWORD) == 200
    assert sign_in(fresh, shop, "anna@example.com", NEW_PASSWORD) == 302
    # And the link is dead once used
    assert DEAD_LINK in Client().get(path).content.decode()


def test_the_link_dies_when_the_customer_signs_in_meanwhile(
    client: Client,
    shop: Application,
    anna: CustomerProfile,
    smtp_server: SmtpServer,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # Given a reset link Anna asked for
    request_link(client, shop, "anna@example.com", django_capture_on_commit_callbacks)
    path = link_path(smtp_server.wait_for(1)[0])
    # When she remembers her password and signs in after all
    assert sign_in(Client(), shop, "anna@example.com", PASSWORD) == 302
    # Then the old link stops working (a stale mail cannot reset her password later)
    assert DEAD_LINK in Client().get(path).content.decode()


def test_the_link_expires(
    client: Client,
    shop: Application,
    anna: CustomerProfile,
    smtp_server: SmtpServer,
    settings: Any,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    request_link(client, shop, "anna@example.com", django_capture_on_commit_callbacks)
    path = link_path(smtp_server.wait_for(1)[0])
    later = clock.now() + dt.timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 60)
    with clock.frozen_at(later):
        assert DEAD_LINK in Client().get(path).content.decode()


def test_a_customer_without_a_password_sets_their_first_one(
    client: Client,
    shop: Application,
    smtp_server: SmtpServer,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # Given a customer the shop's import created, with no password
    make_customer(shop.environment, email="ben@example.com", password=None, Name="Ben")
    # When Ben follows "First time here? Set your password"
    page = client.get(url(shop, "reset/?first=1")).content.decode()
    assert "Set your password" in page
    request_link(client, shop, "ben@example.com", django_capture_on_commit_callbacks)
    # Then the mail invites him to set his password
    (mail,) = smtp_server.wait_for(1)
    assert mail.subject == f"Set your password for {shop.name}"
    assert "set a password" in mail.text
    # And the page behind the link says it is his first one
    response = client.get(link_path(mail), follow=True)
    assert "Choose your password" in response.content.decode()
    assert "ben@example.com" in response.content.decode()
    response = choose_password(client, link_path(mail), NEW_PASSWORD)
    assert response.redirect_chain[-1][0] == url(shop, "account/")
    # And from now on he signs in with it
    assert sign_in(Client(), shop, "ben@example.com", NEW_PASSWORD) == 302


def test_unknown_addresses_get_the_same_answer_and_no_mail(
    client: Client,
    shop: Application,
    sandbox_app: Application,
    anna: CustomerProfile,
    smtp_server: SmtpServer,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # Given a customer who exists only in the sandbox
    make_customer(sandbox_app.environment, email="sandy@example.com")
    for email in ["nobody@example.com", "sandy@example.com"]:
        # When someone asks the live shop for a link for that address
        response = request_link(client, shop, email, django_capture_on_commit_callbacks)
        # Then the answer is word for word the one a customer gets
        assert response.redirect_chain[-1][0] == url(shop, "reset/sent/")
        assert SENT in response.content.decode()
    # And no mail goes anywhere
    assert smtp_server.messages == []


def test_the_new_password_must_be_a_good_one(
    client: Client,
    shop: Application,
    anna: CustomerProfile,
    smtp_server: SmtpServer,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    request_link(client, shop, "anna@example.com", django_capture_on_commit_callbacks)
    path = link_path(smtp_server.wait_for(1)[0])
    # When she types two different passwords, then a short one, then a common one
    page = choose_password(client, path, NEW_PASSWORD, "something-else-1").content.decode()
    assert "The two passwords do not match." in page
    page = choose_password(client, path, "k9!x").content.decode()
    assert "This password is too short. It must contain at least 8 characters." in page
    page = choose_password(client, path, "password123").content.decode()
    assert "This password is too common." in page
    # Then her password is unchanged and the link still works for a good one
    anna.refresh_from_db()
    assert anna.check_password(PASSWORD)
    response = choose_password(client, path, NEW_PASSWORD)
    assert response.redirect_chain[-1][0] == url(shop, "account/")


def test_a_tampered_link_does_not_work(client: Client, shop: Application, anna: CustomerProfile) -> None:
    for path in [
        "reset/MQ/abc-def/",
        "reset/!!/1-2/",
        "reset/MQ/set-password/",
        "reset/OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk/1-2/",
        "reset/LTE/1-2/",
    ]:
        assert DEAD_LINK in client.get(url(shop, path)).content.decode()


def test_reset_mails_per_address_are_limited(
    client: Client,
    shop: Application,
    anna: CustomerProfile,
    smtp_server: SmtpServer,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # When someone asks for Anna's link over and over
    for _ in range(RESET_MAIL_LIMIT + 3):
        response = request_link(client, shop, "anna@example.com", django_capture_on_commit_callbacks)
        assert SENT in response.content.decode()
    # Then her mailbox gets only a handful
    assert len(smtp_server.messages) == RESET_MAIL_LIMIT


def test_a_mail_server_failure_does_not_reveal_the_account(
    client: Client,
    shop: Application,
    anna: CustomerProfile,
    settings: Any,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # Given a mail server that refuses connections
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    # When Anna asks for a link
    response = request_link(client, shop, "anna@example.com", django_capture_on_commit_callbacks)
    # Then she sees the usual answer, not an error page
    assert response.status_code == 200
    assert SENT in response.content.decode()
