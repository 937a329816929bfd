"""The offers back office as staff use it: a real Chromium against a live server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.offers.models import Offer, OfferAssignment
from patronage.testing.browser import screenshot
from patronage.testing.offers import make_image, make_offer
from patronage.workspace.models import Application, Environment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/offers/offer/"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any, tmp_path: Path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path


def system_names(page: Page) -> list[str]:
    return page.locator("#result_list th.field-system_name a").all_inner_texts()


def test_staff_create_a_public_offer_picking_images_from_the_gallery(
    staff_page: Page, live_server: LiveServer, live_app: Application
) -> None:
    page = staff_page
    make_image(title="Tulips", width=80, height=60, color="#e67e22")
    make_image(title="Roses", width=80, height=60, color="#c0392b")

    page.goto(f"{live_server.url}{LIST}")
    page.get_by_role("link", name="Add customer private offer").first.click()
    page.fill("#id_system_name", "spring-sale")
    page.fill("#id_name", "Spring sale")
    page.fill("#id_link", "https://shop.example.com/spring")
    page.select_option("#id_offer_type", "online")
    page.get_by_label(re.compile(r"^Shop \d+ \(Live\)$|live-shop|Live\)")).first.check()
    page.fill("#id_starts_at_0", "2025-05-01")
    page.fill("#id_starts_at_1", "00:00:00")
    page.fill("#id_ends_at_0", "2099-06-01")
    page.fill("#id_ends_at_1", "00:00:00")
    page.check("#id_is_public")
    page.select_option("#id_link_type", "category")
    page.fill("#id_object_id", "tag-42")
    for field in ("picture", "image_small", "image_medium", "image_big"):
        page.locator(f"#id_{field} label", has_text="Tulips").click()
    page.locator("#id_picture label", has_text="Roses").click()
    screenshot(page, "offers-add-form")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator("#result_list")).to_contain_text("spring-sale")
    offer = Offer.objects.get(system_name="spring-sale")
    assert offer.is_public and str(offer.picture) == "Roses" and str(offer.image_big) == "Tulips"

    page.goto(f"{live_server.url}{LIST}{offer.pk}/change/")
    expect(page.locator("#id_is_public")).to_have_count(0)
    screenshot(page, "offers-change-form-public-locked")
    expect(page.get_by_text("Is public")).to_be_visible()


def test_a_bad_form_says_what_to_fix(
    staff_page: Page, live_server: LiveServer, live_app: Application
) -> None:
    page = staff_page
    make_image(title="Tulips")
    page.goto(f"{live_server.url}{LIST}add/")
    page.fill("#id_system_name", "x")
    page.fill("#id_name", "X")
    page.fill("#id_link", "not a url at all")
    page.fill("#id_starts_at_0", "2025-05-01")
    page.fill("#id_starts_at_1", "00:00:00")
    page.fill("#id_ends_at_0", "2025-04-01")
    page.fill("#id_ends_at_1", "00:00:00")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("Enter a valid URL.")).to_be_visible()
    expect(page.get_by_text("Pick at least one shop.")).to_be_visible()
    expect(page.get_by_text("Pick an image from the gallery.").first).to_be_visible()
    screenshot(page, "offers-add-form-errors")


def test_the_list_filters_sorts_searches_and_pages(
    staff_page: Page, live_server: LiveServer, live_app: Application
) -> None:
    page = staff_page
    image = make_image()
    for n in range(12):
        make_offer(
            environment=Environment.LIVE,
            shops=[live_app],
            system_name=f"offer-{n:02}",
            name=f"Deal {n}",
            picture=image,
            is_public=n % 4 == 0,
            assigned_emails=[f"c{i}@example.com" for i in range(n % 5)],
        )

    page.goto(f"{live_server.url}{LIST}")
    page.select_option("#per-page", "10")
    page.wait_for_url(re.compile(r"per_page=10"))
    expect(page.locator("#result_list tbody tr")).to_have_count(10)
    screenshot(page, "offers-list")

    page.locator("#result_list thead th.column-assigned_emails a").first.click()
    page.wait_for_url(re.compile(r"o=7"))
    assert "per_page=10" in page.url  # sorting keeps the page size
    counts = page.locator("#result_list td.field-assigned_emails").all_inner_texts()
    assert counts == sorted(counts)

    page.fill("#searchbar", "Deal 1")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=Deal"))
    assert sorted(system_names(page)) == ["offer-01", "offer-10", "offer-11"]

    page.goto(f"{live_server.url}{LIST}?is_public__exact=1&o=2")
    assert system_names(page) == ["offer-00", "offer-04", "offer-08"]
    screenshot(page, "offers-list-public")


def test_delete_emails_and_delete_ask_first(
    staff_page: Page, live_server: LiveServer, live_app: Application
) -> None:
    page = staff_page
    offer = make_offer(
        environment=Environment.LIVE,
        shops=[live_app],
        system_name="spring-sale",
        assigned_emails=["a@example.com", "b@example.com", "c@example.com"],
    )

    page.goto(f"{live_server.url}{LIST}")
    row = page.locator("#result_list tbody tr", has_text="spring-sale")
    row.locator("td.field-actions_holder span", has_text="more_horiz").click()
    page.get_by_role("link", name="Delete emails").click()
    expect(page.locator("#delete-emails h2")).to_have_text("Delete 3 assigned emails of spring-sale?")
    screenshot(page, "offers-delete-emails-confirm")
    page.get_by_role("link", name="No, go back").click()
    assert OfferAssignment.objects.count() == 3

    page.goto(f"{live_server.url}{LIST}{offer.pk}/delete-emails/")
    page.get_by_role("button", name="Yes, delete 3 emails").click()
    expect(page.get_by_text("Removed 3 assigned emails from spring-sale.")).to_be_visible()
    expect(page.locator("#result_list td.field-assigned_emails")).to_have_text("0")
    assert not OfferAssignment.objects.exists()

    row = page.locator("#result_list tbody tr", has_text="spring-sale")
    row.locator("td.field-actions_holder span", has_text="more_horiz").click()
    # The menu item's name includes its icon's ligature ("delete Delete").
    page.get_by_role("link", name=re.compile(r"Delete$")).click()
    expect(page.locator("#delete-offer")).to_contain_text("This cannot be undone.")
    screenshot(page, "offers-delete-confirm")
    page.get_by_role("button", name="Yes, delete the offer").click()
    expect(page.get_by_text("Deleted offer spring-sale.")).to_be_visible()
    assert not Offer.objects.exists()


def test_why_shown_explains_each_offer(
    staff_page: Page, live_server: LiveServer, live_app: Application
) -> None:
    page = staff_page
    make_offer(
        environment=Environment.LIVE,
        shops=[live_app],
        system_name="mine",
        assigned_emails=["ada@example.com"],
    )
    make_offer(
        environment=Environment.LIVE, shops=[live_app], system_name="off", is_public=True, is_active=False
    )

    page.goto(f"{live_server.url}{LIST}")
    page.get_by_role("link", name="Why is this offer (not) shown?").click()
    page.fill("#id_email", "ada@example.com")
    page.get_by_role("button", name="Explain").click()

    expect(page.locator('tr[data-offer="mine"]')).to_contain_text("Shown")
    expect(page.locator('tr[data-offer="off"] .reason')).to_have_text("Inactive")
    screenshot(page, "offers-why-shown")
