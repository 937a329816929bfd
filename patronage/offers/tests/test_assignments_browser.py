"""Assigning emails to an offer from its "Import emails" action, in Chromium, with the real worker."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.dataio.testing import BackgroundWorker
from patronage.offers.models import Offer, OfferAssignment
from patronage.testing.browser import screenshot
from patronage.testing.factories import make_application
from patronage.testing.offers import make_offer
from patronage.workspace.models import Environment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/offers/offer/"
BAD = "Email,Offer ID\nada@example.com,spring-sale\nnot-an-email,spring-sale\ngrace@example.com,everyone\n"
GOOD = "Email\nAda@Example.com\ngrace@example.com\nada@example.com\n"


@pytest.fixture
def offers(db: None) -> dict[str, Offer]:
    shop = make_application(environment=Environment.LIVE, slug="harbour-books", name="Harbour Books")
    return {
        "spring": make_offer(environment=Environment.LIVE, shops=[shop], system_name="spring-sale"),
        "public": make_offer(
            environment=Environment.LIVE, shops=[shop], system_name="everyone", is_public=True
        ),
    }


def import_emails(page: Page, live_server: LiveServer, content: str, name: str) -> None:
    page.goto(f"{live_server.url}{LIST}")
    row = page.locator("#result_list tbody tr", has_text="spring-sale")
    row.locator("td.field-actions_holder span", has_text="more_horiz").click()
    page.get_by_role("link", name="Import emails").click()
    # The New import page opens on this offer's type, with the offer fixed
    expect(page.get_by_role("heading", name="New import")).to_be_visible()
    expect(page.locator("#new-import")).to_contain_text("spring-sale")
    page.set_input_files(
        "input[name=file]", {"name": name, "mimeType": "text/csv", "buffer": content.encode()}
    )
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url("**/admin/dataio/importjob/*/change/")


def test_import_emails_reports_bad_lines_then_assigns_a_good_file(
    staff_page: Page, live_server: LiveServer, offers: dict[str, Offer], settings: Any
) -> None:
    page = staff_page
    # When staff import a file with an invalid email and a public offer into spring-sale
    import_emails(page, live_server, BAD, "bad.csv")
    with BackgroundWorker():
        expect(page.locator("#job-status")).to_contain_text("Failed", timeout=20_000)
    screenshot(page, "offer-emails-bad-file")
    # Then each bad line is listed with its number and reason, and nothing was assigned
    rows = page.locator("#job-problems tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("3")
    expect(rows.nth(0)).to_contain_text("not-an-email")
    expect(rows.nth(1)).to_contain_text("4")
    expect(rows.nth(1)).to_contain_text("everyone")
    assert not OfferAssignment.objects.exists()

    # When they import a good file without the Offer ID column (the offer is fixed by the action)
    import_emails(page, live_server, GOOD, "good.csv")
    with BackgroundWorker():
        expect(page.locator("#job-status")).to_contain_text("Succeeded", timeout=20_000)
    screenshot(page, "offer-emails-good-file")
    # Then both customers' emails are assigned once, lowercased, and the page says so
    expect(page.locator("#job-counts")).to_contain_text("2")
    assert sorted(OfferAssignment.objects.filter(offer=offers["spring"]).values_list("email", flat=True)) == [
        "ada@example.com",
        "grace@example.com",
    ]
