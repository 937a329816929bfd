"""Groups of promo codes as staff use them: a real Chromium against a live server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import PromoCode, PromoCodeGroup, PromoCodeIssue
from patronage.testing.browser import screenshot
from patronage.testing.promocodes import make_group, make_issue
from patronage.workspace.models import Environment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/promocodes/promocodegroup/"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def list_row(page: Page, name: str) -> Any:
    return page.locator("#result_list tbody tr", has=page.locator("th.field-name", has_text=name))


def test_staff_create_a_group_by_pasting_codes(staff_page: Page, live_server: LiveServer) -> None:
    page = staff_page
    page.goto(f"{live_server.url}{LIST}")
    page.get_by_role("link", name="Add group of promo codes").first.click()
    page.fill("#id_name", "Spring 2025")
    page.fill("#id_description", "Codes for the spring mailing")
    page.fill("#id_codes", "SPRING-7KQ2\nSPRING-9XW4\nSPRING-3TT1\n")
    screenshot(page, "promocodes-add-form")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("Upload to “Spring 2025”: 3 added, 0 duplicate, 0 invalid.")).to_be_visible()
    row = list_row(page, "Spring 2025")
    expect(row.locator("td.field-total")).to_have_text("3")
    expect(row.locator("td.field-active")).to_have_text("3")
    expect(row.locator("td.field-issued")).to_have_text("0")
    screenshot(page, "promocodes-list-after-create")
    group = PromoCodeGroup.objects.get()
    assert list(group.codes.order_by("id").values_list("code", flat=True)) == [
        "SPRING-7KQ2",
        "SPRING-9XW4",
        "SPRING-3TT1",
    ]


def test_staff_upload_a_file_with_errors_and_see_each_line(
    staff_page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    page = staff_page
    group = make_group(Environment.LIVE, "Spring", codes=["S-1"])
    page.goto(f"{live_server.url}{LIST}{group.pk}/change/")
    expect(page.get_by_text("1 in all: 1 active (not yet issued), 0 issued, 0 redeemed")).to_be_visible()
    page.fill("#id_name", "Spring 2025")
    codes = tmp_path / "codes.csv"
    codes.write_bytes(b"S-2\nnot a code!\nS-1\nS-3\nS-2\n")
    page.set_input_files("#id_codes_file", codes)
    page.get_by_role("button", name="Save and continue editing").click()

    expect(page.get_by_text("Upload to “Spring 2025”: 2 added, 2 duplicate, 1 invalid.")).to_be_visible()
    problems = page.locator(".upload-problems")
    expect(problems).to_contain_text("3 lines skipped")
    expect(problems.locator("li")).to_have_text(
        [
            re.compile(r"^Line 2: "),
            "Line 3: S-1 is already in this group; skipped",
            "Line 5: S-2 repeats line 1; skipped",
        ]
    )
    expect(page.get_by_text("3 in all: 3 active (not yet issued), 0 issued, 0 redeemed")).to_be_visible()
    screenshot(page, "promocodes-upload-with-errors")
    assert PromoCode.objects.count() == 3


def test_staff_delete_a_group_after_reading_what_happens_to_issued_codes(
    staff_page: Page, live_server: LiveServer
) -> None:
    page = staff_page
    group = make_group(Environment.LIVE, "Spring", codes=["S-1", "S-2"])
    ada = CustomerProfile.objects.create(environment=group.environment, integration_id="ada")
    make_issue(ada, group.codes.order_by("id").first())  # type: ignore[arg-type]

    page.goto(f"{live_server.url}{LIST}")
    list_row(page, "Spring").locator("td.field-actions_holder span", has_text="more_horiz").click()
    page.get_by_role("link", name=re.compile(r"Delete$")).click()
    confirm = page.locator("#delete-group")
    expect(confirm).to_contain_text(
        "1 code already issued to customers (0 redeemed) can no longer be redeemed."
    )
    expect(confirm).to_contain_text("The customers' issue history is kept: 1 issue stays")
    screenshot(page, "promocodes-delete-confirm")
    page.get_by_role("button", name="Yes, delete the group").click()

    expect(page.get_by_text("Deleted the group “Spring” and its 2 codes.")).to_be_visible()
    assert not PromoCodeGroup.objects.exists()
    assert PromoCodeIssue.objects.get().code == "S-1"
