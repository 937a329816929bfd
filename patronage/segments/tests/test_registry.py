"""A later feature adds a condition by registering it: the checker, the compiler and the builder's
catalogue pick it up without a change of their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db.models import Q

from patronage.core.errors import UnprocessableInput
from patronage.segments import registry
from patronage.segments.compiler import members_of_rules
from patronage.segments.fields import Column, number_q
from patronage.segments.registry import Clause, Condition, Context
from patronage.testing.mailings import make_customers
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db


def _spent_per_order(clause: Clause, ctx: Context) -> Q:
    # A stand-in for what loyalty will add ("points balance"): any expression over the profile will do.
    return number_q(Column("total_sales"), clause.operator, clause.value) & Q(closed_sessions__gt=0)


@pytest.fixture
def loyalty_condition() -> Iterator[Condition]:
    condition = Condition(
        "loyalty.balance", "Points balance", "Loyalty", "number", _spent_per_order, ("gte", "lt")
    )
    registry.register(condition)
    yield condition
    registry.CONDITIONS.pop(condition.key)


def test_a_registered_condition_is_checked_compiled_and_offered(loyalty_condition: Condition) -> None:
    live = environment_get(Environment.LIVE)
    rich, _poor = make_customers(live, 2)
    rich.total_sales, rich.closed_sessions = 700, 2
    rich.save(update_fields=["total_sales", "closed_sessions"])
    tree: dict[str, Any] = {
        "type": "group",
        "match": "all",
        "children": [{"type": "condition", "field": "loyalty.balance", "operator": "gte", "value": 500}],
    }
    assert list(members_of_rules(live, tree)) == [rich]

    tree["children"][0]["operator"] = "between"
    with pytest.raises(UnprocessableInput, match="use one of gte, lt"):
        members_of_rules(live, tree)

    fields = {f["key"]: f for f in registry.catalogue(live)["fields"]}
    assert fields["loyalty.balance"]["category"] == "Loyalty"
    assert [op["key"] for op in fields["loyalty.balance"]["operators"]] == ["gte", "lt"]


def test_a_condition_must_use_its_type_operators() -> None:
    with pytest.raises(ValueError, match="are not number ones"):
        registry.register(Condition("x.y", "X", "X", "number", _spent_per_order, ("contains",)))
