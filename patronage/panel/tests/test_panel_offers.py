"""The "My offers" page of the customer panel: what a signed-in customer sees, favourites and claims."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.offers.models import Offer, OfferClaim, OfferFavourite, OfferType
from patronage.testing.factories import make_application
from patronage.testing.offers import make_image, make_offer
from patronage.workspace.models import Application, Environment

from .conftest import PASSWORD, make_customer

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2030, 5, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def media_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def url(shop: Application, page: str = "offers/") -> str:
    return f"/panel/{shop.slug}/{page}"


def signed_in_client(shop: Application, email: str = "anna@example.com") -> Client:
    client = Client()
    response = client.post(url(shop, "login/"), {"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def offer_for(shop: Application, name: str, **fields: Any) -> Offer:
    return make_offer(environment=shop.environment, shops=[shop], name=name, **fields)


def shown_names(response: Any) -> list[str]:
    assert response.status_code == 200
    found = re.findall(r'<h2 class="offer-name">([^<]*)</h2>', response.content.decode())
    return [html.unescape(name) for name in found]


def notices(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_a_customer_sees_public_offers_and_those_assigned_to_them_in_sort_order(
    shop: Application, anna: CustomerProfile
) -> None:
    # Given offers of every kind, some meant for Anna and some not
    other_shop = make_application(environment=Environment.LIVE, slug="other-shop")
    sandbox_shop = make_application(environment=Environment.SANDBOX, slug="sandbox-twin")
    offer_for(shop, "Spring books", is_public=True, sort_order=3)
    offer_for(shop, "Just for Anna", assigned_emails=["anna@example.com"], sort_order=1)
    offer_for(shop, "For Ben only", assigned_emails=["ben@example.com"])
    offer_for(shop, "Switched off", is_public=True, is_active=False)
    offer_for(shop, "Tomorrow", is_public=True, starts_at=clock.now() + dt.timedelta(days=1))
    offer_for(shop, "Yesterday", is_public=True, ends_at=clock.now() - dt.timedelta(minutes=1))
    offer_for(other_shop, "Other shop's offer", is_public=True, assigned_emails=["anna@example.com"])
    make_offer(environment=Environment.SANDBOX, shops=[sandbox_shop], name="Sandbox offer", is_public=True)
    offer_for(shop, "Also public", is_public=True, sort_order=3)
    # When Anna opens "My offers"
    response = signed_in_client(shop).get(url(shop))
    # Then she sees the public ones and hers, in the shop's sort order (ties in creation order)
    assert shown_names(response) == ["Just for Anna", "Spring books", "Also public"]
    assert 'aria-current="page">My offers</a>' in response.content.decode()
    # And her offers are never cached by a shared computer
    assert "no-store" in response["Cache-Control"]


def test_an_assignment_matches_the_email_whatever_its_case(shop: Application) -> None:
    make_customer(shop.environment, email="Carla.Diaz@Example.com")
    offer_for(shop, "Carla's voucher", assigned_emails=["CARLA.DIAZ@EXAMPLE.COM"])
    response = signed_in_client(shop, email="carla.diaz@example.com").get(url(shop))
    assert shown_names(response) == ["Carla's voucher"]


def test_each_offer_shows_its_picture_link_name_type_description_and_validity(
    shop: Application, anna: CustomerProfile
) -> None:
    picture = make_image(title="Stack of books", width=640, height=360)
    offer = offer_for(
        shop,
        "Ten percent off novels",
        is_public=True,
        picture=picture,
        link="https://harbour.example.com/novels",
        description="On every novel in the shop.",
        validity_text="Valid until 31 May",
        offer_type=OfferType.RETAIL,
    )
    page = signed_in_client(shop).get(url(shop)).content.decode()
    # The picture leads to the offer's page in a new tab, with its size given so the page does not jump
    assert 'href="https://harbour.example.com/novels" target="_blank" rel="noopener"' in page
    assert f'src="{picture.file.url}" width="640" height="360"' in page
    assert 'alt="Ten percent off novels"' in page
    for shown in ["On every novel in the shop.", "Valid until 31 May", "Only in retail"]:
        assert shown in page
    # And the customer can favourite and claim it
    assert 'aria-pressed="false"' in page
    assert f'action="/panel/{shop.slug}/offers/{offer.pk}/claim/"' in page


def test_with_nothing_to_show_the_page_says_so(shop: Application, anna: CustomerProfile) -> None:
    offer_for(shop, "For Ben only", assigned_emails=["ben@example.com"])
    response = signed_in_client(shop).get(url(shop))
    assert shown_names(response) == []
    assert "No offers for you right now" in response.content.decode()


def test_a_visitor_who_is_not_signed_in_is_sent_to_the_login_page(shop: Application) -> None:
    response = Client().get(url(shop))
    assert response.status_code == 302
    assert response["Location"] == f"/panel/{shop.slug}/login/?next=%2Fpanel%2F{shop.slug}%2Foffers%2F"


def test_a_customer_favourites_an_offer_and_finds_it_under_favourites(
    shop: Application, anna: CustomerProfile
) -> None:
    liked = offer_for(shop, "Poetry week", is_public=True)
    offer_for(shop, "Maps and atlases", is_public=True)
    client = signed_in_client(shop)
    # When Anna taps the heart on "Poetry week"
    response = client.post(url(shop, f"offers/{liked.pk}/favourite/"), {"favourite": "1"})
    # Then she is back at that card, told it is a favourite, and the heart is pressed
    assert response["Location"] == f"/panel/{shop.slug}/offers/#offer-{liked.pk}"
    response = client.get(response["Location"])
    assert notices(response) == ["“Poetry week” is now in your favourites."]
    card = response.content.decode().split(f'id="offer-{liked.pk}"')[1]
    assert 'aria-pressed="true"' in card.split("</li>")[0]
    assert 'Favourites <span class="count">1</span>' in response.content.decode()
    # And the Favourites tab shows it alone
    assert shown_names(client.get(url(shop) + "?show=favourites")) == ["Poetry week"]

    # When she taps the heart again from the Favourites tab
    response = client.post(
        url(shop, f"offers/{liked.pk}/favourite/"), {"favourite": "0", "show": "favourites"}, follow=True
    )
    # Then it leaves her favourites and she stays on the tab, now empty
    assert notices(response) == ["“Poetry week” is no longer in your favourites."]
    assert shown_names(response) == []
    assert "No favourites yet" in response.content.decode()
    assert not OfferFavourite.objects.filter(profile=anna).exists()


def test_a_customer_claims_an_offer_once(shop: Application, anna: CustomerProfile) -> None:
    offer = offer_for(shop, "Free tote bag", is_public=True)
    client = signed_in_client(shop)
    # When Anna claims the offer
    response = client.post(url(shop, f"offers/{offer.pk}/claim/"), follow=True)
    # Then she is told, and the card shows it as claimed instead of offering the button again
    assert notices(response) == ["You claimed “Free tote bag”."]
    page = response.content.decode()
    assert "Claimed" in page
    assert f"offers/{offer.pk}/claim/" not in page
    # And a second claim (an old tab) records nothing new
    client.post(url(shop, f"offers/{offer.pk}/claim/"))
    assert OfferClaim.objects.filter(offer=offer, profile=anna).count() == 1


HIDDEN: dict[str, dict[str, Any]] = {
    "someone else's": {"assigned_emails": ["ben@example.com"]},
    "switched off": {"is_public": True, "is_active": False},
    "ended": {"is_public": True, "ends_at": T0 - dt.timedelta(seconds=1)},
}


@pytest.mark.parametrize("hidden", [*HIDDEN, "unknown"])
def test_an_offer_the_customer_cannot_see_cannot_be_claimed_or_favourited(
    shop: Application, anna: CustomerProfile, hidden: str
) -> None:
    with clock.frozen_at(T0):
        # Given an offer Anna cannot see (or no offer at all behind the id)
        offer_id = 999_999 if hidden == "unknown" else offer_for(shop, "Not for Anna", **HIDDEN[hidden]).pk
        client = signed_in_client(shop)
        for action, data in [("claim", {}), ("favourite", {"favourite": "1"})]:
            # When she posts the action anyway (an old tab, a crafted form)
            response = client.post(url(shop, f"offers/{offer_id}/{action}/"), data, follow=True)
            # Then she gets a friendly message on her list, not an error page
            assert response.status_code == 200
            assert notices(response) == ["This offer is no longer available to you."]
    # And nothing is recorded
    assert not OfferClaim.objects.filter(profile=anna).exists()
    assert not OfferFavourite.objects.filter(profile=anna).exists()


def test_actions_need_a_post_with_the_csrf_token(shop: Application, anna: CustomerProfile) -> None:
    offer = offer_for(shop, "Free tote bag", is_public=True)
    client = signed_in_client(shop)
    client.handler.enforce_csrf_checks = True
    # A link or a forged form from another site cannot claim for her
    assert client.get(url(shop, f"offers/{offer.pk}/claim/"))["Location"] == url(shop)
    assert client.post(url(shop, f"offers/{offer.pk}/claim/")).status_code == 403
    assert not OfferClaim.objects.exists()
    # While the page's own form, with its token, can
    page = client.get(url(shop)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    client.post(url(shop, f"offers/{offer.pk}/claim/"), {"csrfmiddlewaretoken": token.group(1)})
    assert OfferClaim.objects.filter(offer=offer, profile=anna).exists()


def test_an_offer_appears_at_its_start_and_disappears_at_its_end_without_anyone_acting(
    shop: Application, anna: CustomerProfile
) -> None:
    starts, ends = T0, T0 + dt.timedelta(days=7)
    with clock.frozen_at(starts - dt.timedelta(days=30)):
        offer_for(shop, "Summer reading", is_public=True, starts_at=starts, ends_at=ends)
        client = signed_in_client(shop)
    for moment, expected in [
        (starts - dt.timedelta(seconds=1), []),
        (starts, ["Summer reading"]),
        (ends - dt.timedelta(seconds=1), ["Summer reading"]),
        (ends, []),
    ]:
        with clock.frozen_at(moment):
            assert shown_names(client.get(url(shop))) == expected, moment


def test_the_page_costs_the_same_queries_for_two_offers_as_for_twelve(
    shop: Application, anna: CustomerProfile
) -> None:
    client = signed_in_client(shop)

    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url(shop)).status_code == 200
        return len(captured)

    def add_offers(count: int) -> None:
        picture = make_image()
        for _ in range(count):
            offer = offer_for(shop, "Offer", is_public=True, picture=picture)
            OfferFavourite.objects.create(offer=offer, profile=anna)
            OfferClaim.objects.create(offer=offer, profile=anna)

    add_offers(2)
    few = queries_for_page()
    # Each offer has its own picture: pictures must not cost one query each either
    for _ in range(10):
        offer = offer_for(shop, "Offer", is_public=True)
        OfferFavourite.objects.create(offer=offer, profile=anna)
    many = queries_for_page()
    assert many == few
    # The session, the shop, the customer and the offers with everything a card shows
    assert few <= 4
