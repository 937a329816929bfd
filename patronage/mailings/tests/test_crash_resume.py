"""A sender that dies mid-send is taken over once its lease runs out, and nobody gets a second copy or a
second code.

The crash is simulated where a real one would strike: in the sender's SMTP hand-over right after the server
accepted a message (before the sender could record it), and inside the transaction preparing a batch;
on PostgreSQL, a real sender process is SIGKILLed while the SMTP server receives a message.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection

from patronage.core import clock
from patronage.mailings import sending
from patronage.mailings.models import Mailing, MailingDelivery
from patronage.mailings.services import mailing_start
from patronage.promocodes.models import IssueKind, PromoCode, PromoCodeGroup, PromoCodeIssue
from patronage.promocodes.selectors import active_counts
from patronage.testing.mailings import make_customers, make_mailing, without_footer
from patronage.testing.promocodes import make_group
from patronage.testing.smtp import ReceivedMail, SmtpServer
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

Status = MailingDelivery.Status
RECIPIENTS = 6
CODE = "{{ client.promocode('Autumn') }}"


class ProcessDied(BaseException):
    """The sender's process dying: no ``except Exception`` of ours gets to handle it."""


HAND_OVER = sending._smtp_hand_over


class DyingBackend:
    """The sender's SMTP hand-over, whose process dies right after the server accepted the ``die_after``-th
    message: the one moment a sender cannot know whether its message went out."""

    die_after = 0
    handed = 0

    @staticmethod
    def hand_over(smtp: Any, envelope: Any) -> None:
        HAND_OVER(smtp, envelope)
        DyingBackend.handed += 1
        if DyingBackend.handed >= DyingBackend.die_after:
            raise ProcessDied


@pytest.fixture
def live(db: None) -> Environment:
    return environment_get(Environment.LIVE)


