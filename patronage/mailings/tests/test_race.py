"""Two mailings sending at once from one group of promo codes: real threads, each with its own PostgreSQL
connection, their batches interleaving. No code is issued twice, and the group running dry skips the
recipients left over instead of sending them a message without a code."""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection

from patronage.customers.models import CustomerGroup
from patronage.mailings import sending
from patronage.mailings.models import Mailing, MailingDelivery
from patronage.mailings.services import mailing_start
from patronage.promocodes.models import IssueKind, PromoCode, PromoCodeIssue
from patronage.testing.mailings import make_customers, make_mailing
from patronage.testing.promocodes import make_group
from patronage.testing.smtp import SmtpServer
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
Status = MailingDelivery.Status
CODES = 60
EACH = 40


def test_two_mailings_racing_for_one_group_never_issue_a_code_twice(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.PATRONAGE_MAILING_CONNECTIONS = 3  # each sender also races its own SMTP connections
    settings.PATRONAGE_MAILING_PREPARE_LANES = 2  # ... and prepares two batches at once
    # given: 60 codes and two mailings of 40 recipients each, both started while the group had enough for
    # either; small batches so that the two senders' reservations interleave
    live = environment_get(Environment.LIVE)
    group = make_group(live, "Autumn", codes=[f"AUT-{n:03}" for n in range(1, CODES + 1)])
    mailings = []
    for name in ("north", "south"):
        audience = CustomerGroup.objects.create(environment=live, name=name)
        make_customers(live, EACH, prefix=name, group=audience)
        mailing = make_mailing(
            live,
            name=name,
            audience=Mailing.Audience.GROUP,
            customer_group=audience,
            text_body="Your code: {{ client.promocode('Autumn') }}",
            html_body="",
        )
        mailings.append(mailing_start(mailing=mailing, enqueue=False))
    monkeypatch.setattr(sending, "BATCH", 7)
    # when: both senders run at the same instant
    barrier = threading.Barrier(len(mailings))
    outcomes: list[Any] = [None] * len(mailings)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[i] = sending.mailing_send_run(mailing_id=mailings[i].pk)
        except Exception as exc:  # surfaced by the assertion below
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(mailings))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(outcome, sending.SendOutcome) and outcome.finished for outcome in outcomes), (
        outcomes
    )
    # then: every code went to one customer, once
    issued = PromoCode.objects.filter(group=group, issued_at__isnull=False)
    assert issued.count() == CODES
    assert issued.values("issued_to").distinct().count() == CODES
    initial = PromoCodeIssue.objects.filter(kind=IssueKind.INITIAL)
    assert initial.count() == CODES
    assert initial.values("code").distinct().count() == CODES
    assert initial.values("profile").distinct().count() == CODES
    assert dict(issued.values_list("code", "issued_to")) == dict(initial.values_list("code", "profile"))
    # and: 60 messages went out, each with its recipient's code
    code_of = dict(initial.values_list("profile__email", "code"))
    arrived = {}
    for mail in smtp_server.wait_for(CODES):
        (to,) = mail.rcpt_tos
        # (the standard unsubscribe footer follows the template's own text)
        found = re.match(r"Your code: (AUT-\d{3})\s", mail.text)
        assert found, mail.text
        arrived[to] = found.group(1)
    assert len(smtp_server.messages) == CODES
    assert arrived == code_of
    # and: the 20 recipients left over were skipped, saying why, and got nothing
    deliveries = MailingDelivery.objects.filter(mailing__in=mailings)
    assert Counter(deliveries.values_list("status", "reason")) == {
        (Status.SENT, ""): CODES,
        (Status.SKIPPED, "Group “Autumn” ran out of active codes"): 2 * EACH - CODES,
    }
    assert set(deliveries.filter(status=Status.SENT).values_list("email", flat=True)) == set(arrived)
    # and: both mailings got codes and both finished
    assert all(outcome.sent for outcome in outcomes)
    assert set(Mailing.objects.values_list("status", flat=True)) == {Mailing.Status.SENT}
