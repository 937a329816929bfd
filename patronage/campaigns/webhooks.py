"""Webhooks a ``triggerWebhook`` effect calls: deliveries recorded with the session's commit, posted by the
worker afterwards (signed, retried with backoff).

A delivery is sent at most once successfully whoever runs it: a worker first claims the row with one
conditional ``UPDATE`` (still pending, due, not claimed by another), which counts the attempt and leases the
row for longer than any send can take; only then does it post, outside any transaction. A worker killed
mid-send leaves the row pending with its lease; the sweeper every worker runs queues it again once it is
long overdue (``deliveries_resume_stalled``). The signature scheme is documented in docs/API.md (Webhooks).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.admin.models import CHANGE
from django.db import transaction
from django.db.models import F, Q
from django_tasks import task

from patronage.core import clock
from patronage.core.audit import audit
from patronage.customer_sessions.models import CustomerSession
from patronage.workspace.models import Application

from .models import DeliveryStatus, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Patronage-Signature"
TIMESTAMP_HEADER = "X-Patronage-Timestamp"
DELIVERY_HEADER = "X-Patronage-Delivery"
USER_AGENT = "Patronage-Webhooks/1"
# The wait after each failed attempt; the attempt after the last wait is the last one.
BACKOFF = (
    dt.timedelta(seconds=30),
    dt.timedelta(minutes=2),
    dt.timedelta(minutes=10),
    dt.timedelta(hours=1),
    dt.timedelta(hours=6),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
# A pending delivery this far past its due time was lost by the queue (a worker killed mid-send, an enqueue
# that never happened): the sweeper queues it again. Longer than any claim lasts.
STALLED_AFTER = dt.timedelta(minutes=15)
RESUME_BATCH = 500
ERROR_CHARS = 500


def deliveries_create(
    *, application: Application, session: CustomerSession | None, calls: list[tuple[int, int, dict[str, Any]]]
) -> list[WebhookDelivery]:
    """One delivery per (campaign, webhook, payload) of this application's enabled webhooks; the worker is
    asked to send them once the transaction commits."""
    hooks = {
        h.pk: h
        for h in Webhook.objects.filter(application=application, enabled=True, pk__in={c[1] for c in calls})
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
        _enqueue([d.pk for d in deliveries])
    return deliveries


# ---- sending ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>`` keyed with the secret as shown."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def deliveries_send(*, delivery_ids: list[int]) -> None:
    """Post each of these deliveries that is still pending and due; record what the server answered and
    queue the next attempt of those that failed. Never inside a transaction: a slow server must not hold
    row locks or a connection's transaction open."""
    for delivery_id in sorted(set(delivery_ids)):
        delivery = _claim(delivery_id)
        if delivery is None:
            continue
        if not delivery.webhook.enabled:
            _finish(delivery, Outcome(None, "The webhook was disabled before this was sent."), final=True)
            continue
        _finish(delivery, _post(delivery))


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Take the delivery for this attempt, or None when it is delivered, failed, not due yet or being sent
    by another worker. The lease outlasts any send (the timeout bounds each socket wait; only a server
    trickling its answer byte by byte could outlast it, and then the receiver sees the delivery ID again)."""
    now = clock.now()
    lease = max(dt.timedelta(minutes=5), dt.timedelta(seconds=4 * settings.PATRONAGE_WEBHOOK_TIMEOUT_SECONDS))
    taken = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(attempts=F("attempts") + 1, next_attempt_at=now + lease)
    )
    if not taken:
        return None
    return WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A webhook answers where it was configured: urllib would turn a redirected POST into a GET without
    # the body, so a 3xx counts as a failed attempt that the receiver's owner can see in the log.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(delivery: WebhookDelivery) -> Outcome:
    webhook = delivery.webhook
    if urlsplit(webhook.url).scheme not in ("http", "https"):
        return Outcome(None, "The webhook's URL is neither http nor https.")
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = str(int(clock.now().timestamp()))
    request = urllib.request.Request(
        webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: str(delivery.pk),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret=webhook.secret, timestamp=timestamp, body=body),
        },
    )
    try:
        with _opener.open(request, timeout=settings.PATRONAGE_WEBHOOK_TIMEOUT_SECONDS) as response:
            return Outcome(response.status, "")
    except urllib.error.HTTPError as exc:  # any answer but 2xx
        answer = _start_of(exc)
        return Outcome(exc.code, f"HTTP {exc.code}: {answer}" if answer else f"HTTP {exc.code}")
    except urllib.error.URLError as exc:
        return Outcome(None, f"Could not reach the webhook: {exc.reason}"[:ERROR_CHARS])
    except (OSError, http.client.HTTPException, ValueError) as exc:  # timeouts, resets, malformed answers
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])


def _start_of(answer: urllib.error.HTTPError) -> str:
    """The start of an error answer's body, for the delivery log (it often says what was wrong)."""
    try:
        return answer.read(ERROR_CHARS).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        answer.close()