@pytest.fixture
def dying_backend(settings: Any, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(DyingBackend, "handed", 0)
    monkeypatch.setattr(sending, "_smtp_hand_over", DyingBackend.hand_over)
    yield


def autumn_mailing(
    environment: Environment, *, recipients: int = RECIPIENTS
) -> tuple[Mailing, PromoCodeGroup]:
    make_customers(environment, recipients)
    group = make_group(environment, "Autumn", codes=[f"AUT-{n:03}" for n in range(1, recipients + 3)])
    mailing = make_mailing(environment, text_body=f"Your code: {CODE}", html_body="")
    mailing_start(mailing=mailing, enqueue=False)
    return mailing, group


def after_the_lease() -> Any:
    """The clock of a worker looking in once the dead sender's lease has run out."""
    return clock.frozen_at(clock.now() + sending.LEASE + dt.timedelta(seconds=1))


def by_status(mailing: Mailing) -> Counter[str]:
    return Counter(MailingDelivery.objects.filter(mailing=mailing).values_list("status", flat=True))


def assert_everyone_got_one_message_and_one_code(
    mailing: Mailing, group: PromoCodeGroup, smtp_server: SmtpServer, *, recipients: int = RECIPIENTS
) -> None:
    # one message per recipient at the SMTP server
    arrived = Counter(address for mail in smtp_server.messages for address in mail.rcpt_tos)
    assert arrived == {f"c{n}@example.com": 1 for n in range(recipients)}
    # one initial issue per recipient, no code twice, and each message shows its recipient's code
    issues = PromoCodeIssue.objects.filter(mailing_id=mailing.pk)
    assert Counter(issues.values_list("profile__email", "kind")) == {
        (f"c{n}@example.com", IssueKind.INITIAL): 1 for n in range(recipients)
    }
    code_of = dict(issues.values_list("profile__email", "code"))
    assert len(set(code_of.values())) == recipients
    assert {mail.rcpt_tos[0]: without_footer(mail.text).strip() for mail in smtp_server.messages} == {
        email: f"Your code: {code}" for email, code in code_of.items()
    }
    assert PromoCode.objects.filter(group=group, issued_at__isnull=False).count() == recipients
    assert active_counts([group.pk])[group.pk] == 2
    mailing.refresh_from_db()
    assert (mailing.status, mailing.last_error) == (Mailing.Status.SENT, "")


def test_a_sender_dying_after_handing_over_a_message_is_taken_over_without_a_second_copy(
    live: Environment,
    smtp_server: SmtpServer,
    dying_backend: None,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: a started mailing whose sender dies once the server has accepted the third message
    mailing, group = autumn_mailing(live)
    monkeypatch.setattr(DyingBackend, "die_after", 3)
    with pytest.raises(ProcessDied):
        sending.mailing_send_run(mailing_id=mailing.pk)
    # then: two messages recorded as sent, the third in flight, the rest prepared and waiting
    assert len(smtp_server.messages) == 3
    assert by_status(mailing) == {Status.SENT: 2, Status.SENDING: 1, Status.READY: 3}
    # when: a worker (a sound process) resumes stalled mailings after the lease has run out
    monkeypatch.setattr(sending, "_smtp_hand_over", HAND_OVER)
    with after_the_lease():
        assert sending.resume_stalled() == [mailing.pk]
    # then: the message in flight is failed as interrupted and was not sent again; the others went out
    interrupted = MailingDelivery.objects.get(mailing=mailing, email="c2@example.com")
    assert (interrupted.status, interrupted.reason) == (Status.FAILED, sending.INTERRUPTED)
    assert len(smtp_server.to("c2@example.com")) == 1
    assert by_status(mailing) == {Status.SENT: 5, Status.FAILED: 1}
    assert_everyone_got_one_message_and_one_code(mailing, group, smtp_server)


def test_a_sender_dying_while_preparing_keeps_nothing_of_that_batch(
    live: Environment, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: batches of three, and a sender that dies in the second batch's transaction once its deliveries
    # are claimed ready and its codes issued and recorded
    monkeypatch.setattr(sending, "BATCH", 3)
    mailing, group = autumn_mailing(live)
    issues = connection.ops.quote_name(PromoCodeIssue._meta.db_table)
    batches = 0
    issues_at_death = 0

    def die_at_second_batch(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        nonlocal batches, issues_at_death
        result = execute(sql, params, many, context)
        if f"INSERT INTO {issues}" in sql:
            batches += 1
            if batches == 2:
                issues_at_death = PromoCodeIssue.objects.filter(mailing_id=mailing.pk).count()
                raise ProcessDied
        return result

    # when
    with connection.execute_wrapper(die_at_second_batch), pytest.raises(ProcessDied):
        sending.mailing_send_run(mailing_id=mailing.pk)
    # then: the first batch stands; of the second, written but not committed, nothing is left: no issue on
    # record, no code out of the pool, its deliveries still pending
    assert issues_at_death == 6
    assert by_status(mailing) == {Status.READY: 3, Status.PENDING: 3}
    assert PromoCodeIssue.objects.filter(mailing_id=mailing.pk).count() == 3
    assert active_counts([group.pk])[group.pk] == RECIPIENTS + 2 - 3
    assert not smtp_server.messages
    # when: a worker resumes it after the lease
    with after_the_lease():
        assert sending.resume_stalled() == [mailing.pk]
    # then: everyone got one message with one code; nothing was in flight, so nothing failed
    assert by_status(mailing) == {Status.SENT: RECIPIENTS}
    assert_everyone_got_one_message_and_one_code(mailing, group, smtp_server)


class StallingBackend:
    """The sender's SMTP hand-over, stuck on its first message for longer than the lease: meanwhile a worker
    (here: run from inside the stall, with the clock past the lease) takes the mailing over."""

    stalled = False
    successor: list[int] = []  # what the worker's sweep resumed

    @staticmethod
    def hand_over(smtp: Any, envelope: Any) -> None:
        HAND_OVER(smtp, envelope)
        if not StallingBackend.stalled:
            StallingBackend.stalled = True
            with after_the_lease():
                StallingBackend.successor = sending.resume_stalled()


def test_a_sender_whose_lease_lapsed_mid_send_never_sends_what_its_successor_sent(
    live: Environment, smtp_server: SmtpServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a sender stuck on its first message until its lease has run out and another took over
    mailing, group = autumn_mailing(live)
    monkeypatch.setattr(StallingBackend, "stalled", False)
    monkeypatch.setattr(StallingBackend, "successor", [])
    monkeypatch.setattr(sending, "_smtp_hand_over", StallingBackend.hand_over)
    # when: the stuck sender comes back and goes on through the deliveries it had listed
    sending.mailing_send_run(mailing_id=mailing.pk)
    # then: the successor sent the rest; the first sender sent nothing of it a second time
    assert StallingBackend.successor == [mailing.pk]
    assert by_status(mailing) == {Status.SENT: RECIPIENTS}
    assert_everyone_got_one_message_and_one_code(mailing, group, smtp_server)


def test_a_sender_cannot_start_while_another_holds_the_lease(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: another worker holds the mailing
    mailing, group = autumn_mailing(live)
    start = clock.now()
    assert sending.lease_take(mailing.pk, "another-worker")
    # when: a second sender and the stalled-mailing sweep try
    outcome = sending.mailing_send_run(mailing_id=mailing.pk)
    # then: they do nothing
    assert outcome.stopped == "Another sender is working on this mailing"
    assert (outcome.prepared, outcome.sent) == (0, 0)
    assert sending.resume_stalled() == []
    with clock.frozen_at(start + sending.LEASE - dt.timedelta(seconds=1)):
        assert sending.resume_stalled() == []
    assert by_status(mailing) == {Status.PENDING: RECIPIENTS}
    assert not smtp_server.messages and not PromoCodeIssue.objects.exists()
    # when: the holder stops renewing and its lease runs out
    with clock.frozen_at(start + sending.LEASE + dt.timedelta(seconds=1)):
        assert sending.resume_stalled() == [mailing.pk]
    # then: the next sender did the whole send; the old holder cannot take it back while it runs
    assert_everyone_got_one_message_and_one_code(mailing, group, smtp_server)


KILL_AT = 3
SENDER = """
import django
django.setup()
from patronage.mailings.sending import mailing_send_run
mailing_send_run(mailing_id={mailing_id})
"""


def _database_url() -> str:
    db = connection.settings_dict
    user = quote(db.get("USER") or "postgres")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return (
        f"postgresql://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_killed_sender_process_is_taken_over_without_a_second_copy(smtp_server: SmtpServer) -> None:
    # given: a started mailing and a sender in its own process, SIGKILLed while the SMTP server receives
    # the third message (before the server's answer reaches it)
    mailing, group = autumn_mailing(environment_get(Environment.LIVE))
    sender: subprocess.Popen[str] | None = None

    def kill_the_sender(mail: ReceivedMail) -> None:
        if len(smtp_server.messages) == KILL_AT and sender is not None:
            os.kill(sender.pid, signal.SIGKILL)

    smtp_server.on_message = kill_the_sender
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "patronage.settings",
        "DATABASE_URL": _database_url(),
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": smtp_server.host,
        "EMAIL_PORT": str(smtp_server.port),
        "EMAIL_USE_TLS": "0",
        "EMAIL_USE_SSL": "0",
        # One SMTP connection, so exactly one message is in flight at the kill (with N connections up to N
        # are, and each is marked interrupted the same way).
        "PATRONAGE_MAILING_CONNECTIONS": "1",
    }
    sender = subprocess.Popen(
        [sys.executable, "-c", SENDER.format(mailing_id=mailing.pk)],
        env=env,
        cwd=django_settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, stderr = sender.communicate(timeout=60)
    smtp_server.on_message = None
    assert sender.returncode == -signal.SIGKILL, stderr
    # then: it died holding the lease, with one message claimed and handed over but not recorded
    assert len(smtp_server.messages) == KILL_AT
    assert by_status(mailing) == {
        Status.SENT: KILL_AT - 1,
        Status.SENDING: 1,
        Status.READY: RECIPIENTS - KILL_AT,
    }
    assert sending.resume_stalled() == []
    # when: a worker's sweep finds the lease run out
    with after_the_lease():
        assert sending.resume_stalled() == [mailing.pk]
    # then
    interrupted = MailingDelivery.objects.get(mailing=mailing, email=f"c{KILL_AT - 1}@example.com")
    assert (interrupted.status, interrupted.reason) == (Status.FAILED, sending.INTERRUPTED)
    assert by_status(mailing) == {Status.SENT: RECIPIENTS - 1, Status.FAILED: 1}
    assert_everyone_got_one_message_and_one_code(mailing, group, smtp_server)
