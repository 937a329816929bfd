from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import F, Sum

from patronage.core import clock
from patronage.customer_sessions.models import CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.mailings.models import Mailing, MailingDelivery
from patronage.offers.selectors import offers_visible
from patronage.ops.demo import demo_load, demo_mailing, demo_offers, demo_panel_customer, demo_segment
from patronage.segments.selectors import segment_members
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db


def test_demo_makes_both_shops_and_consistent_customers() -> None:
    made = demo_load(customers=60)
    assert made == 66
    shop = Application.objects.get(slug="demo-shop")
    sandbox = Application.objects.get(slug="demo-sandbox")
    assert shop.environment.slug == "live" and sandbox.environment.slug == "sandbox"
    assert CustomerProfile.objects.filter(environment=shop.environment).count() == 60
    assert CustomerSession.objects.exists()
    profile = CustomerProfile.objects.filter(closed_sessions__gt=0).first()
    assert profile is not None
    orders = CustomerSession.objects.filter(profile=profile, state="closed")
    assert profile.closed_sessions == orders.count()
    assert profile.total_sales == orders.aggregate(s=Sum("total"))["s"]
    # running it again adds more customers without clashing
    assert demo_load(customers=10) == 11
    assert CustomerProfile.objects.filter(environment=shop.environment).count() == 70
    assert Decimal(0) <= profile.total_sales


def test_demo_customers_have_groups_and_one_can_sign_in_to_the_panel(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    demo_load(customers=50)
    email, password = demo_panel_customer()
    profile = CustomerProfile.objects.get(email=email)
    assert profile.check_password(password)
    # And the demo shop shows that customer three offers in the panel (one public, two assigned)
    demo_offers(email=email)
    shop = Application.objects.get(slug="demo-shop")
    assert [o.system_name for o in offers_visible(application=shop, email=email)] == [
        "demo-welcome",
        "demo-mug",
        "demo-frother",
    ]
    assert CustomerProfile.objects.filter(group__name="VIP").exists()
    with_birthday = CustomerProfile.objects.exclude(birth_date=None).first()
    assert with_birthday is not None and with_birthday.birth_date is not None
    assert with_birthday.birth_md == with_birthday.birth_date.month * 100 + with_birthday.birth_date.day


@pytest.mark.parametrize(
    "verb",
    ["apikey", "demo", "run", "serve", "worker", "bootstrap", "migrate", "import", "export", "mailing"],
)
def test_every_verb_has_help(verb: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "patronage.cli", verb, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "patronage.settings"},
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_demo_mailing_sends_without_an_smtp_server(settings: Any, tmp_path: Any) -> None:
    # given: the demo data and `patronage run`'s mail setting when no EMAIL_HOST is given
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox")
    demo_load(customers=40)
    mailing = demo_mailing()
    consenting = CustomerProfile.objects.filter(
        environment=mailing.environment, accepts_marketing=True, email__isnull=False
    ).count()
    # when: it is sent from the command line
    call_command("mailing", "send", str(mailing.pk))
    # then: every consenting customer has a message with their own code, kept for the back office
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SENT
    sent = MailingDelivery.objects.filter(mailing=mailing, status=MailingDelivery.Status.SENT)
    assert sent.count() == consenting > 0
    codes = [html.split("<strong>")[1].split("</strong>")[0] for html in sent.values_list("html", flat=True)]
    assert len(set(codes)) == consenting and all(code.startswith("WELCOME-") for code in codes)
    # and the messages were written to the outbox folder instead of an SMTP server
    outbox = "".join(path.read_text() for path in (tmp_path / "outbox").iterdir())
    assert outbox.count("X-Patronage-Mailing:") == consenting


def test_the_demo_segment_holds_the_regulars_it_describes() -> None:
    demo_load(customers=60)
    demo_mailing()
    segment = demo_segment()
    expected = {
        p.pk
        for p in CustomerProfile.objects.filter(environment=segment.environment, accepts_marketing=True)
        if p.closed_sessions >= 3 or p.total_sales >= 500
    }
    assert expected and set(segment_members(segment).values_list("pk", flat=True)) == expected


def test_demo_orders_lie_in_the_past() -> None:
    # given: the clock as the demo sees it
    before = clock.now()
    # when: the demo is loaded with enough customers for sessions at every point of their history
    demo_load(customers=400)
    # then: no session starts, changes or closes after today
    sessions = CustomerSession.objects.all()
    assert sessions.filter(closed_at__isnull=False).count() > 100
    assert not sessions.filter(closed_at__gt=before).exists()
    assert not sessions.filter(created__gt=before).exists()
    assert not sessions.filter(updated__gt=before).exists()
    # and every order was placed after its customer was created
    assert not sessions.filter(created__lt=F("profile__created")).exists()
