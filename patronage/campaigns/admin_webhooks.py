"""Webhooks and their delivery log: registered by admin.py.

A webhook's signing secret is made by ``services.webhook_create`` and never typed by staff; the webhook's
page shows it masked, with a "Reveal" that opens it (the receiver needs it to check signatures, and there is
no second copy anywhere). Webhooks are disabled rather than deleted, so their delivery log stays.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from .models import DeliveryStatus, Webhook, WebhookDelivery
from .services import webhook_create
from .webhooks import SIGNATURE_HEADER, deliveries_retry

STATUS_VARIANTS = {
    DeliveryStatus.PENDING: "info",
    DeliveryStatus.DELIVERED: "success",
    DeliveryStatus.FAILED: "danger",
}


def _label(text: str, variant: str) -> str:
    return render_to_string("unfold/helpers/label.html", {"text": text, "variant": variant})


@admin.register(Webhook)
class WebhookAdmin(ModelAdmin):
    list_display = ["id", "name", "application", "url", "enabled", "created"]
    list_display_links = ["id", "name"]
    list_filter = ["application", "enabled"]
    list_filter_submit = True
    search_fields = ["name", "url"]
    list_select_related = ["application"]
    # A URL typed without a scheme is taken as https (Django 6's default; the warning says so until then).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_fields(self, request: HttpRequest, obj: Webhook | None = None) -> list[str]:
        if obj is None:
            return ["application", "name", "url", "enabled"]
        return ["id", "application", "name", "url", "enabled", "signing_secret", "created", "deliveries"]

    def get_readonly_fields(self, request: HttpRequest, obj: Webhook | None = None) -> list[str]:
        # Rulesets name a webhook by ID within their application: it cannot move to another one.
        return ["id", "application", "signing_secret", "created", "deliveries"] if obj else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Webhook, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = webhook_create(application=obj.application, name=obj.name, url=obj.url, enabled=obj.enabled)
        obj.pk, obj.secret, obj.created = created.pk, created.secret, created.created

    def response_add(
        self, request: HttpRequest, obj: Webhook, post_url_continue: str | None = None
    ) -> HttpResponse:
        self.message_user(
            request,
            f'Rules call it as ["triggerWebhook", {obj.pk}, {{...}}]. Its signing secret is on its page '
            "(Signing secret): give it to the receiver to check each call's signature.",
            messages.INFO,
        )
        return super().response_add(request, obj, post_url_continue)

    def response_post_save_add(self, request: HttpRequest, obj: Webhook) -> HttpResponse:
        # Straight to the webhook's page, where its secret is, rather than back to the list.
        return redirect("admin:campaigns_webhook_change", obj.pk)

    @admin.display(description="Signing secret")
    def signing_secret(self, webhook: Webhook) -> str:
        return format_html(
            '<details id="webhook-secret"><summary class="cursor-pointer">{} (reveal)</summary>'
            '<code class="select-all break-all">{}</code></details>'
            '<p class="text-sm mt-1">Each call carries <code>{}: sha256=&lt;hex&gt;</code>, the '
            "HMAC-SHA256 of <code>&lt;timestamp&gt;.&lt;body&gt;</code> keyed with this secret "
            "(docs/API.md, Webhooks).</p>",
            "•" * 12 + webhook.secret[-4:],
            webhook.secret,
            SIGNATURE_HEADER,
        )

    @admin.display(description="Deliveries")
    def deliveries(self, webhook: Webhook) -> str:
        url = reverse("admin:campaigns_webhookdelivery_changelist") + f"?webhook__id__exact={webhook.pk}"
        return format_html('<a href="{}" class="text-primary-600">Delivery log</a>', url)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ModelAdmin):
    """Read-only: each call, what its server last answered, and "Retry now" for those that failed."""

    list_display = [
        "id",
        "status_label",
        "webhook",
        "campaign",
        "session_link",
        "attempts",
        "last_status_code",
        "created",
        "delivered_at",
    ]
    list_filter = ["status", "webhook"]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER
    list_select_related = ["webhook", "campaign", "session"]
    search_fields = ["session__integration_id"]
    search_help_text = "Session integration ID"
    actions = ["retry_now"]
    fields = [
        "id",
        "status_label",
        "webhook",
        "campaign",
        "session_link",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created",
        "delivered_at",
        "payload_shown",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("campaigns.change_webhook")

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        retried = deliveries_retry(delivery_ids=ids, actor=request.user)
        if retried:
            self.message_user(
                request, f"{retried} failed deliveries will be sent again shortly.", messages.SUCCESS
            )
        if retried < len(ids):
            self.message_user(
                request, f"{len(ids) - retried} were not failed and were left as they are.", messages.WARNING
            )

    @admin.display(description="Status", ordering="status")
    def status_label(self, delivery: WebhookDelivery) -> str:
        return _label(delivery.get_status_display(), STATUS_VARIANTS[DeliveryStatus(delivery.status)])

    @admin.display(description="Session", ordering="session__integration_id")
    def session_link(self, delivery: WebhookDelivery) -> str:
        if delivery.session is None:
            return "—"
        url = reverse("admin:customer_sessions_customersession_change", args=[delivery.session_id])
        return format_html(
            '<a href="{}" class="text-primary-600">{}</a>', url, delivery.session.integration_id
        )

    @admin.display(description="Payload")
    def payload_shown(self, delivery: WebhookDelivery) -> str:
        return format_html(
            '<pre class="whitespace-pre-wrap text-sm">{}</pre>', json.dumps(delivery.payload, indent=2)
        )
