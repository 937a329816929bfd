"""The profile's own fields: name, email, phone, birthday, dates, flags and group."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from patronage.customers.models import CustomerGroup, birth_md_of
from patronage.customers.selectors import birthday_window_q

from .. import registry
from ..fields import Column, boolean_q, date_q, instant_q, text_q
from ..registry import Clause, Condition, Context, Reference

PROFILE = "Profile"
# A window this long holds every day of the year.
WHOLE_YEAR = 365


def anniversary_q(clause: Clause, ctx: Context) -> Q:
    """Birthdays in a month-day window, whatever the year of birth (Feb 29 counts when the window
    spans Feb 28 - Mar 1, leap year or not)."""
    if clause.operator == "anniversary_between":
        start, end = clause.value
        return birthday_window_q(start, end)
    days = clause.value
    if days >= WHOLE_YEAR:
        return Q(birth_md__isnull=False)
    start, end = birth_md_of(ctx.today), birth_md_of(ctx.today + dt.timedelta(days=days))
    assert start is not None and end is not None
    return birthday_window_q(start, end)


def birthday(clause: Clause, ctx: Context) -> Q:
    if clause.operator.startswith("anniversary_"):
        return anniversary_q(clause, ctx)
    return date_q(Column("birth_date"), clause.operator, clause.value)


def text(column: str) -> registry.Build:
    return lambda clause, ctx: text_q(Column(column), clause.operator, clause.value)


def instant(column: str) -> registry.Build:
    return lambda clause, ctx: instant_q(Column(column), clause.operator, clause.value, ctx)


def flag(column: str) -> registry.Build:
    return lambda clause, ctx: boolean_q(Column(column), clause.operator, clause.value)


def group(clause: Clause, ctx: Context) -> Q:
    if clause.operator == "is_set":
        return Q(group__isnull=False)
    return Q(group_id__in=clause.value)


DATES = ("on", "before", "after", "between", "in_last_days", "more_than_days_ago")


def register() -> None:
    registry.register_reference(
        Reference(
            "customer_groups",
            "customer group",
            lambda environment: CustomerGroup.objects.filter(environment=environment).order_by("name"),
        )
    )
    registry.register(
        Condition("profile.name", "Name", PROFILE, "text", text("name")),
        Condition("profile.email", "Email", PROFILE, "email", text("email")),
        Condition(
            "profile.phone",
            "Phone number",
            PROFILE,
            "text",
            text("phone"),
            operators=("is_set", "starts_with", "contains"),
            help="Stored as E.164 (+14155550123): 'starts with +44' finds a country",
        ),
        Condition(
            "profile.integration_id",
            "Integration ID",
            PROFILE,
            "text",
            text("integration_id"),
            operators=("is", "contains", "starts_with", "ends_with"),
        ),
        Condition("profile.birth_date", "Birthday", PROFILE, "date", birthday),
        Condition("profile.created", "Created", PROFILE, "instant", instant("created"), operators=DATES),
        Condition(
            "profile.last_activity",
            "Last activity",
            PROFILE,
            "instant",
            instant("last_activity"),
            operators=DATES,
        ),
        Condition("profile.tax_exempt", "Tax exempt", PROFILE, "boolean", flag("tax_exempt"), ("is",)),
        Condition(
            "profile.accepts_marketing",
            "Marketing consent",
            PROFILE,
            "boolean",
            flag("accepts_marketing"),
            ("is",),
        ),
        Condition(
            "profile.group",
            "Customer group",
            PROFILE,
            "reference",
            group,
            operators=("any_of", "is_set"),
            reference="customer_groups",
        ),
    )
