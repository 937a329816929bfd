"""The search and filter words shared by the customer list, its export and the CLI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.db.models import QuerySet

from patronage.core.errors import ErrorCollector
from patronage.customers import selectors
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.customers.selectors import CustomerFilters, customers_filtered
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture
def live() -> Environment:
    return environment_get(Environment.LIVE)


def customer(environment: Environment, integration_id: str, **fields: Any) -> CustomerProfile:
    return CustomerProfile.objects.create(environment=environment, integration_id=integration_id, **fields)


def ids(queryset: QuerySet[CustomerProfile]) -> set[str]:
    return set(queryset.values_list("integration_id", flat=True))


def matching(environment: Environment, **params: str | list[str]) -> set[str]:
    errors = ErrorCollector()
    as_lists = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    filters = CustomerFilters.from_params(as_lists, errors=errors)
    assert not errors.problems, errors.problems
    return ids(customers_filtered(environment, filters))


def test_search_finds_name_email_and_integration_id_case_insensitively(live: Environment) -> None:
    customer(live, "ada-1", name="Ada Lovelace", email="ada@example.com")
    customer(live, "grace-2", name="Grace Hopper", email="grace@navy.example")
    assert matching(live, q="lovelace") == {"ada-1"}
    assert matching(live, q="GRACE@NAVY.example") == {"grace-2"}
    assert matching(live, q="ace-2") == {"grace-2"}
    assert matching(live, q="example") == {"ada-1", "grace-2"}
    assert matching(live, q="  ") == {"ada-1", "grace-2"}


def test_a_phone_number_typed_in_any_format_matches_the_stored_e164(live: Environment) -> None:
    customer(live, "ada", phone="+12015550123")
    customer(live, "bob", phone="+12015550199")
    for typed in ["(201) 555-0123", "201-555-0123", "+1 201 555 0123", "2015550123"]:
        assert matching(live, q=typed) == {"ada"}, typed
    # part of a number matches its digits anywhere
    assert matching(live, q="555-01") == {"ada", "bob"}


def test_customers_of_the_other_environment_are_never_listed() -> None:
    live, sandbox = environment_get(Environment.LIVE), environment_get(Environment.SANDBOX)
    customer(live, "same", name="Ada")
    customer(sandbox, "same", name="Ada")
    assert ids(customers_filtered(sandbox, CustomerFilters(q="ada"))) == {"same"}
    assert customers_filtered(sandbox, CustomerFilters()).get().environment == sandbox


def test_groups_several_and_none(live: Environment) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    wholesale = CustomerGroup.objects.create(environment=live, name="Wholesale")
    staff = CustomerGroup.objects.create(environment=live, name="Staff")
    customer(live, "v", group=vip)
    customer(live, "w", group=wholesale)
    customer(live, "s", group=staff)
    customer(live, "n")
    assert matching(live, group=[str(vip.pk), str(wholesale.pk)]) == {"v", "w"}
    assert matching(live, group=f"{vip.pk},{staff.pk}") == {"v", "s"}
    assert matching(live, no_group="yes") == {"n"}
    assert matching(live, group=str(vip.pk), no_group="yes") == {"v", "n"}
    assert ids(selectors.in_groups(CustomerProfile.objects.all(), [wholesale.pk])) == {"w"}
    assert list(selectors.groups_of(live)) == [staff, vip, wholesale]


def test_tax_exempt_and_marketing_consent_yes_and_no(live: Environment) -> None:
    customer(live, "both", tax_exempt=True, accepts_marketing=True)
    customer(live, "tax", tax_exempt=True)
    customer(live, "mail", accepts_marketing=True)
    customer(live, "none")
    assert matching(live, tax_exempt="yes") == {"both", "tax"}
    assert matching(live, tax_exempt="no") == {"mail", "none"}
    assert matching(live, accepts_marketing="yes") == {"both", "mail"}
    assert matching(live, accepts_marketing="no", tax_exempt="yes") == {"tax"}


def test_number_of_orders_between_a_minimum_and_a_maximum(live: Environment) -> None:
    for n in [0, 1, 3, 10]:
        customer(live, f"o{n}", closed_sessions=n)
    assert matching(live, orders_min="1") == {"o1", "o3", "o10"}
    assert matching(live, orders_max="3") == {"o0", "o1", "o3"}
    assert matching(live, orders_min="1", orders_max="3") == {"o1", "o3"}
    assert matching(live, orders_min="0", orders_max="0") == {"o0"}


def test_birthday_between_two_dates_includes_both_ends(live: Environment) -> None:
    customer(live, "a", birth_date=dt.date(1990, 1, 1))
    customer(live, "b", birth_date=dt.date(1990, 6, 30))
    customer(live, "c", birth_date=dt.date(1991, 1, 1))
    customer(live, "unknown")
    assert matching(live, birthday_from="1990-01-01", birthday_to="1990-06-30") == {"a", "b"}
    assert matching(live, birthday_from="1990-07-01") == {"c"}


def test_birthday_window_ignores_the_year_and_wraps_over_new_year(live: Environment) -> None:
    customer(live, "xmas", birth_date=dt.date(1980, 12, 24))
    customer(live, "newyear", birth_date=dt.date(2001, 1, 1))
    customer(live, "jan10", birth_date=dt.date(1995, 1, 10))
    customer(live, "jan11", birth_date=dt.date(1995, 1, 11))
    customer(live, "leap", birth_date=dt.date(2000, 2, 29))
    customer(live, "summer", birth_date=dt.date(1970, 7, 4))
    customer(live, "unknown")
    assert matching(live, birthday_window_from="12-20", birthday_window_to="01-10") == {
        "xmas",
        "newyear",
        "jan10",
    }
    assert matching(live, birthday_window_from="2-28", birthday_window_to="3-1") == {"leap"}
    assert matching(live, birthday_window_from="07-04", birthday_window_to="07-04") == {"summer"}


def test_a_birthday_window_needs_both_ends_and_real_days(live: Environment) -> None:
    errors = ErrorCollector()
    CustomerFilters.from_params({"birthday_window_from": ["12-20"]}, errors=errors)
    CustomerFilters.from_params(
        {"birthday_window_from": ["02-30"], "birthday_window_to": ["13-01"]}, errors=errors
    )
    assert [p.pointer for p in errors.problems] == [
        "birthday_window_from",
        "birthday_window_from",
        "birthday_window_to",
    ]


def test_created_and_last_activity_between_whole_days(live: Environment) -> None:
    customer(
        live,
        "old",
        created=dt.datetime(2025, 1, 31, 23, 59, tzinfo=UTC),
        last_activity=dt.datetime(2025, 3, 1, tzinfo=UTC),
    )
    customer(
        live,
        "new",
        created=dt.datetime(2025, 2, 1, 0, 0, tzinfo=UTC),
        last_activity=dt.datetime(2025, 3, 31, 23, 59, tzinfo=UTC),
    )
    assert matching(live, created_from="2025-02-01") == {"new"}
    assert matching(live, created_to="2025-01-31") == {"old"}
    assert matching(live, active_from="2025-03-31", active_to="2025-03-31") == {"new"}
    assert matching(live, active_to="2025-03-30") == {"old"}


@pytest.fixture
def redemptions() -> Iterator[dict[str, selectors.RedemptionSource]]:
    saved = dict(selectors.REDEMPTION_SOURCES)
    try:
        yield selectors.REDEMPTION_SOURCES
    finally:
        selectors.REDEMPTION_SOURCES.clear()
        selectors.REDEMPTION_SOURCES.update(saved)


def test_redemption_date_ors_every_registered_source(
    live: Environment, redemptions: dict[str, selectors.RedemptionSource]
) -> None:
    # Given two features recording redemptions (stand-ins: "redeemed" when last active in the window)
    a = customer(live, "a", last_activity=dt.datetime(2025, 5, 10, tzinfo=UTC))
    b = customer(live, "b", last_activity=dt.datetime(2025, 5, 20, tzinfo=UTC))
    customer(live, "never")

    def offers(lower: dt.datetime | None, upper: dt.datetime | None) -> QuerySet[Any]:
        assert lower == dt.datetime(2025, 5, 1, tzinfo=UTC) and upper == dt.datetime(2025, 6, 1, tzinfo=UTC)
        return CustomerProfile.objects.filter(pk=a.pk)

    def promo_codes(lower: dt.datetime | None, upper: dt.datetime | None) -> QuerySet[Any]:
        return CustomerProfile.objects.filter(pk=b.pk)

    # When nothing is registered nobody redeemed anything
    assert matching(live, redeemed_from="2025-05-01", redeemed_to="2025-05-31") == set()
    redemptions["offers"] = offers
    assert matching(live, redeemed_from="2025-05-01", redeemed_to="2025-05-31") == {"a"}
    redemptions["promo_codes"] = promo_codes
    assert matching(live, redeemed_from="2025-05-01", redeemed_to="2025-05-31") == {"a", "b"}


def test_filters_combine_and_an_empty_value_is_no_filter(live: Environment) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    customer(live, "match", name="Ann", group=vip, accepts_marketing=True, closed_sessions=4)
    customer(live, "no-consent", name="Ann", group=vip, closed_sessions=4)
    customer(live, "few-orders", name="Ann", group=vip, accepts_marketing=True, closed_sessions=1)
    customer(live, "other-name", name="Bob", group=vip, accepts_marketing=True, closed_sessions=4)
    combined = {"q": "ann", "group": str(vip.pk), "accepts_marketing": "yes", "orders_min": "2"}
    assert matching(live, **combined) == {"match"}
    assert matching(live, **combined, tax_exempt="", birthday_from="") == {"match"}


def test_bad_values_are_reported_with_their_parameter(live: Environment) -> None:
    errors = ErrorCollector()
    CustomerFilters.from_params(
        {"tax_exempt": ["maybe"], "orders_min": ["-1"], "created_from": ["31/12/2025"]}, errors=errors
    )
    assert {p.pointer for p in errors.problems} == {"tax_exempt", "orders_min", "created_from"}


def test_a_range_up_to_the_calendars_last_day_has_no_upper_bound() -> None:
    lower, upper = selectors.day_bounds(dt.date(2026, 1, 1), dt.date.max)
    assert lower is not None and lower.date() == dt.date(2026, 1, 1)
    assert upper is None
