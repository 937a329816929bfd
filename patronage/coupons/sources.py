"""Which promo-code groups a campaign accepts at checkout (their issued codes count as its coupons)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.admin.models import CHANGE
from django.db import transaction

from patronage.campaigns.models import Campaign
from patronage.core.audit import audit
from patronage.core.errors import ValidationFailed
from patronage.promocodes.models import PromoCodeGroup

from .models import CampaignCodeSource


@transaction.atomic
def campaign_code_sources_set(
    *, campaign: Campaign, groups: Iterable[PromoCodeGroup], actor: Any = None
) -> None:
    """Make ``groups`` the campaign's code sources, replacing what it accepted before (audited)."""
    wanted = {group.pk: group for group in groups}
    foreign = [g.name for g in wanted.values() if g.environment_id != campaign.application.environment_id]
    if foreign:
        raise ValidationFailed(
            f"Promo-code groups {', '.join(foreign)} belong to another environment than the campaign's shop"
        )
    current = set(CampaignCodeSource.objects.filter(campaign=campaign).values_list("group_id", flat=True))
    CampaignCodeSource.objects.filter(campaign=campaign).exclude(group_id__in=list(wanted)).delete()
    CampaignCodeSource.objects.bulk_create(
        [CampaignCodeSource(campaign=campaign, group_id=pk) for pk in wanted if pk not in current]
    )
    if actor is not None:
        names = ", ".join(group.name for group in wanted.values()) or "none"
        audit(actor, campaign, CHANGE, f"Promo-code groups accepted at checkout: {names}")
