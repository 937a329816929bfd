"""A plain-Python reading of a segment's rule tree, for the property test to hold the SQL against.

It is written from the specification of the rule tree, not from the compiler: it reads the JSON tree as
the user wrote it and evaluates it customer by customer over plain data (no database, no ``Q``). Where the
two disagree, one of them is wrong.

The world it evaluates over is a handful of dataclasses: customers with their orders (sessions), promo
codes issued to them and what they did with offers, and the offers with the emails assigned to them.
Instants are aware UTC datetimes; the site's time zone is UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from patronage.customers.models import birth_md_of

ORDER_STATES = frozenset({"closed", "partially_returned"})
_DATE_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})$")


@dataclass(frozen=True)
class Order:
    """A customer session; an order when its state is one of ``ORDER_STATES``."""

    state: str
    closed_at: dt.datetime | None
    total: Decimal = Decimal("0")
    returned_total: Decimal = Decimal("0")

    @property
    def is_order(self) -> bool:
        return self.state in ORDER_STATES


@dataclass(frozen=True)
class Issue:
    """A promo code issued to the customer; ``group`` is None once its group was deleted."""

    group: int | None
    kind: str  # "initial" | "repeat"
    created: dt.datetime


@dataclass(frozen=True)
class Tracked:
    """A favourite, claim or redemption of an offer; ``at`` is when (``redeemed_at`` for a redemption)."""

    offer: int
    at: dt.datetime


@dataclass
class Customer:
    environment: str
    integration_id: str
    created: dt.datetime
    last_activity: dt.datetime
    name: str = ""
    email: str | None = None
    phone: str = ""
    birth_date: dt.date | None = None
    group: int | None = None
    tax_exempt: bool = False
    accepts_marketing: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    favourites: list[Tracked] = field(default_factory=list)
    claims: list[Tracked] = field(default_factory=list)
    redemptions: list[Tracked] = field(default_factory=list)

    @property
    def closed_sessions(self) -> int:
        return sum(1 for order in self.orders if order.is_order)

    @property
    def total_sales(self) -> Decimal:
        return sum(
            (order.total - order.returned_total for order in self.orders if order.is_order), Decimal("0")
        )


@dataclass
class Offer:
    pk: int
    environment: str
    emails: list[str] = field(default_factory=list)  # assigned, as typed (any case)


@dataclass
class World:
    now: dt.datetime
    customers: list[Customer]
    offers: list[Offer] = field(default_factory=list)

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(dt.UTC).date()


def members(world: World, environment: str, tree: dict[str, Any]) -> set[int]:
    """Indexes (into ``world.customers``) of the customers of ``environment`` that ``tree`` describes."""
    return {
        i
        for i, customer in enumerate(world.customers)
        if customer.environment == environment and _node(tree, customer, world, environment)
    }


# --- the tree -----------------------------------------------------------------------------------------------


def _node(node: dict[str, Any], customer: Customer, world: World, environment: str) -> bool:
    if node["type"] == "group":
        children = [_node(child, customer, world, environment) for child in node.get("children", [])]
        result = all(children) if node.get("match", "all") == "all" else any(children)
    else:
        result = _condition(node, customer, world, environment)
    return not result if node.get("negate", False) else result


def _condition(node: dict[str, Any], customer: Customer, world: World, environment: str) -> bool:
    field_key: str = node["field"]
    operator: str = node["operator"]
    value = node.get("value")
    # A parameter given as null or "" is not given.
    params = {k: v for k, v in (node.get("params") or {}).items() if v is not None and v != ""}
    kind, read = FIELDS[field_key]
    ask = Ask(world=world, environment=environment, customer=customer, params=params)
    return TESTS[kind](read(ask), operator, value, ask)


@dataclass(frozen=True)
class Ask:
    world: World
    environment: str
    customer: Customer
    params: dict[str, Any]


# --- values a condition is about ----------------------------------------------------------------------------


def _attribute(ask: Ask) -> Any:
    return ask.customer.attributes.get(ask.params["name"], _MISSING)


_MISSING: Any = object()


def _last_order(ask: Ask) -> dt.datetime | None:
    times = [o.closed_at for o in ask.customer.orders if o.is_order and o.closed_at is not None]
    return max(times) if times else None


def _order_count(ask: Ask) -> int:
    if not ask.params:
        return ask.customer.closed_sessions
    within = _period(ask)
    return sum(
        1 for o in ask.customer.orders if o.is_order and o.closed_at is not None and within(o.closed_at)
    )


def _issues(ask: Ask) -> list[Issue]:
    within = _period(ask)
    issues = [i for i in ask.customer.issues if within(i.created)]
    if "kind" in ask.params:
        issues = [i for i in issues if i.kind == ask.params["kind"]]
    if "group" in ask.params:
        issues = [i for i in issues if i.group == ask.params["group"]]
    return issues


def _assigned_offers(ask: Ask) -> set[int]:
    email = ask.customer.email
    if email is None:
        return set()
    return {o.pk for o in ask.world.offers if email.lower() in {e.strip().lower() for e in o.emails}}


def _tracked(rows: Callable[[Customer], list[Tracked]]) -> Callable[[Ask], set[int]]:
    def read(ask: Ask) -> set[int]:
        within = _period(ask)
        return {row.offer for row in rows(ask.customer) if within(row.at)}

    return read


def _issued_groups(ask: Ask) -> set[int | None]:
    return {i.group for i in _issues(ask)}


FIELDS: dict[str, tuple[str, Callable[[Ask], Any]]] = {
    "profile.name": ("text", lambda a: a.customer.name),
    "profile.email": ("email", lambda a: a.customer.email),
    "profile.phone": ("text", lambda a: a.customer.phone),
    "profile.integration_id": ("text", lambda a: a.customer.integration_id),
    "profile.birth_date": ("birthday", lambda a: a.customer.birth_date),
    "profile.created": ("instant", lambda a: a.customer.created),
    "profile.last_activity": ("instant", lambda a: a.customer.last_activity),
    "profile.tax_exempt": ("boolean", lambda a: a.customer.tax_exempt),
    "profile.accepts_marketing": ("boolean", lambda a: a.customer.accepts_marketing),
    "profile.group": ("customer_group", lambda a: a.customer.group),
    "attribute.text": ("text", lambda a: _json_text(_attribute(a))),
    "attribute.number": ("number", lambda a: _json_number(_attribute(a))),
    "attribute.boolean": ("boolean", lambda a: _json_boolean(_attribute(a))),
    "attribute.date": ("date", lambda a: _json_date(_attribute(a))),
    "orders.count": ("count", _order_count),
    "orders.total_spent": ("money", lambda a: a.customer.total_sales),
    "orders.last_order": ("instant", _last_order),
    "promo_codes.issued_count": ("count", lambda a: len(_issues(a))),
    "promo_codes.issued_from": ("issued_from", _issued_groups),
    "offers.assigned": ("offers", _assigned_offers),
    "offers.favourited": ("offers", _tracked(lambda c: c.favourites)),
    "offers.claimed": ("offers", _tracked(lambda c: c.claims)),
    "offers.redeemed": ("offers", _tracked(lambda c: c.redemptions)),
}


def _json_text(raw: Any) -> str | None:
    return raw if isinstance(raw, str) else None


def _json_number(raw: Any) -> Decimal | None:
    """The number as written in the JSON, exactly."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return Decimal(repr(raw))