def _finish(delivery: WebhookDelivery, outcome: Outcome, *, final: bool = False) -> None:
    """Record the attempt on the row this worker claimed; a failure is tried again after its backoff."""
    now = clock.now()
    mine = WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING)
    if outcome.delivered:
        mine.update(
            status=DeliveryStatus.DELIVERED,
            delivered_at=now,
            last_status_code=outcome.status_code,
            last_error="",
            next_attempt_at=None,
        )
        return
    if final or delivery.attempts >= MAX_ATTEMPTS:
        mine.update(
            status=DeliveryStatus.FAILED,
            last_status_code=outcome.status_code,
            last_error=outcome.error,
            next_attempt_at=None,
        )
        logger.warning("Webhook delivery #%s failed for good: %s", delivery.pk, outcome.error)
        return
    due = now + BACKOFF[delivery.attempts - 1]
    mine.update(last_status_code=outcome.status_code, last_error=outcome.error, next_attempt_at=due)
    _enqueue([delivery.pk], run_after=due)


def _enqueue(ids: list[int], *, run_after: dt.datetime | None = None) -> None:

    task = deliver_webhooks.using(run_after=run_after) if run_after is not None else deliver_webhooks
    transaction.on_commit(lambda: task.enqueue(ids))


# ---- recovery ---------------------------------------------------------------------------------------------


@transaction.atomic
def deliveries_retry(*, delivery_ids: list[int], actor: Any = None) -> int:
    """Staff's "Retry now" on failed deliveries: one more attempt, as soon as a worker is free. Returns how
    many were failed (the others are left as they are)."""
    failed = list(
        WebhookDelivery.objects.filter(pk__in=delivery_ids, status=DeliveryStatus.FAILED).order_by("pk")
    )
    ids = [d.pk for d in failed]
    WebhookDelivery.objects.filter(pk__in=ids, status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.PENDING, next_attempt_at=None
    )
    for delivery in failed:
        audit(actor, delivery, CHANGE, "Retried now")
    if ids:
        _enqueue(ids)
    return len(ids)


def deliveries_resume_stalled() -> list[int]:
    """Queue again the pending deliveries no worker has touched long after they were due; returns them."""
    now = clock.now()
    cutoff = now - STALLED_AFTER
    stalled = Q(next_attempt_at__lt=cutoff) | Q(next_attempt_at__isnull=True, created__lt=cutoff)
    pending = WebhookDelivery.objects.filter(stalled, status=DeliveryStatus.PENDING)
    ids = list(pending.order_by("pk").values_list("pk", flat=True)[:RESUME_BATCH])
    if ids:
        # Due now, so the next sweep leaves them to this run; should two sweepers race, the claim still
        # lets only one worker send each.
        pending.filter(pk__in=ids).update(next_attempt_at=now)
        _enqueue(ids)
    return ids


@task()
def deliver_webhooks(delivery_ids: list[int]) -> None:
    """Post these webhook deliveries; a failed one queues its own retry (``_finish``)."""
    deliveries_send(delivery_ids=delivery_ids)
