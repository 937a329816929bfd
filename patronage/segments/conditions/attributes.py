"""Custom attributes, read as text, number, true/false or date (see ``expressions.JsonAttribute``)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from .. import registry
from ..expressions import JsonAttribute, valid_name
from ..fields import Expr, JsonNumber, boolean_q, date_q, number_q, text_q
from ..registry import Clause, Condition, Context, Param, Value

ATTRIBUTES = "Custom attributes"


def _name(raw: str) -> None:
    if not valid_name(raw):
        raise ValueError('must be an attribute name of at most 100 characters without " or \\')


NAME = Param("name", "Attribute", Value.TEXT, required=True, check=_name)


def _iso(value: dt.date) -> str:
    return value.isoformat()


def build(kind: str) -> registry.Build:
    def condition(clause: Clause, ctx: Context) -> Q:
        expression = JsonAttribute(clause.params["name"], kind)
        if kind == "text":
            return text_q(Expr(expression), clause.operator, clause.value)
        if kind == "number":
            return number_q(JsonNumber(clause.params["name"]), clause.operator, clause.value)
        if kind == "boolean":
            return boolean_q(Expr(expression), clause.operator, clause.value)
        return date_q(Expr(expression, _iso), clause.operator, clause.value)

    return condition


def register() -> None:
    date_operators = ("on", "before", "after", "between", "is_set")
    registry.register(
        Condition("attribute.text", "Text attribute", ATTRIBUTES, "text", build("text"), params=(NAME,)),
        Condition(
            "attribute.number", "Number attribute", ATTRIBUTES, "number", build("number"), params=(NAME,)
        ),
        Condition(
            "attribute.boolean",
            "True/false attribute",
            ATTRIBUTES,
            "boolean",
            build("boolean"),
            params=(NAME,),
        ),
        Condition(
            "attribute.date",
            "Date attribute",
            ATTRIBUTES,
            "date",
            build("date"),
            operators=date_operators,
            params=(NAME,),
            help="A string starting YYYY-MM-DD",
        ),
    )
