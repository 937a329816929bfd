"""What each operator means, once, for whatever it is applied to.

A :class:`Target` is where a value lives: a column of the profile (``Column("name")``) or an expression
(``Expr(JsonAttribute("tier", "text"))``). The functions below turn an operator and its parsed value into
lookups on a target, so "contains" or "between" mean the same on the name, on a custom attribute and on a
count. Text comparisons ignore case (ASCII letters on SQLite, whose LIKE folds only those).

Everything returned is two-valued (never SQL NULL), so a negated node means "everyone else".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, Count, Expression, F, Func, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import IsNull

from patronage.customers.selectors import day_bounds

from .expressions import JsonNumberTest
from .registry import Clause, Context

NOBODY = Q(pk__in=[])
EVERYBODY = Q(pk__isnull=False)


class Target:
    def q(self, lookup: str, value: Any) -> Q:
        raise NotImplementedError

    def prepare(self, value: Any) -> Any:
        return value


class Column(Target):
    """A column of the profile; Django's own negation keeps NULLs right."""

    def __init__(self, name: str) -> None:
        self.name = name

    def q(self, lookup: str, value: Any) -> Q:
        return Q(**{f"{self.name}__{lookup}": value})


class Expr(Target):
    """An expression that is NULL where it does not apply: a test on NULL is false (``COALESCE(test,
    false)``), so that its negation holds there. Reading the expression once, not again for IS NOT NULL,
    halves the JSON work per row."""

    def __init__(self, expression: Expression, prepare: Callable[[Any], Any] = lambda v: v) -> None:
        self.expression = expression
        self._prepare = prepare

    def prepare(self, value: Any) -> Any:
        return self._prepare(value)

    def q(self, lookup: str, value: Any) -> Q:
        if lookup == "isnull":
            present = Q(IsNull(self.expression, False))
            return ~present if value else present
        lookup_class: Any = self.expression.get_lookup(lookup)
        return Q(Coalesce(lookup_class(self.expression, value), Value(False), output_field=BooleanField()))


class JsonNumber(Target):
    """A custom attribute holding a JSON number, compared exactly (see ``JsonNumberTest``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def q(self, lookup: str, value: Any) -> Q:
        if lookup == "isnull":
            holds = Q(JsonNumberTest(self.name, "isnull", False))
            return ~holds if value else holds
        return Q(JsonNumberTest(self.name, lookup, value))


_TEXT_LOOKUPS = {
    "is": "iexact",
    "contains": "icontains",
    "starts_with": "istartswith",
    "ends_with": "iendswith",
}


def text_q(target: Target, operator: str, value: Any) -> Q:
    if operator == "is_set":  # a non-empty string
        return target.q("gt", "")
    if operator == "domain":
        return target.q("iendswith", "@" + value.lstrip("@"))
    return target.q(_TEXT_LOOKUPS[operator], value)


def number_q(target: Target, operator: str, value: Any) -> Q:
    if operator == "is_set":
        return target.q("isnull", False)
    if operator == "between":
        low, high = value
        return target.q("gte", target.prepare(low)) & target.q("lte", target.prepare(high))
    prepared = target.prepare(value)
    if operator == "ne":
        return target.q("lt", prepared) | target.q("gt", prepared)
    return target.q({"eq": "exact"}.get(operator, operator), prepared)


def number_holds(operator: str, value: Any, x: Decimal | int) -> bool:
    """The operator in Python, for a count: is 0 a match? (see ``count_q``)."""
    if operator == "between":
        return value[0] <= x <= value[1]
    return {
        "eq": x == value,
        "ne": x != value,
        "lt": x < value,
        "lte": x <= value,
        "gt": x > value,
        "gte": x >= value,
    }[operator]


def boolean_q(target: Target, operator: str, value: Any) -> Q:
    if operator == "is_set":
        return target.q("isnull", False)
    return target.q("exact", value)


def date_q(target: Target, operator: str, value: Any) -> Q:
    """A calendar date: ``on``, ``before``/``after`` (strictly), ``between`` (both days included)."""
    if operator == "is_set":
        return target.q("isnull", False)
    if operator == "between":
        return target.q("gte", target.prepare(value[0])) & target.q("lte", target.prepare(value[1]))
    lookup = {"on": "exact", "before": "lt", "after": "gt"}[operator]
    return target.q(lookup, target.prepare(value))


def instant_range(operator: str, value: Any, ctx: Context) -> tuple[dt.datetime | None, dt.datetime | None]:
    """An instant operator as [lower, upper) instants; calendar days are in the site's time zone."""
    if operator == "on":
        return day_bounds(value, value)
    if operator == "before":
        return None, day_bounds(value, None)[0]
    if operator == "after":
        if value == dt.date.max:  # nothing is after the calendar's last day: an empty range
            start = day_bounds(value, None)[0]
            return start, start
        return day_bounds(None, value)[1], None
    if operator == "between":
        return day_bounds(value[0], value[1])
    if operator == "in_last_days":
        return ctx.now - dt.timedelta(days=value), None
    if operator == "more_than_days_ago":
        return None, ctx.now - dt.timedelta(days=value)
    raise ValueError(operator)


def instant_q(target: Target, operator: str, value: Any, ctx: Context) -> Q:
    if operator == "is_set":
        return target.q("isnull", False)
    lower, upper = instant_range(operator, value, ctx)
    query = Q()
    if lower is not None:
        query &= target.q("gte", lower)
    if upper is not None:
        query &= target.q("lt", upper)
    return query or EVERYBODY


def period_q(clause: Clause, ctx: Context, column: str) -> Q:
    """The optional ``since``/``until``/``last_days`` parameters of a clause, on an instant column."""
    params = clause.params
    lower, upper = day_bounds(params.get("since"), params.get("until"))
    if "last_days" in params:
        lower = ctx.now - dt.timedelta(days=params["last_days"])
    query = Q()
    if lower is not None:
        query &= Q(**{f"{column}__gte": lower})
    if upper is not None:
        query &= Q(**{f"{column}__lt": upper})
    return query


def count_q(events: QuerySet[Any], operator: str, value: Any, ctx: Context) -> Q:
    """Customers whose number of ``events`` (rows with a non-null ``profile_id``) satisfies the operator.

    Two forms, by where the condition sits. Under an AND with other conditions (``ctx.narrowed``), a
    count per customer: PostgreSQL runs the subquery last, for the customers the others leave, each an
    index probe, never a pass over every event. Otherwise set-based: when a customer with no events cannot
    match ("at least 2") the members are those of ``GROUP BY profile_id HAVING count <op> value``; when
    they can ("fewer than 3", "= 0"), everyone but those matching the opposite; one pass over the events.
    """
    if ctx.narrowed:
        mine = events.filter(profile=OuterRef("pk")).order_by()
        count = mine.annotate(n=Func(F("pk"), function="COUNT")).values("n")
        return number_q(Expr(Coalesce(Subquery(count), 0)), operator, value)
    counted = events.order_by().values("profile_id").annotate(n=Count("*"))
    having = number_q(Column("n"), operator, value)
    if not number_holds(operator, value, 0):
        return Q(pk__in=counted.filter(having).values("profile_id"))
    return ~Q(pk__in=counted.exclude(having).values("profile_id"))