def _json_boolean(raw: Any) -> bool | None:
    return raw if isinstance(raw, bool) else None


def _json_date(raw: Any) -> str | None:
    """A string whose first ten characters look like YYYY-MM-DD: those ten characters, compared as text."""
    return raw[:10] if isinstance(raw, str) and _DATE_PREFIX.match(raw) else None


# --- what operators mean ------------------------------------------------------------------------------------


def _text(x: str | None, operator: str, value: Any, ask: Ask) -> bool:
    if x is None:
        return False
    if operator == "is_set":
        return x != ""
    x, v = x.lower(), value.strip().lower()
    return {
        "is": x == v,
        "contains": v in x,
        "starts_with": x.startswith(v),
        "ends_with": x.endswith(v),
    }[operator]


def _email(x: str | None, operator: str, value: Any, ask: Ask) -> bool:
    if operator == "domain":
        if x is None:
            return False
        return x.lower().endswith("@" + value.strip().lstrip("@").lower())
    return _text(x, operator, value, ask)


def _compare(x: Any, operator: str, value: Any, convert: Callable[[Any], Any]) -> bool:
    if operator == "between":
        return convert(value[0]) <= x <= convert(value[1])
    v = convert(value)
    return {
        "eq": x == v,
        "ne": x != v,
        "lt": x < v,
        "lte": x <= v,
        "gt": x > v,
        "gte": x >= v,
    }[operator]


def _number(x: Decimal | None, operator: str, value: Any, ask: Ask) -> bool:
    if x is None:
        return False
    if operator == "is_set":
        return True
    return _compare(x, operator, value, lambda v: Decimal(repr(v)))


def _money(x: Decimal, operator: str, value: Any, ask: Ask) -> bool:
    return _compare(x, operator, value, lambda v: Decimal(str(v)))


