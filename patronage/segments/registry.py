"""What a segment can ask about a customer: the condition registry.

A condition is a field ("profile.email", "promo_codes.issued_count") with a type, the operators that type
allows, optional parameters (a group, a period, an attribute's name) and a function that turns one checked
clause into a ``Q`` over ``CustomerProfile``. The compiler only walks the tree and joins those ``Q``s, so a
feature adds what it knows about customers (loyalty points, coupons, referrals) by calling
:func:`register` from its ``AppConfig.ready()``, without touching the compiler or the builder: the
builder draws its pickers from :func:`catalogue`.

Values that name rows of the environment (customer groups, groups of promo codes, offers) are checked
against a :class:`Reference`, registered the same way.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from patronage.workspace.models import Environment


class Value(enum.StrEnum):
    """The shape of an operator's value in the rule tree (JSON)."""

    NONE = "none"  # absent or null
    TEXT = "text"  # a non-empty string
    NUMBER = "number"  # a JSON number
    NUMBER_RANGE = "number_range"  # [low, high], both included
    COUNT = "count"  # a whole number, 0 or more
    COUNT_RANGE = "count_range"  # [low, high], both included
    BOOLEAN = "boolean"
    DATE = "date"  # "YYYY-MM-DD"
    DATE_RANGE = "date_range"  # ["YYYY-MM-DD", "YYYY-MM-DD"], both days included
    DAYS = "days"  # a whole number of days
    MONTH_DAYS = "month_days"  # ["MM-DD", "MM-DD"], may wrap over New Year
    IDS = "ids"  # [id, ...] of the field's reference


# Field type -> operator -> value shape. A condition may offer a subset of its type's operators.
TYPES: dict[str, dict[str, Value]] = {
    "text": {
        "is": Value.TEXT,
        "contains": Value.TEXT,
        "starts_with": Value.TEXT,
        "ends_with": Value.TEXT,
        "is_set": Value.NONE,
    },
    "email": {"is": Value.TEXT, "contains": Value.TEXT, "domain": Value.TEXT, "is_set": Value.NONE},
    "number": {
        "eq": Value.NUMBER,
        "ne": Value.NUMBER,
        "lt": Value.NUMBER,
        "lte": Value.NUMBER,
        "gt": Value.NUMBER,
        "gte": Value.NUMBER,
        "between": Value.NUMBER_RANGE,
        "is_set": Value.NONE,
    },
    # How many of something a customer has (orders, promo codes): always known, a whole number.
    "count": {
        "eq": Value.COUNT,
        "ne": Value.COUNT,
        "lt": Value.COUNT,
        "lte": Value.COUNT,
        "gt": Value.COUNT,
        "gte": Value.COUNT,
        "between": Value.COUNT_RANGE,
    },
    "boolean": {"is": Value.BOOLEAN, "is_set": Value.NONE},
    # A calendar date (a birth date, a date attribute).
    "date": {
        "on": Value.DATE,
        "before": Value.DATE,
        "after": Value.DATE,
        "between": Value.DATE_RANGE,
        "is_set": Value.NONE,
        "anniversary_between": Value.MONTH_DAYS,
        "anniversary_within_days": Value.DAYS,
    },
    # An instant (created, last activity, last order), compared by calendar day in the site's time zone.
    "instant": {
        "on": Value.DATE,
        "before": Value.DATE,
        "after": Value.DATE,
        "between": Value.DATE_RANGE,
        "in_last_days": Value.DAYS,
        "more_than_days_ago": Value.DAYS,
        "is_set": Value.NONE,
    },
    # Rows of a reference (customer groups, offers, ...).
    "reference": {"any_of": Value.IDS, "any": Value.NONE, "is_set": Value.NONE},
}

OPERATOR_LABELS = {
    "is": "is",
    "contains": "contains",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "domain": "domain is",
    "is_set": "is set",
    "eq": "=",
    "ne": "≠",
    "lt": "<",
    "lte": "≤",
    "gt": ">",
    "gte": "≥",
    "between": "between",
    "on": "on",
    "before": "before",
    "after": "after",
    "in_last_days": "in the last N days",
    "more_than_days_ago": "more than N days ago",
    "anniversary_between": "birthday between (any year)",
    "anniversary_within_days": "birthday within N days from today",
    "any_of": "any of",
    "any": "any",
}

