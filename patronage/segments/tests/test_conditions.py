"""Segment conditions at the edges a user notices: birthdays over New Year, customers without the value,
"no orders" as zero, a group deleted after the segment was saved, and what the checker says is wrong."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from patronage.core import clock
from patronage.core.errors import UnprocessableInput
from patronage.customer_sessions.models import CustomerSession, SessionState
from patronage.customers.models import CustomerProfile
from patronage.customers.services import ProfileInput, group_create, group_delete, profile_create
from patronage.offers.services import offer_delete
from patronage.segments.compiler import members_of_rules
from patronage.segments.selectors import segment_members
from patronage.segments.services import segment_create
from patronage.testing.offers import make_offer
from patronage.workspace.models import Application, Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 12, 28, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with clock.frozen_at(NOW):
        yield


@pytest.fixture
def live() -> Environment:
    return environment_get(Environment.LIVE)


def customer(environment: Environment, name: str, **fields: Any) -> CustomerProfile:
    return profile_create(
        environment=environment, data=ProfileInput(name=name, **fields), integration_id=name.lower()
    )


def order(
    application: Application,
    profile: CustomerProfile,
    closed_at: dt.datetime,
    state: str = SessionState.CLOSED,
) -> None:
    """A session of the customer's closed at ``closed_at``; its profile's counters kept as the services do."""
    total = Decimal("10.00")
    CustomerSession.objects.create(
        application=application,
        integration_id=f"{profile.integration_id}-{closed_at:%Y%m%d%H%M%S}-{state}",
        profile=profile,
        state=state,
        total=total,
        closed_at=closed_at,
    )
    if state in (SessionState.CLOSED, SessionState.PARTIALLY_RETURNED):
        profile.closed_sessions += 1
        profile.total_sales += total
        profile.save(update_fields=["closed_sessions", "total_sales"])


def condition(field: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"type": "condition", "field": field, "operator": operator, "value": value, **extra}


def rules(*children: dict[str, Any], match: str = "all") -> dict[str, Any]:
    return {"type": "group", "match": match, "negate": False, "children": list(children)}


def names(environment: Environment, tree: dict[str, Any]) -> set[str]:
    return set(members_of_rules(environment, tree).values_list("name", flat=True))


# --- birthdays ----------------------------------------------------------------------------------------------


def test_a_birthday_window_wraps_over_new_year(live: Environment) -> None:
    # Given customers born on either side of New Year, in the middle of the year, and one with no birthday
    customer(live, "Christmas", birth_date=dt.date(1990, 12, 25))
    customer(live, "January", birth_date=dt.date(1985, 1, 5))
    customer(live, "June", birth_date=dt.date(2000, 6, 1))
    customer(live, "Unknown")

    # When the segment asks for birthdays from Dec 20 to Jan 10, whatever the year
    window = condition("profile.birth_date", "anniversary_between", ["12-20", "01-10"])

    # Then both sides of New Year are in, and only they
    assert names(live, rules(window)) == {"Christmas", "January"}
    # And the opposite is everyone else, those without a birthday included
    assert names(live, rules({**window, "negate": True})) == {"June", "Unknown"}


def test_birthday_within_7_days_on_december_28_reaches_into_january(live: Environment) -> None:
    # Given it is Dec 28 and customers' birthdays fall around the coming New Year
    for name, born in [
        ("Yesterday", dt.date(1990, 12, 27)),
        ("Today", dt.date(1991, 12, 28)),
        ("New Year's Eve", dt.date(1992, 12, 31)),
        ("January 4", dt.date(1993, 1, 4)),
        ("January 5", dt.date(1994, 1, 5)),
    ]:
        customer(live, name, birth_date=born)

    # When the segment asks for birthdays within 7 days from today
    within = names(live, rules(condition("profile.birth_date", "anniversary_within_days", 7)))

    # Then today up to and including Jan 4 (Dec 28 + 7 days) are in
    assert within == {"Today", "New Year's Eve", "January 4"}


def test_birthday_within_a_year_is_everyone_with_a_birthday(live: Environment) -> None:
    customer(live, "Yesterday", birth_date=dt.date(1990, 12, 27))
    customer(live, "Leap day", birth_date=dt.date(2000, 2, 29))
    customer(live, "Unknown")

    for days in (365, 366):
        within = condition("profile.birth_date", "anniversary_within_days", days)
        assert names(live, rules(within)) == {"Yesterday", "Leap day"}


# --- customers without the value ----------------------------------------------------------------------------


def test_a_negated_condition_holds_for_customers_without_the_value(live: Environment) -> None:
    # Given a customer at example.com with a gold tier, one without an email or attributes, and one whose
    # tier is a number
    customer(live, "Gold", email="gold@example.com", attributes={"tier": "Gold"})
    customer(live, "Nothing")
    customer(live, "Numbered", email="n@other.org", attributes={"tier": 5})

    # When the segment negates "email domain is example.com" and "tier is gold"
    not_example = condition("profile.email", "domain", "@example.com", negate=True)
    not_gold = condition("attribute.text", "is", "gold", params={"name": "tier"}, negate=True)

    # Then customers lacking the email or the attribute (or holding another type) are in
    assert names(live, rules(not_example)) == {"Nothing", "Numbered"}
    assert names(live, rules(not_gold)) == {"Nothing", "Numbered"}
    # And "tier is set" is about a non-empty text tier only
    tier_set = condition("attribute.text", "is_set", params={"name": "tier"})
    assert names(live, rules(tier_set)) == {"Gold"}
    assert names(live, rules({**tier_set, "negate": True})) == {"Nothing", "Numbered"}


def test_a_number_attribute_compares_exactly_and_only_numbers(live: Environment) -> None:
    # 2**53 + 1 has no double of its own: compared exactly, it is not 2**53, on both databases
    customer(live, "Big", attributes={"spend": 2**53 + 1})
    customer(live, "Text", attributes={"spend": "9007199254740993"})
    customer(live, "Flag", attributes={"spend": True})
    customer(live, "Tenth", attributes={"spend": 0.1})

    spend = {"name": "spend"}
    assert names(live, rules(condition("attribute.number", "eq", 2**53 + 1, params=spend))) == {"Big"}
    assert names(live, rules(condition("attribute.number", "eq", 2**53, params=spend))) == set()
    assert names(live, rules(condition("attribute.number", "eq", 0.1, params=spend))) == {"Tenth"}
    assert names(live, rules(condition("attribute.number", "is_set", params=spend))) == {"Big", "Tenth"}


def test_a_number_beyond_any_double_compares_instead_of_failing(live: Environment) -> None:
    # A shop may send 10**400: no double holds it, so a cast to one would fail every segment
    customer(live, "Huge", attributes={"spend": 10**400})
    customer(live, "Small", attributes={"spend": 5})
    spend = {"name": "spend"}
    assert names(live, rules(condition("attribute.number", "gte", 10, params=spend))) == {"Huge"}
    negated = condition("attribute.number", "gte", 10, params=spend, negate=True)
    assert names(live, rules(negated)) == {"Small"}


# --- orders -------------------------------------------------------------------------------------------------


def test_no_orders_counts_as_zero(live: Environment, live_app: Application) -> None:
    # Given a customer who never ordered, one whose only session was cancelled, one who ordered long ago
    # and one who ordered yesterday
    customer(live, "Never")
    cancelled = customer(live, "Cancelled")
    order(live_app, cancelled, NOW - dt.timedelta(days=1), state=SessionState.CANCELLED)
    old = customer(live, "Long ago")
    order(live_app, old, NOW - dt.timedelta(days=90))
    recent = customer(live, "Yesterday")
    order(live_app, recent, NOW - dt.timedelta(days=1))

    # Then "number of orders = 0" is those without an order
    assert names(live, rules(condition("orders.count", "eq", 0))) == {"Never", "Cancelled"}
    # And "= 0 in the last 30 days" also counts the customer whose orders are all older
    last_30 = condition("orders.count", "eq", 0, params={"last_days": 30})
    assert names(live, rules(last_30)) == {"Never", "Cancelled", "Long ago"}
    # And "fewer than 1 order" means the same
    assert names(live, rules(condition("orders.count", "lt", 1, params={"last_days": 30}))) == names(
        live, rules(last_30)
    )
    # And someone who never ordered has no last order, before or after any day
    for operator in ("before", "after"):
        assert "Never" not in names(live, rules(condition("orders.last_order", operator, "2025-12-01")))


def test_in_the_last_n_days_starts_exactly_n_days_ago(live: Environment, live_app: Application) -> None:
    on_the_dot = customer(live, "On the dot")
    order(live_app, on_the_dot, NOW - dt.timedelta(days=7))
    a_second_early = customer(live, "A second early")
    order(live_app, a_second_early, NOW - dt.timedelta(days=7, seconds=1))

    assert names(live, rules(condition("orders.last_order", "in_last_days", 7))) == {"On the dot"}
    assert names(live, rules(condition("orders.count", "gte", 1, params={"last_days": 7}))) == {"On the dot"}
    assert names(live, rules(condition("orders.last_order", "more_than_days_ago", 7))) == {"A second early"}


def test_until_the_last_day_of_the_calendar_is_until_forever(
    live: Environment, live_app: Application
) -> None:
    # 9999-12-31 has no day after it: "until" and "on" it must not fail, "after" it holds for nobody
    ordered = customer(live, "Ordered")
    order(live_app, ordered, NOW)
    customer(live, "Never")

    last_day = "9999-12-31"
    period = {"since": "2025-01-01", "until": last_day}
    assert names(live, rules(condition("orders.count", "gte", 1, params=period))) == {"Ordered"}
    assert names(live, rules(condition("orders.last_order", "between", ["2025-01-01", last_day]))) == {
        "Ordered"
    }
    assert names(live, rules(condition("profile.created", "on", last_day))) == set()
    assert names(live, rules(condition("orders.last_order", "after", last_day))) == set()
    assert names(live, rules(condition("profile.created", "after", last_day))) == set()


# --- rows deleted after the segment was saved ---------------------------------------------------------------


def test_a_group_deleted_after_saving_matches_nobody(live: Environment) -> None:
    # Given a segment of the VIP group, saved while the group existed
    vip = group_create(environment=live, name="VIP")
    customer(live, "Vera", group=vip)
    customer(live, "Otto")
    in_vip = condition("profile.group", "any_of", [vip.pk])
    segment = segment_create(environment=live, name="VIPs", rules=rules(in_vip))
    not_vip = segment_create(environment=live, name="Not VIPs", rules=rules({**in_vip, "negate": True}))
    assert set(segment_members(segment).values_list("name", flat=True)) == {"Vera"}

    # When the group is deleted
    group_delete(group=vip)

    # Then the saved segment still runs: nobody is in the group, everybody is outside it
    assert not segment_members(segment).exists()
    assert set(segment_members(not_vip).values_list("name", flat=True)) == {"Vera", "Otto"}
    # But the same rules typed anew are refused, naming the missing group
    with pytest.raises(UnprocessableInput) as refused:
        members_of_rules(live, rules(in_vip), pointer="/rules")
    assert [(p.pointer, p.details) for p in refused.value.details] == [
        ("/rules/children/0/value", f"no customer group with id {vip.pk} in live")
    ]


def test_an_offer_deleted_after_saving_matches_nobody(live: Environment, live_app: Application) -> None:
    offer = make_offer(environment=live, shops=[live_app], assigned_emails=["Ann@Example.com"])
    customer(live, "Ann", email="ann@example.COM")
    customer(live, "Bob", email="bob@example.com")
    assigned = condition("offers.assigned", "any_of", [offer.pk])
    segment = segment_create(environment=live, name="Offer holders", rules=rules(assigned))
    assert set(segment_members(segment).values_list("name", flat=True)) == {"Ann"}

    offer_delete(offer=offer)

    assert not segment_members(segment).exists()


# --- what the checker says ----------------------------------------------------------------------------------


def test_the_checker_names_every_mistake_and_where_it_is(live: Environment) -> None:
    # Given rules with an unknown field, an operator the field does not have and a value of the wrong type
    bad = rules(
        condition("profile.shoe_size", "eq", 42),
        condition("orders.count", "contains", "2"),
        rules(condition("orders.count", "gte", "two"), match="any"),
    )

    # When they are saved
    with pytest.raises(UnprocessableInput) as refused:
        segment_create(environment=live, name="Broken", rules=bad)

    # Then every problem is reported at once, each at its JSON pointer with what to do instead
    problems = [(p.pointer, p.details) for p in refused.value.details]
    assert problems == [
        ("/rules/children/0/field", "unknown field 'profile.shoe_size'"),
        (
            "/rules/children/1/operator",
            "operator 'contains' is not valid for Number of orders (count); "
            "use one of eq, ne, lt, lte, gt, gte, between",
        ),
        ("/rules/children/2/children/0/value", "must be a whole number from 0 to 1000000000, not 'two'"),
    ]
    assert refused.value.message == (
        "Invalid segment rules at /rules/children/0/field: unknown field 'profile.shoe_size' (and 2 more)"
    )


def test_the_checker_refuses_a_date_that_is_not_one_and_a_backwards_period(live: Environment) -> None:
    bad = rules(
        condition("profile.birth_date", "on", "2025-02-30"),
        condition("orders.count", "gte", 1, params={"since": "2025-03-01", "until": "2025-02-01"}),
        condition("attribute.text", "is", "gold"),
    )

    with pytest.raises(UnprocessableInput) as refused:
        members_of_rules(live, bad)

    assert [(p.pointer, p.details) for p in refused.value.details] == [
        ("/children/0/value", "must be a date such as 2026-05-17, not '2025-02-30'"),
        ("/children/1/params/until", "must not be before since"),
        ("/children/2/params/name", "Attribute is required"),
    ]
