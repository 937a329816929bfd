"""Reads of promo codes: how many codes a group has in each state, and what a customer was issued.

The back office's group list and the Management API count through ``with_counts`` so they never disagree
about what "active" means (not yet issued to anyone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q, QuerySet

from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Environment

from .models import PromoCode, PromoCodeGroup, PromoCodeIssue

ACTIVE = Q(codes__issued_at__isnull=True)
ISSUED = Q(codes__issued_at__isnull=False)
REDEEMED = Q(codes__redeemed_at__isnull=False)


def with_counts(groups: QuerySet[PromoCodeGroup]) -> QuerySet[PromoCodeGroup]:
    """Each group annotated with ``total``, ``active``, ``issued`` and ``redeemed`` codes.

    Conditional counts over one join: a single query for a whole page of groups, and each count is
    sortable. (Several separate ``Count`` joins would multiply into each other.)
    """
    return groups.annotate(
        total=Count("codes"),
        active=Count("codes", filter=ACTIVE),
        issued=Count("codes", filter=ISSUED),
        redeemed=Count("codes", filter=REDEEMED),
    )


@dataclass(frozen=True)
class GroupCounts:
    total: int
    active: int
    issued: int
    redeemed: int
    # Issues are the customers' history: they stay when the group and its codes are deleted.
    issues: int


def group_counts(group: PromoCodeGroup) -> GroupCounts:
    codes = PromoCode.objects.filter(group=group).aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(issued_at__isnull=True)),
        issued=Count("id", filter=Q(issued_at__isnull=False)),
        redeemed=Count("id", filter=Q(redeemed_at__isnull=False)),
    )
    return GroupCounts(**codes, issues=PromoCodeIssue.objects.filter(group=group).count())


def group_name_taken(*, environment: Environment, name: str, exclude_pk: int | None = None) -> bool:
    """Whether another group of the environment has this name, ignoring case (the database's rule)."""
    others = PromoCodeGroup.objects.filter(environment=environment, name__iexact=name.strip())
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    return others.exists()


# Issues name their mailing by id (mailings depend on promo codes, not the other way round); the mailings
# app registers here how to turn ids into names.
MAILING_NAMES: list[Callable[[set[int]], dict[int, str]]] = []
# Codes redeemed at checkout name the order they were used in (sessions know nothing of promo codes); the
# coupons app registers how to turn code ids into (session id, session integration id).
REDEMPTION_ORDERS: list[Callable[[set[int]], dict[int, tuple[int, str]]]] = []


def customer_issues(profile: CustomerProfile) -> list[PromoCodeIssue]:
    """Every code issued to the customer, newest first, with the names kept even if the group is gone,
    and ``mailing_name`` set where a mailing issued it (and still exists)."""
    issues = list(PromoCodeIssue.objects.filter(profile=profile).order_by("-created", "-id"))
    ids = {issue.mailing_id for issue in issues if issue.mailing_id is not None}
    names: dict[int, str] = {}
    for resolve in MAILING_NAMES if ids else []:
        names.update(resolve(ids))
    codes = {issue.promo_code_id for issue in issues if issue.promo_code_id is not None}
    used = {
        pk: when
        for pk, when in PromoCode.objects.filter(pk__in=codes, redeemed_by=profile).values_list(
            "pk", "redeemed_at"
        )
    }
    orders: dict[int, tuple[int, str]] = {}
    for find_orders in REDEMPTION_ORDERS if used else []:
        orders.update(find_orders(set(used)))
    for issue in issues:
        issue.mailing_name = names.get(issue.mailing_id or 0, "")  # type: ignore[attr-defined]
        issue.redeemed_at = used.get(issue.promo_code_id or 0)  # type: ignore[attr-defined]
        issue.order = orders.get(issue.promo_code_id or 0)  # type: ignore[attr-defined]
    return issues


def last_issued_codes(*, group_id: int, profile_ids: Sequence[int]) -> dict[int, str]:
    """For each customer, the code most recently issued to them from the group (customers never issued
    one are left out). One query for a whole mailing batch."""
    latest: dict[int, str] = {}
    issues = (
        PromoCodeIssue.objects.filter(group_id=group_id, profile_id__in=profile_ids)
        .order_by("profile_id", "-created", "-id")
        .values_list("profile_id", "code")
    )
    if connection.vendor == "postgresql":
        issues = issues.distinct("profile_id")
    for profile_id, code in issues:
        latest.setdefault(profile_id, code)
    return latest


def groups_by_name(environment: Environment) -> dict[str, PromoCodeGroup]:
    """The environment's groups by folded name: how mailing templates name them."""
    return {group.name.casefold(): group for group in PromoCodeGroup.objects.filter(environment=environment)}


def active_counts(group_ids: Iterable[int]) -> dict[int, int]:
    """Active (not yet issued) codes per group: what a mailing can still hand out."""
    counts = dict.fromkeys(group_ids, 0)
    rows = (
        PromoCode.objects.filter(group_id__in=counts, issued_at__isnull=True)
        .values("group_id")
        .annotate(n=Count("id"))
        .values_list("group_id", "n")
    )
    counts.update(dict(rows))
    return counts


def mailing_codes(*, mailing_id: int, profile_ids: Sequence[int]) -> dict[int, list[tuple[str, str, str]]]:
    """Per customer, the codes one mailing issued them, as (kind, group name as issued, code): what their
    message shows. One query for a page of deliveries."""
    codes: dict[int, list[tuple[str, str, str]]] = {}
    rows = PromoCodeIssue.objects.filter(mailing_id=mailing_id, profile_id__in=profile_ids).values_list(
        "profile_id", "kind", "group_name", "code"
    )
    for profile_id, kind, group_name, code in rows:
        codes.setdefault(profile_id, []).append((kind, group_name, code))
    return codes


def mailing_issues(*, mailing_id: int, profile_id: int | None) -> QuerySet[PromoCodeIssue]:
    """The codes one mailing's message put in front of one customer."""
    return PromoCodeIssue.objects.filter(mailing_id=mailing_id, profile_id=profile_id).order_by("id")