MAX_TEXT = 255
MAX_DAYS = 36_600
MAX_COUNT = 1_000_000_000
MAX_IDS = 1000


@dataclass(frozen=True)
class Param:
    """A qualifier of a condition besides its value, e.g. the group a count of promo codes is about."""

    name: str
    label: str
    value: Value  # TEXT, DATE, DAYS, IDS (one id, of ``reference``), or a choice from ``choices``
    required: bool = False
    reference: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""
    # Further checks of the parsed value: raises ValueError saying what is wrong.
    check: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class Context:
    """What a clause is compiled against: its environment and the one "now" of this evaluation."""

    environment: Environment
    now: dt.datetime
    today: dt.date
    # Inside an AND with other conditions: the database checks those first, so a per-customer subquery
    # runs only for the customers they leave (see fields.count_q).
    narrowed: bool = False


@dataclass(frozen=True)
class Clause:
    """One checked condition of a rule tree: the value and parameters parsed to Python."""

    field: str
    operator: str
    value: Any
    params: dict[str, Any]
    pointer: str


Build = Callable[[Clause, Context], Q]


@dataclass(frozen=True)
class Condition:
    key: str  # "profile.email"; the rule tree's "field"
    label: str
    category: str  # the builder groups fields by it ("Profile", "Orders", "Promo codes", ...)
    type: str  # a key of TYPES
    build: Build
    operators: tuple[str, ...] = ()  # empty: all of the type's
    params: tuple[Param, ...] = ()
    reference: str = ""  # for the "reference" type: what the ids are
    help: str = ""

    def allowed(self) -> dict[str, Value]:
        shapes = TYPES[self.type]
        return {op: shapes[op] for op in (self.operators or tuple(shapes))}


@dataclass(frozen=True)
class Reference:
    """Rows a value may name, e.g. the customer groups of the environment."""

    key: str
    label: str  # "customer group"
    rows: Callable[[Environment], QuerySet[Any]]  # the environment's rows, in the order pickers list them
    label_field: str = "name"

    def options(self, environment: Environment) -> list[tuple[int, str]]:
        return list(self.rows(environment).values_list("pk", self.label_field))

    def existing(self, environment: Environment, ids: Iterable[int]) -> set[int]:
        return set(self.rows(environment).filter(pk__in=list(ids)).values_list("pk", flat=True))


CONDITIONS: dict[str, Condition] = {}
REFERENCES: dict[str, Reference] = {}


def register(*conditions: Condition) -> None:
    for condition in conditions:
        if condition.type not in TYPES:
            raise ValueError(f"{condition.key}: unknown type {condition.type!r}")
        unknown = set(condition.operators) - set(TYPES[condition.type])
        if unknown:
            raise ValueError(f"{condition.key}: operators {sorted(unknown)} are not {condition.type} ones")
        CONDITIONS[condition.key] = condition


def register_reference(reference: Reference) -> None:
    REFERENCES[reference.key] = reference


def catalogue(environment: Environment) -> dict[str, Any]:
    """Everything the builder needs to draw its pickers, as JSON-ready data."""

    def param(p: Param) -> dict[str, Any]:
        return {
            "name": p.name,
            "label": p.label,
            "value": str(p.value),
            "required": p.required,
            "reference": p.reference,
            "choices": [list(c) for c in p.choices],
            "help": p.help,
        }

    used = {c.reference for c in CONDITIONS.values()} | {
        p.reference for c in CONDITIONS.values() for p in c.params
    }
    return {
        "fields": [
            {
                "key": c.key,
                "label": c.label,
                "category": c.category,
                "type": c.type,
                "reference": c.reference,
                "help": c.help,
                "operators": [
                    {"key": op, "label": OPERATOR_LABELS[op], "value": str(shape)}
                    for op, shape in c.allowed().items()
                ],
                "params": [param(p) for p in c.params],
            }
            for c in CONDITIONS.values()
        ],
        "references": {
            key: {"label": ref.label, "options": [[pk, label] for pk, label in ref.options(environment)]}
            for key, ref in REFERENCES.items()
            if key in used
        },
    }
