"""The "My offers" page in a real Chromium: a grid at 1280 px, one column on a 390 px phone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.customers.models import CustomerProfile
from patronage.offers.models import GalleryImage, OfferClaim, OfferFavourite, OfferType
from patronage.testing.browser import device_page, screenshot
from patronage.testing.factories import make_application
from patronage.testing.offers import make_image, make_offer
from patronage.workspace.models import Application, Environment

from .conftest import PASSWORD, make_customer
from .test_panel_browser import big_enough_to_tap, fits_the_screen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    with device_page(browser, PHONE, phone=True) as page:
        yield page


@pytest.fixture
def shop(db: None) -> Application:
    return make_application(environment=Environment.LIVE, slug="harbour-books", name="Harbour Books")


@pytest.fixture
def anna(shop: Application) -> CustomerProfile:
    return make_customer(shop.environment, Name="Anna Nowak")


@pytest.fixture
def offers(shop: Application, anna: CustomerProfile) -> Iterator[None]:
    # The app serves /media/ from the MEDIA_ROOT it started with, so these pictures are real files there.
    pictures = [
        make_image(title=title, width=640, height=360, color=color)
        for title, color in [
            ("Novels", "#3b44d1"),
            ("Tote", "#e07a2f"),
            ("Poetry", "#1f9d6b"),
            ("Maps", "#7c3aed"),
        ]
    ]
    make_offer(
        environment=shop.environment,
        shops=[shop],
        name="Ten percent off novels",
        is_public=True,
        sort_order=1,
        picture=pictures[0],
        description="On every novel in the shop, paperback or hardcover.",
        validity_text="Valid until 31 May",
        offer_type=OfferType.ONLINE_AND_RETAIL,
        link="https://harbour.example.com/novels",
    )
    make_offer(
        environment=shop.environment,
        shops=[shop],
        name="A free tote bag for you, Anna",
        assigned_emails=["anna@example.com"],
        sort_order=2,
        picture=pictures[1],
        description="Show this at the till with any purchase.",
        validity_text="This month only",
        offer_type=OfferType.RETAIL,
    )
    make_offer(
        environment=shop.environment,
        shops=[shop],
        name="Poetry week: buy two, get one",
        is_public=True,
        sort_order=3,
        picture=pictures[2],
        description="Mix and match any three poetry books; the cheapest is free.",
        validity_text="June 1 to 7",
        offer_type=OfferType.ONLINE,
    )
    make_offer(
        environment=shop.environment,
        shops=[shop],
        name="Maps for Ben",
        assigned_emails=["ben@example.com"],
        picture=pictures[3],
    )
    yield
    for picture in GalleryImage.objects.all():
        picture.file.delete(save=False)


def sign_in_to_offers(page: Page, live_server: LiveServer, shop: Application) -> None:
    page.goto(f"{live_server.url}/panel/{shop.slug}/offers/")
    page.get_by_label("Email").fill("anna@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/panel/{shop.slug}/offers/")
    # The URL changes when the new page starts arriving; measure only once its styles and pictures are in.
    page.wait_for_load_state("load")
    expect(page.get_by_role("heading", name="My offers")).to_be_visible()


def card(page: Page, name: str) -> Locator:
    return page.locator(".offer").filter(has=page.get_by_role("heading", name=name))


def pictures_loaded(page: Page) -> None:
    broken = page.evaluate("[...document.images].filter(i => !i.complete || !i.naturalWidth).length")
    assert broken == 0, f"{broken} pictures did not load"


def test_my_offers_at_desktop_width(
    page: Page, live_server: LiveServer, shop: Application, anna: CustomerProfile, offers: None
) -> None:
    # When Anna opens "My offers" on her computer
    sign_in_to_offers(page, live_server, shop)
    # Then she sees her three offers side by side, in the shop's order, not Ben's
    names = page.locator(".offer-name").all_inner_texts()
    assert names == [
        "Ten percent off novels",
        "A free tote bag for you, Anna",
        "Poetry week: buy two, get one",
    ]
    tops = {
        round(box["y"]) for box in (page.locator(".offer").nth(i).bounding_box() for i in range(3)) if box
    }
    assert len(tops) == 1, "the cards should share one row at 1280 px"
    expect(page.get_by_role("link", name="My offers")).to_have_attribute("aria-current", "page")
    novels = card(page, "Ten percent off novels")
    expect(novels.get_by_text("Use online & in retail")).to_be_visible()
    expect(novels.get_by_text("Valid until 31 May")).to_be_visible()
    picture_link = novels.get_by_role("link", name="Ten percent off novels")
    expect(picture_link).to_have_attribute("href", "https://harbour.example.com/novels")
    expect(picture_link).to_have_attribute("target", "_blank")
    pictures_loaded(page)
    screenshot(page, "panel-offers-desktop")

    # When she hearts the poetry offer and claims the tote bag
    poetry = card(page, "Poetry week: buy two, get one")
    poetry.get_by_role("button", name="Favourite").click()
    expect(page.get_by_role("status")).to_have_text(
        "“Poetry week: buy two, get one” is now in your favourites."
    )
    expect(poetry.get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "true")
    tote = card(page, "A free tote bag for you, Anna")
    tote.get_by_role("button", name="Claim").click()
    expect(page.get_by_role("status")).to_have_text("You claimed “A free tote bag for you, Anna”.")
    # Then the tote bag shows as claimed, and the poetry offer is still her favourite
    expect(tote.get_by_text("Claimed", exact=True)).to_be_visible()
    expect(tote.get_by_role("button", name="Claim")).to_have_count(0)
    expect(poetry.get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "panel-offers-after-actions-desktop")
    assert OfferClaim.objects.filter(profile=anna, offer__name__startswith="A free tote").exists()
    assert OfferFavourite.objects.filter(profile=anna, offer__name__startswith="Poetry").exists()

    # When she opens the Favourites tab
    page.get_by_role("link", name="Favourites").click()
    # Then only the poetry offer is there
    expect(page.locator(".offer-name")).to_have_text(["Poetry week: buy two, get one"])
    screenshot(page, "panel-offers-favourites-desktop")


def test_my_offers_on_a_phone(
    phone: Page, live_server: LiveServer, shop: Application, anna: CustomerProfile, offers: None
) -> None:
    page = phone
    sign_in_to_offers(page, live_server, shop)
    # The cards stack in one column as wide as the screen allows, with nothing to scroll sideways
    boxes = [page.locator(".offer").nth(i).bounding_box() for i in range(3)]
    assert all(box and box["width"] >= PHONE["width"] - 40 for box in boxes), boxes
    assert len({round(box["x"]) for box in boxes if box}) == 1
    fits_the_screen(page)
    big_enough_to_tap(page, ".heart, .offer-actions .button, .offer-filter a, .tabs a, .claimed")
    pictures_loaded(page)
    screenshot(page, "panel-offers-phone")

    # When she taps the heart on the novels offer
    novels = card(page, "Ten percent off novels")
    novels.get_by_role("button", name="Favourite").tap()
    # Then it is pressed, and she is back at that card rather than at the top of a long page
    expect(novels.get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "true")
    assert page.url.endswith(f"#offer-{OfferFavourite.objects.get(profile=anna).offer_id}")
    # When she claims it
    novels.get_by_role("button", name="Claim").tap()
    expect(novels.get_by_text("Claimed", exact=True)).to_be_visible()
    fits_the_screen(page)
    screenshot(page, "panel-offers-after-actions-phone")

    # When she unhearts it on the Favourites tab
    page.get_by_role("link", name="Favourites").tap()
    expect(page.locator(".offer-name")).to_have_text(["Ten percent off novels"])
    novels.get_by_role("button", name="Favourite").tap()
    # Then the tab is empty and says so
    expect(page.get_by_role("heading", name="No favourites yet")).to_be_visible()
    fits_the_screen(page)
    screenshot(page, "panel-offers-no-favourites-phone")


def test_my_offers_with_nothing_to_show_on_a_phone(
    phone: Page, live_server: LiveServer, shop: Application, anna: CustomerProfile
) -> None:
    sign_in_to_offers(phone, live_server, shop)
    expect(phone.get_by_role("heading", name="No offers for you right now")).to_be_visible()
    fits_the_screen(phone)
    screenshot(phone, "panel-offers-empty-phone")
