"""Unsubscribing: the RFC 8058 headers and the link in every message, the one-click POST, the page with its
undo, the consent audit of each; and what a send says when nothing was handed to the SMTP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from patronage.core.errors import ValidationFailed
from patronage.customers.models import ConsentChange, CustomerProfile
from patronage.mailings import sending, unsubscribe
from patronage.mailings.models import Mailing, MailingDelivery
from patronage.mailings.services import MailingInput, mailing_save, mailing_start
from patronage.testing.mailings import make_customers, make_mailing
from patronage.testing.smtp import ReceivedMail, SmtpServer
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

Status = MailingDelivery.Status


@pytest.fixture
def live(db: None) -> Environment:
    return environment_get(Environment.LIVE)


def send(mailing: Mailing) -> sending.SendOutcome:
    mailing_start(mailing=mailing, enqueue=False)
    return sending.mailing_send_run(mailing_id=mailing.pk)


def header_url(mail: ReceivedMail) -> str:
    value = str(mail.message["List-Unsubscribe"]).strip()  # folded: a long header continues on a new line
    assert value.startswith("<") and value.endswith(">")
    return value[1:-1]


def path_of(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


def one_click(url: str) -> Any:
    """What a mailbox provider posts (RFC 8058): no cookie, no CSRF token."""
    return Client(enforce_csrf_checks=True).post(
        path_of(url), "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )


def test_every_message_carries_the_headers_and_a_link_of_its_own(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: two consenting customers and a mailing whose templates do not mention unsubscribing
    make_customers(live, 2)
    mailing = make_mailing(live)
    # when
    send(mailing)
    # then: each message has the one-click headers and its own link, in the header and in both bodies
    urls = set()
    for mail in smtp_server.wait_for(2):
        url = header_url(mail)
        assert url.startswith("http://127.0.0.1:8000/unsubscribe/")
        assert str(mail.message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        assert mail.links()[-1] == url
        assert f'href="{url}"' in mail.html and "Unsubscribe</a>" in mail.html
        urls.add(url)
    assert len(urls) == 2


def test_a_template_using_unsubscribe_url_gets_no_footer(live: Environment, smtp_server: SmtpServer) -> None:
    make_customers(live, 1)
    mailing = make_mailing(
        live,
        text_body="Dear {{ client.name }}. Leave: {{ unsubscribe_url }}",
        html_body='<p>Hi</p><a href="{{ unsubscribe_url }}">Stop these</a>',
    )
    send(mailing)
    (mail,) = smtp_server.wait_for(1)
    url = header_url(mail)
    assert mail.text.rstrip() == f"Dear Customer c0. Leave: {url}"
    assert mail.html.rstrip() == f'<p>Hi</p><a href="{url}">Stop these</a>'


def test_the_public_url_setting_makes_the_links(
    live: Environment, smtp_server: SmtpServer, settings: Any
) -> None:
    settings.PATRONAGE_PUBLIC_URL = "https://crm.shop.example"
    make_customers(live, 1)
    send(make_mailing(live))
    (mail,) = smtp_server.wait_for(1)
    assert header_url(mail).startswith("https://crm.shop.example/unsubscribe/")


def test_the_one_click_post_withdraws_consent_at_once_and_records_it(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: a message received by a consenting customer
    (ann,) = make_customers(live, 1)
    mailing = make_mailing(live)
    send(mailing)
    (mail,) = smtp_server.wait_for(1)
    # when: the mailbox provider posts the one-click body to the header's URL
    response = one_click(header_url(mail))
    # then: consent is gone, recorded as through the link of this mailing
    assert response.status_code == 200
    ann.refresh_from_db()
    assert not ann.accepts_marketing
    (change,) = ConsentChange.objects.filter(profile=ann)
    assert (change.old_value, change.new_value, change.source) == (True, False, ConsentChange.Source.LINK)
    assert change.detail == f"from the mailing “{mailing.name}” (#{mailing.pk})"
    # and: posting again changes nothing more
    assert one_click(header_url(mail)).status_code == 200
    assert ConsentChange.objects.filter(profile=ann).count() == 1


def test_following_the_link_unsubscribes_and_the_page_offers_undo(live: Environment) -> None:
    # given
    (ann,) = make_customers(live, 1)
    url = unsubscribe.url_for(profile_id=ann.pk, environment_id=live.pk)
    browser = Client(enforce_csrf_checks=True)
    # when: the customer opens the link
    page = browser.get(path_of(url))
    # then
    assert page.status_code == 200
    assert "You will no longer receive marketing emails from" in page.content.decode()
    ann.refresh_from_db()
    assert not ann.accepts_marketing
    # when: they press undo (a form with its CSRF token)
    token = page.cookies["csrftoken"].value
    undone = browser.post(path_of(url) + "undo/", {"csrfmiddlewaretoken": token})
    # then: consent is back, and both changes are on record
    assert undone.status_code == 200 and "You are subscribed again" in undone.content.decode()
    ann.refresh_from_db()
    assert ann.accepts_marketing
    rows = (
        ConsentChange.objects.filter(profile=ann)
        .order_by("id")
        .values_list("old_value", "new_value", "detail")
    )
    assert list(rows) == [(True, False, ""), (False, True, "undone on the unsubscribe page")]


def test_undo_needs_the_pages_own_form(live: Environment) -> None:
    (ann,) = make_customers(live, 1, consent=False)
    url = unsubscribe.url_for(profile_id=ann.pk, environment_id=live.pk)
    assert Client(enforce_csrf_checks=True).post(path_of(url) + "undo/").status_code == 403
    ann.refresh_from_db()
    assert not ann.accepts_marketing


def test_a_token_names_one_customer_and_a_changed_token_is_refused(live: Environment) -> None:
    # given: customers A and B
    a, b = make_customers(live, 2)
    token_a = unsubscribe.token_for(profile_id=a.pk, environment_id=live.pk)
    # when: A's token is edited to name B (the payload changed, the signature kept)
    payload, signature = token_a.rsplit(":", 1)
    token_b = unsubscribe.token_for(profile_id=b.pk, environment_id=live.pk)
    forged = f"{token_b.rsplit(':', 1)[0]}:{signature}"
    for bad in (forged, token_a[:-2], "not-a-token", token_a + "x"):
        response = Client().post(
            f"/unsubscribe/{bad}/", "List-Unsubscribe=One-Click", content_type="text/plain"
        )
        # then: a friendly page, nobody unsubscribed
        assert response.status_code == 400
        assert "This unsubscribe link is not complete" in response.content.decode()
    assert CustomerProfile.objects.filter(accepts_marketing=True).count() == 2
    # and: A's own token unsubscribes A only
    assert Client().get(f"/unsubscribe/{token_a}/").status_code == 200
    assert list(CustomerProfile.objects.filter(accepts_marketing=True)) == [b]
    # and: a token from another purpose's signer is not one of ours
    assert unsubscribe.token_read(payload) is None


def test_a_link_made_before_the_secret_key_was_rotated_still_works(live: Environment, settings: Any) -> None:
    # given: a link made under the old key, which then moved to SECRET_KEY_FALLBACKS
    (ann,) = make_customers(live, 1)
    old = unsubscribe.token_for(profile_id=ann.pk, environment_id=live.pk)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    # then: the old link is still ours, new links are signed with the new key, and a dropped key ends it
    assert unsubscribe.token_read(old) == unsubscribe.Unsubscribe(ann.pk, live.pk, None)
    assert unsubscribe.token_for(profile_id=ann.pk, environment_id=live.pk) != old
    settings.SECRET_KEY_FALLBACKS = []
    assert unsubscribe.token_read(old) is None


def test_a_link_of_a_deleted_customer_says_so(live: Environment) -> None:
    (ann,) = make_customers(live, 1)
    url = unsubscribe.url_for(profile_id=ann.pk, environment_id=live.pk)
    ann.delete()
    response = Client().get(path_of(url))
    assert response.status_code == 404 and "You are not on the list" in response.content.decode()


# --- sender addresses and failures before the SMTP conversation ---------------------------------------


@pytest.mark.parametrize(
    ("sender", "words"),
    [
        ("Demo Shop <news@shop.example>\r\nBcc: all@victim.example", "on one line"),
        ("Demo\nShop <news@shop.example>", "on one line"),
        ("Demo Shop news@shop.example", "angle brackets"),
        ("a@b.example, c@d.example", "not one sender address"),
        ("Shop <news@shop>", "not a valid email address"),
    ],
)
def test_a_bad_sender_is_refused_at_save_on_its_field(live: Environment, sender: str, words: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        make_mailing(live, sender=sender)
    (detail,) = [d for d in refused.value.details if d.pointer == "sender"]
    assert words in detail.details
    assert not Mailing.objects.exists()


def test_a_sender_that_cannot_be_sent_fails_each_recipient_saying_nothing_was_handed_over(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: a mailing saved before senders were checked, with a line break in its sender
    make_customers(live, 2)
    mailing = make_mailing(live)
    Mailing.objects.filter(pk=mailing.pk).update(
        sender="Demo Shop <news@shop.example>\r\nBcc: x@evil.example"
    )
    # when
    outcome = send(mailing)
    # then: nobody is "interrupted (it may have arrived)": both failed, saying nothing was handed over
    assert not smtp_server.messages
    assert outcome.finished and outcome.failed == 2
    for delivery in MailingDelivery.objects.filter(mailing=mailing):
        assert delivery.status == Status.FAILED
        assert delivery.reason.startswith(sending.NOT_HANDED_OVER)
        assert "may have arrived" not in delivery.reason


class _HangingUp:
    """An SMTP server on loopback that greets, answers EHLO and hangs up at MAIL FROM: the conversation
    breaks before any content could be handed over. Later connections find the port closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        self.listener.close()  # the next connection is refused
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 hanging-up.example ESMTP\r\n")
            for line in lines:
                if line.upper().startswith((b"EHLO", b"HELO")):
                    conn.sendall(b"250 hanging-up.example\r\n")
                elif line.upper().startswith(b"MAIL"):
                    return


