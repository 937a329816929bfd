"""The segment builder as staff use it: a real Chromium against a live server."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.customers.models import CustomerGroup
from patronage.segments.models import Segment
from patronage.testing.browser import screenshot
from patronage.testing.mailings import make_customers
from patronage.testing.promocodes import make_group, make_issue
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get, environments_ensure

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADD = "/admin/segments/segment/add/"


@pytest.fixture
def customers() -> None:
    """Six live customers: a0-a3 with marketing consent, b0-b1 without; a0 and b0 were issued an
    "Autumn 10%" code, a1 is a VIP. One sandbox customer who must never show."""
    environments_ensure()
    live = environment_get(Environment.LIVE)
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    consenting = make_customers(live, 4, prefix="a")
    others = make_customers(live, 2, prefix="b", consent=False)
    make_customers(Environment.SANDBOX, 1, prefix="s")
    autumn = make_group(live, "Autumn 10%", codes=["AUT-1", "AUT-2"])
    codes = list(autumn.codes.order_by("pk"))
    make_issue(consenting[0], codes[0])
    make_issue(others[0], codes[1])
    consenting[1].group = vip
    consenting[1].save(update_fields=["group"])


def test_staff_build_a_nested_segment_watch_the_count_save_it_and_export_its_members(
    staff_page: Page, live_server: LiveServer, customers: None
) -> None:
    page = staff_page
    page.goto(f"{live_server.url}{ADD}")
    page.fill("#id_name", "Autumn or VIP, consenting")
    count = page.locator("#segment-count")
    # No rules yet: every live customer.
    expect(count).to_have_text("6")

    # Marketing consent is yes (the condition a new line starts with).
    root = page.locator("#segment-tree > .sb-group")
    root.locator(".sb-group-head .sb-add-condition").first.click()
    expect(count).to_have_text("4")

    # AND any of: issued a code from "Autumn 10%", or in the group VIP.
    root.locator(".sb-group-head .sb-add-group").first.click()
    nested = root.locator(".sb-children .sb-group")
    nested.locator(".sb-field").select_option(label="Promo codes issued from the group")
    # No group picked yet: no count, but a line just set up is unfinished, not wrong: no message yet.
    expect(count).to_have_text("\u2013")  # an en dash: no count
    expect(page.locator("#segment-status")).to_have_text("Counted once every line is complete.")
    expect(nested.locator(".sb-error")).to_have_count(0)
    # The groups are a searchable picker of names.
    picker = nested.locator(".sb-picker")
    picker.get_by_role("searchbox").fill("autu")
    picker.get_by_label("Autumn 10%", exact=True).check()
    expect(count).to_have_text("1")
    expect(picker.locator(".sb-chip")).to_contain_text("Autumn 10%")
    # Unpicked again, the line says what is missing in plain words (never a JSON pointer).
    picker.get_by_role("button", name="Remove Autumn 10%").click()
    expect(nested.locator(".sb-error")).to_have_text("Pick at least one group of promo codes.")
    screenshot(page, "segments-builder-line-problem")
    picker.get_by_label("Autumn 10%", exact=True).check()
    expect(count).to_have_text("1")
    expect(nested.locator(".sb-error")).to_have_count(0)

    nested.locator(".sb-add-condition").click()
    second = nested.locator(".sb-cond").nth(1)
    second.locator(".sb-field").select_option(label="Customer group")
    second.locator(".sb-picker").get_by_label("VIP", exact=True).check()
    expect(count).to_have_text("2")
    expect(page.locator("#segment-sample tbody tr")).to_have_count(2)
    expect(page.locator("#segment-sample")).to_contain_text("a1@example.com")
    screenshot(page, "segments-builder")

    # "not" turns the nested group around: consenting customers with neither.
    nested.locator(".sb-group-head .sb-not input").first.check()
    expect(count).to_have_text("2")
    expect(page.locator("#segment-sample")).to_contain_text("a3@example.com")
    nested.locator(".sb-group-head .sb-not input").first.uncheck()
    expect(count).to_have_text("2")
    expect(page.locator("#segment-sample")).to_contain_text("a0@example.com")

    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url("**/admin/segments/segment/")
    segment = Segment.objects.get()
    assert segment.name == "Autumn or VIP, consenting"
    assert segment.rules["children"][1]["match"] == "any"

    # The list links to its members: the customer list, filtered by the segment.
    page.get_by_role("link", name="Show members").click()
    expect(page.locator("#filter-chips")).to_contain_text("Autumn or VIP, consenting")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#result_list")).to_contain_text("a0@example.com")
    expect(page.locator("#result_list")).to_contain_text("a1@example.com")
    screenshot(page, "segments-customer-list")

    # "Export these" exports exactly the segment's members.
    with page.expect_download() as download:
        page.get_by_role("link", name="Export these").click()
    text = download.value.path().read_text(encoding="utf-8")
    emails = sorted(row["email"] for row in csv.DictReader(io.StringIO(text)))
    assert emails == ["a0@example.com", "a1@example.com"]


def test_saving_rules_the_server_refuses_keeps_the_page_and_says_where(
    staff_page: Page, live_server: LiveServer, customers: None
) -> None:
    page = staff_page
    page.goto(f"{live_server.url}{ADD}")
    page.fill("#id_name", "Unfinished")
    root = page.locator("#segment-tree > .sb-group")
    root.locator(".sb-group-head .sb-add-condition").first.click()
    root.locator(".sb-field").select_option(label="Customer group")
    page.get_by_role("button", name="Save", exact=True).click()

    # Nothing saved; the builder shows the problem on the line again, in plain words.
    expect(page.locator(".sb-cond .sb-error")).to_have_text("Pick at least one customer group.")
    expect(page.locator("#segment-tree")).not_to_contain_text("/rules")
    assert not Segment.objects.exists()
