"""Sending a mailing: who receives it, the promo codes the messages issue, and what the SMTP server says.

Every message goes through Django's SMTP backend to a real SMTP server on loopback (``smtp_server``).
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from patronage.core.errors import InvalidStateTransition, ValidationFailed
from patronage.customer_sessions.services import customer_data_erase
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.customers.services import profiles_delete
from patronage.mailings import selectors, sending
from patronage.mailings.models import CUSTOMER_GONE, Mailing, MailingDelivery, MailingListEmail
from patronage.mailings.services import (
    NO_CONSENT,
    MailingInput,
    mailing_delete,
    mailing_preview,
    mailing_resume,
    mailing_save,
    mailing_start,
)
from patronage.promocodes.models import IssueKind, PromoCode, PromoCodeGroup, PromoCodeIssue
from patronage.promocodes.selectors import active_counts
from patronage.testing.mailings import make_customers, make_mailing, without_footer
from patronage.testing.promocodes import make_group, make_issue
from patronage.testing.smtp import ReceivedMail, SmtpServer
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

Status = MailingDelivery.Status
Audience = Mailing.Audience


@pytest.fixture
def live(db: None) -> Environment:
    return environment_get(Environment.LIVE)


def codes(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n:03}" for n in range(1, count + 1)]


def active(group: PromoCodeGroup) -> int:
    return active_counts([group.pk])[group.pk]


def statuses(mailing: Mailing) -> dict[str, tuple[str, str]]:
    """email -> (status, reason) of every delivery of the mailing."""
    return {d.email: (d.status, d.reason) for d in MailingDelivery.objects.filter(mailing=mailing)}


def send(mailing: Mailing) -> sending.SendOutcome:
    """Start the mailing the way the back office does and run the sender the worker would run."""
    mailing_start(mailing=mailing, enqueue=False)
    return sending.mailing_send_run(mailing_id=mailing.pk)


def text(mail: ReceivedMail) -> str:
    """The plain-text body without the line end MIME adds to a single-part message."""
    return without_footer(mail.text).rstrip("\r\n")


def per_recipient(smtp_server: SmtpServer) -> Counter[str]:
    return Counter(address.lower() for mail in smtp_server.messages for address in mail.rcpt_tos)


# --- audiences ----------------------------------------------------------------------------------------
def test_all_consenting_customers_are_mailed_and_the_others_are_not_recipients(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: three customers who accept marketing, two who do not and one without an email
    make_customers(live, 3, prefix="yes")
    make_customers(live, 2, prefix="no", consent=False)
    CustomerProfile.objects.create(environment=live, integration_id="mute", accepts_marketing=True)
    mailing = make_mailing(live)
    # when
    started = mailing_start(mailing=mailing, enqueue=False)
    outcome = sending.mailing_send_run(mailing_id=mailing.pk)
    # then: the three got one message each; the others are not even listed as skipped
    assert started.recipient_count == 3
    assert per_recipient(smtp_server) == {f"yes{n}@example.com": 1 for n in range(3)}
    assert statuses(mailing) == {f"yes{n}@example.com": (Status.SENT, "") for n in range(3)}
    assert (outcome.sent, outcome.skipped, outcome.failed, outcome.finished) == (3, 0, 0, True)
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENT and mailing.finished_at is not None


def test_a_group_mailing_skips_members_without_consent(live: Environment, smtp_server: SmtpServer) -> None:
    # given: a group of two consenting members and one who never consented, and a consenting outsider
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    make_customers(live, 2, prefix="vip", group=vip)
    make_customers(live, 1, prefix="quiet", group=vip, consent=False)
    make_customers(live, 1, prefix="outsider")
    mailing = make_mailing(live, audience=Audience.GROUP, customer_group=vip)
    # when
    send(mailing)
    # then
    assert statuses(mailing) == {
        "vip0@example.com": (Status.SENT, ""),
        "vip1@example.com": (Status.SENT, ""),
        "quiet0@example.com": (Status.SKIPPED, NO_CONSENT),
    }
    assert per_recipient(smtp_server) == {"vip0@example.com": 1, "vip1@example.com": 1}


def test_an_email_list_is_matched_ignoring_case_and_unknown_addresses_are_skipped(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: customers written in mixed case, one without consent, one not on the list
    for integration_id, email, consent in [
        ("ann", "ann@example.com", True),
        ("bob", "Bob@Example.COM", True),
        ("cy", "cy@example.com", False),
        ("dee", "dee@example.com", True),
    ]:
        CustomerProfile.objects.create(
            environment=live, integration_id=integration_id, email=email, accepts_marketing=consent
        )
    # and: a list naming Ann twice, Bob in other case, Cy, and an address nobody has
    mailing = make_mailing(
        live,
        audience=Audience.EMAIL_LIST,
        email_list=[
            "ANN@example.com",
            "bob@example.com",
            "",
            "Ann@Example.com",
            "nobody@example.com",
            "cy@example.com",
        ],
    )
    # when
    send(mailing)
    # then: one delivery per address, however often it is listed; the unknown one says why
    assert statuses(mailing) == {
        "ann@example.com": (Status.SENT, ""),
        "Bob@Example.COM": (Status.SENT, ""),
        "cy@example.com": (Status.SKIPPED, NO_CONSENT),
        "nobody@example.com": (Status.SKIPPED, "No customer with this email in Live"),
    }
    assert per_recipient(smtp_server) == {"ann@example.com": 1, "bob@example.com": 1}


def test_an_email_list_with_invalid_lines_is_refused_with_their_line_numbers_and_nothing_saved(
    live: Environment,
) -> None:
    data = MailingInput(
        name="Spring",
        sender="Shop <news@shop.example>",
        subject="Hi",
        html_body="",
        text_body="Hello",
        audience=Audience.EMAIL_LIST,
        email_list=("list.csv", ["email", "ann@example.com", "not an email", "", "bob@", "cy@example.com"]),
    )
    # when: a new draft with a bad list
    with pytest.raises(ValidationFailed) as refused:
        mailing_save(environment=live, data=data)
    # then: both bad lines reported by number, and no draft exists
    assert [(d.line, d.details) for d in refused.value.details] == [
        (3, "Line 3: 'not an email' is not an email address"),
        (5, "Line 5: 'bob@' is not an email address"),
    ]
    assert "nothing was saved" in refused.value.message
    assert not Mailing.objects.exists() and not MailingListEmail.objects.exists()
    # when: an existing draft's list is replaced by the bad one
    mailing = make_mailing(live, audience=Audience.EMAIL_LIST, email_list=["ann@example.com"])
    with pytest.raises(ValidationFailed):
        mailing_save(environment=live, data=data, mailing=mailing)
    # then: the draft keeps its list
    mailing.refresh_from_db()
    assert (mailing.name, mailing.email_list_name) == ("Autumn newsletter", "list.csv")
    assert list(mailing.list_emails.values_list("email", flat=True)) == ["ann@example.com"]


# --- promo codes in the messages ----------------------------------------------------------------------
def test_each_recipient_gets_one_code_of_their_own_in_subject_text_and_html(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: four customers and a group of six codes; the text shows the code twice
    customers = make_customers(live, 4)
    group = make_group(live, "Autumn", codes=codes("AUT", 6))
    mailing = make_mailing(
        live,
        subject="{{ client.first_name }}, your code {{ client.promocode('Autumn') }}",
        text_body="Code {{ client.promocode('autumn') }} (once more: {{ client.promocode('Autumn') }})",
        html_body="<p>Dear {{ client.name }}, use <b>{{ client.promocode('Autumn') }}</b></p>",
    )
    # when
    send(mailing)
    # then: each message shows one code everywhere, and no two customers share one
    shown = {}
    for mail in smtp_server.wait_for(4):
        (to,) = mail.to
        (code,) = set(re.findall(r"AUT-\d{3}", mail.subject + mail.text + mail.html))
        assert mail.subject == f"Customer, your code {code}"
        assert text(mail) == f"Code {code} (once more: {code})"
        assert f"<p>Dear Customer {to.split('@')[0]}, use <b>{code}</b></p>" in mail.html
        assert mail.sender == "Demo Shop <news@shop.example>"
        shown[to] = code
    assert len(shown) == 4 and len(set(shown.values())) == 4
    # and: the first four codes (upload order) went out, the rest stay active
    assert sorted(shown.values()) == codes("AUT", 4)
    assert active(group) == 2
    # and: each customer's history records the code they were sent, as an initial issue of this mailing
    issues = PromoCodeIssue.objects.filter(mailing_id=mailing.pk).values_list(
        "profile__email", "group", "group_name", "code", "promo_code__code", "kind"
    )
    assert sorted(issues) == sorted(
        (email, group.pk, "Autumn", code, code, IssueKind.INITIAL) for email, code in shown.items()
    )
    assert {c.email for c in customers} == set(shown)
    issued = PromoCode.objects.filter(issued_at__isnull=False).values_list("code", "issued_to__email")
    assert dict(issued) == {code: email for email, code in shown.items()}
    # and: the delivery keeps what was sent
    delivery = MailingDelivery.objects.get(mailing=mailing, email="c0@example.com")
    assert (delivery.subject, without_footer(delivery.text)) == (
        f"Customer, your code {shown['c0@example.com']}",
        f"Code {shown['c0@example.com']} (once more: {shown['c0@example.com']})",
    )
    assert delivery.sent_at is not None


def test_last_promocode_repeats_the_customers_latest_code_and_is_empty_for_those_never_issued_one(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: Ann was issued two codes of the group before, Bob none
    ann = make_customers(live, 1, prefix="ann")[0]
    make_customers(live, 1, prefix="bob")
    group = make_group(live, "Spring", codes=["SPRING-OLD", "SPRING-NEW", "SPRING-FREE"])
    make_issue(ann, PromoCode.objects.get(code="SPRING-OLD"))
    make_issue(ann, PromoCode.objects.get(code="SPRING-NEW"))
    mailing = make_mailing(
        live, text_body="Still yours: [{{ client.last_promocode('Spring') }}]", html_body=""
    )
    # when
    send(mailing)
    # then: Ann is reminded of her latest code, Bob's message shows nothing
    assert [text(m) for m in smtp_server.to("ann0@example.com")] == ["Still yours: [SPRING-NEW]"]
    assert [text(m) for m in smtp_server.to("bob0@example.com")] == ["Still yours: []"]
    # and: only Ann's reminder is recorded, as a repeat; no code left the active pool
    assert list(
        PromoCodeIssue.objects.filter(mailing_id=mailing.pk).values_list("profile", "code", "kind")
    ) == [(ann.pk, "SPRING-NEW", IssueKind.REPEAT)]
    assert active(group) == 1


def test_a_promocode_inside_a_false_if_issues_nothing(live: Environment, smtp_server: SmtpServer) -> None:
    # given: only customers with more than five orders are shown a code
    loyal = make_customers(live, 1, prefix="loyal", closed_sessions=9)[0]
    make_customers(live, 2, prefix="new")
    group = make_group(live, "VIP", codes=codes("VIP", 3))
    mailing = make_mailing(
        live,
        text_body="Hello{% if client.orders > 5 %}, your code {{ client.promocode('VIP') }}{% endif %}.",
        html_body="",
    )
    # when
    send(mailing)
    # then: the loyal customer got a code; the others got the message without one and were issued nothing
    assert [text(m) for m in smtp_server.to("loyal0@example.com")] == ["Hello, your code VIP-001."]
    assert [text(m) for m in smtp_server.to("new0@example.com")] == ["Hello."]
    assert [text(m) for m in smtp_server.to("new1@example.com")] == ["Hello."]
    assert list(PromoCodeIssue.objects.values_list("profile", "code")) == [(loyal.pk, "VIP-001")]
    assert active(group) == 2
    assert PromoCode.objects.get(code="VIP-002").issued_to is None


def test_one_message_issues_a_code_of_each_group_it_names(live: Environment, smtp_server: SmtpServer) -> None:
    # given: a template naming two groups
    make_customers(live, 3)
    shoes = make_group(live, "Shoes", codes=codes("SHOE", 3))
    bags = make_group(live, "Bags", codes=codes("BAG", 4))
    mailing = make_mailing(
        live,
        text_body="Shoes: {{ client.promocode('Shoes') }} Bags: {{ client.promocode('Bags') }}",
        html_body="",
    )
    # when
    send(mailing)
    # then: one code of each group per message, none shared
    shown = [re.fullmatch(r"Shoes: (SHOE-\d+) Bags: (BAG-\d+)", text(m)) for m in smtp_server.wait_for(3)]
    assert all(shown)
    assert len({m.group(1) for m in shown if m}) == 3 and len({m.group(2) for m in shown if m}) == 3
    assert (active(shoes), active(bags)) == (0, 1)
    kinds = Counter(PromoCodeIssue.objects.filter(mailing_id=mailing.pk).values_list("group_name", "kind"))
    assert kinds == {("Shoes", IssueKind.INITIAL): 3, ("Bags", IssueKind.INITIAL): 3}


# --- not enough codes ---------------------------------------------------------------------------------
def test_a_start_needing_more_codes_than_a_group_has_is_refused_and_keeps_nothing(live: Environment) -> None:
    # given: 1,000 consenting customers and a group of 700 codes
    make_customers(live, 1000)
    group = make_group(live, "Autumn", codes=codes("AUT", 700))
    mailing = make_mailing(live, text_body="Your code: {{ client.promocode('Autumn') }}")
    # when
    with pytest.raises(ValidationFailed) as refused:
        mailing_start(mailing=mailing, enqueue=False)
    # then: the refusal gives both numbers, and the mailing is the draft it was
    assert refused.value.message == "Group “Autumn” has 700 active codes, this mailing needs 1,000"
    mailing.refresh_from_db()
    assert (mailing.status, mailing.recipient_count, mailing.started_at) == (Mailing.Status.DRAFT, 0, None)
    assert not MailingDelivery.objects.filter(mailing=mailing).exists()
    assert active(group) == 700 and not PromoCodeIssue.objects.exists()


def test_codes_running_out_during_the_send_skip_the_rest_and_nobody_gets_a_partial_message(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: five recipients; both groups have five codes when the mailing starts
    make_customers(live, 5)
    shoes = make_group(live, "Shoes", codes=codes("SHOE", 5))
    make_group(live, "Bags", codes=codes("BAG", 5))
    mailing = make_mailing(
        live, text_body="{{ client.promocode('Shoes') }} {{ client.promocode('Bags') }}", html_body=""
    )
    mailing_start(mailing=mailing, enqueue=False)
    # and: two Bags codes are issued elsewhere before the sender gets to them
    someone = make_customers(live, 1, prefix="elsewhere", consent=False)[0]
    for code in PromoCode.objects.filter(code__in=["BAG-001", "BAG-002"]):
        make_issue(someone, code)
    # when
    outcome = sending.mailing_send_run(mailing_id=mailing.pk)
    # then: three messages with both codes; two recipients skipped naming the group that ran out
    by_status = Counter(status for status, _ in statuses(mailing).values())
    assert by_status == {Status.SENT: 3, Status.SKIPPED: 2}
    assert (outcome.sent, outcome.skipped) == (3, 2)
    skipped = [e for e, (s, why) in statuses(mailing).items() if s == Status.SKIPPED]
    assert {statuses(mailing)[e][1] for e in skipped} == {"Group “Bags” ran out of active codes"}
    assert all(re.fullmatch(r"SHOE-\d+ BAG-\d+", text(m)) for m in smtp_server.wait_for(3))
    assert len(smtp_server.messages) == 3 and not any(smtp_server.to(e) for e in skipped)
    # and: the skipped got nothing, and the Shoes codes set aside for them are active again
    assert not PromoCodeIssue.objects.filter(profile__email__in=skipped).exists()
    assert active(shoes) == 2
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENT


# --- the SMTP server ----------------------------------------------------------------------------------
def test_a_recipient_the_smtp_server_refuses_fails_with_its_reason_and_the_others_are_sent(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: the SMTP server knows no mailbox c1@example.com
    make_customers(live, 3)
    smtp_server.refuse("c1@example.com", "550 5.1.1 <c1@example.com>: Recipient address rejected")
    mailing = make_mailing(live)
    # when
    outcome = send(mailing)
    # then
    assert statuses(mailing) == {
        "c0@example.com": (Status.SENT, ""),
        "c1@example.com": (Status.FAILED, "550 5.1.1 <c1@example.com>: Recipient address rejected"),
        "c2@example.com": (Status.SENT, ""),
    }
    assert per_recipient(smtp_server) == {"c0@example.com": 1, "c2@example.com": 1}
    assert (outcome.sent, outcome.failed, outcome.finished) == (2, 1, True)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_smtp_server_keeps_the_messages_until_the_send_is_resumed(
    live: Environment, smtp_server: SmtpServer, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given: the SMTP settings point at a port nobody listens on
    make_customers(live, 3)
    group = make_group(live, "Autumn", codes=codes("AUT", 3))
    mailing = make_mailing(live, text_body="Code {{ client.promocode('Autumn') }}")
    settings.EMAIL_PORT = closed_port()
    # when
    outcome = send(mailing)
    # then: the messages are prepared and wait; the mailing says why it stopped
    mailing.refresh_from_db()
    assert outcome.stopped.startswith("Cannot reach the SMTP server")
    assert mailing.status == Mailing.Status.SENDING
    assert mailing.last_error == outcome.stopped
    assert {status for status, _ in statuses(mailing).values()} == {Status.READY}
    assert active(group) == 0 and not smtp_server.messages
    # when: the settings are fixed and the send resumed
    settings.EMAIL_PORT = smtp_server.port
    with django_capture_on_commit_callbacks(execute=True) as queued:
        mailing_resume(mailing=mailing)
    assert len(queued) == 1
    mailing.refresh_from_db()
    assert mailing.last_error == ""
    sending.mailing_send_run(mailing_id=mailing.pk)
    # and: a second sender runs as well (a duplicate task, a worker's resume_stalled)
    again = sending.mailing_send_run(mailing_id=mailing.pk)
    # then: each customer got the message they were prepared, once
    assert per_recipient(smtp_server) == {f"c{n}@example.com": 1 for n in range(3)}
    prepared = {d.email: without_footer(d.text) for d in MailingDelivery.objects.filter(mailing=mailing)}
    assert {m.to[0]: text(m) for m in smtp_server.messages} == prepared
    assert (again.sent, again.failed) == (0, 0)
    assert PromoCodeIssue.objects.filter(mailing_id=mailing.pk).count() == 3
    mailing.refresh_from_db()
    assert (mailing.status, mailing.last_error) == (Mailing.Status.SENT, "")


def test_a_send_with_nothing_left_to_deliver_finishes_without_needing_the_smtp_server(
    live: Environment, settings: Any
) -> None:
    # given: a started mailing whose group is emptied elsewhere before the send, and no SMTP server
    make_customers(live, 2)
    group = make_group(live, "Autumn", codes=codes("AUT", 2))
    mailing = make_mailing(live, text_body="Code {{ client.promocode('Autumn') }}")
    mailing_start(mailing=mailing, enqueue=False)
    someone = make_customers(live, 1, prefix="elsewhere", consent=False)[0]
    for code in PromoCode.objects.filter(group=group):
        make_issue(someone, code)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    # when
    outcome = sending.mailing_send_run(mailing_id=mailing.pk)
    # then: everyone is skipped and the mailing is done, with no SMTP error to show for it
    assert {s for s, _ in statuses(mailing).values()} == {Status.SKIPPED}
    assert (outcome.finished, outcome.stopped) == (True, "")
    mailing.refresh_from_db()
    assert (mailing.status, mailing.last_error) == (Mailing.Status.SENT, "")


def test_a_customer_deleted_after_the_start_is_skipped_and_the_rest_are_sent(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: a started mailing, then one recipient is deleted (erasure request) before the sender runs
    customers = make_customers(live, 3)
    group = make_group(live, "Autumn", codes=codes("AUT", 3))
    mailing = make_mailing(live, text_body="Code {{ client.promocode('Autumn') }}")
    mailing_start(mailing=mailing, enqueue=False)
    customers[1].delete()
    # when
    outcome = sending.mailing_send_run(mailing_id=mailing.pk)
    # then: the others are sent; the deleted customer gets nothing and no code is issued to nobody
    assert outcome.finished
    assert per_recipient(smtp_server) == {"c0@example.com": 1, "c2@example.com": 1}
    status, reason = statuses(mailing)["c1@example.com"]
    assert status == Status.SKIPPED and "deleted" in reason
    assert active(group) == 1
    assert not PromoCode.objects.filter(issued_at__isnull=False, issued_to__isnull=True).exists()


# --- preview and the draft's life ---------------------------------------------------------------------
def test_a_preview_renders_for_the_chosen_customer_and_issues_nothing(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: Ann was issued a Spring code before; Autumn has two active codes
    ann = make_customers(live, 1, prefix="ann")[0]
    spring = make_group(live, "Spring", codes=["SPRING-1"])
    make_issue(ann, PromoCode.objects.get(code="SPRING-1"))
    autumn = make_group(live, "Autumn", codes=codes("AUT", 2))
    mailing = make_mailing(
        live,
        subject="{{ client.first_name }}: {{ client.promocode('Autumn') }}",
        text_body="New {{ client.promocode('Autumn') }}, old {{ client.last_promocode('Spring') }}",
        html_body="<i>{{ client.name }}</i>",
    )
    # when
    preview = mailing_preview(mailing=mailing, profile=ann)
    # then: Ann's message with the group's next code and her real last one
    assert (preview.subject, without_footer(preview.text), without_footer(preview.html)) == (
        "Customer: AUT-001",
        "New AUT-001, old SPRING-1",
        "<i>Customer ann0</i>",
    )
    assert any("does not issue" in note for note in preview.notes)
    # and: nothing was issued, recorded or sent; previewing again shows the same code
    assert (active(autumn), active(spring)) == (2, 0)
    assert PromoCodeIssue.objects.count() == 1
    assert mailing_preview(mailing=mailing, profile=ann).subject == "Customer: AUT-001"
    assert not smtp_server.messages
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.DRAFT


def test_only_a_draft_can_be_changed_or_started(live: Environment, smtp_server: SmtpServer) -> None:
    make_customers(live, 1)
    mailing = make_mailing(live)
    data = MailingInput(
        name="Renamed",
        sender=mailing.sender,
        subject=mailing.subject,
        html_body=mailing.html_body,
        text_body=mailing.text_body,
        audience=mailing.audience,
    )
    # a draft changes
    assert mailing_save(environment=live, data=data, mailing=mailing).name == "Renamed"
    mailing_start(mailing=mailing, enqueue=False)
    for phase in ("sending", "sent"):
        mailing.refresh_from_db()
        assert mailing.status == phase
        with pytest.raises(InvalidStateTransition, match="only drafts change"):
            mailing_save(environment=live, data=replace(data, name="Again"), mailing=mailing)
        with pytest.raises(InvalidStateTransition, match="already started"):
            mailing_start(mailing=mailing, enqueue=False)
        sending.mailing_send_run(mailing_id=mailing.pk)
    mailing.refresh_from_db()
    assert mailing.name == "Renamed"
    assert MailingDelivery.objects.filter(mailing=mailing).count() == 1
    assert len(smtp_server.messages) == 1


def test_a_sending_mailing_cannot_be_deleted_and_a_sent_one_keeps_its_issues(
    live: Environment, smtp_server: SmtpServer
) -> None:
    make_customers(live, 2)
    make_group(live, "Autumn", codes=codes("AUT", 2))
    mailing = make_mailing(live, text_body="{{ client.promocode('Autumn') }}")
    mailing_start(mailing=mailing, enqueue=False)
    # when: deleting while it sends
    with pytest.raises(InvalidStateTransition, match="is sending"):
        mailing_delete(mailing=Mailing.objects.get(pk=mailing.pk))
    # then: still there, and it goes on to the end
    assert Mailing.objects.filter(pk=mailing.pk).exists()
    sending.mailing_send_run(mailing_id=mailing.pk)
    # when: deleting once sent
    mailing_delete(mailing=Mailing.objects.get(pk=mailing.pk))
    # then: gone, but the customers' codes stay issued and in their history
    assert not Mailing.objects.filter(pk=mailing.pk).exists()
    assert PromoCodeIssue.objects.filter(mailing_id=mailing.pk).count() == 2
    assert PromoCode.objects.filter(issued_at__isnull=False).count() == 2


# --- what a message is rendered from -------------------------------------------------------------------
EVERY_FIELD = (
    "{{ client.integration_id }}|{{ client.name }}|{{ client.first_name }}|{{ client.email }}|"
    "{{ client.phone }}|{{ client.birth_date }}|{{ client.birth_date.year }}|{{ client.group }}|"
    "{{ client.tax_exempt }}|{{ client.orders }}|{{ client.total_sales }}|{{ client.created }}|"
    "{{ client.attributes.tier }}|{{ client.attributes.get('points', 0) + 1 }}|"
    "{{ client.promocode('Autumn') }}"
)


def test_the_preview_shows_exactly_what_the_send_delivers_for_every_field(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: a customer with every field a template can read, in a group, with custom attributes
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    ann = make_customers(
        live,
        1,
        prefix="ann",
        group=vip,
        phone="+48601234567",
        birth_date=dt.date(1990, 2, 28),
        tax_exempt=True,
        closed_sessions=7,
        total_sales=Decimal("1234.5"),
        attributes={"tier": "gold", "points": 41},
    )[0]
    make_group(live, "Autumn", codes=codes("AUT", 1))
    mailing = make_mailing(live, subject="Hi {{ client.first_name }}", text_body=EVERY_FIELD, html_body="")
    # when
    preview = mailing_preview(mailing=mailing, profile=CustomerProfile.objects.get(pk=ann.pk))
    send(mailing)
    # then: the preview (which issues nothing) and the message sent agree field by field
    (mail,) = smtp_server.messages
    assert text(mail) == without_footer(preview.text)
    fields = without_footer(preview.text).split("|")
    assert fields[:11] == [
        "ann0",
        "Customer ann0",
        "Customer",
        "ann0@example.com",
        "+48601234567",
        "1990-02-28",
        "1990",
        "VIP",
        "True",
        "7",
        "1234.5000",
    ]
    assert fields[11] == str(CustomerProfile.objects.get(pk=ann.pk).created)
    assert fields[12:] == ["gold", "42", "AUT-001"]


def test_a_prepared_message_goes_out_as_prepared_whatever_happens_to_the_profile_meanwhile(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: a mailing whose code depends on the customer's orders, prepared but not yet sent
    ann = make_customers(live, 1, prefix="ann", closed_sessions=1)[0]
    make_group(live, "Autumn", codes=codes("AUT", 2))
    mailing = make_mailing(
        live,
        subject="Hi {{ client.name }}",
        text_body="{% if client.orders < 3 %}Welcome code {{ client.promocode('Autumn') }}{% endif %}",
        html_body="",
    )
    mailing_start(mailing=mailing, enqueue=False)
    sending.mailing_send_run(mailing_id=mailing.pk, deliver=False)
    delivery = MailingDelivery.objects.get(mailing=mailing)
    assert delivery.status == Status.READY
    # and: of the customer it keeps only what the templates read
    assert delivery.client == {"name": "Customer ann0", "orders": 1}
    # and: the back office already shows the message as it will go out
    subject, html, body = selectors.delivery_message(delivery) or ("", "", "")
    assert (subject, html, without_footer(body)) == ("Hi Customer ann0", "", "Welcome code AUT-001")
    # when: the customer renames themselves and orders a lot before the message is handed over
    CustomerProfile.objects.filter(pk=ann.pk).update(name="Someone Else", closed_sessions=9)
    sending.mailing_send_run(mailing_id=mailing.pk)
    # then: the message is the one prepared, with the code on record, and it is kept as sent
    (mail,) = smtp_server.messages
    assert (mail.subject, text(mail)) == ("Hi Customer ann0", "Welcome code AUT-001")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.subject, without_footer(delivery.text)) == (
        Status.SENT,
        "Hi Customer ann0",
        "Welcome code AUT-001",
    )
    subject, html, body = selectors.delivery_message(delivery) or ("", "", "")
    assert (subject, html, without_footer(body)) == ("Hi Customer ann0", "", "Welcome code AUT-001")
    issued = PromoCodeIssue.objects.filter(mailing_id=mailing.pk).values_list("code", "kind")
    assert list(issued) == [("AUT-001", IssueKind.INITIAL)]


def test_customers_deleted_or_erased_after_preparation_get_no_message_and_leave_no_snapshot(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: three prepared messages
    ann, bob, _ = make_customers(live, 3)
    mailing = make_mailing(live, text_body="Dear {{ client.name }}")
    mailing_start(mailing=mailing, enqueue=False)
    sending.mailing_send_run(mailing_id=mailing.pk, deliver=False)
    assert {status for status, _ in statuses(mailing).values()} == {Status.READY}
    # when: staff delete one customer and the shop erases another before the messages go out
    profiles_delete(queryset=CustomerProfile.objects.filter(pk=ann.pk))
    customer_data_erase(environment=live, integration_id=bob.integration_id)
    outcome = sending.mailing_send_run(mailing_id=mailing.pk)
    # then: only the third is mailed; the others are skipped and nothing of them stays in a snapshot
    assert per_recipient(smtp_server) == {"c2@example.com": 1}
    assert statuses(mailing)["c0@example.com"] == (Status.SKIPPED, CUSTOMER_GONE)
    assert statuses(mailing)["c1@example.com"] == (Status.SKIPPED, CUSTOMER_GONE)
    gone = MailingDelivery.objects.filter(mailing=mailing, profile__isnull=True)
    assert gone.count() == 2 and not gone.filter(client__isnull=False).exists()
    assert (outcome.sent, outcome.finished) == (1, True)
