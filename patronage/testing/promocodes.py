"""Factories for groups of promo codes and the history of codes issued to customers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import IssueKind, PromoCode, PromoCodeGroup, PromoCodeIssue
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get


def _environment(environment: Environment | str) -> Environment:
    if isinstance(environment, Environment):
        return environment
    return environment_get(environment)


def make_group(
    environment: Environment | str, name: str, *, codes: Iterable[str] = (), description: str = ""
) -> PromoCodeGroup:
    """A group with ``codes`` uploaded into it the way staff upload them."""
    from patronage.promocodes.services import promo_code_group_create

    group, result = promo_code_group_create(
        environment=_environment(environment), name=name, description=description, codes=list(codes)
    )
    assert not result.problems, [p.details for p in result.problems]
    return group


def make_issue(
    profile: CustomerProfile,
    code: PromoCode,
    *,
    kind: str = IssueKind.INITIAL,
    mailing_id: int | None = None,
    created: dt.datetime | None = None,
    redeemed: bool = False,
) -> PromoCodeIssue:
    """``code`` issued to ``profile`` (as a mailing will issue it): the code leaves the active pool and an
    issue row records it; ``redeemed`` also marks the code used."""
    when = created or clock.now()
    if code.issued_at is None:
        code.issued_to, code.issued_at = profile, when
    if redeemed:
        code.redeemed_at, code.redeemed_by = when, profile
    code.save(update_fields=["issued_to", "issued_at", "redeemed_at", "redeemed_by"])
    return PromoCodeIssue.objects.create(
        profile=profile,
        promo_code=code,
        group=code.group,
        code=code.code,
        group_name=code.group.name,
        kind=kind,
        mailing_id=mailing_id,
        created=when,
    )
