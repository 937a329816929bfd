"""Promo codes issued to the customer: the segment builder's "Promo codes" group of the seed
("Quantity of issued promo codes", "Promo codes issued from the group")."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from patronage.promocodes.models import IssueKind, PromoCodeGroup, PromoCodeIssue

from .. import registry
from ..fields import count_q, period_q
from ..registry import Clause, Condition, Context, Param, Reference, Value
from .periods import PERIOD

PROMO_CODES = "Promo codes"
KIND = Param("kind", "Issue", Value.TEXT, choices=tuple(IssueKind.choices), help="initial or repeat")


def _issues(clause: Clause, ctx: Context) -> QuerySet[PromoCodeIssue]:
    issues = PromoCodeIssue.objects.filter(period_q(clause, ctx, "created"))
    if "kind" in clause.params:
        issues = issues.filter(kind=clause.params["kind"])
    if "group" in clause.params:
        issues = issues.filter(group_id=clause.params["group"])
    return issues


def issued_count(clause: Clause, ctx: Context) -> Q:
    return count_q(_issues(clause, ctx), clause.operator, clause.value, ctx)


def issued_from(clause: Clause, ctx: Context) -> Q:
    issues = _issues(clause, ctx).filter(profile=OuterRef("pk"))
    if clause.operator == "any_of":
        issues = issues.filter(group_id__in=clause.value)
    return Q(Exists(issues))


def register() -> None:
    registry.register_reference(
        Reference(
            "promo_groups",
            "group of promo codes",
            lambda environment: PromoCodeGroup.objects.filter(environment=environment).order_by("name"),
        )
    )
    registry.register(
        Condition(
            "promo_codes.issued_count",
            "Quantity of issued promo codes",
            PROMO_CODES,
            "count",
            issued_count,
            params=(
                Param("group", "From group", Value.IDS, reference="promo_groups"),
                KIND,
                *PERIOD,
            ),
        ),
        Condition(
            "promo_codes.issued_from",
            "Promo codes issued from the group",
            PROMO_CODES,
            "reference",
            issued_from,
            operators=("any_of", "any"),
            params=(KIND, *PERIOD),
            reference="promo_groups",
        ),
    )
