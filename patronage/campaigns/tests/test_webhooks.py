"""Webhooks a campaign calls when a session closes: posted by the real worker to a real HTTP server on
loopback, signed as docs/API.md says, retried with backoff, sent once however often the job runs, and
staff's delivery log with "Retry now"."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from patronage.campaigns.models import Campaign, DeliveryStatus, Webhook, WebhookDelivery
from patronage.campaigns.services import webhook_create
from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.campaigns.webhooks import BACKOFF, MAX_ATTEMPTS, deliveries_send
from patronage.core import clock
from patronage.dataio.testing import run_queued_jobs
from patronage.ops.sweeper import sweep
from patronage.testing.api import IntegrationClient
from patronage.workspace.models import Application

# The real worker runs in its own thread and connection: it sees only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

CART = [
    {"name": "Mug", "sku": "MUG", "quantity": 2, "price": 10, "category": "kitchen"},
    {"name": "Beans", "sku": "BEAN", "quantity": 1, "price": 30, "category": "coffee"},
]  # 50 in all
DELIVERIES = "/admin/campaigns/webhookdelivery/"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on loopback: records each request, answers the next queued status (then 200)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                state.received.append(Received(self.path, dict(self.headers.items()), body))
                status = state.answers.pop(0) if state.answers else 200
            answer = b"no thanks" if status >= 300 else b"ok"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/patronage"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def valid_signature(call: Received, secret: str) -> bool:
    """What a receiver does, from docs/API.md alone."""
    timestamp = call.headers["X-Patronage-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + call.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(call.headers["X-Patronage-Signature"], f"sha256={expected}")


def calling_campaign(application: Application, webhook: Webhook) -> Campaign:
    return running_campaign(
        application,
        "Tell the warehouse",
        rule(
            "Every order", ["and", True], ["triggerWebhook", webhook.pk, {"total": [".", "Session", "Total"]}]
        ),
    )


def put(api: IntegrationClient, session_id: str, query: str = "", **session: Any) -> dict[str, Any]:
    response = api.put(f"/v2/customer_sessions/{session_id}{query}", {"customerSession": session})
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def queued_retries() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path__endswith="deliver_webhooks", status="READY"))


def run_due_retries(due: dt.datetime) -> None:
    """The time of the retry comes: for the queue (its rows' run_after) and for our clock alike."""
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    with clock.frozen_at(due):
        run_queued_jobs()


def test_closing_a_session_posts_one_signed_call_with_the_payload(
    api: IntegrationClient, live_app: Application, receiver: Receiver
) -> None:
    # given a campaign calling a webhook with the session's total
    webhook = webhook_create(application=live_app, name="Warehouse", url=receiver.url)
    campaign = calling_campaign(live_app, webhook)
    put(api, "s-1", profileId="c-1", cartItems=CART)
    # when the session closes and the worker runs
    put(api, "s-1", state="closed")
    run_queued_jobs()
    # then the receiver got one signed POST with the payload
    (call,) = receiver.received
    delivery = WebhookDelivery.objects.get()
    assert call.path == "/hooks/patronage"
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["X-Patronage-Delivery"] == str(delivery.pk)
    assert valid_signature(call, webhook.secret)
    assert json.loads(call.body) == {
        "campaignId": campaign.pk,
        "sessionIntegrationId": "s-1",
        "profileIntegrationId": "c-1",
        "payload": {"total": 50},
    }
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None


def test_a_signature_made_with_another_secret_does_not_check(
    api: IntegrationClient, live_app: Application, receiver: Receiver
) -> None:
    webhook = webhook_create(application=live_app, name="Warehouse", url=receiver.url)
    calling_campaign(live_app, webhook)
    put(api, "s-1", profileId="c-1", cartItems=CART, state="closed")
    run_queued_jobs()
    (call,) = receiver.received
    assert valid_signature(call, webhook.secret)
    assert not valid_signature(call, "0" * 64)
    tampered = Received(call.path, call.headers, call.body.replace(b"50", b"5"))
    assert not valid_signature(tampered, webhook.secret)


def test_a_server_error_is_retried_after_the_backoff_and_then_delivered(
    api: IntegrationClient, live_app: Application, receiver: Receiver
) -> None:
    # given a receiver that fails once
    receiver.answers = [500]
    webhook = webhook_create(application=live_app, name="Warehouse", url=receiver.url)
    calling_campaign(live_app, webhook)
    put(api, "s-1", profileId="c-1", cartItems=CART, state="closed")
    # when the worker runs
    run_queued_jobs()
    # then the failure is recorded and a retry is queued for 30 seconds later
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error == "HTTP 500: no thanks"
    assert delivery.next_attempt_at is not None
    assert dt.timedelta(0) < delivery.next_attempt_at - clock.now() <= dt.timedelta(seconds=30)
    (retry,) = queued_retries()
    assert retry.run_after == delivery.next_attempt_at
    # and nothing is sent again before then, even by a worker told to
    deliveries_send(delivery_ids=[delivery.pk])
    assert len(receiver.received) == 1
    # when the retry's time comes
    run_due_retries(delivery.next_attempt_at)
    # then it is delivered on the second attempt, signed again
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    assert delivery.last_error == ""
    assert len(receiver.received) == 2
    assert all(valid_signature(call, webhook.secret) for call in receiver.received)
    assert not queued_retries()


def test_a_delivery_is_sent_once_however_often_the_job_runs(
    api: IntegrationClient, live_app: Application, receiver: Receiver
) -> None:
    webhook = webhook_create(application=live_app, name="Warehouse", url=receiver.url)
    calling_campaign(live_app, webhook)
    put(api, "s-1", profileId="c-1", cartItems=CART, state="closed")
    assert len(queued_retries()) == 1
    # when the same job is queued twice more and every copy runs
    delivery = WebhookDelivery.objects.get()
    from patronage.campaigns.tasks import deliver_webhooks

    deliver_webhooks.enqueue([delivery.pk])
    deliver_webhooks.enqueue([delivery.pk])
    run_queued_jobs()
    # then the receiver got it once
    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_two_workers_running_one_delivery_at_once_send_it_once(
    api: IntegrationClient, live_app: Application, receiver: Receiver
) -> None:
    # given a delivery whose job two workers picked up at the same moment
    webhook = webhook_create(application=live_app, name="Warehouse", url=receiver.url)
    calling_campaign(live_app, webhook)
    put(api, "s-1", profileId="c-1", cartItems=CART, state="closed")
    delivery = WebhookDelivery.objects.get()
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait(timeout=10)
            deliveries_send(delivery_ids=[delivery.pk])
        finally:
            connection.close()

    # when both send it
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then the receiver got it once
    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_an_open_session_sends_nothing(
    api: IntegrationClient, live_app: Application, receiver: Receiver
) -> None:
    webhook = webhook_create(application=live_app, name="Warehouse", url=receiver.url)
    calling_campaign(live_app, webhook)
    # when the session is only updated
    body = put(api, "s-1", profileId="c-1", cartItems=CART)
    run_queued_jobs()
    # then the effect is announced but nothing is posted
    assert [e["effectType"] for e in body["effects"]] == ["triggerWebhook"]
    assert not WebhookDelivery.objects.exists()
    assert receiver.received == []


def test_a_dry_run_close_sends_nothing(
    api: IntegrationClient, live_app: Application, receiver: Receiver
) -> None:
    webhook = webhook_create(application=live_app, name="Warehouse", url=receiver.url)
    calling_campaign(live_app, webhook)
    put(api, "s-1", profileId="c-1", cartItems=CART)
    # when the close is a dry run
    body = put(api, "s-1", "?dry=true", state="closed")
    run_queued_jobs()
    # then it answers as a close would, but nothing is posted
    assert [e["effectType"] for e in body["effects"]] == ["triggerWebhook"]
    assert not WebhookDelivery.objects.exists()
    assert receiver.received == []


def test_a_disabled_webhook_is_not_called(
    api: IntegrationClient, live_app: Application, receiver: Receiver
) -> None:
    webhook = webhook_create(application=live_app, name="Warehouse", url=receiver.url, enabled=False)
    calling_campaign(live_app, webhook)
    put(api, "s-1", profileId="c-1", cartItems=CART, state="closed")
    run_queued_jobs()
    assert receiver.received == []


def test_a_server_that_keeps_failing_gives_up_and_staff_can_retry_now(
    api: IntegrationClient, live_app: Application, receiver: Receiver, admin_client: Client
) -> None:
    # given a receiver that fails every attempt
    receiver.answers = [503] * MAX_ATTEMPTS
    webhook = webhook_create(application=live_app, name="Warehouse", url=receiver.url)
    calling_campaign(live_app, webhook)
    put(api, "s-1", profileId="c-1", cartItems=CART, state="closed")
    run_queued_jobs()
    # when every retry's time comes in turn
    delivery = WebhookDelivery.objects.get()
    waits = []
    while delivery.status == DeliveryStatus.PENDING:
        assert delivery.next_attempt_at is not None
        waits.append(delivery.next_attempt_at)
        run_due_retries(delivery.next_attempt_at)
        delivery.refresh_from_db()
    # then it was tried six times, with growing waits, and is failed with nothing left queued
    assert len(receiver.received) == MAX_ATTEMPTS == 6
    assert [later - earlier for earlier, later in itertools.pairwise(waits)] == list(BACKOFF[1:])
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 6, 503)
    assert not queued_retries()
    # and staff see it failed in the log
    page = admin_client.get(f"{DELIVERIES}?status__exact=failed").content.decode()
    assert "Failed" in page and "Warehouse" in page and "s-1" in page
    # when staff press "Retry now" after the receiver is fixed
    response = admin_client.post(DELIVERIES, {"action": "retry_now", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    run_queued_jobs()
    # then it is sent once more and delivered
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 7, 200)
    assert len(receiver.received) == MAX_ATTEMPTS + 1


def test_a_delivery_whose_worker_died_is_sent_after_the_sweep(
    api: IntegrationClient, live_app: Application, receiver: Receiver
) -> None:
    # given a delivery a worker claimed and then died with (its job is gone, the row is still pending)
    webhook = webhook_create(application=live_app, name="Warehouse", url=receiver.url)
    calling_campaign(live_app, webhook)
    put(api, "s-1", profileId="c-1", cartItems=CART, state="closed")
    DBTaskResult.objects.all().delete()
    WebhookDelivery.objects.update(attempts=1, next_attempt_at=clock.now() + dt.timedelta(minutes=5))
    # when the worker's sweeper runs long after the claim ran out
    with clock.frozen_at(clock.now() + dt.timedelta(hours=1)):
        sweep()
        run_queued_jobs()
    # then the receiver gets it
    assert len(receiver.received) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


def test_staff_create_a_webhook_and_find_its_secret_on_its_page(
    admin_client: Client, live_app: Application, receiver: Receiver
) -> None:
    # when staff add a webhook
    response = admin_client.post(
        "/admin/campaigns/webhook/add/",
        {"application": live_app.pk, "name": "Warehouse", "url": receiver.url, "enabled": "on"},
    )
    # then they land on its page, where the secret is masked until revealed
    webhook = Webhook.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/campaigns/webhook/{webhook.pk}/change/"
    assert len(webhook.secret) == 64
    page = admin_client.get(response["Location"]).content.decode()
    assert '<details id="webhook-secret">' in page
    assert "•" * 12 + webhook.secret[-4:] in page
    assert webhook.secret in page
    assert f"[&quot;triggerWebhook&quot;, {webhook.pk}" in page or f'["triggerWebhook", {webhook.pk}' in page
