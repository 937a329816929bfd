"""Reads over segments: members, their count and a sample, for a saved segment or rules being edited."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Environment

from .compiler import compile_node, context, members_of_rules
from .models import Segment
from .rules import check

SAMPLE_SIZE = 10


def segment_q(segment: Segment) -> Q:
    """The segment's rules as a filter on customers of its environment. Rules saved before a group or
    offer they name was deleted still compile: the missing rows match nobody."""
    tree = check(segment.rules, environment=segment.environment, pointer="/rules", references=False)
    return Q(environment_id=segment.environment_id) & compile_node(tree, context(segment.environment))


def segment_members(segment: Segment) -> QuerySet[CustomerProfile]:
    """The customers the segment holds now."""
    return CustomerProfile.objects.filter(segment_q(segment))


def segments_of(environment: Environment) -> QuerySet[Segment]:
    return Segment.objects.filter(environment=environment).order_by("name", "pk")


def rules_preview(environment: Environment, rules: Any, *, sample: int = SAMPLE_SIZE) -> dict[str, Any]:
    """Member count and the first few members of rules being edited (``UnprocessableInput`` if bad)."""
    queryset = members_of_rules(environment, rules, pointer="/rules")
    rows = queryset.order_by("-id").values("id", "integration_id", "name", "email")[:sample]
    return {"count": queryset.count(), "sample": list(rows)}
