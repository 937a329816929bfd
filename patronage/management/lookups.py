"""What the Management API's paths name, looked up once for every router: an application and one of its
campaigns (deleted ones are gone), each a 404 pointing at the path parameter when missing."""

from __future__ import annotations

from patronage.campaigns.models import Campaign
from patronage.core.errors import ErrorDetail, NotFound
from patronage.workspace.models import Application


def application_of(application_id: int) -> Application:
    application = Application.objects.filter(pk=application_id).first()
    if application is None:
        message = f"Application {application_id} not found"
        raise NotFound(message, details=[ErrorDetail(NotFound.title, message, pointer="query:applicationId")])
    return application


def campaign_of(application_id: int, campaign_id: int, *, pointer: str = "query:campaignId") -> Campaign:
    application = application_of(application_id)
    campaign = (
        Campaign.objects.select_related("application")
        .filter(application=application, pk=campaign_id, deleted_at=None)
        .first()
    )
    if campaign is None:
        message = f"Campaign {campaign_id} not found in application {application_id}"
        raise NotFound(message, details=[ErrorDetail(NotFound.title, message, pointer=pointer)])
    return campaign


def flag(text: str) -> bool | None:
    """A ``true``/``false`` query parameter; empty: not given."""
    return None if not text else text.lower() == "true"
