"""Making campaigns in tests: one call for a running campaign with its rules."""

from __future__ import annotations

from typing import Any

from patronage.campaigns.models import Campaign
from patronage.campaigns.services import CampaignInput, campaign_create, ruleset_create
from patronage.workspace.models import Application


def rule(title: str, condition: list[Any], *effects: list[Any], **extra: Any) -> dict[str, Any]:
    return {"title": title, "condition": condition, "effects": list(effects), **extra}


def running_campaign(
    application: Application, name: str, *rules: dict[str, Any], state: str = "enabled", **settings: Any
) -> Campaign:
    campaign = campaign_create(
        application=application, data=CampaignInput(name=name, state=state, **settings)
    )
    ruleset_create(campaign=campaign, rules=list(rules), activate=True)
    campaign.refresh_from_db()
    return campaign
