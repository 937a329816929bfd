"""The offers back office through Django's test client: the form, the list, confirmations, the visibility
tool, recording redemptions and the customer's Offers tab."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.customers.selectors import redeemed_between
from patronage.offers.models import GalleryImage, Offer, OfferAssignment, OfferRedemption, RedemptionSource
from patronage.offers.services import offer_claim, offer_favourite_set, offer_redeem
from patronage.testing.factories import make_application
from patronage.testing.offers import make_image, make_offer
from patronage.workspace.models import Application, Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

LIST = "/admin/offers/offer/"
NOW = dt.datetime(2025, 5, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with clock.frozen_at(NOW):
        yield


def offer_post(image: GalleryImage, shops: list[Application], **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "environment": "live",
        "system_name": "spring-sale",
        "name": "Spring sale",
        "description": "10% off",
        "validity_text": "Valid until 31 May",
        "link": "https://shop.example.com/spring",
        "picture": image.pk,
        "offer_type": "online",
        "applications": [s.pk for s in shops],
        "starts_at_0": "2025-05-01",
        "starts_at_1": "00:00:00",
        "ends_at_0": "2025-06-01",
        "ends_at_1": "00:00:00",
        "sort_order": "1",
        "is_active": "on",
        "link_type": "category",
        "object_id": "tag-42",
        "image_small": image.pk,
        "image_medium": image.pk,
        "image_big": image.pk,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def customer(email: str, integration_id: str, environment: str = Environment.LIVE) -> CustomerProfile:
    return CustomerProfile.objects.create(
        environment=environment_get(environment), integration_id=integration_id, email=email
    )


# --- the form -----------------------------------------------------------------------------------------------


def test_staff_create_a_public_offer_and_cannot_make_it_private_later(
    admin_client: Client, live_app: Application
) -> None:
    image = make_image()

    response = admin_client.post(f"{LIST}add/", offer_post(image, [live_app], is_public="on"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    offer = Offer.objects.get(system_name="spring-sale")
    assert offer.is_public and list(offer.applications.all()) == [live_app]
    assert offer.starts_at == dt.datetime(2025, 5, 1, tzinfo=dt.UTC)

    page = admin_client.get(f"{LIST}{offer.pk}/change/").content.decode()
    assert 'name="is_public"' not in page  # shown read-only

    admin_client.post(
        f"{LIST}{offer.pk}/change/", offer_post(image, [live_app], name="Renamed", is_public=None)
    )
    offer.refresh_from_db()
    assert offer.name == "Renamed" and offer.is_public


def test_the_form_lists_every_problem_next_to_its_field(admin_client: Client, live_app: Application) -> None:
    image = make_image()
    make_offer(environment=Environment.LIVE, shops=[live_app], system_name="spring-sale")

    response = admin_client.post(
        f"{LIST}add/",
        offer_post(image, [live_app], link="not a url", ends_at_0="2025-04-01", object_id=""),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "link" in errors and "object_id" in errors


def test_end_before_start_and_a_taken_system_name_are_refused(
    admin_client: Client, live_app: Application
) -> None:
    image = make_image()
    make_offer(environment=Environment.LIVE, shops=[live_app], system_name="spring-sale")

    response = admin_client.post(f"{LIST}add/", offer_post(image, [live_app], ends_at_0="2025-04-01"))

    errors = response.context["adminform"].form.errors
    assert errors["ends_at"] == ["The end date must be after the start date"]
    assert "already has the system name" in errors["system_name"][0]
    assert Offer.objects.count() == 1


def test_shops_of_the_other_environment_are_refused(
    admin_client: Client, live_app: Application, sandbox_app: Application
) -> None:
    response = admin_client.post(f"{LIST}add/", offer_post(make_image(), [live_app, sandbox_app]))

    errors = response.context["adminform"].form.errors["applications"]
    assert errors == ["Pick only shops of the offer's environment."]
    assert not Offer.objects.exists()


def test_a_live_offer_lists_only_live_shops(
    admin_client: Client, live_app: Application, sandbox_app: Application
) -> None:
    # given: a saved Live offer
    offer = make_offer(environment=Environment.LIVE, shops=[live_app])

    # when: staff open it
    html = admin_client.get(f"{LIST}{offer.pk}/change/").content.decode()

    # then: its shops are the Live ones only
    assert live_app.name in html and sandbox_app.name not in html
    # and a new offer's form marks each shop with its environment, for the page to show the chosen one's
    add = admin_client.get(f"{LIST}add/").content.decode()
    assert 'data-environment="live"' in add
    assert 'data-environment="sandbox"' in add
    assert "offers/shops.js" in add


def test_the_form_shows_the_gallery_as_pictures(admin_client: Client) -> None:
    image = make_image(title="Tulips")

    page = admin_client.get(f"{LIST}add/").content.decode()

    assert page.count(f'src="{image.file.url}"') == 4  # picture + small, medium, big
    assert "Tulips" in page


# --- the list -----------------------------------------------------------------------------------------------


def list_rows(html: str) -> list[str]:
    return re.findall(r'<a href="/admin/offers/offer/\d+/change/[^"]*"[^>]*>([^<]+)</a>', html)


def test_the_list_counts_assigned_emails_and_sorts_by_them(
    admin_client: Client, live_app: Application
) -> None:
    image = make_image()
    make_offer(
        environment=Environment.LIVE,
        shops=[live_app],
        system_name="few",
        picture=image,
        assigned_emails=["a@x.com"],
    )
    make_offer(
        environment=Environment.LIVE,
        shops=[live_app],
        system_name="many",
        picture=image,
        assigned_emails=["a@x.com", "b@x.com", "c@x.com"],
    )
    make_offer(environment=Environment.LIVE, shops=[live_app], system_name="none", picture=image)

    response = admin_client.get(LIST, {"o": "-7"})

    assert list_rows(response.content.decode()) == ["many", "few", "none"]
    counts = [r.assigned_count for r in response.context["cl"].result_list]
    assert counts == [3, 1, 0]


def test_the_list_searches_filters_and_pages(admin_client: Client, live_app: Application) -> None:
    image = make_image()
    for n in range(12):
        make_offer(
            environment=Environment.LIVE,
            shops=[live_app],
            system_name=f"offer-{n:02}",
            name=f"Deal {n}",
            picture=image,
            is_public=n % 3 == 0,
        )

    assert len(admin_client.get(LIST, {"per_page": "10"}).context["cl"].result_list) == 10
    assert len(admin_client.get(LIST, {"per_page": "10", "p": "2"}).context["cl"].result_list) == 2
    assert list_rows(admin_client.get(LIST, {"q": "offer-07"}).content.decode()) == ["offer-07"]
    assert list_rows(admin_client.get(LIST, {"q": "Deal 11"}).content.decode()) == ["offer-11"]
    public = admin_client.get(LIST, {"is_public__exact": "1", "o": "2"})
    assert list_rows(public.content.decode()) == ["offer-00", "offer-03", "offer-06", "offer-09"]


def test_each_row_offers_its_actions(admin_client: Client, live_app: Application) -> None:
    offer = make_offer(environment=Environment.LIVE, shops=[live_app])

    page = admin_client.get(LIST).content.decode()

    for action in ("edit", "import-emails", "redeem", "delete-emails", "delete-offer"):
        assert f"/admin/offers/offer/{offer.pk}/{action}/" in page
    assert "Add customer private offer" in page
    response = admin_client.get(f"{LIST}{offer.pk}/import-emails/")
    assert response["Location"] == f"/admin/dataio/importjob/add/?kind=offer-assignments&offer={offer.pk}"


def test_delete_emails_asks_with_the_count_then_removes_every_assignment(
    admin_client: Client, live_app: Application
) -> None:
    offer = make_offer(environment=Environment.LIVE, shops=[live_app], assigned_emails=["a@x.com", "b@x.com"])

    question = admin_client.get(f"{LIST}{offer.pk}/delete-emails/").content.decode()
    assert "Delete 2 assigned emails" in question
    assert OfferAssignment.objects.count() == 2

    admin_client.post(f"{LIST}{offer.pk}/delete-emails/")

    assert not OfferAssignment.objects.exists()
    assert Offer.objects.filter(pk=offer.pk).exists()


def test_delete_warns_it_cannot_be_undone_then_deletes(admin_client: Client, live_app: Application) -> None:
    offer = make_offer(environment=Environment.LIVE, shops=[live_app], assigned_emails=["a@x.com"])

    question = admin_client.get(f"{LIST}{offer.pk}/delete/").content.decode()
    assert "This cannot be undone" in question and "1 assigned email" in question

    admin_client.post(f"{LIST}{offer.pk}/delete/", {"post": "yes"})

    assert not Offer.objects.exists() and not OfferAssignment.objects.exists()
    assert GalleryImage.objects.exists()


# --- why (not) shown ----------------------------------------------------------------------------------------


def test_why_shown_gives_every_offer_its_reason(admin_client: Client, live_app: Application) -> None:
    other = make_application(environment=Environment.LIVE)
    image = make_image()

    def offer(name: str, **fields: Any) -> None:
        fields.setdefault("shops", [live_app])
        make_offer(environment=Environment.LIVE, system_name=name, picture=image, **fields)

    offer("mine", assigned_emails=["ada@example.com"])
    offer("public", is_public=True)
    offer("off", is_public=True, is_active=False)
    offer("later", is_public=True, starts_at=NOW + dt.timedelta(days=1))
    offer("over", is_public=True, starts_at=NOW - dt.timedelta(days=9), ends_at=NOW - dt.timedelta(days=1))
    offer("elsewhere", is_public=True, shops=[other])
    offer("theirs", assigned_emails=["bob@example.com"])

    html = admin_client.get(
        "/admin/offers/offer/why-shown/", {"email": "ADA@example.com", "shop": str(live_app.pk)}
    ).content.decode()

    found = dict(re.findall(r'data-offer="([^"]+)" data-status="(\w+)"', html))
    assert found == {
        "mine": "shown",
        "public": "shown",
        "off": "hidden",
        "later": "hidden",
        "over": "hidden",
        "elsewhere": "hidden",
        "theirs": "hidden",
    }
    for reason in ("Inactive", "Starts later", "Ended", "Not in this shop", "Not assigned to this email"):
        assert reason in html
    # Ada has no customer account yet: the page says the offers show once she registers
    assert "No customer account of the Live environment has the email" in html


def test_why_shown_says_nothing_about_accounts_when_the_customer_exists(
    admin_client: Client, live_app: Application
) -> None:
    customer("ada@example.com", "c-ada")

    html = admin_client.get(
        "/admin/offers/offer/why-shown/", {"email": "Ada@Example.com", "shop": str(live_app.pk)}
    ).content.decode()

    assert 'id="why-shown-results"' in html
    assert "No customer account" not in html


# --- redemptions --------------------------------------------------------------------------------------------


def test_staff_record_a_redemption_once(admin_client: Client, live_app: Application) -> None:
    offer = make_offer(environment=Environment.LIVE, shops=[live_app], is_public=True)
    ada = customer("ada@example.com", "c-ada")

    admin_client.post(f"{LIST}{offer.pk}/redeem/", {"customer": "ADA@example.com", "note": "at the till"})

    redemption = OfferRedemption.objects.get()
    assert (redemption.profile, redemption.source, redemption.note) == (
        ada,
        RedemptionSource.BACK_OFFICE,
        "at the till",
    )

    again = admin_client.post(f"{LIST}{offer.pk}/redeem/", {"customer": "c-ada"})
    assert again.status_code == 200
    assert "already redeemed" in again.content.decode()
    assert OfferRedemption.objects.count() == 1


def test_a_customer_the_offer_is_not_for_is_refused_on_the_field(
    admin_client: Client, live_app: Application
) -> None:
    # given: a private offer assigned to Ada; Bob is a customer too
    offer = make_offer(environment=Environment.LIVE, shops=[live_app], assigned_emails=["ada@example.com"])
    customer("bob@example.com", "c-bob")

    # when: staff record a redemption by Bob
    response = admin_client.post(f"{LIST}{offer.pk}/redeem/", {"customer": "bob@example.com"})

    # then: the customer field says why, and nothing is recorded
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["customer"] == [
        f"Offer {offer.name} is not for bob@example.com: "
        "it is not public and their email is not assigned to it"
    ]
    assert not OfferRedemption.objects.exists()


def test_an_unknown_customer_is_said_so(admin_client: Client, live_app: Application) -> None:
    offer = make_offer(environment=Environment.LIVE, shops=[live_app])
    customer("ada@example.com", "c-ada", environment=Environment.SANDBOX)

    response = admin_client.post(f"{LIST}{offer.pk}/redeem/", {"customer": "ada@example.com"})

    assert "No customer of the Live environment" in response.content.decode()
    assert not OfferRedemption.objects.exists()


def test_the_customer_page_has_an_offers_tab_with_dates(admin_client: Client, live_app: Application) -> None:
    offer = make_offer(environment=Environment.LIVE, shops=[live_app], system_name="spring", is_public=True)
    ada = customer("ada@example.com", "c-ada")
    offer_favourite_set(offer_id=offer.pk, profile=ada, application=live_app, favourite=True)
    offer_claim(offer_id=offer.pk, profile=ada, application=live_app)
    offer_redeem(
        offer=offer, profile=ada, source=RedemptionSource.API, redeemed_at=NOW - dt.timedelta(hours=1)
    )

    page = admin_client.get(f"/admin/customers/customerprofile/{ada.pk}/change/").content.decode()

    assert 'id="customer-offers"' in page
    assert 'data-offer="spring"' in page
    assert "2025-05-10 12:00" in page and "2025-05-10 11:00" in page
    # The page still saves: the tab's empty formset is part of the form.
    saved = admin_client.post(
        f"/admin/customers/customerprofile/{ada.pk}/change/",
        {"name": "Ada", "email": "ada@example.com", "phone": "", "attributes": "{}", **management_form(page)},
    )
    assert saved.status_code == 302


def management_form(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)" value="(\d+)"', html))


def test_the_redemption_date_filter_finds_offer_redemptions(live_app: Application) -> None:
    offer = make_offer(environment=Environment.LIVE, shops=[live_app], is_public=True)
    ada, bob = customer("ada@example.com", "c-ada"), customer("bob@example.com", "c-bob")
    offer_redeem(
        offer=offer,
        profile=ada,
        source=RedemptionSource.API,
        redeemed_at=dt.datetime(2025, 5, 3, tzinfo=dt.UTC),
    )
    offer_redeem(
        offer=offer,
        profile=bob,
        source=RedemptionSource.API,
        redeemed_at=dt.datetime(2025, 5, 9, tzinfo=dt.UTC),
    )
    everyone = CustomerProfile.objects.all()

    assert list(redeemed_between(everyone, dt.date(2025, 5, 1), dt.date(2025, 5, 3))) == [ada]
    assert set(redeemed_between(everyone, dt.date(2025, 5, 4), None)) == {bob}
    assert set(redeemed_between(everyone, None, None)) == {ada, bob}


def test_the_customer_list_offers_the_redemption_date_filter(admin_client: Client) -> None:
    page = admin_client.get("/admin/customers/customerprofile/").content.decode()

    assert "redeemed_from" in page
