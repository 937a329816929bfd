"""Coupons as staff use them: a real Chromium against a live server (screenshots in /tmp/shots/b/)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import running_campaign
from patronage.coupons.models import CampaignCodeSource, Coupon, CouponGeneration
from patronage.dataio.testing import BackgroundWorker
from patronage.testing.factories import make_application
from patronage.testing.promocodes import make_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/coupons/coupon/"
SHOTS = Path("/tmp/shots/b")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def summer() -> Campaign:
    return running_campaign(make_application(name="Coffee shop", currency="EUR"), "Summer")


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def values(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#result_list tbody tr th.field-code").all_inner_texts()]


def click_and_load(page: Page, target: Any) -> None:
    with page.expect_navigation():
        target.click()


def fill_generate_form(page: Page, *, count: int, pattern: str) -> None:
    page.fill("#id_count", str(count))
    page.fill("#id_pattern", pattern)


def test_staff_generate_a_small_batch_at_once_and_a_big_one_in_the_background(
    staff_page: Page, live_server: LiveServer, summer: Campaign, settings: Any
) -> None:
    settings.PATRONAGE_COUPONS_SYNC_LIMIT = 20
    page = staff_page
    # Given the coupon list of the campaign
    page.goto(f"{live_server.url}{LIST}?campaign={summer.pk}")
    click_and_load(page, page.get_by_role("link", name="Generate coupons"))
    expect(page.get_by_text("Discount limit (EUR)")).to_be_visible()

    # When staff ask for a pattern too short for the count, the form says so in words
    fill_generate_form(page, count=500, pattern="S-##")
    click_and_load(page, page.get_by_role("button", name="Generate"))
    expect(page.get_by_text("500 codes need at least 3 # in it")).to_be_visible()
    shot(page, "generate-pattern-error")
    assert not Coupon.objects.exists()

    # When they generate 12 coupons (under the limit), they are made at once and listed
    fill_generate_form(page, count=12, pattern="SUM-####-####")
    page.fill("#id_usage_limit", "2")
    click_and_load(page, page.get_by_role("button", name="Generate"))
    expect(page.get_by_text("Generated 12 coupons for “Summer”")).to_be_visible()
    expect(page.locator("#result_list tbody tr")).to_have_count(12)
    expect(page.locator("#result_list tbody tr").first.locator("td.field-used")).to_have_text("0 / 2")
    shot(page, "generate-small-batch-listed")

    # When they generate 21 (just over the limit), a background job makes them while the page shows progress
    click_and_load(page, page.get_by_role("link", name="Generate coupons"))
    fill_generate_form(page, count=21, pattern="BIG-######")
    click_and_load(page, page.get_by_role("button", name="Generate"))
    expect(page.locator("#coupon-generation")).to_contain_text("0 of 21 made")
    expect(page.locator("#generation-waiting")).to_be_visible()
    shot(page, "generate-big-batch-queued")
    with BackgroundWorker():
        expect(page.locator("#generation-done")).to_have_text("Done: 21 coupons made.", timeout=20_000)
    expect(page.locator("#generation-percent")).to_have_text("100")
    shot(page, "generate-big-batch-done")

    # Then the link shows the batch's coupons
    click_and_load(page, page.get_by_role("link", name="See the batch's coupons"))
    batch = CouponGeneration.objects.get().batch_id
    expect(page.locator("#result_list tbody tr")).to_have_count(21)
    assert all(re.fullmatch(r"BIG-[A-Z2-9]{6}", v) for v in values(page))
    assert Coupon.objects.filter(batch_id=batch).count() == 21


def test_staff_import_filter_edit_and_delete_by_filter(
    staff_page: Page, live_server: LiveServer, summer: Campaign, tmp_path: Path
) -> None:
    page = staff_page
    csv_file = tmp_path / "coupons.csv"
    csv_file.write_bytes(
        b"value,expirydate,startdate,recipientintegrationid,limitval,discountlimit,attributes\n"
        b"AUTUMN-0001,,,,1,,\n"
        b"AUTUMN-0002,,,,1,,\n"
        b"X,,,,1,,\n"
        b"WINTER-0001,,,ada,3,,\n"
    )
    # Given the import page of the campaign
    page.goto(f"{live_server.url}{LIST}?campaign={summer.pk}")
    click_and_load(page, page.get_by_role("link", name="Import CSV"))

    # Then Import/Export's form opens for that campaign
    expect(page.locator("#import-options")).to_contain_text("Summer (Coffee shop)")

    # When staff import a file with a bad line, nothing is imported and the line is named
    page.set_input_files("#id_file", csv_file)
    click_and_load(page, page.get_by_role("button", name="Upload and import"))
    with BackgroundWorker():
        expect(page.locator("#job-problems")).to_be_visible(timeout=20_000)
    problems = page.locator("#job-problems tbody tr")
    expect(problems).to_have_count(1)
    expect(problems.first.locator("td")).to_have_text(
        ["4", "value", "the code 'X' is too short: at least 4 characters"]
    )
    shot(page, "import-bad-line")
    assert not Coupon.objects.exists()

    # When they import it again skipping bad lines, the good ones are imported and the bad one is named
    page.goto(f"{live_server.url}{LIST}?campaign={summer.pk}")
    click_and_load(page, page.get_by_role("link", name="Import CSV"))
    page.set_input_files("#id_file", csv_file)
    page.locator("input[name=skip_bad_rows]").check()
    click_and_load(page, page.get_by_role("button", name="Upload and import"))
    with BackgroundWorker():
        expect(page.locator("#job-problems")).to_be_visible(timeout=20_000)
    expect(page.locator("#job-created")).to_have_text("3")
    expect(page.locator("#job-problems tbody tr").first).to_contain_text("the code 'X' is too short")
    shot(page, "import-skipped-bad-line")
    page.goto(f"{live_server.url}{LIST}?campaign={summer.pk}")
    assert sorted(values(page)) == ["AUTUMN-0001", "AUTUMN-0002", "WINTER-0001"]

    # When they search for part of a code, the list narrows
    page.fill("#searchbar", "autumn")
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    assert sorted(values(page)) == ["AUTUMN-0001", "AUTUMN-0002"]

    # When they filter by recipient in the filter panel
    page.goto(f"{live_server.url}{LIST}?campaign={summer.pk}")
    page.locator("a", has_text=re.compile(r"^\s*Filters")).click()
    page.locator("#changelist-filter input[name=recipient]").fill("ada")
    click_and_load(page, page.get_by_role("button", name="Apply Filters"))
    assert values(page) == ["WINTER-0001"]
    expect(page.locator("td.field-used")).to_have_text("0 / 3")
    shot(page, "list-filtered-by-recipient")

    # When they edit that coupon's limit and expiry, the value stays and the list shows the new limit
    click_and_load(page, page.get_by_role("link", name="WINTER-0001"))
    expect(page.locator("#id_value")).to_have_count(0)
    page.fill("#id_usage_limit", "0")
    page.fill("#id_expiry_date_0", "2031-01-31")
    page.fill("#id_expiry_date_1", "12:00:00")
    shot(page, "edit-coupon")
    click_and_load(page, page.get_by_role("button", name="Save", exact=True))
    winter = Coupon.objects.get(value="WINTER-0001")
    assert winter.usage_limit == 0 and winter.expiry_date is not None
    page.goto(f"{live_server.url}{LIST}?campaign={summer.pk}&q=winter")
    expect(page.locator("td.field-used")).to_have_text("0 / ∞")

    # When they delete every coupon matching "autumn", a page says how many first
    page.goto(f"{live_server.url}{LIST}?campaign={summer.pk}&q=autumn")
    click_and_load(page, page.get_by_role("link", name="Delete all matching"))
    expect(page.locator("#delete-count")).to_have_text("Delete 2 coupons of “Summer”?")
    shot(page, "delete-matching-confirm")
    assert Coupon.objects.count() == 3
    click_and_load(page, page.get_by_role("button", name="Yes, delete 2 coupons"))

    # Then only those are gone
    expect(page.get_by_text("Deleted 2 coupons of “Summer”.")).to_be_visible()
    assert values(page) == ["WINTER-0001"]
    shot(page, "delete-matching-done")
    assert list(Coupon.objects.values_list("value", flat=True)) == ["WINTER-0001"]


def test_staff_make_personal_codes_and_choose_the_promo_codes_a_campaign_accepts(
    staff_page: Page, live_server: LiveServer, summer: Campaign
) -> None:
    page = staff_page
    spring = make_group(summer.application.environment, "Spring mailing", codes=["SPR-0001"])
    make_group(summer.application.environment, "Autumn mailing", codes=["AUT-0001"])
    # Given the coupon list, without a campaign chosen
    page.goto(f"{live_server.url}{LIST}")
    click_and_load(page, page.get_by_role("link", name="Personal codes"))
    # Then the page asks which campaign first
    expect(page.get_by_text("Which campaign are the personal codes for?")).to_be_visible()
    page.select_option("#id_campaign", label="Summer (Coffee shop)")
    click_and_load(page, page.get_by_role("button", name="Continue"))

    # When staff paste three customers (one twice) and make the codes
    page.fill("#id_recipients", "ada\nbob\n\nada\ncy\n")
    page.fill("#id_pattern", "VIP-######")
    shot(page, "personal-codes-form")
    click_and_load(page, page.get_by_role("button", name="Make the codes"))

    # Then each customer has one personal code, listed with its recipient
    expect(page.get_by_text("Made 3 personal codes for “Summer”, one per customer.")).to_be_visible()
    recipients = page.locator("#result_list tbody td.field-recipient").all_inner_texts()
    assert sorted(r.strip() for r in recipients) == ["ada", "bob", "cy"]
    shot(page, "personal-codes-listed")

    # When they open the promo codes the campaign accepts and choose the spring mailing's group
    click_and_load(page, page.get_by_role("link", name="Accepted promo codes"))
    page.get_by_label("Spring mailing").check()
    click_and_load(page, page.get_by_role("button", name="Save"))

    # Then the campaign accepts that group's issued codes
    expect(page.get_by_text("“Summer” accepts issued codes of: Spring mailing.")).to_be_visible()
    expect(page.get_by_label("Spring mailing")).to_be_checked()
    expect(page.get_by_label("Autumn mailing")).not_to_be_checked()
    shot(page, "accepted-promo-codes")
    assert list(CampaignCodeSource.objects.values_list("group_id", flat=True)) == [spring.pk]
