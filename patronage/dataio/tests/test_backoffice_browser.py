"""Import/Export in the back office as a staff member uses it: a real Chromium, live server and worker."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.customers import imports
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.dataio.models import ImportJob
from patronage.dataio.testing import BackgroundWorker
from patronage.testing.browser import screenshot
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BAD = (
    "name,email,password,birthday,group\n"
    "Ada Lovelace,ada@example.com,,1815-12-10,VIP\n"
    "Bad Email,not-an-email,,,\n"
    "Bad Date,date@example.com,,1990-02-30,\n"
    "Nobody,nobody@example.com,,,Platinum\n"
)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def upload(page: Page, name: str, content: str, *, skip_bad_rows: bool = False) -> None:
    expect(page.get_by_role("heading", name="New import")).to_be_visible()
    page.select_option("select[name=kind]", label="Customers")
    page.set_input_files(
        "input[name=file]", {"name": name, "mimeType": "text/csv", "buffer": content.encode()}
    )
    if skip_bad_rows:
        page.locator("input[name=skip_bad_rows]").check()
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url("**/admin/dataio/importjob/*/change/")


def test_a_bad_file_shows_every_problem_and_changes_nothing(
    staff_page: Page, live_server: LiveServer
) -> None:
    page = staff_page
    CustomerGroup.objects.create(environment=environment_get(Environment.LIVE), name="VIP")
    # Given the staff member goes to Import/Export and starts a new import
    page.get_by_role("link", name="Imports", exact=True).first.click()
    page.get_by_role("link", name="Add import").first.click()
    expect(page.get_by_text("Download a sample customers file")).to_be_visible()
    screenshot(page, "import-new")
    # When they upload a file with bad rows
    upload(page, "customers.csv", BAD)
    # Then the job page waits for a worker
    expect(page.get_by_text("Waiting for a worker")).to_be_visible()
    screenshot(page, "import-queued")
    # When a worker runs it, the page updates by itself
    with BackgroundWorker():
        expect(page.get_by_text("3 rows have problems, so nothing was imported")).to_be_visible(
            timeout=20_000
        )
    screenshot(page, "import-bad-rows")
    # Then every bad row is listed with its line number and reason
    rows = page.locator("#job-problems tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("3")
    expect(rows.nth(0)).to_contain_text("email: 'not-an-email' is not a valid email address")
    expect(rows.nth(1)).to_contain_text("birthday: '1990-02-30' is not a date")
    expect(rows.nth(2)).to_contain_text("group: unknown group 'Platinum' (groups: VIP)")
    expect(page.locator("#job-status")).to_contain_text("Failed")
    # And the errors download as CSV
    with page.expect_download() as download:
        page.get_by_role("link", name="Download errors (CSV)").click()
    errors = open(download.value.path(), encoding="utf-8").read().splitlines()  # noqa: SIM115
    assert errors[0] == "line,column,problem"
    assert errors[1] == "3,email,email: 'not-an-email' is not a valid email address"
    assert [line.split(",")[0] for line in errors[1:]] == ["3", "4", "5"]
    # And no customer was created, not even the good one
    assert not CustomerProfile.objects.exists()


def test_a_good_file_shows_live_progress_then_the_counts(
    staff_page: Page, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = staff_page
    # Given one existing customer, and a file of 12,000 rows that takes a few seconds (slowed down here)
    environment_get(Environment.LIVE)
    CustomerProfile.objects.create(
        environment=environment_get(Environment.LIVE), integration_id="c0", email="user0@example.com"
    )
    write = imports._Staging.write

    def slow_write(self: Any, rows: list[Any]) -> None:
        time.sleep(0.4)
        write(self, rows)

    monkeypatch.setattr(imports._Staging, "write", slow_write)
    monkeypatch.setattr(imports, "CHUNK_ROWS", 1500)
    content = "name,email,password,accepts_marketing\n" + "".join(
        f"User {i},user{i}@example.com,,yes\n" for i in range(12_000)
    )
    page.goto(f"{live_server.url}/admin/dataio/importjob/add/")
    upload(page, "newsletter.csv", content)
    # Record what the progress bar shows while the page polls (the page reloads when the job ends)
    page.evaluate(
        """() => {
        const bar = document.getElementById("job-progress");
        new MutationObserver(() => {
            const seen = JSON.parse(sessionStorage.getItem("seen") || "[]");
            seen.push(Number(bar.getAttribute("aria-valuenow")));
            sessionStorage.setItem("seen", JSON.stringify(seen));
        }).observe(bar, { attributes: true });
    }"""
    )
    # When a worker runs it
    with BackgroundWorker():
        expect(page.locator("#job-rows")).not_to_have_text("0", timeout=20_000)
        screenshot(page, "import-running")
        expect(page.locator("#job-status")).to_contain_text("Succeeded", timeout=30_000)
    # Then the bar moved through intermediate values, and the page shows the outcome
    seen = page.evaluate("() => JSON.parse(sessionStorage.getItem('seen') || '[]')")
    assert any(0 < value < 100 for value in seen), seen
    expect(page.locator("#job-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#job-created")).to_have_text("11,999")
    expect(page.locator("#job-updated")).to_have_text("1")
    expect(page.locator("#job-skipped")).to_have_text("0")
    expect(page.locator("#job-rows")).to_have_text("12,000")
    expect(page.get_by_text("Created 11,999, updated 1.")).to_be_visible()
    screenshot(page, "import-succeeded")
    assert CustomerProfile.objects.filter(accepts_marketing=True).count() == 12_000
    # And the list of imports shows both counts
    page.get_by_role("link", name="All imports").click()
    row = page.locator("#result_list tbody tr", has_text="newsletter.csv")
    expect(row).to_contain_text("Succeeded")
    expect(row).to_contain_text("11999")
    screenshot(page, "import-list")
    assert ImportJob.objects.get().created_by is not None
