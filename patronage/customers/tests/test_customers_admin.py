"""The customer back office through Django's test client: list, filters, sort, pages, forms, bulk actions."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.admin.templatetags.admin_list import result_headers
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils.text import capfirst

from patronage.customer_sessions.models import CustomerSession
from patronage.customer_sessions.services import CartItemInput, SessionInput, session_update
from patronage.customers import selectors
from patronage.customers.admin import PROFILE_TABS
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.workspace.models import Application, Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

LIST = "/admin/customers/customerprofile/"
UTC = dt.UTC


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456"))
    return client


@pytest.fixture
def live() -> Environment:
    return environment_get(Environment.LIVE)


@pytest.fixture
def sandbox() -> Environment:
    return environment_get(Environment.SANDBOX)


def customer(environment: Environment, integration_id: str, **fields: Any) -> CustomerProfile:
    return CustomerProfile.objects.create(environment=environment, integration_id=integration_id, **fields)


def listed(staff: Client, query: dict[str, Any] | None = None) -> list[str]:
    response = staff.get(LIST, query or {})
    assert response.status_code == 200, response.content[:500]
    return [profile.integration_id for profile in response.context["cl"].result_list]


def order(app: Application, session_id: str, profile_id: str) -> CustomerSession:
    items = [CartItemInput(sku="MUG", name="Mug", quantity=2, price=Decimal("9.50"))]
    data = SessionInput(profile_id=profile_id, cart_items=items, state="closed")
    return session_update(application=app, integration_id=session_id, data=data).session


def tab_management_forms() -> dict[str, str]:
    """What the browser posts for each tab (orders, offers, ... whatever features added): empty formsets."""
    data: dict[str, str] = {}
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    for tab in PROFILE_TABS:
        prefix = tab(CustomerProfile, admin.site).get_formset(request).get_default_prefix()
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return data


def form_data(**fields: Any) -> dict[str, Any]:
    """The customer form as the back office posts it (with its empty tabs)."""
    return {
        **tab_management_forms(),
        "environment": "live",
        "integration_id": "",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "",
        "birth_date": "",
        "group": "",
        "attributes": "{}",
        **fields,
    }


# --- the list ----------------------------------------------------------------------------------------------


def test_the_list_shows_live_customers_with_every_column(
    staff: Client, live: Environment, sandbox: Environment
) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    customer(
        live,
        "ada",
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+12015550123",
        group=vip,
        closed_sessions=3,
    )
    customer(sandbox, "test-customer", name="Sandbox Sam")
    response = staff.get(LIST)
    html = response.content.decode()
    assert [p.integration_id for p in response.context["cl"].result_list] == ["ada"]
    headers = [capfirst(str(h["text"])) for h in result_headers(response.context["cl"]) if h.get("sortable")]
    assert headers == [
        "Integration ID",
        "Name",
        "Email",
        "Phone",
        "Group",
        "Orders",
        "Total sales",
        "Created",
        "Last activity",
    ]
    for value in ["Ada Lovelace", "ada@example.com", "+1 201-555-0123", "VIP"]:
        assert value in html
    assert "Sandbox Sam" not in html
    # the environment switch says where we are, and offers the other one
    assert re.search(r'data-environment="live"\s+class="active"', html)
    assert 'href="?environment=sandbox"' in html


def test_the_switch_lists_the_sandbox(staff: Client, live: Environment, sandbox: Environment) -> None:
    customer(live, "ada")
    customer(sandbox, "sam")
    assert listed(staff, {"environment": "sandbox"}) == ["sam"]
    assert listed(staff, {"environment": "nonsense"}) == ["ada"]


def test_search_box_finds_name_email_integration_id_and_any_phone_format(
    staff: Client, live: Environment
) -> None:
    customer(live, "c-ada", name="Ada Lovelace", email="ada@example.com", phone="+12015550123")
    customer(live, "c-grace", name="Grace Hopper", email="grace@example.com", phone="+12015550199")
    assert listed(staff, {"q": "lovelace"}) == ["c-ada"]
    assert listed(staff, {"q": "GRACE@example.com"}) == ["c-grace"]
    assert listed(staff, {"q": "c-gr"}) == ["c-grace"]
    assert listed(staff, {"q": "(201) 555-0123"}) == ["c-ada"]
    assert listed(staff, {"q": "nobody"}) == []


@pytest.fixture
def crowd(live: Environment, sandbox: Environment) -> dict[str, Any]:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    wholesale = CustomerGroup.objects.create(environment=live, name="Wholesale")
    customer(
        live,
        "vip-xmas",
        group=vip,
        tax_exempt=True,
        closed_sessions=5,
        birth_date=dt.date(1980, 12, 24),
        created=dt.datetime(2024, 1, 10, tzinfo=UTC),
        last_activity=dt.datetime(2025, 6, 1, tzinfo=UTC),
    )
    customer(
        live,
        "wholesale-jan",
        group=wholesale,
        accepts_marketing=True,
        closed_sessions=1,
        birth_date=dt.date(1990, 1, 5),
        created=dt.datetime(2024, 3, 1, tzinfo=UTC),
        last_activity=dt.datetime(2025, 1, 1, tzinfo=UTC),
    )
    customer(
        live,
        "plain-summer",
        accepts_marketing=True,
        birth_date=dt.date(2000, 7, 4),
        created=dt.datetime(2024, 6, 1, tzinfo=UTC),
        last_activity=dt.datetime(2024, 6, 1, tzinfo=UTC),
    )
    return {"vip": vip, "wholesale": wholesale}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"group": "{vip}"}, {"vip-xmas"}),
        ({"group": ["{vip}", "{wholesale}"]}, {"vip-xmas", "wholesale-jan"}),
        ({"group": ["{vip}", "none"]}, {"vip-xmas", "plain-summer"}),
        ({"tax_exempt": "yes"}, {"vip-xmas"}),
        ({"tax_exempt": "no"}, {"wholesale-jan", "plain-summer"}),
        ({"accepts_marketing": "yes"}, {"wholesale-jan", "plain-summer"}),
        ({"accepts_marketing": "no"}, {"vip-xmas"}),
        ({"orders_min": "1"}, {"vip-xmas", "wholesale-jan"}),
        ({"orders_min": "1", "orders_max": "2"}, {"wholesale-jan"}),
        ({"birthday_from": "1985-01-01", "birthday_to": "1999-12-31"}, {"wholesale-jan"}),
        ({"birthday_window_from": "12-20", "birthday_window_to": "01-10"}, {"vip-xmas", "wholesale-jan"}),
        ({"created_from": "2024-03-01", "created_to": "2024-03-01"}, {"wholesale-jan"}),
        ({"active_from": "2025-01-01"}, {"vip-xmas", "wholesale-jan"}),
        ({"accepts_marketing": "yes", "orders_min": "1"}, {"wholesale-jan"}),
        # An empty field (a submitted filter form sends them all) filters nothing.
        (
            {"tax_exempt": "", "orders_min": "", "birthday_from": ""},
            {"vip-xmas", "wholesale-jan", "plain-summer"},
        ),
    ],
)
def test_each_filter_narrows_the_list(
    staff: Client, crowd: dict[str, Any], query: dict[str, Any], expected: set[str]
) -> None:
    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value.format(vip=crowd["vip"].pk, wholesale=crowd["wholesale"].pk)

    response = staff.get(LIST, {k: fill(v) for k, v in query.items()})
    assert response.status_code == 200
    assert {p.integration_id for p in response.context["cl"].result_list} == expected
    assert response.context["cl"].has_active_filters is (
        expected != {"vip-xmas", "wholesale-jan", "plain-summer"}
    )


def test_clearing_the_filters_keeps_the_environment_search_and_page_size(
    staff: Client, crowd: dict[str, Any]
) -> None:
    response = staff.get(LIST, {"environment": "live", "per_page": "10", "q": "a", "tax_exempt": "yes"})
    clear = response.context["cl"].clear_all_filters_qs
    assert "tax_exempt" not in clear
    assert {"environment=live", "per_page=10", "q=a"} <= set(clear.lstrip("?").split("&"))


def test_a_bad_filter_value_says_so_and_lists_nobody(staff: Client, crowd: dict[str, Any]) -> None:
    response = staff.get(LIST, {"created_from": "yesterday"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert "is not a date such as 2026-05-17" in response.content.decode()


def test_the_redemption_filter_is_hidden_until_a_feature_registers_redemptions(
    staff: Client, live: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    CustomerGroup.objects.create(environment=live, name="VIP")
    # Given an installation where no feature records redemptions (offers registers one when installed)
    monkeypatch.setattr(selectors, "REDEMPTION_SOURCES", {})
    titles = [str(spec.title) for spec in staff.get(LIST).context["cl"].filter_specs]
    assert titles == [
        "customer group",
        "tax exempt",
        "marketing consent",
        "number of orders",
        "birthday",
        "birthday in (any year)",
        "created",
        "last activity",
    ]
    monkeypatch.setitem(
        selectors.REDEMPTION_SOURCES, "offers", lambda lower, upper: CustomerProfile.objects.none()
    )
    titles = [str(spec.title) for spec in staff.get(LIST).context["cl"].filter_specs]
    assert titles[-1] == "redemption date"


SORTS = {
    1: "integration_id",
    2: "name",
    3: "email",
    4: "phone",
    6: "closed_sessions",
    7: "total_sales",
    8: "created",
    9: "last_activity",
}


@pytest.mark.parametrize("column", [*SORTS, 5])
def test_every_column_sorts_both_ways(staff: Client, live: Environment, column: int) -> None:
    groups = [CustomerGroup.objects.create(environment=live, name=n) for n in ["Bronze", "Gold", "Silver"]]
    for i, (name, email, phone, orders) in enumerate(
        [
            ("Cleo", "zed@x.io", "+12015550102", 7),
            ("Abe", "amy@x.io", "+12015550109", 0),
            ("Bea", "kim@x.io", "+12015550101", 3),
        ]
    ):
        customer(
            live,
            f"id-{'qpr'[i]}",
            name=name,
            email=email,
            phone=phone,
            closed_sessions=orders,
            total_sales=Decimal(orders * 10 + i),
            group=groups[(i + 1) % 3],
            created=dt.datetime(2024, 1, 1 + (i * 2) % 5, tzinfo=UTC),
            last_activity=dt.datetime(2025, 1, 5 - i, tzinfo=UTC),
        )
    profiles = list(CustomerProfile.objects.all())
    if column == 5:
        key: Any = lambda p: p.group.name  # noqa: E731
    else:
        key = lambda p: getattr(p, SORTS[column])  # noqa: E731
    ascending = [p.integration_id for p in sorted(profiles, key=key)]
    assert listed(staff, {"o": str(column)}) == ascending
    assert listed(staff, {"o": f"-{column}"}) == ascending[::-1]


def test_the_page_size_is_the_users_choice(staff: Client, live: Environment) -> None:
    for i in range(120):
        customer(live, f"c{i:03d}")
    assert len(listed(staff)) == 50
    for size in [10, 25, 50, 100]:
        response = staff.get(LIST, {"per_page": str(size)})
        assert len(response.context["cl"].result_list) == size
        assert f'<option value="{size}" selected>' in response.content.decode()
        # the pages links keep the size
        assert f"per_page={size}" in response.context["cl"].get_query_string({"p": 2})
    assert len(listed(staff, {"per_page": "7"})) == 50
    assert response.context["cl"].has_active_filters is False


def test_every_page_holds_the_right_rows_and_the_last_pages_read_from_the_end(
    staff: Client, live: Environment
) -> None:
    # Given 237 customers, several created at the same instant (the order must still be total)
    for i in range(237):
        customer(live, f"c{i:03d}", name=f"N{i % 7}", created=dt.datetime(2024, 1, 1 + i // 10, tzinfo=UTC))
    for sort in ["", "2", "-2"]:
        everything = listed(staff, {"per_page": "100", "o": sort} if sort else {"per_page": "100"})
        everything += listed(
            staff, {"per_page": "100", "o": sort, "p": "2"} if sort else {"per_page": "100", "p": "2"}
        )
        everything += listed(
            staff, {"per_page": "100", "o": sort, "p": "3"} if sort else {"per_page": "100", "p": "3"}
        )
        assert len(everything) == len(set(everything)) == 237
        # When the list is read 25 a page
        paged: list[str] = []
        for page in range(1, 11):
            query = {"per_page": "25", "p": str(page), **({"o": sort} if sort else {})}
            with CaptureQueriesContext(connection) as queries:
                paged += listed(staff, query)
            if page == 10:
                # Then the last page asks the database for the first rows of the reversed order
                select = next(q["sql"] for q in queries.captured_queries if "LIMIT 12" in q["sql"])
                assert re.search(r"OFFSET 0\b", select) or "OFFSET" not in select, select
        # Then every row appears once, in the same order as on big pages
        assert paged == everything


# --- add, view, edit, delete -----------------------------------------------------------------------------


def test_a_customer_is_added_by_hand(staff: Client, live: Environment) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    response = staff.post(
        f"{LIST}add/",
        form_data(
            phone="(201) 555-0123",
            birth_date="1990-05-17",
            group=str(vip.pk),
            tax_exempt="on",
            accepts_marketing="on",
            attributes='{"tier": "gold"}',
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    ada = CustomerProfile.objects.get(email="ada@example.com")
    assert ada.environment == live and ada.integration_id.startswith("manual-")
    assert ada.phone == "+12015550123" and ada.birth_md == 517
    assert ada.group == vip and ada.tax_exempt and ada.accepts_marketing
    assert ada.attributes == {"tier": "gold"}
    assert LogEntry.objects.filter(object_id=str(ada.pk)).exists()


def test_add_from_the_sandbox_list_adds_to_the_sandbox(staff: Client) -> None:
    response = staff.get(f"{LIST}add/", {"_changelist_filters": "environment=sandbox"})
    assert response.context["adminform"].form.initial["environment"] == "sandbox"
    assert staff.get(f"{LIST}add/").context["adminform"].form.initial["environment"] == "live"


def test_form_errors_are_shown_on_their_fields(
    staff: Client, live: Environment, sandbox: Environment
) -> None:
    customer(live, "taken", email="Ada@Example.com")
    elsewhere = CustomerGroup.objects.create(environment=sandbox, name="Sandbox VIP")
    response = staff.post(
        f"{LIST}add/",
        form_data(
            integration_id="taken",
            email="ADA@example.COM",
            phone="12",
            birth_date="2999-01-01",
            group=str(elsewhere.pk),
            attributes='["not", "an", "object"]',
        ),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["integration_id"] == ["Integration ID taken is already used by another customer"]
    assert errors["email"] == ["Email ADA@example.COM is already used by customer taken"]
    assert "is not a" in errors["phone"][0]
    assert errors["birth_date"] == ["A birthday cannot be in the future"]
    # a live customer is offered live groups only
    assert "Select a valid choice" in errors["group"][0]
    assert errors["attributes"] == ['Custom attributes must be a JSON object such as {"tier": "gold"}']
    assert "__all__" not in errors
    assert CustomerProfile.objects.count() == 1


def test_the_same_email_is_fine_in_the_other_environment(staff: Client, live: Environment) -> None:
    customer(live, "ada", email="ada@example.com")
    add_to_sandbox = f"{LIST}add/?_changelist_filters=environment%3Dsandbox"
    response = staff.post(add_to_sandbox, form_data(environment="sandbox", integration_id="ada"))
    assert response.status_code == 302
    assert CustomerProfile.objects.filter(integration_id="ada").count() == 2


def test_the_customer_page_shows_details_groups_and_orders(
    staff: Client, live: Environment, live_app: Application
) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    CustomerGroup.objects.create(environment=environment_get(Environment.SANDBOX), name="Sandbox only")
    ada = customer(live, "ada", name="Ada Lovelace", group=vip)
    order(live_app, "order-1", "ada")
    session_update(application=live_app, integration_id="cart-open", data=SessionInput(profile_id="ada"))
    response = staff.get(f"{LIST}{ada.pk}/change/")
    html = response.content.decode()
    assert "Ada Lovelace" in html and "VIP" in html
    assert "Sandbox only" not in html  # only groups of the customer's environment are offered
    assert "order-1" in html and "2 x Mug" in html and re.search(r">\s*19\.00\s*<", html)
    (orders,) = [
        f for f in response.context["inline_admin_formsets"] if f.opts.verbose_name_plural == "orders"
    ]
    assert [form.instance.integration_id for form in orders.formset] == ["order-1"]  # an open cart is not one
    assert re.search(r"Orders\s*</", html)


def test_editing_a_customer_normalizes_and_keeps_the_environment(
    staff: Client, live: Environment, sandbox: Environment
) -> None:
    ada = customer(live, "ada", name="Ada", email="ada@example.com", closed_sessions=4)
    customer(live, "grace", email="grace@example.com")
    url = f"{LIST}{ada.pk}/change/"
    clash = staff.post(url, form_data(email="GRACE@example.com"))
    assert clash.context["adminform"].form.errors["email"] == [
        "Email GRACE@example.com is already used by customer grace"
    ]
    response = staff.post(
        url,
        form_data(environment="sandbox", name="Ada King", phone="+48 601 234 567", birth_date="1815-12-10"),
    )
    assert response.status_code == 302
    ada.refresh_from_db()
    assert (ada.name, ada.phone, ada.birth_md) == ("Ada King", "+48601234567", 1210)
    assert ada.environment == live and ada.closed_sessions == 4


def test_deleting_a_customer_keeps_the_orders_anonymized(
    staff: Client, live: Environment, live_app: Application
) -> None:
    ada = customer(live, "ada", name="Ada")
    order(live_app, "order-1", "ada")
    confirm = staff.get(f"{LIST}{ada.pk}/delete/")
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Their orders stay on the orders list, anonymized." in html
    assert "/admin/jsi18n/" in html  # the page's scripts call gettext
    response = staff.post(f"{LIST}{ada.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not CustomerProfile.objects.filter(pk=ada.pk).exists()
    kept = CustomerSession.objects.get(integration_id="order-1")
    assert kept.profile is None and kept.profile_integration_id == "" and kept.anonymized
    assert kept.items.count() == 1
    assert LogEntry.objects.filter(action_flag=DELETION, object_id=str(ada.pk)).count() == 1


# --- bulk actions ------------------------------------------------------------------------------------------


def action(staff: Client, name: str, query: str, selected: list[CustomerProfile], **extra: Any) -> Any:
    data = {"action": name, "index": "0", "_selected_action": [str(p.pk) for p in selected], **extra}
    return staff.post(f"{LIST}{query}", data)


def test_bulk_delete_asks_first_stating_the_count(
    staff: Client, live: Environment, live_app: Application
) -> None:
    doomed = [customer(live, f"d{i}", name=f"Doomed {i}") for i in range(3)]
    keeper = customer(live, "keeper")
    order(live_app, "order-d0", "d0")
    # When staff select three and run the action
    page = action(staff, "delete_customers", "", doomed)
    # Then a page asks to confirm, stating the count, and nothing is gone yet
    assert page.status_code == 200
    assert "Delete 3 customers?" in page.content.decode()
    assert CustomerProfile.objects.count() == 4
    # When they confirm
    done = action(staff, "delete_customers", "", doomed, confirmed="yes")
    assert done.status_code == 302
    assert list(CustomerProfile.objects.all()) == [keeper]
    assert CustomerSession.objects.get(integration_id="order-d0").anonymized
    summary = LogEntry.objects.get(action_flag=DELETION)
    assert summary.change_message == "Deleted 3 customers"


def test_bulk_delete_of_all_filtered_customers(
    staff: Client, live: Environment, sandbox: Environment
) -> None:
    for i in range(30):
        customer(live, f"m{i}", accepts_marketing=i % 3 == 0)
    customer(sandbox, "sandbox-m", accepts_marketing=True)
    query = "?accepts_marketing=yes&per_page=10"
    first_page = list(CustomerProfile.objects.filter(environment=live, accepts_marketing=True)[:3])
    page = action(staff, "delete_customers", query, first_page, select_across="1")
    assert "Delete 10 customers?" in page.content.decode()
    action(staff, "delete_customers", query, first_page, select_across="1", confirmed="yes")
    assert CustomerProfile.objects.filter(environment=live).count() == 20
    assert not CustomerProfile.objects.filter(environment=live, accepts_marketing=True).exists()
    assert CustomerProfile.objects.filter(integration_id="sandbox-m").exists()


def test_bulk_delete_goes_in_batches(
    staff: Client, live: Environment, monkeypatch: pytest.MonkeyPatch, live_app: Application
) -> None:
    from patronage.customers import services

    monkeypatch.setattr(services, "DELETE_BATCH", 4)
    everyone = [customer(live, f"b{i:02d}") for i in range(11)]
    for i in range(0, 11, 3):
        order(live_app, f"o{i}", f"b{i:02d}")
    assert (
        services.profiles_delete(queryset=CustomerProfile.objects.filter(pk__in=[p.pk for p in everyone]))
        == 11
    )
    assert not CustomerProfile.objects.exists()
    assert CustomerSession.objects.filter(anonymized=True, profile=None).count() == 4


def test_bulk_assign_group_to_the_selection(staff: Client, live: Environment) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    chosen = [customer(live, "a"), customer(live, "b")]
    other = customer(live, "c")
    page = action(staff, "assign_group", "", chosen)
    html = page.content.decode()
    assert "Put 2 customers in a group" in html and ">VIP<" in html
    action(staff, "assign_group", "", chosen, apply="yes", group=str(vip.pk))
    assert set(vip.customers.values_list("integration_id", flat=True)) == {"a", "b"}
    other.refresh_from_db()
    assert other.group is None
    # and out again: only with the second, explicit confirmation
    page = action(staff, "assign_group", "", chosen, apply="yes", group="none")
    assert "Tick this box to confirm: 2 customers will leave their group." in page.content.decode()
    assert vip.customers.count() == 2
    page = action(staff, "assign_group", "", chosen, apply="yes", group="none", confirm_remove="on")
    assert not vip.customers.exists()
    # and nothing chosen is no change at all
    action(staff, "assign_group", "", chosen, apply="yes", group=str(vip.pk))
    page = action(staff, "assign_group", "", chosen, apply="yes", group="")
    assert "Pick a group, or choose to remove them from their group." in page.content.decode()
    assert vip.customers.count() == 2


def test_bulk_group_page_preselects_nothing_and_says_where_the_customers_are_now(
    staff: Client, live: Environment
) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    wholesale = CustomerGroup.objects.create(environment=live, name="Wholesale")
    chosen = [customer(live, f"v{i}", group=vip) for i in range(3)]
    chosen += [customer(live, "w0", group=wholesale), customer(live, "n0"), customer(live, "n1")]
    page = action(staff, "assign_group", "", chosen)
    form = page.context["form"]
    assert form["group"].value() is None
    html = page.content.decode()
    assert re.search(r"In a group now:</span>\s*VIP: 3, Wholesale: 1, no group: 2", html)
    assert "Remove them from their group (no group)" in html
    assert "Yes, take these 6 customers out of their group" in html


def test_bulk_assign_group_to_all_filtered_customers(
    staff: Client, live: Environment, sandbox: Environment
) -> None:
    wholesale = CustomerGroup.objects.create(environment=live, name="Wholesale")
    for i in range(25):
        customer(live, f"t{i}", tax_exempt=i < 12)
    customer(sandbox, "sandbox-t", tax_exempt=True)
    some = list(CustomerProfile.objects.filter(environment=live, tax_exempt=True)[:2])
    with CaptureQueriesContext(connection) as queries:
        action(
            staff,
            "assign_group",
            "?tax_exempt=yes&per_page=10",
            some,
            select_across="1",
            apply="yes",
            group=str(wholesale.pk),
        )
    assert wholesale.customers.count() == 12
    assert not wholesale.customers.filter(tax_exempt=False).exists()
    assert len([q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]) == 1


def test_a_group_of_the_other_environment_cannot_be_picked(
    staff: Client, live: Environment, sandbox: Environment
) -> None:
    elsewhere = CustomerGroup.objects.create(environment=sandbox, name="Sandbox VIP")
    ada = customer(live, "ada")
    page = action(staff, "assign_group", "", [ada], apply="yes", group=str(elsewhere.pk))
    assert page.status_code == 200 and "Select a valid choice" in page.content.decode()
    ada.refresh_from_db()
    assert ada.group is None


def test_django_default_delete_action_is_not_offered(staff: Client, live: Environment) -> None:
    customer(live, "ada")
    choices = dict(staff.get(LIST).context["action_form"].fields["action"].choices)
    assert "delete_selected" not in choices
    assert choices["delete_customers"] == "Delete selected customers"


# --- groups ------------------------------------------------------------------------------------------------

GROUPS = "/admin/customers/customergroup/"


def test_groups_are_created_renamed_and_unique_per_environment_whatever_the_case(
    staff: Client, live: Environment
) -> None:
    assert staff.post(f"{GROUPS}add/", {"environment": "live", "name": "  VIP "}).status_code == 302
    vip = CustomerGroup.objects.get(environment=live)
    assert vip.name == "VIP"
    clash = staff.post(f"{GROUPS}add/", {"environment": "live", "name": "vip"})
    assert clash.context["adminform"].form.errors["name"] == ["There is already a group named 'vip' in Live"]
    assert staff.post(f"{GROUPS}add/", {"environment": "sandbox", "name": "vip"}).status_code == 302
    assert staff.post(f"{GROUPS}{vip.pk}/change/", {"name": "Very important"}).status_code == 302
    vip.refresh_from_db()
    assert vip.name == "Very important" and vip.environment == live


def test_deleting_a_group_keeps_its_customers(staff: Client, live: Environment) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    ada = customer(live, "ada", group=vip)
    listing = staff.get(GROUPS).content.decode()
    assert f"?environment=live&amp;group={vip.pk}" in listing
    response = staff.post(f"{GROUPS}{vip.pk}/delete/", {"post": "yes"}, follow=True)
    assert "stay, in no group" in response.content.decode()
    ada.refresh_from_db()
    assert ada.group is None
    assert not CustomerGroup.objects.exists()


# --- export ------------------------------------------------------------------------------------------------


def exported(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_export_downloads_exactly_what_the_search_and_filters_show(
    staff: Client, live: Environment, sandbox: Environment
) -> None:
    customer(live, "ann-1", name="Ann One", accepts_marketing=True)
    customer(live, "ann-2", name="Ann Two")
    customer(live, "bob-1", name="Bob", accepts_marketing=True)
    customer(sandbox, "ann-sandbox", name="Ann Sandbox", accepts_marketing=True)
    listing = staff.get(LIST, {"q": "ann", "accepts_marketing": "yes", "per_page": "10"})
    export_url = listing.context["cl"].export_url()
    assert export_url.startswith(f"{LIST}export/?")
    response = staff.get(export_url)
    assert re.fullmatch(
        r'attachment; filename="customers-live-\d{8}-\d{4}\.csv"', response["Content-Disposition"]
    )
    assert [row["integration_id"] for row in exported(response)] == ["ann-1"]
    # and the whole list of the environment
    everything = staff.get(listing.context["cl"].export_all_url())
    assert sorted(row["integration_id"] for row in exported(everything)) == ["ann-1", "ann-2", "bob-1"]
    sandbox_rows = exported(staff.get(f"{LIST}export/", {"environment": "sandbox"}))
    assert [row["integration_id"] for row in sandbox_rows] == ["ann-sandbox"]


def test_export_needs_the_view_permission(client: Client, live: Environment) -> None:
    customer(live, "ann-1")
    clerk = get_user_model().objects.create_user("clerk", "clerk@example.com", "pw-123456", is_staff=True)
    client.force_login(clerk)
    assert client.get(f"{LIST}export/").status_code == 403


# --- chips, filter problems, display ----------------------------------------------------------------------


def test_the_search_and_each_filter_are_chips_that_remove_just_themselves(
    staff: Client, live: Environment
) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    customer(live, "ada", name="Ada", tax_exempt=True, closed_sessions=3, group=vip)
    query = {"q": "ada", "tax_exempt": "yes", "orders_min": "2", "group": str(vip.pk), "per_page": "10"}
    response = staff.get(LIST, query)
    chips = {chip["text"]: chip["remove"] for chip in response.context["cl"].chips()}
    assert list(chips) == ["Search: ada", "Group: VIP", "Tax exempt: yes", "Orders: at least 2"]
    for text, removed in [
        ("Search: ada", "q"),
        ("Tax exempt: yes", "tax_exempt"),
        ("Orders: at least 2", "orders_min"),
    ]:
        kept = dict(pair.split("=") for pair in chips[text].lstrip("?").split("&"))
        assert removed not in kept and kept["per_page"] == "10" and len(kept) == 4, kept
    html = response.content.decode()
    assert 'id="clear-all-filters"' in html
    clear = response.context["cl"].clear_all_url()
    assert clear == "?per_page=10"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            {"orders_min": "5", "orders_max": "2"},
            "orders_min",
            "the minimum (5) is more than the maximum (2)",
        ),
        (
            {"birthday_window_from": "02-30", "birthday_window_to": "03-01"},
            "birthday_window_from",
            "'02-30' is not a day of the year",
        ),
        ({"birthday_window_from": "02-01"}, "birthday_window_from", "a birthday window needs both"),
        (
            {"created_from": "2026-05-03", "created_to": "2026-05-01"},
            "created_from",
            "the first day (2026-05-03) is after the last (2026-05-01)",
        ),
    ],
)
def test_a_wrong_filter_says_so_on_its_field_in_the_users_words(
    staff: Client, live: Environment, query: dict[str, str], field: str, message: str
) -> None:
    customer(live, "ada", closed_sessions=3)
    response = staff.get(LIST, query)
    assert list(response.context["cl"].result_list) == []
    [spec] = [s for s in response.context["cl"].filter_specs if field in s.expected_parameters()]
    form = next(iter(spec.choices(response.context["cl"])))["form"]
    assert message.lower() in form.errors[field][0].lower()
    [chip] = response.context["cl"].chips()
    assert chip["problem"] and message.lower() in chip["text"].lower()
    html = response.content.decode()
    assert message.replace("'", "&#x27;") in html
    # never the URL's words in what people read
    for text in [chip["text"], *form.errors[field]]:
        assert "_from" not in text and "_min" not in text and "_window" not in text


def test_total_sales_show_with_the_shops_currency_and_phones_formatted(
    staff: Client, live: Environment
) -> None:
    Application.objects.create(name="Shop", slug="shop-eu", environment=live, currency="EUR")
    ada = customer(live, "ada", phone="+48601234567", total_sales=Decimal("154.5500"), closed_sessions=2)
    html = staff.get(LIST).content.decode()
    assert "EUR 154.55" in html and "154.5500" not in html
    assert "+48 601 234 567" in html
    assert "white-space: nowrap" in html
    view = staff.get(f"{LIST}{ada.pk}/change/").content.decode()
    assert "EUR 154.55" in view
    assert re.search(r'name="phone" value="\+48 601 234 567"', view)
    # saved as it is shown: stored E.164 again, nothing reported changed
    staff.post(f"{LIST}{ada.pk}/change/", form_data(email="", phone="+48 601 234 567"))
    ada.refresh_from_db()
    assert ada.phone == "+48601234567"
    # shops of two currencies: the plain sum, saying so
    Application.objects.create(name="US shop", slug="shop-us", environment=live, currency="USD")
    assert "154.55 (EUR + USD shops)" in staff.get(LIST).content.decode()


def test_the_add_form_takes_the_lists_environment_and_offers_its_groups_only(
    staff: Client, live: Environment, sandbox: Environment
) -> None:
    CustomerGroup.objects.create(environment=live, name="Live VIP")
    CustomerGroup.objects.create(environment=sandbox, name="Sandbox VIP")
    form = staff.get(f"{LIST}add/").context["adminform"].form
    assert [g.name for g in form.fields["group"].queryset] == ["Live VIP"]
    assert form.fields["environment"].disabled
    form = staff.get(f"{LIST}add/", {"_changelist_filters": "environment=sandbox"}).context["adminform"].form
    assert [g.name for g in form.fields["group"].queryset] == ["Sandbox VIP"]
    # a posted environment cannot override the list's
    staff.post(f"{LIST}add/", form_data(environment="sandbox", email="x@example.com"))
    assert CustomerProfile.objects.get(email="x@example.com").environment == live


def test_custom_attributes_start_empty_and_keep_their_types(staff: Client, live: Environment) -> None:
    html = staff.get(f"{LIST}add/").content.decode()
    assert re.search(r"<textarea[^>]*name=\"attributes\"[^>]*>\{\}</textarea>", html)
    assert "customers/attributes.js" in html
    attributes = (
        '{"big": 12345678901234567890, "f": -1.5, "b": false, '
        '"d": "2026-05-17", "s": "42", "l": [1, {"a": null}]}'
    )
    response = staff.post(f"{LIST}add/", form_data(attributes=attributes))
    assert response.status_code == 302
    saved = CustomerProfile.objects.get(email="ada@example.com")
    assert saved.attributes == {
        "big": 12345678901234567890,
        "f": -1.5,
        "b": False,
        "d": "2026-05-17",
        "s": "42",
        "l": [1, {"a": None}],
    }
