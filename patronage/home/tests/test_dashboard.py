"""The back office's home page: the figures a marketer checks daily, per environment."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patronage.core import clock
from patronage.customer_sessions.models import CustomerSession, SessionState
from patronage.customers.models import CustomerProfile
from patronage.dataio.models import ImportJob
from patronage.home.dashboard import dashboard
from patronage.mailings.models import Mailing
from patronage.testing.factories import make_application
from patronage.testing.promocodes import make_group
from patronage.workspace.models import Application, Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 31, 15, 0, tzinfo=dt.UTC)


def order(shop: Application, n: int, total: str, days_ago: int, state: str = SessionState.CLOSED) -> None:
    closed = NOW - dt.timedelta(days=days_ago)
    CustomerSession.objects.create(
        application=shop, integration_id=f"s-{n}", state=state, total=Decimal(total), closed_at=closed
    )


@pytest.fixture
def live_data(live_app: Application) -> Environment:
    """Live: 3 customers (one new), 3 orders in the last 30 days in USD (one partly returned), one older
    order and one open cart; a sending mailing, a running import, a group with 1 of 20 codes active."""
    live = environment_get(Environment.LIVE)
    with clock.frozen_at(NOW - dt.timedelta(days=90)):
        CustomerProfile.objects.create(environment=live, integration_id="old-1")
        CustomerProfile.objects.create(environment=live, integration_id="old-2")
    with clock.frozen_at(NOW - dt.timedelta(days=2)):
        CustomerProfile.objects.create(environment=live, integration_id="new-1")
    CustomerProfile.objects.create(environment=environment_get(Environment.SANDBOX), integration_id="sbx")
    order(live_app, 1, "100.50", 0)
    order(live_app, 2, "54.05", 3)
    order(live_app, 3, "20.00", 3, state=SessionState.PARTIALLY_RETURNED)
    CustomerSession.objects.filter(integration_id="s-3").update(returned_total=Decimal("5.00"))
    order(live_app, 4, "999.00", 45)
    order(live_app, 5, "999.00", 1, state=SessionState.OPEN)
    Mailing.objects.create(
        environment=live, name="May news", sender="a@b.example", subject="Hi", status="sending"
    )
    Mailing.objects.create(environment=live, name="Draft", sender="a@b.example", subject="Hi")
    ImportJob.objects.create(
        environment=live, kind="customers", filename="may.csv", status="running", percent=40
    )
    ImportJob.objects.create(environment=live, kind="customers", filename="done.csv", status="succeeded")
    low = make_group(live, "Summer 5%", codes=[f"SUM-{i}" for i in range(20)])
    low.codes.exclude(code="SUM-0").update(issued_at=NOW)
    make_group(live, "Plenty", codes=["P-1", "P-2"])
    return live


def test_the_figures_of_the_live_environment(live_data: Environment) -> None:
    # when
    figures = dashboard(live_data, now=NOW)

    # then
    assert (figures.customers, figures.new_customers) == (3, 1)
    assert figures.orders == 3
    assert figures.sales == ["USD 169.55"]  # 100.50 + 54.05 + (20.00 - 5.00)
    assert len(figures.days) == 30 and figures.days[-1].date == NOW.date()
    assert [d.orders for d in figures.days[-4:]] == [2, 0, 0, 1]
    assert [m.label for m in figures.mailings] == ["May news"]
    assert [(i.label, i.note) for i in figures.imports] == [("may.csv", "Running, 40%")]
    assert [(g.label, g.note) for g in figures.low_groups] == [("Summer 5%", "1 of 20 codes active (5%)")]


def test_the_queries_are_few_whatever_the_data(live_data: Environment) -> None:
    with CaptureQueriesContext(connection) as queries:
        dashboard(live_data, now=NOW)
    # shops, customers, new customers, orders by day, mailings, imports, groups: no query per row
    assert len(queries) == 7


def test_the_home_page_shows_them_with_a_chart_and_switches_environment(
    admin_client: Client, live_data: Environment
) -> None:
    with clock.frozen_at(NOW):
        html = admin_client.get("/admin/").content.decode()
        sandbox = admin_client.get("/admin/?environment=sandbox").content.decode()

    assert 'id="dashboard"' in html
    assert "USD 169.55" in html and "1 new in the last 30 days" in html
    assert html.count("<rect ") == 30 and "2026-05-31: 1 order, USD 100.50" in html
    assert "May news" in html and "may.csv" in html and "Summer 5%" in html
    assert '<a href="?environment=live" class="' in html and 'aria-current="page">Live</a>' in html
    assert 'aria-current="page">Sandbox</a>' in sandbox and "May news" not in sandbox
    assert "No shop in this environment yet." in sandbox


def test_a_second_currency_gets_its_own_total(live_data: Environment) -> None:
    eur = make_application(environment=Environment.LIVE, currency="EUR")
    order(eur, 9, "10", 1)

    assert dashboard(live_data, now=NOW).sales == ["EUR 10.00", "USD 169.55"]
