"""A mailing to a segment: its members when the send starts, consent still required."""

from __future__ import annotations

from typing import Any

import pytest

from patronage.core.errors import ValidationFailed
from patronage.mailings import sending
from patronage.mailings.models import Mailing, MailingDelivery
from patronage.mailings.services import NO_CONSENT, MailingInput, mailing_save, mailing_start
from patronage.segments.services import segment_create, segment_delete
from patronage.testing.mailings import make_customers
from patronage.testing.smtp import SmtpServer
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

VIP_DOMAIN = {
    "type": "group",
    "match": "all",
    "children": [
        {"type": "condition", "field": "profile.email", "operator": "domain", "value": "vip.example"}
    ],
}


def draft(environment: Environment, **changes: Any) -> MailingInput:
    data = {
        "name": "VIP news",
        "sender": "Demo Shop <news@shop.example>",
        "subject": "Hello {{ client.first_name }}",
        "html_body": "<p>Dear {{ client.name }}</p>",
        "text_body": "Dear {{ client.name }}",
        "audience": Mailing.Audience.SEGMENT,
        **changes,
    }
    return MailingInput(**data)


@pytest.fixture
def live(db: None) -> Environment:
    return environment_get(Environment.LIVE)


def test_a_segment_mailing_reaches_its_consenting_members_as_they_were_at_the_start(
    live: Environment, smtp_server: SmtpServer
) -> None:
    # given: two VIPs with consent, one without, and someone else
    members = make_customers(live, 3, prefix="vip")
    for n, profile in enumerate(members):
        profile.email = f"vip{n}@vip.example"
        profile.accepts_marketing = n < 2
        profile.save(update_fields=["email", "accepts_marketing"])
    make_customers(live, 1, prefix="other")
    segment = segment_create(environment=live, name="VIPs", rules=VIP_DOMAIN)
    mailing = mailing_save(environment=live, data=draft(live, segment=segment))

    # when: the send starts, and only then a new VIP registers
    mailing_start(mailing=mailing, enqueue=False)
    late = make_customers(live, 1, prefix="late")[0]
    late.email = "late@vip.example"
    late.save(update_fields=["email"])
    sending.mailing_send_run(mailing_id=mailing.pk)

    # then: the members at the start, consenting, got it; the one without consent is skipped with why
    outcomes = {d.email: (d.status, d.reason) for d in MailingDelivery.objects.filter(mailing=mailing)}
    assert outcomes == {
        "vip0@vip.example": (MailingDelivery.Status.SENT, ""),
        "vip1@vip.example": (MailingDelivery.Status.SENT, ""),
        "vip2@vip.example": (MailingDelivery.Status.SKIPPED, NO_CONSENT),
    }
    assert sorted(a for m in smtp_server.messages for a in m.rcpt_tos) == [
        "vip0@vip.example",
        "vip1@vip.example",
    ]


def test_a_segment_mailing_needs_a_segment_of_its_environment(live: Environment) -> None:
    sandbox_segment = segment_create(
        environment=environment_get(Environment.SANDBOX), name="VIPs", rules=VIP_DOMAIN
    )
    with pytest.raises(ValidationFailed, match="Choose the segment to mail"):
        mailing_save(environment=live, data=draft(live))
    with pytest.raises(ValidationFailed, match="Segment VIPs is not in Live"):
        mailing_save(environment=live, data=draft(live, segment=sandbox_segment))


def test_deleting_its_segment_leaves_a_draft_that_asks_for_recipients(live: Environment) -> None:
    segment = segment_create(environment=live, name="VIPs", rules=VIP_DOMAIN)
    mailing = mailing_save(environment=live, data=draft(live, segment=segment))
    segment_delete(segment=segment)
    mailing.refresh_from_db()
    assert mailing.segment is None
    with pytest.raises(ValidationFailed, match="segment this mailing was for was deleted"):
        mailing_start(mailing=mailing, enqueue=False)
    with pytest.raises(ValidationFailed, match="Choose the segment to mail"):
        mailing_save(environment=live, data=draft(live), mailing=mailing)
