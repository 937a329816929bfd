"""The customer list as staff use it: a real Chromium against a live server."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import QuerySet
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.customer_sessions.models import CustomerSession
from patronage.customer_sessions.services import CartItemInput, SessionInput, session_update
from patronage.customers import selectors
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.testing.browser import screenshot
from patronage.testing.factories import make_application
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/customers/customerprofile/"
UTC = dt.UTC


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def customer(integration_id: str, *, environment: str = Environment.LIVE, **fields: Any) -> CustomerProfile:
    return CustomerProfile.objects.create(
        environment=environment_get(environment), integration_id=integration_id, **fields
    )


@pytest.fixture
def shop() -> dict[str, Any]:
    """A small live customer base with groups, and one sandbox customer."""
    live = environment_get(Environment.LIVE)
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    wholesale = CustomerGroup.objects.create(environment=live, name="Wholesale")
    customer(
        "c-ada",
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+12015550123",
        group=vip,
        tax_exempt=True,
        accepts_marketing=True,
        closed_sessions=12,
        birth_date=dt.date(1985, 12, 24),
        created=dt.datetime(2024, 1, 15, tzinfo=UTC),
        last_activity=dt.datetime(2025, 6, 1, tzinfo=UTC),
    )
    customer(
        "c-grace",
        name="Grace Hopper",
        email="grace@example.com",
        phone="+12015550199",
        group=wholesale,
        closed_sessions=3,
        birth_date=dt.date(1990, 1, 5),
        created=dt.datetime(2024, 3, 1, tzinfo=UTC),
        last_activity=dt.datetime(2025, 2, 1, tzinfo=UTC),
    )
    customer(
        "c-alan",
        name="Alan Turing",
        email="alan@example.com",
        accepts_marketing=True,
        birth_date=dt.date(2001, 6, 23),
        created=dt.datetime(2024, 9, 1, tzinfo=UTC),
        last_activity=dt.datetime(2024, 9, 1, tzinfo=UTC),
    )
    customer("s-sam", environment=Environment.SANDBOX, name="Sandbox Sam", email="sam@example.com")
    return {"vip": vip, "wholesale": wholesale}


def names(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#result_list tbody tr td.field-name").all_inner_texts()]


def search(page: Page, term: str) -> None:
    page.fill("#searchbar", term)
    with page.expect_navigation():
        page.press("#searchbar", "Enter")


def click_and_load(page: Page, target: Any) -> None:
    with page.expect_navigation():
        target.click()


def open_filters(page: Page) -> None:
    page.locator("a", has_text=re.compile(r"^\s*Filters")).click()
    expect(page.get_by_role("button", name="Apply Filters")).to_be_visible()


def apply_filters(page: Page) -> None:
    click_and_load(page, page.get_by_role("button", name="Apply Filters"))


def test_search_by_name_email_and_phone_in_any_format(
    staff_page: Page, live_server: LiveServer, shop: Any
) -> None:
    page = staff_page
    # Given the customer list (live by default)
    page.goto(f"{live_server.url}{LIST}")
    expect(page.locator("#environment-switch a.active")).to_contain_text("Live")
    assert sorted(names(page)) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    screenshot(page, "customers-list")
    # When staff search for a phone number typed as people type them
    search(page, "(201) 555-0123")
    # Then the customer whose stored number it is shows up
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    assert names(page) == ["Ada Lovelace"]
    assert "q=%28201%29" in page.url
    screenshot(page, "customers-search-phone")
    # When they search by part of an email, then by name
    search(page, "grace@")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    assert names(page) == ["Grace Hopper"]
    search(page, "turing")
    assert names(page) == ["Alan Turing"]
    # When they switch to the sandbox, the search stays and sandbox customers are listed
    search(page, "")
    click_and_load(page, page.locator("#environment-switch").get_by_text("Sandbox"))
    expect(page.locator("#environment-switch a.active")).to_contain_text("Sandbox")
    assert names(page) == ["Sandbox Sam"]


FilterStep = Callable[[Page, dict[str, Any]], None]


def pick_groups(*labels: str) -> FilterStep:
    def step(page: Page, shop: dict[str, Any]) -> None:
        select = page.locator("#changelist-filter .select2-container").first
        for label in labels:
            select.click()
            page.locator(".select2-results__option", has_text=label).first.click()

    return step


def check(name: str, value: str) -> FilterStep:
    def step(page: Page, shop: dict[str, Any]) -> None:
        page.locator(f"#changelist-filter input[name={name}][value={value}]").check()

    return step


def fill(**values: str) -> FilterStep:
    def step(page: Page, shop: dict[str, Any]) -> None:
        for name, value in values.items():
            page.locator(f"#changelist-filter input[name={name}]").fill(value)

    return step


@pytest.mark.parametrize(
    ("label", "step", "expected"),
    [
        ("group", pick_groups("VIP", "Wholesale"), ["Ada Lovelace", "Grace Hopper"]),
        ("no-group", pick_groups("No group"), ["Alan Turing"]),
        ("tax-exempt", check("tax_exempt", "yes"), ["Ada Lovelace"]),
        ("not-tax-exempt", check("tax_exempt", "no"), ["Alan Turing", "Grace Hopper"]),
        ("marketing", check("accepts_marketing", "yes"), ["Ada Lovelace", "Alan Turing"]),
        ("no-marketing", check("accepts_marketing", "no"), ["Grace Hopper"]),
        ("orders", fill(orders_min="1", orders_max="5"), ["Grace Hopper"]),
        ("birthday", fill(birthday_from="1980-01-01", birthday_to="1989-12-31"), ["Ada Lovelace"]),
        (
            "birthday-window",
            fill(birthday_window_from="12-20", birthday_window_to="01-10"),
            ["Ada Lovelace", "Grace Hopper"],
        ),
        (
            "created",
            fill(created_from="2024-02-01", created_to="2024-12-31"),
            ["Alan Turing", "Grace Hopper"],
        ),
        ("last-activity", fill(active_from="2025-01-01"), ["Ada Lovelace", "Grace Hopper"]),
    ],
)
def test_each_filter_narrows_the_list_and_clearing_brings_everyone_back(
    staff_page: Page,
    live_server: LiveServer,
    shop: dict[str, Any],
    label: str,
    step: FilterStep,
    expected: list[str],
) -> None:
    page = staff_page
    page.goto(f"{live_server.url}{LIST}?per_page=25")
    # When staff open the filters, set one and apply
    open_filters(page)
    step(page, shop)
    screenshot(page, f"customers-filter-{label}-form")
    apply_filters(page)
    # Then only the matching customers are listed, the URL says so (a view to share), nothing else is in it
    assert sorted(names(page)) == expected
    query = page.url.split("?", 1)[1]
    assert "per_page=25" in query and "environment" not in query
    assert all(not part.endswith("=") for part in query.split("&")), query
    screenshot(page, f"customers-filter-{label}")
    # And the shared link shows the same
    page.goto(page.url)
    assert sorted(names(page)) == expected
    # When they clear the filters, everyone is back (and the page size stays)
    open_filters(page)
    click_and_load(page, page.get_by_role("link", name="Clear all filters"))
    assert sorted(names(page)) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert "per_page=25" in page.url


def test_the_redemption_filter_appears_once_redemptions_are_recorded(
    staff_page: Page, live_server: LiveServer, shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an installation where no feature records redemptions (offers registers one when installed)
    monkeypatch.setattr(selectors, "REDEMPTION_SOURCES", {})
    page = staff_page
    page.goto(f"{live_server.url}{LIST}")
    open_filters(page)
    expect(page.get_by_text("By redemption date")).to_have_count(0)

    # Given a feature that records redemptions (a stand-in: Grace redeemed in March 2025)
    def offers(lower: dt.datetime | None, upper: dt.datetime | None) -> QuerySet[Any]:
        redeemed = dt.datetime(2025, 3, 10, tzinfo=UTC)
        inside = (lower is None or lower <= redeemed) and (upper is None or redeemed < upper)
        return CustomerProfile.objects.filter(integration_id="c-grace" if inside else "")

    monkeypatch.setitem(selectors.REDEMPTION_SOURCES, "offers", offers)
    page.reload()
    open_filters(page)
    expect(page.get_by_text("By redemption date")).to_be_visible()
    fill(redeemed_from="2025-03-01", redeemed_to="2025-03-31")(page, {})
    apply_filters(page)
    assert names(page) == ["Grace Hopper"]
    open_filters(page)
    fill(redeemed_from="2025-04-01", redeemed_to="")(page, {})
    apply_filters(page)
    assert names(page) == []


def test_every_column_sorts(staff_page: Page, live_server: LiveServer, shop: Any) -> None:
    page = staff_page
    page.goto(f"{live_server.url}{LIST}")
    header = page.locator("#result_list thead th")
    # When staff click "Name", the list is by name; clicking again reverses it
    click_and_load(page, header.filter(has_text="Name").get_by_role("link").first)
    assert names(page) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    screenshot(page, "customers-sorted-by-name")
    click_and_load(page, header.filter(has_text="Name").locator("a[href*='o=-']").first)
    assert names(page) == ["Grace Hopper", "Alan Turing", "Ada Lovelace"]
    # And every other column sorts too (the first click sorts ascending)
    expected = {
        "Integration ID": ["Ada Lovelace", "Alan Turing", "Grace Hopper"],
        "Email": ["Ada Lovelace", "Alan Turing", "Grace Hopper"],
        "Orders": ["Alan Turing", "Grace Hopper", "Ada Lovelace"],
        "Created": ["Ada Lovelace", "Grace Hopper", "Alan Turing"],
        "Last activity": ["Alan Turing", "Grace Hopper", "Ada Lovelace"],
    }
    for column, order in expected.items():
        page.goto(f"{live_server.url}{LIST}")
        click_and_load(page, header.filter(has_text=column).get_by_role("link").first)
        assert names(page) == order, column
    for column in ["Phone", "Group"]:
        page.goto(f"{live_server.url}{LIST}")
        click_and_load(page, header.filter(has_text=column).get_by_role("link").first)
        assert "o=" in page.url and len(names(page)) == 3


def test_page_size_and_the_last_page(staff_page: Page, live_server: LiveServer) -> None:
    page = staff_page
    # Given 57 customers, Customer 01 the oldest
    for i in range(1, 58):
        customer(
            f"n{i:02d}",
            name=f"Customer {i:02d}",
            created=dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(days=i),
        )
    page.goto(f"{live_server.url}{LIST}")
    expect(page.locator("#result_list tbody tr")).to_have_count(50)
    # When staff pick 10 a page
    page.select_option("#per-page", "10")
    page.wait_for_url("**per_page=10**")
    # Then ten are listed, newest first, and the pages run to 6
    expect(page.locator("#result_list tbody tr")).to_have_count(10)
    assert names(page)[0] == "Customer 57"
    screenshot(page, "customers-per-page-10")
    # When they go to the last page
    page.locator("a.end").click()
    page.wait_for_url("**p=6**")
    # Then it holds the seven oldest, and the page size stayed
    assert names(page) == [f"Customer {i:02d}" for i in range(7, 0, -1)]
    expect(page.locator("#per-page")).to_have_value("10")
    screenshot(page, "customers-last-page")
    # When they pick 100, everyone fits on one page
    page.select_option("#per-page", "100")
    page.wait_for_url("**per_page=100**")
    expect(page.locator("#result_list tbody tr")).to_have_count(57)


def order(session_id: str, profile_id: str) -> None:
    app = make_application(environment=Environment.LIVE, slug=f"shop-{session_id}")
    items = [CartItemInput(sku="MUG", name="Mug", quantity=2, price=Decimal("9.50"))]
    session_update(
        application=app,
        integration_id=session_id,
        data=SessionInput(profile_id=profile_id, cart_items=items, state="closed"),
    )


def run_action(page: Page, label: str) -> None:
    page.select_option("select[name=action]", label=label)
    page.get_by_title("Run the selected action").click()


def test_bulk_delete_asks_with_the_count_and_keeps_orders(
    staff_page: Page, live_server: LiveServer, shop: Any
) -> None:
    page = staff_page
    order("order-ada", "c-ada")
    page.goto(f"{live_server.url}{LIST}")
    # When staff tick two customers and run "Delete selected customers"
    for integration_id in ["c-ada", "c-grace"]:
        pk = CustomerProfile.objects.get(integration_id=integration_id).pk
        page.locator(f"input.action-select[value='{pk}']").check()
    run_action(page, "Delete selected customers")
    # Then a page asks first, stating how many
    expect(page.get_by_role("heading", name="Delete 2 customers?")).to_be_visible()
    expect(page.get_by_text("orders stay on the orders list, anonymized")).to_be_visible()
    screenshot(page, "customers-bulk-delete-confirm")
    assert CustomerProfile.objects.filter(environment__slug="live").count() == 3
    # When they go back, nothing happened
    click_and_load(page, page.get_by_role("link", name="No, go back"))
    assert sorted(names(page)) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    # When they do it again and confirm
    for integration_id in ["c-ada", "c-grace"]:
        pk = CustomerProfile.objects.get(integration_id=integration_id).pk
        page.locator(f"input.action-select[value='{pk}']").check()
    run_action(page, "Delete selected customers")
    page.get_by_role("button", name="Yes, delete 2 customers").click()
    # Then they are gone, Ada's order stays, anonymized
    expect(page.get_by_text("Deleted 2 customers.")).to_be_visible()
    assert names(page) == ["Alan Turing"]
    screenshot(page, "customers-bulk-deleted")
    kept = CustomerSession.objects.get(integration_id="order-ada")
    assert kept.anonymized and kept.profile is None and kept.profile_integration_id == ""


def test_bulk_group_for_all_filtered_customers(staff_page: Page, live_server: LiveServer) -> None:
    page = staff_page
    live = environment_get(Environment.LIVE)
    gold = CustomerGroup.objects.create(environment=live, name="Gold")
    for i in range(30):
        customer(f"m{i:02d}", name=f"Member {i:02d}", accepts_marketing=i % 5 < 2)
    # Given the list of the 12 who accept marketing, 10 a page
    page.goto(f"{live_server.url}{LIST}?accepts_marketing=yes&per_page=10")
    # When staff tick the whole page, then "Select all 12", and put them in a group
    silver = CustomerGroup.objects.create(environment=live, name="Silver")
    CustomerProfile.objects.filter(integration_id__in=["m00", "m01", "m05"]).update(group=silver)
    page.locator("#action-toggle").check()
    page.get_by_text("Select all 12 customer profiles").click()
    run_action(page, "Put selected customers in a group")
    expect(page.get_by_role("heading", name="Put 12 customers in a group")).to_be_visible()
    # Then nothing is chosen yet, and the page says where they are now
    expect(page.locator("select[name=group]")).to_have_value("")
    expect(page.locator("#groups-now")).to_contain_text("In a group now: Silver: 3, no group: 9")
    expect(page.locator("#confirm-remove")).to_be_hidden()
    screenshot(page, "customers-bulk-group-empty")
    # When they choose to remove them from their group, a box must be ticked first
    page.select_option("select[name=group]", label="Remove them from their group (no group)")
    expect(page.get_by_text("Yes, take these 12 customers out of their group")).to_be_visible()
    page.get_by_role("button", name="Apply to 12 customers").click()
    expect(page.get_by_text("Tick this box to confirm: 12 customers will leave their group.")).to_be_visible()
    screenshot(page, "customers-bulk-group-confirm-remove")
    assert silver.customers.count() == 3
    # When they pick Gold instead
    page.select_option("select[name=group]", label="Gold")
    # Then the confirmation (and its complaint) goes away: it is only about removing
    expect(page.locator("#confirm-remove")).to_be_hidden()
    screenshot(page, "customers-bulk-group")
    page.get_by_role("button", name="Apply to 12 customers").click()
    # Then all twelve, and only they, are in Gold
    expect(page.get_by_text("Moved 12 customers to group Gold.")).to_be_visible()
    assert set(gold.customers.values_list("accepts_marketing", flat=True)) == {True}
    assert gold.customers.count() == 12


def test_export_downloads_what_the_list_shows(staff_page: Page, live_server: LiveServer, shop: Any) -> None:
    page = staff_page
    page.goto(f"{live_server.url}{LIST}?accepts_marketing=yes")
    assert sorted(names(page)) == ["Ada Lovelace", "Alan Turing"]
    # When staff click "Export these"
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export these").click()
    download = download_info.value
    # Then a CSV of exactly those customers is downloaded
    assert download.suggested_filename.startswith("customers-live-") and download.suggested_filename.endswith(
        ".csv"
    )
    with open(download.path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    assert sorted(row["name"] for row in rows) == ["Ada Lovelace", "Alan Turing"]
    assert {row["group"] for row in rows} == {"VIP", ""}
    # When they export the whole list
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export all live").click()
    with open(download_info.value.path(), encoding="utf-8") as f:
        everyone = list(csv.DictReader(f))
    assert sorted(row["integration_id"] for row in everyone) == ["c-ada", "c-alan", "c-grace"]


def test_add_view_and_edit_a_customer(
    staff_page: Page, live_server: LiveServer, shop: dict[str, Any]
) -> None:
    page = staff_page
    # When staff add a customer whose email is taken (in another case)
    page.goto(f"{live_server.url}{LIST}add/")
    page.fill("input[name=name]", "Katherine Johnson")
    page.fill("input[name=email]", "ADA@example.com")
    page.fill("input[name=phone]", "(201) 555-0142")
    page.fill("input[name=birth_date]", "1918-08-26")
    # The environment is the list's (live): only live groups are offered
    expect(page.locator("select[name=environment]")).to_be_disabled()
    group_options = page.locator("select[name=group] option").all_inner_texts()
    assert [o.strip() for o in group_options][1:] == ["VIP", "Wholesale"]
    page.select_option("select[name=group]", label="VIP")
    # Custom attributes are a table of name, type and value (nothing pre-filled), JSON only on demand
    editor = page.locator("[data-attributes-editor]")
    expect(editor.locator("textarea")).to_be_hidden()
    expect(editor.get_by_text("No custom attributes yet.")).to_be_visible()
    rows = editor.locator("tr.attributes-row")
    for name, kind, value in [
        ("tier", "text", "gold"),
        ("visits", "number", "12345678901234567890"),
        ("vip", "boolean", "false"),
        ("since", "date", "2024-02-29"),
        ("code", "text", "42"),
    ]:
        editor.get_by_role("button", name="+ Add an attribute").click()
        row = rows.last
        row.locator(".attributes-name").fill(name)
        row.locator(".attributes-type").select_option(kind)
        value_field = row.locator("td").nth(2).locator("input, select")
        if kind == "boolean":
            value_field.select_option(value)
        else:
            value_field.fill(value)
    # A number that is not one is refused on its field, before anything is sent
    editor.get_by_role("button", name="+ Add an attribute").click()
    rows.last.locator(".attributes-name").fill("bad")
    rows.last.locator(".attributes-type").select_option("number")
    rows.last.locator("td").nth(2).locator("input").fill("12,5")
    screenshot(page, "customer-add-attributes-table")
    assert not rows.last.locator("td").nth(2).locator("input").evaluate("e => e.checkValidity()")
    rows.last.locator(".attributes-remove").click()
    # The advanced view is the JSON itself
    editor.get_by_role("button", name="Edit as JSON").click()
    expect(editor.locator("textarea")).to_be_visible()
    assert json.loads(editor.locator("textarea").input_value())["visits"] == 12345678901234567890
    screenshot(page, "customer-add-attributes-json")
    editor.get_by_role("button", name="Edit as a table").click()
    expect(rows).to_have_count(5)
    page.locator("button[name=_save]").click()
    # Then the form says so on the email field and keeps what they typed
    error = page.locator(".errors", has=page.locator("input[name=email]"))
    expect(error).to_contain_text("Email ADA@example.com is already used by customer c-ada")
    expect(page.locator("input[name=phone]")).to_have_value("(201) 555-0142")
    expect(editor.locator("tr.attributes-row")).to_have_count(5)  # the table is drawn again from the post
    screenshot(page, "customer-add-error")
    # When they fix it
    page.fill("input[name=email]", "katherine@example.com")
    page.locator("button[name=_save]").click()
    expect(page.get_by_text("was added successfully")).to_be_visible()
    katherine = CustomerProfile.objects.get(email="katherine@example.com")
    assert katherine.phone == "+12015550142" and katherine.group == shop["vip"]
    # Each value saved with its type, exactly
    assert katherine.attributes == {
        "tier": "gold",
        "visits": 12345678901234567890,
        "vip": False,
        "since": "2024-02-29",
        "code": "42",
    }
    # And opened again, the table shows the same types
    page.goto(f"{live_server.url}{LIST}{katherine.pk}/change/")
    shown = page.locator("tr.attributes-row")
    expect(shown).to_have_count(5)
    types = {
        shown.nth(i).locator(".attributes-name").input_value(): shown.nth(i)
        .locator(".attributes-type")
        .input_value()
        for i in range(5)
    }
    assert types == {"tier": "text", "visits": "number", "vip": "boolean", "since": "date", "code": "text"}
    page.locator("button[name=_continue]").click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    katherine.refresh_from_db()
    assert katherine.attributes["visits"] == 12345678901234567890 and katherine.attributes["vip"] is False
    # When they open Ada, who has an order
    order("order-1", "c-ada")
    ada = CustomerProfile.objects.get(integration_id="c-ada")
    page.goto(f"{live_server.url}{LIST}{ada.pk}/change/")
    expect(page.locator("input[name=name]")).to_have_value("Ada Lovelace")
    screenshot(page, "customer-view")
    # Then her orders are a tab
    page.locator("#tabs-items").get_by_text("Orders").click()
    expect(page.locator(".readonly", has_text="order-1")).to_be_visible()
    expect(page.locator(".readonly", has_text="2 x Mug")).to_be_visible()
    screenshot(page, "customer-orders-tab")
    # When they edit her phone into a bad number, the field says so
    page.locator("#tabs-items").get_by_text("General").click()
    page.fill("input[name=phone]", "12")
    page.locator("button[name=_save]").click()
    expect(page.locator(".errors", has=page.locator("input[name=phone]"))).to_contain_text("not a")
    page.fill("input[name=phone]", "+44 20 7946 0958")
    page.locator("button[name=_continue]").click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    ada.refresh_from_db()
    assert ada.phone == "+442079460958"


def test_groups_are_managed_and_deleting_one_keeps_its_customers(
    staff_page: Page, live_server: LiveServer, shop: dict[str, Any]
) -> None:
    page = staff_page
    page.goto(f"{live_server.url}/admin/customers/customergroup/")
    row = page.locator("#result_list tbody tr", has_text="VIP")
    expect(row).to_contain_text("1")
    screenshot(page, "customer-groups")
    # When staff rename VIP
    row.get_by_role("link", name="VIP").click()
    page.fill("input[name=name]", "Very important")
    page.locator("button[name=_save]").click()
    expect(page.locator("#result_list")).to_contain_text("Very important")
    # When they delete it
    row = page.locator("#result_list tbody tr", has_text="Very important")
    row.get_by_role("link", name="Very important").click()
    page.get_by_role("link", name="Delete").click()
    page.get_by_role("button", name=re.compile(r"^Yes, I.m sure")).click()
    # Then Ada is still a customer, in no group
    expect(page.get_by_text("stay, in no group")).to_be_visible()
    ada = CustomerProfile.objects.get(integration_id="c-ada")
    assert ada.group is None


def test_chips_filter_problems_money_and_the_delete_page(
    staff_page: Page, live_server: LiveServer, shop: dict[str, Any]
) -> None:
    page = staff_page
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    make_application(environment=Environment.LIVE, slug="shop-eu", currency="EUR")
    CustomerProfile.objects.filter(integration_id="c-ada").update(total_sales=Decimal("154.5500"))
    CustomerProfile.objects.filter(integration_id="c-grace").update(
        integration_id="c-grace-0123456789-abcdefghij-0123456789"
    )
    # Given a search and two filters
    page.goto(f"{live_server.url}{LIST}?q=a&tax_exempt=yes&orders_min=2&per_page=25")
    chips = page.locator("#filter-chips .filter-chip")
    expect(chips).to_have_count(3)
    expect(chips.nth(0)).to_contain_text("Search: a")
    expect(chips.nth(1)).to_contain_text("Tax exempt: yes")
    expect(chips.nth(2)).to_contain_text("Orders: at least 2")
    # Money with the shop's currency, phones for reading, long IDs and dates on one line
    row = page.locator("#result_list tbody tr", has_text="Ada Lovelace")
    expect(row.locator("td.field-sales")).to_have_text("EUR 154.55")
    expect(row.locator("td.field-phone_number")).to_have_text("+1 201-555-0123")
    expect(row.locator("td.field-created_at")).to_have_text("2024-01-15 00:00")
    screenshot(page, "customers-list-chips")
    # When staff remove one chip, just that filter goes
    click_and_load(page, chips.nth(1).get_by_role("link", name="Remove: Tax exempt: yes"))
    assert "tax_exempt" not in page.url and "orders_min=2" in page.url and "q=a" in page.url
    expect(page.locator("#filter-chips .filter-chip")).to_have_count(2)
    # When they clear all, everyone is back and the page size stays
    click_and_load(page, page.get_by_role("link", name="Clear all"))
    assert sorted(names(page)) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert page.url.endswith("?per_page=25")
    for column in ["integration_id", "phone_number", "sales", "created_at", "active_at"]:
        cells = page.locator(f"#result_list tbody .field-{column}")
        expect(cells).to_have_count(3)
        for i in range(cells.count()):
            assert cells.nth(i).evaluate("e => getComputedStyle(e).whiteSpace") == "nowrap", column
    screenshot(page, "customers-list-money-phones")
    # When the orders filter has a minimum above its maximum, and a day that does not exist
    page.goto(f"{live_server.url}{LIST}?orders_min=5&orders_max=2")
    problem = page.locator("#filter-chips .filter-chip[role=alert]")
    expect(problem).to_contain_text("Number of orders: the minimum (5) is more than the maximum (2)")
    # Then the field itself says so, in words
    problem.get_by_role("link", name=re.compile("^Number of orders")).click()
    field = page.locator("#changelist-filter .errors", has=page.locator("input[name=orders_min]"))
    expect(field).to_contain_text("The minimum (5) is more than the maximum (2)")
    screenshot(page, "customers-filter-problem")
    page.goto(f"{live_server.url}{LIST}?birthday_window_from=02-30&birthday_window_to=03-01")
    expect(page.locator("#filter-chips")).to_contain_text("'02-30' is not a day of the year")
    assert "birthday_window" not in page.locator("#filter-chips").inner_text()
    # The single customer's delete page has no script errors and says the orders stay
    problems.clear()
    ada = CustomerProfile.objects.get(integration_id="c-ada")
    page.goto(f"{live_server.url}{LIST}{ada.pk}/delete/")
    expect(page.locator("#orders-stay")).to_contain_text("Their orders stay on the orders list, anonymized.")
    screenshot(page, "customer-delete-page")
    page.get_by_role("button", name=re.compile("Yes, I.m sure")).click()
    expect(page.get_by_text("was deleted successfully")).to_be_visible()
    assert problems == []
