"""The customer panel's "My codes" page: the signed-in customer's coupons (personal, reserved, visible to
everyone) and the promo codes mailings issued them, usable ones first, with what each is for and until
when."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from django.test import Client

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.core import clock
from patronage.coupons.models import CampaignCodeSource, Coupon, CouponReservation, Redemption
from patronage.customer_sessions.models import CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.testing.promocodes import make_group, make_issue
from patronage.workspace.models import Application

from .conftest import PASSWORD, make_customer

pytestmark = pytest.mark.django_db

ALWAYS = ["and", True]


def url(shop: Application, page: str = "codes/") -> str:
    return f"/panel/{shop.slug}/{page}"


def signed_in(shop: Application, email: str = "anna@example.com") -> Client:
    client = Client()
    response = client.post(url(shop, "login/"), {"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def cards(response: Any, section: str) -> list[dict[str, str]]:
    assert response.status_code == 200
    page = response.content.decode()
    match = re.search(rf'<ul class="code-list" role="list" id="{section}">(.*?)</ul>', page, re.S)
    if match is None:
        return []

    def text(card: str, css: str) -> str:
        found = re.search(rf'class="[^"]*\b{css}\b[^"]*">(.*?)</(?:p|span|code)>', card, re.S)
        return (
            html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip())
            if found
            else ""
        )

    return [
        {
            "code": html.unescape(code),
            "state": text(card, "code-state"),
            "purpose": text(card, "code-purpose"),
            "detail": text(card, "code-detail"),
            "until": text(card, "code-until"),
            "copy": "Copy" if "data-copy=" in card else "",
        }
        for code, card in re.findall(
            r'<li class="code-card [^"]*" data-code="([^"]+)">(.*?)</li>', match.group(1), re.S
        )
    ]


@pytest.fixture
def summer(shop: Application) -> Campaign:
    return running_campaign(
        shop, "Summer sale", rule("x", ALWAYS), end_time=dt.datetime(2099, 8, 31, 12, tzinfo=dt.UTC)
    )


def coupon(campaign: Campaign, value: str, **fields: Any) -> Coupon:
    return Coupon.objects.create(application=campaign.application, campaign=campaign, value=value, **fields)


def test_a_customer_sees_their_coupons_usable_first(
    shop: Application, anna: CustomerProfile, summer: Campaign
) -> None:
    # given a personal coupon, a reserved one, one visible to everyone, one Anna used, an expired one,
    # and coupons that are not hers or of a stopped campaign
    now = clock.now()
    coupon(summer, "ANNA-10", recipient_integration_id=anna.integration_id)
    held = coupon(summer, "HELD-20", expiry_date=dt.datetime(2099, 6, 30, 12, tzinfo=dt.UTC))
    CouponReservation.objects.create(coupon=held, profile=anna)
    coupon(summer, "EVERYONE-5", implicitly_reserved=True, usage_limit=0)
    used = coupon(summer, "USED-1", recipient_integration_id=anna.integration_id, usage_counter=1)
    session = CustomerSession.objects.create(
        application=shop, integration_id="s1", profile=anna, state="closed"
    )
    Redemption.objects.create(
        application=shop,
        kind="coupon",
        coupon=used,
        campaign=summer,
        code="USED-1",
        session=session,
        profile=anna,
    )
    coupon(
        summer, "OLD-1", recipient_integration_id=anna.integration_id, expiry_date=now - dt.timedelta(days=1)
    )
    coupon(summer, "BENS-1", recipient_integration_id="ben@example.com")
    coupon(summer, "NOT-MINE")  # neither personal, reserved nor visible to everyone
    stopped = running_campaign(shop, "Stopped", rule("x", ALWAYS), state="disabled")
    coupon(stopped, "STOPPED-1", recipient_integration_id=anna.integration_id)

    # when Anna opens "My codes"
    shown = cards(signed_in(shop).get(url(shop)), "coupon-list")

    # then she sees her usable coupons first, then the used and the expired one, with what they are for
    assert [c["code"] for c in shown] == ["EVERYONE-5", "HELD-20", "ANNA-10", "USED-1", "OLD-1"]
    assert [c["state"] for c in shown] == ["Ready to use", "Ready to use", "Ready to use", "Used", "Expired"]
    assert {c["purpose"] for c in shown} == {"Summer sale"}
    assert [c["detail"] for c in shown[:3]] == [
        "Available to every customer",
        "Saved to your account",
        "Personal code: only you can use it",
    ]
    # and until when: the coupon's own expiry, else the campaign's end
    assert shown[1]["until"] == "Valid until 30 Jun 2099"
    assert shown[2]["until"] == "Valid until 31 Aug 2099"
    # and a copy button on the ones she can still use
    assert [c["copy"] for c in shown] == ["Copy", "Copy", "Copy", "", ""]


def test_a_rolled_back_use_makes_the_coupon_usable_again(
    shop: Application, anna: CustomerProfile, summer: Campaign
) -> None:
    again = coupon(summer, "AGAIN-1", recipient_integration_id=anna.integration_id, usage_limit=0)
    session = CustomerSession.objects.create(
        application=shop, integration_id="s1", profile=anna, state="cancelled"
    )
    Redemption.objects.create(
        application=shop,
        kind="coupon",
        coupon=again,
        campaign=summer,
        code="AGAIN-1",
        session=session,
        profile=anna,
        rolled_back_at=clock.now(),
    )

    shown = cards(signed_in(shop).get(url(shop)), "coupon-list")

    assert [(c["code"], c["state"]) for c in shown] == [("AGAIN-1", "Ready to use")]


def test_a_customer_sees_the_promo_codes_mailings_sent_them(
    shop: Application, anna: CustomerProfile, summer: Campaign
) -> None:
    # given two groups: one a campaign accepts, one only described; Anna got a code of each, one used,
    # and the first code twice (a repeat mailing)
    spring = make_group(
        shop.environment.slug, "Spring", codes=["SPRING-1", "SPRING-2"], description="Spring mailing"
    )
    welcome = make_group(
        shop.environment.slug, "Welcome", codes=["WELCOME-1"], description="15% off your first order"
    )
    CampaignCodeSource.objects.create(campaign=summer, group=spring)
    first = spring.codes.get(code="SPRING-1")
    make_issue(anna, first, created=clock.now() - dt.timedelta(days=3))
    make_issue(anna, first, kind="repeat")
    make_issue(anna, welcome.codes.get(), redeemed=True)
    other = make_customer(shop.environment, email="ben@example.com")
    make_issue(other, spring.codes.get(code="SPRING-2"))

    shown = cards(signed_in(shop).get(url(shop)), "promo-list")

    # then each code once, usable first, with the campaign (or the group) it is for and whether it was used
    assert [c["code"] for c in shown] == ["SPRING-1", "WELCOME-1"]
    assert shown[0] == {
        "code": "SPRING-1",
        "state": "Ready to use",
        "purpose": "Summer sale",
        "detail": "Spring mailing",
        "until": "Valid until 31 Aug 2099",
        "copy": "Copy",
    }
    assert shown[1]["state"] == "Used" and shown[1]["purpose"] == "Welcome"
    assert shown[1]["detail"] == "15% off your first order"


def test_a_customer_without_codes_is_told_so(shop: Application, anna: CustomerProfile) -> None:
    page = signed_in(shop).get(url(shop)).content.decode()
    assert "No codes yet" in page
    assert 'aria-current="page">My codes</a>' in page


def test_my_codes_needs_signing_in(shop: Application) -> None:
    response = Client().get(url(shop))
    assert response.status_code == 302
    assert response["Location"] == f"/panel/{shop.slug}/login/?next=%2Fpanel%2F{shop.slug}%2Fcodes%2F"


def test_codes_of_another_shop_are_not_shown(
    shop: Application, anna: CustomerProfile, summer: Campaign
) -> None:
    from patronage.testing.factories import make_application

    other_shop = make_application(environment=shop.environment.slug, slug="other-shop")
    elsewhere = running_campaign(other_shop, "Elsewhere", rule("x", ALWAYS))
    coupon(elsewhere, "ELSEWHERE-1", recipient_integration_id=anna.integration_id)
    coupon(summer, "HERE-1", recipient_integration_id=anna.integration_id)

    shown = cards(signed_in(shop).get(url(shop)), "coupon-list")

    assert [c["code"] for c in shown] == ["HERE-1"]