def _count(x: int, operator: str, value: Any, ask: Ask) -> bool:
    return _compare(x, operator, value, int)


def _boolean(x: bool | None, operator: str, value: Any, ask: Ask) -> bool:
    if x is None:
        return False
    return True if operator == "is_set" else x is value


def _parse_date(raw: str) -> dt.date:
    return dt.date.fromisoformat(raw)


def _date(x: str | None, operator: str, value: Any, ask: Ask) -> bool:
    """A date attribute: its first ten characters against the value's ISO form, as text."""
    if x is None:
        return False
    if operator == "is_set":
        return True
    if operator == "between":
        return _parse_date(value[0]).isoformat() <= x <= _parse_date(value[1]).isoformat()
    v = _parse_date(value).isoformat()
    return {"on": x == v, "before": x < v, "after": x > v}[operator]


def _birthday(x: dt.date | None, operator: str, value: Any, ask: Ask) -> bool:
    if x is None:
        return False
    if operator == "is_set":
        return True
    if operator == "anniversary_between":
        return _md_within(x, _month_day(value[0]), _month_day(value[1]))
    if operator == "anniversary_within_days":
        if value >= 365:
            return True
        today = ask.world.today
        return _md_within(x, _md(today), _md(today + dt.timedelta(days=value)))
    if operator == "between":
        return _parse_date(value[0]) <= x <= _parse_date(value[1])
    v = _parse_date(value)
    return {"on": x == v, "before": x < v, "after": x > v}[operator]


def _md(day: dt.date) -> int:
    md = birth_md_of(day)
    assert md is not None
    return md


def _month_day(raw: str) -> int:
    match = _MONTH_DAY.match(raw.strip())
    assert match, raw
    return int(match[1]) * 100 + int(match[2])


def _md_within(birth: dt.date, start: int, end: int) -> bool:
    md = _md(birth)
    return start <= md <= end if start <= end else md >= start or md <= end


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _start_of_next(day: dt.date) -> dt.datetime | None:
    """The start of the day after ``day``; None past the last representable day (no upper bound)."""
    return None if day == dt.date.max else _start_of(day + dt.timedelta(days=1))


def _in(x: dt.datetime, lower: dt.datetime | None, upper: dt.datetime | None) -> bool:
    return (lower is None or x >= lower) and (upper is None or x < upper)


def _instant(x: dt.datetime | None, operator: str, value: Any, ask: Ask) -> bool:
    if x is None:
        return False
    if operator == "is_set":
        return True
    now = ask.world.now
    if operator == "on":
        day = _parse_date(value)
        return _in(x, _start_of(day), _start_of_next(day))
    if operator == "before":
        return x < _start_of(_parse_date(value))
    if operator == "after":
        upper = _start_of_next(_parse_date(value))
        return upper is not None and x >= upper
    if operator == "between":
        return _in(x, _start_of(_parse_date(value[0])), _start_of_next(_parse_date(value[1])))
    if operator == "in_last_days":
        return x >= now - dt.timedelta(days=value)
    if operator == "more_than_days_ago":
        return x < now - dt.timedelta(days=value)
    raise AssertionError(operator)


def _period(ask: Ask) -> Callable[[dt.datetime], bool]:
    params = ask.params
    lower = _start_of(_parse_date(params["since"])) if "since" in params else None
    upper = _start_of_next(_parse_date(params["until"])) if "until" in params else None
    if "last_days" in params:
        lower = ask.world.now - dt.timedelta(days=params["last_days"])
    return lambda x: _in(x, lower, upper)


def _customer_group(x: int | None, operator: str, value: Any, ask: Ask) -> bool:
    if operator == "is_set":
        return x is not None
    return x in set(value)


def _issued_from(groups: set[int | None], operator: str, value: Any, ask: Ask) -> bool:
    if operator == "any_of":
        return bool(groups & set(value))
    # "any": a code issued from any group, including one deleted since (the issue outlives it).
    return bool(groups)


def _offers(offers: set[int], operator: str, value: Any, ask: Ask) -> bool:
    if operator == "any_of":
        return bool(offers & set(value))
    return bool(offers & {o.pk for o in ask.world.offers if o.environment == ask.environment})


TESTS: dict[str, Callable[[Any, str, Any, Ask], bool]] = {
    "text": _text,
    "email": _email,
    "number": _number,
    "money": _money,
    "count": _count,
    "boolean": _boolean,
    "date": _date,
    "birthday": _birthday,
    "instant": _instant,
    "customer_group": _customer_group,
    "issued_from": _issued_from,
    "offers": _offers,
}