@pytest.fixture
def hanging_up(settings: Any) -> Iterator[_HangingUp]:
    server = _HangingUp()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.PATRONAGE_MAILING_CONNECTIONS = 1
    yield server
    server.thread.join(timeout=5)


def test_a_connection_lost_before_data_says_nothing_was_handed_over_and_the_rest_wait(
    live: Environment, hanging_up: _HangingUp
) -> None:
    # given: three recipients; the server hangs up at the first MAIL FROM, then its port is closed
    make_customers(live, 3)
    mailing = make_mailing(live)
    # when
    outcome = send(mailing)
    # then: the first recipient failed with "nothing was handed over", never "it may have arrived"
    first, *rest = MailingDelivery.objects.filter(mailing=mailing).order_by("id")
    assert first.status == Status.FAILED
    assert first.reason.startswith(sending.NOT_HANDED_OVER) and "may have arrived" not in first.reason
    # and: reconnecting was refused, so the sender stopped; the others wait, ready, for a resume
    assert [delivery.status for delivery in rest] == [Status.READY, Status.READY]
    assert outcome.stopped.startswith("Lost the SMTP server")


def test_a_closed_port_leaves_every_message_ready_and_nothing_interrupted(
    live: Environment, settings: Any
) -> None:
    # given: an SMTP port nobody listens on
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    make_customers(live, 2)
    mailing = make_mailing(live)
    # when
    outcome = send(mailing)
    # then
    assert outcome.stopped.startswith("Cannot reach the SMTP server")
    statuses = set(MailingDelivery.objects.filter(mailing=mailing).values_list("status", "reason"))
    assert statuses == {(Status.READY, "")}


def test_a_save_input_keeps_a_good_sender_as_typed(live: Environment) -> None:
    mailing = mailing_save(
        environment=live,
        data=MailingInput(
            name="n",
            sender='"Shop, Inc." <news@shop.example>',
            subject="s",
            html_body="",
            text_body="t",
            audience=Mailing.Audience.CONSENTING,
        ),
    )
    assert mailing.sender == '"Shop, Inc." <news@shop.example>'
