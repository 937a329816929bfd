"""A customer's Promo codes tab: every code issued to them, newest first, even after the group goes."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from patronage.customers.models import CustomerProfile
from patronage.customers.tests.test_customers_admin import form_data
from patronage.promocodes.models import IssueKind, PromoCodeGroup
from patronage.promocodes.services import promo_code_group_delete
from patronage.testing.browser import screenshot
from patronage.testing.promocodes import make_group, make_issue
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

UTC = dt.UTC
DAY = dt.datetime(2025, 5, 10, 9, 30, tzinfo=UTC)


def change_url(profile: CustomerProfile) -> str:
    return f"/admin/customers/customerprofile/{profile.pk}/change/"


def ada_with_codes() -> CustomerProfile:
    live = environment_get(Environment.LIVE)
    ada = CustomerProfile.objects.create(
        environment=live, integration_id="ada", name="Ada Lovelace", email="ada@example.com"
    )
    spring = make_group(live, "Spring", codes=["SPRING-1", "SPRING-2"])
    welcome = make_group(live, "Welcome", codes=["WELCOME-1"])
    first = spring.codes.order_by("id").first()
    assert first is not None
    make_issue(ada, welcome.codes.get(), created=DAY - dt.timedelta(days=30))
    make_issue(ada, first, mailing_id=7, created=DAY - dt.timedelta(days=2))
    make_issue(ada, first, kind=IssueKind.REPEAT, mailing_id=9, created=DAY)
    return ada


def table_rows(html: str) -> list[str]:
    return re.findall(r'data-code="([^"]+)"', html)


@pytest.mark.django_db
def test_the_tab_lists_every_issued_code_newest_first(admin_client: Client) -> None:
    ada = ada_with_codes()

    page = admin_client.get(change_url(ada)).content.decode()

    assert 'id="customer-promo-codes"' in page
    assert table_rows(page) == ["SPRING-1", "SPRING-1", "WELCOME-1"]
    assert "2025-05-10 09:30" in page and "2025-04-10 09:30" in page
    assert "Repeat" in page and "Initial" in page
    assert "#9" in page and "#7" in page


@pytest.mark.django_db
def test_the_tab_keeps_codes_of_a_deleted_group(admin_client: Client) -> None:
    ada = ada_with_codes()
    promo_code_group_delete(group=PromoCodeGroup.objects.get(name="Welcome"))

    page = admin_client.get(change_url(ada)).content.decode()

    assert table_rows(page) == ["SPRING-1", "SPRING-1", "WELCOME-1"]
    assert "Welcome <span" in page and "(group deleted)" in page


@pytest.mark.django_db
def test_a_customer_without_codes_sees_an_empty_tab_and_the_form_still_saves(admin_client: Client) -> None:
    bob = CustomerProfile.objects.create(
        environment=environment_get(Environment.LIVE), integration_id="bob", email="bob@example.com"
    )

    page = admin_client.get(change_url(bob)).content.decode()
    saved = admin_client.post(change_url(bob), form_data(name="Bob", email="bob@example.com"))

    assert "No promo code has been issued to this customer yet." in page
    assert saved.status_code == 302
    bob.refresh_from_db()
    assert bob.name == "Bob"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_open_the_promo_codes_tab_of_a_customer(staff_page: Page, live_server: LiveServer) -> None:
    ada = ada_with_codes()
    page = staff_page

    page.goto(f"{live_server.url}{change_url(ada)}")
    page.get_by_role("link", name="Promo codes", exact=True).click()

    table = page.locator("#customer-promo-codes")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr").first).to_contain_text("SPRING-1")
    expect(table.locator("tbody tr").first).to_contain_text("Repeat")
    expect(table.locator("tbody tr").last).to_contain_text("WELCOME-1")
    screenshot(page, "promocodes-customer-tab")
