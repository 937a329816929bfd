"""A checked rule tree -> one ``Q`` over ``CustomerProfile``: the whole segment is one SQL query.

Groups become AND / OR of their children, negation ``NOT``; each condition's ``Q`` comes from its
registered builder (Exists, ``IN (SELECT ... GROUP BY ... HAVING ...)`` or plain column lookups). Nothing
is filtered in Python. "Now" is read once, so every relative condition of one evaluation agrees on it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Environment

from .fields import EVERYBODY, NOBODY
from .registry import Context
from .rules import Group, Leaf, Node, check


def context(environment: Environment) -> Context:
    now = clock.now()
    return Context(environment=environment, now=now, today=timezone.localdate(now))


def compile_node(node: Node, ctx: Context) -> Q:
    if isinstance(node, Leaf):
        query = node.condition.build(node.clause, ctx)
    elif not node.children:
        # Q() would vanish when combined: an empty group is spelled out as true / false.
        query = EVERYBODY if node.match == "all" else NOBODY
    else:
        if node.match == "all" and len(node.children) > 1:
            ctx = replace(ctx, narrowed=True)
        parts = [compile_node(child, ctx) for child in node.children]
        query = parts[0]
        for part in parts[1:]:
            query = query & part if node.match == "all" else query | part
    return ~query if node.negate else query


def members(environment: Environment, tree: Group) -> QuerySet[CustomerProfile]:
    """The customers of the environment the tree describes, as a lazy queryset."""
    return CustomerProfile.objects.filter(environment=environment).filter(
        compile_node(tree, context(environment))
    )


def members_of_rules(environment: Environment, rules: Any, *, pointer: str = "") -> QuerySet[CustomerProfile]:
    """``members`` of a tree still in its JSON form; ``UnprocessableInput`` when it is malformed."""
    return members(environment, check(rules, environment=environment, pointer=pointer))
