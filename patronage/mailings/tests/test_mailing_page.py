"""A mailing's own page: the send page's counts match the recipients the start fixes, "Send a test to me"
issues nothing, and a customer group a mailing uses can be deleted."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as WebClient

from patronage.customers.models import CustomerGroup
from patronage.customers.services import group_create
from patronage.mailings import selectors
from patronage.mailings.models import Mailing, MailingDelivery
from patronage.mailings.services import TEST_CODE, MailingInput, mailing_save, mailing_start
from patronage.promocodes.models import PromoCode, PromoCodeIssue
from patronage.segments.models import Segment
from patronage.segments.services import segment_create
from patronage.testing.mailings import make_customers, make_mailing
from patronage.testing.promocodes import make_group, make_issue
from patronage.testing.smtp import SmtpServer
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db
Audience = Mailing.Audience
LIST = "/admin/mailings/mailing/"


@pytest.fixture
def live(db: None) -> Environment:
    return environment_get(Environment.LIVE)


@pytest.fixture
def staff(db: None, settings: Any) -> WebClient:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = get_user_model().objects.create_superuser("boss", "boss@shop.example", "pw")
    client = WebClient()
    client.force_login(user)
    return client


def _vip(live: Environment) -> CustomerGroup:
    group = group_create(environment=live, name="VIP")
    make_customers(live, 9, prefix="vip", group=group)
    make_customers(live, 1, prefix="vip-no", group=group, consent=False)
    make_customers(live, 3, prefix="other")
    return group


def _segment(live: Environment) -> Segment:
    rules = {
        "type": "group",
        "match": "all",
        "children": [
            {"type": "condition", "field": "profile.email", "operator": "domain", "value": "example.com"}
        ],
    }
    return segment_create(environment=live, name="Everyone at example.com", rules=rules)


def _mailing(live: Environment, audience: str) -> Mailing:
    group = _vip(live)
    if audience == Audience.GROUP:
        return make_mailing(live, audience=audience, customer_group=group)
    if audience == Audience.EMAIL_LIST:
        emails = ["vip0@example.com", "VIP1@example.com", "vip-no0@example.com", "nobody@example.com"]
        return make_mailing(live, audience=audience, email_list=emails)
    if audience == Audience.SEGMENT:
        mailing = make_mailing(live)
        segment = _segment(live)
        return mailing_save(
            environment=live,
            mailing=mailing,
            data=MailingInput(
                name=mailing.name,
                sender=mailing.sender,
                subject=mailing.subject,
                html_body=mailing.html_body,
                text_body=mailing.text_body,
                audience=Audience.SEGMENT,
                segment=segment,
            ),
        )
    return make_mailing(live)


@pytest.mark.parametrize(
    "audience", [Audience.CONSENTING, Audience.GROUP, Audience.SEGMENT, Audience.EMAIL_LIST]
)
def test_the_send_page_counts_the_recipients_the_start_fixes(
    staff: WebClient, live: Environment, audience: str
) -> None:
    # given
    mailing = _mailing(live, audience)
    # when: the send page, then the start, then the progress page
    page = staff.get(f"{LIST}{mailing.pk}/send/")
    announced = page.context["recipients"]
    audience_count = page.context["audience"]
    mailing_start(mailing=mailing, enqueue=False)
    mailing.refresh_from_db()
    progress = selectors.mailing_progress(mailing)
    # then
    assert announced == mailing.recipient_count == progress.recipients
    assert audience_count.total == progress.total
    assert progress.skipped_at_start == audience_count.skipped
    statuses = MailingDelivery.objects.filter(mailing=mailing, status=MailingDelivery.Status.PENDING)
    assert statuses.count() == announced
    progress_page = staff.get(f"{LIST}{mailing.pk}/progress/").content.decode()
    assert f'<span id="mailing-recipients">{announced}</span>' in progress_page


def test_a_group_with_a_customer_without_consent_is_announced_as_nine_and_shown_as_nine(
    staff: WebClient, live: Environment
) -> None:
    # given: the group of the report, 9 with consent and 1 without
    mailing = make_mailing(live, audience=Audience.GROUP, customer_group=_vip(live))
    # when
    page = staff.get(f"{LIST}{mailing.pk}/send/").content.decode()
    mailing_start(mailing=mailing, enqueue=False)
    progress = staff.get(f"{LIST}{mailing.pk}/progress/").content.decode()
    # then
    assert '<strong id="send-recipients">9</strong>' in page
    assert "1 more in it without marketing consent will be listed as skipped" in page
    assert '<span id="mailing-recipients">9</span> recipients to mail, 1 more listed as skipped' in progress


def test_the_send_page_says_how_many_get_an_empty_last_promocode(staff: WebClient, live: Environment) -> None:
    # given: 3 of 5 customers were once issued a code of "Spring"
    customers = make_customers(live, 5)
    spring = make_group(live, "Spring", codes=["SPR-1", "SPR-2", "SPR-3"])
    for profile, code in zip(customers, PromoCode.objects.filter(group=spring).order_by("id"), strict=False):
        make_issue(profile, code)
    make_group(live, "Autumn", codes=[f"AUT-{n}" for n in range(10)])
    mailing = make_mailing(
        live,
        text_body="Last: {{ client.last_promocode('Spring') }} / {{ client.last_promocode('Autumn') }}"
        " {{ client.promocode('Autumn') }}",
    )
    # when
    page = staff.get(f"{LIST}{mailing.pk}/send/")
    # then: Autumn issues a code in the same message, so its last_promocode is never empty
    assert [(e.group.name, e.recipients) for e in page.context["empty_repeats"]] == [("Spring", 2)]
    assert "2</strong> of them have no code from “Spring” yet" in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_send_a_test_to_me_issues_nothing(
    staff: WebClient, live: Environment, smtp_server: SmtpServer
) -> None:
    # given
    make_customers(live, 2)
    group = make_group(live, "Autumn", codes=["AUT-1", "AUT-2"])
    mailing = make_mailing(
        live, html_body="<p>{{ client.name }}: <b>{{ client.promocode('Autumn') }}</b></p>"
    )
    # when
    page = staff.get(f"{LIST}{mailing.pk}/test/")
    response = staff.post(f"{LIST}{mailing.pk}/test/", {"customer": "c1@example.com"}, follow=True)
    # then
    assert "Send the test to boss@shop.example" in page.content.decode()
    (mail,) = smtp_server.wait_for(1)
    assert mail.to == ["boss@shop.example"]
    assert mail.subject.startswith("[Test] ")
    assert f"Customer c1: <b>{TEST_CODE}</b>" in mail.html
    # and: the unsubscribe headers and footer as a send has them, with a link that unsubscribes nobody
    assert str(mail.message["List-Unsubscribe"]).strip() == "<http://127.0.0.1:8000/unsubscribe/preview/>"
    assert str(mail.message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert 'href="http://127.0.0.1:8000/unsubscribe/preview/"' in mail.html
    assert "No promo code was issued" in response.content.decode()
    assert PromoCode.objects.filter(group=group, issued_at__isnull=True).count() == 2
    assert not PromoCodeIssue.objects.exists()
    assert Mailing.objects.get(pk=mailing.pk).status == Mailing.Status.DRAFT


def test_send_a_test_to_me_without_an_email_says_so(staff: WebClient, live: Environment) -> None:
    # given
    get_user_model().objects.filter(username="boss").update(email="")
    make_customers(live, 1)
    mailing = make_mailing(live)
    # when
    page = staff.get(f"{LIST}{mailing.pk}/test/").content.decode()
    posted = staff.post(f"{LIST}{mailing.pk}/test/", {"customer": "c0@example.com"}, follow=True)
    # then
    assert "Your staff account has no email address" in page
    assert "Your staff account has no email address" in posted.content.decode()


def test_the_mailing_page_has_preview_test_and_send_and_the_sender_example_shows(
    staff: WebClient, live: Environment
) -> None:
    mailing = make_mailing(live)
    page = staff.get(f"{LIST}{mailing.pk}/change/").content.decode()
    for label in ("Preview", "Send a test to me", "Send…"):
        assert label in page
    assert "Demo Shop &lt;news@shop.example&gt;" in page


def test_a_group_a_mailing_uses_can_be_deleted_and_the_mailing_keeps_its_name(
    staff: WebClient, live: Environment
) -> None:
    # given: a sent-to (started) mailing and a draft for the group
    group = _vip(live)
    started = make_mailing(live, name="Started", audience=Audience.GROUP, customer_group=group)
    mailing_start(mailing=started, enqueue=False)
    draft = make_mailing(live, name="Draft", audience=Audience.GROUP, customer_group=group)
    # when: deleted in the back office
    response = staff.post(f"/admin/customers/customergroup/{group.pk}/delete/", {"post": "yes"}, follow=True)
    # then
    assert response.status_code == 200
    assert not CustomerGroup.objects.filter(pk=group.pk).exists()
    assert MailingDelivery.objects.filter(mailing=started).count() == 10
    page = staff.get(f"{LIST}{draft.pk}/change/").content.decode()
    assert "Group: VIP (deleted)" in page
    assert "Group: VIP (deleted)" in staff.get(LIST).content.decode()
    send = staff.get(f"{LIST}{draft.pk}/send/")
    assert send.context["recipients"] == 0
