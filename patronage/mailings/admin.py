"""Back office for mailings: the list, the draft form, the preview, the send confirmation with its capacity
check, the progress page and each recipient's delivered message.

Every write is a service and every count a selector; this module only parses, asks and renders.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.decorators import action
from unfold.views import ChangeList

from patronage.core.admin_paging import PerPageMixin
from patronage.core.errors import DomainError
from patronage.promocodes.selectors import mailing_issues

from . import selectors
from .forms import MailingForm, PreviewForm
from .models import Mailing, MailingDelivery
from .services import (
    TEST_CODE,
    mailing_delete,
    mailing_preview,
    mailing_resume,
    mailing_save,
    mailing_send_test,
    mailing_start,
    template_problems,
)

Status = MailingDelivery.Status
STATUS_VARIANTS = {
    Mailing.Status.DRAFT: "default",
    Mailing.Status.SENDING: "info",
    Mailing.Status.SENT: "success",
}
DELIVERY_VARIANTS = {
    Status.PENDING: "default",
    Status.READY: "info",
    Status.SENDING: "info",
    Status.SENT: "success",
    Status.FAILED: "danger",
    Status.SKIPPED: "warning",
}


def _label(text: str, variant: str) -> str:
    return render_to_string("unfold/helpers/label.html", {"text": text, "variant": variant})


class MailingChangeList(PerPageMixin, ChangeList):
    pass


@admin.register(Mailing)
class MailingAdmin(ModelAdmin):
    form = MailingForm
    list_display = [
        "name",
        "environment",
        "audience_label",
        "status_label",
        "recipients",
        "sent",
        "failed",
        "skipped",
        "started_at",
    ]
    list_display_links = ["name"]
    list_filter = ["status", "environment", "audience"]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["name", "subject"]
    search_help_text = "Name or subject"
    list_select_related = ["environment", "customer_group", "segment"]
    list_before_template = "admin/mailings/mailing/list_toolbar.html"
    actions_row = ["edit_mailing", "preview_mailing", "send_mailing", "open_progress"]
    # The same on the mailing's own page.
    actions_detail = ["preview_mailing", "test_mailing", "send_mailing"]
    fieldsets = [
        (None, {"fields": ["environment", "name", "sender", "subject"]}),
        ("Message", {"fields": ["html_body", "text_body"]}),
        ("Recipients", {"fields": ["audience", "customer_group", "segment", "email_list"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Mailing]:
        # The outcome counts of a page of mailings in the list's own query, sortable.
        def counted(status: str) -> Count:
            return Count("deliveries", filter=Q(deliveries__status=status))

        return (
            super()
            .get_queryset(request)
            .annotate(
                n_sent=counted(Status.SENT),
                n_failed=counted(Status.FAILED),
                n_skipped=counted(Status.SKIPPED),
            )
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return MailingChangeList

    @admin.display(description="Recipients", ordering="audience")
    def audience_label(self, mailing: Mailing) -> str:
        if mailing.audience == Mailing.Audience.GROUP:
            if mailing.customer_group_id:
                return f"Group: {mailing.customer_group}"
            return f"Group: {mailing.customer_group_name or '?'} (deleted)"
        if mailing.audience == Mailing.Audience.SEGMENT:
            return f"Segment: {mailing.segment or '(deleted)'}"
        if mailing.audience == Mailing.Audience.EMAIL_LIST:
            return f"List: {mailing.email_list_name}"
        return "All with marketing consent"

    @admin.display(description="Status", ordering="status")
    def status_label(self, mailing: Mailing) -> str:
        return _label(mailing.get_status_display(), STATUS_VARIANTS[Mailing.Status(mailing.status)])

    @admin.display(description="Mailed", ordering="recipient_count")
    def recipients(self, mailing: Mailing) -> str:
        return f"{mailing.recipient_count:,}" if mailing.status != Mailing.Status.DRAFT else "—"

    @admin.display(description="Sent", ordering="n_sent")
    def sent(self, mailing: Mailing) -> str:
        return f"{mailing.n_sent:,}"  # type: ignore[attr-defined]

    @admin.display(description="Failed", ordering="n_failed")
    def failed(self, mailing: Mailing) -> str:
        return f"{mailing.n_failed:,}"  # type: ignore[attr-defined]

    @admin.display(description="Skipped", ordering="n_skipped")
    def skipped(self, mailing: Mailing) -> str:
        return f"{mailing.n_skipped:,}"  # type: ignore[attr-defined]

    # --- the draft form ---------------------------------------------------------------------------------
    def get_readonly_fields(self, request: HttpRequest, obj: Mailing | None = None) -> list[str]:
        return ["environment"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Mailing, form: Any, change: bool) -> None:
        environment = obj.environment if change else form.cleaned_data["environment"]
        saved = mailing_save(
            environment=environment,
            data=form.mailing_input(),
            mailing=obj if change else None,
            actor=request.user,
        )
        for model_field in Mailing._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(saved, model_field.attname))

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # mailing_save wrote it

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # mailing_save wrote it

    def response_add(
        self, request: HttpRequest, obj: Mailing, post_url_continue: str | None = None
    ) -> HttpResponse:
        if "_continue" in request.POST or "_addanother" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        messages.success(request, f"Draft “{obj}” saved. Preview it, then send it.")
        return redirect("admin:mailings_mailing_preview", obj.pk)

    def has_delete_permission(self, request: HttpRequest, obj: Mailing | None = None) -> bool:
        if obj is not None and obj.status == Mailing.Status.SENDING:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Mailing) -> None:
        mailing_delete(mailing=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Mailing]) -> None:
        for mailing in queryset:
            mailing_delete(mailing=mailing, actor=request.user)

    def log_deletion(self, request: HttpRequest, obj: Any, object_repr: str) -> Any:
        return None  # mailing_delete wrote it

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        mailing = self._mailing(request, object_id)
        if mailing.status != Mailing.Status.DRAFT:
            return self.progress_view(request, mailing.pk)
        return super().change_view(request, object_id, form_url, extra_context)

    # --- the extra pages --------------------------------------------------------------------------------
    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:mailing_id>/preview/", wrap(self.preview_view), name="mailings_mailing_preview"),
            path("<int:mailing_id>/send/", wrap(self.send_view), name="mailings_mailing_send"),
            path("<int:mailing_id>/test/", wrap(self.test_view), name="mailings_mailing_test"),
            path("<int:mailing_id>/progress/", wrap(self.progress_view), name="mailings_mailing_progress"),
            path("<int:mailing_id>/status/", wrap(self.status_view), name="mailings_mailing_status"),
            path("<int:mailing_id>/resume/", wrap(self.resume_view), name="mailings_mailing_resume"),
            *super().get_urls(),
        ]

    def _mailing(self, request: HttpRequest, mailing_id: Any) -> Mailing:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return get_object_or_404(
            Mailing.objects.select_related("environment", "customer_group", "segment"), pk=mailing_id
        )

    def _can_send(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("mailings.send_mailing"))

    def _page(
        self, request: HttpRequest, template: str, mailing: Mailing, **context: Any
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            f"admin/mailings/mailing/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "mailing": mailing,
                "can_send": self._can_send(request),
                "has_change_permission": self.has_change_permission(request, mailing),
                **context,
            },
        )

    def preview_view(self, request: HttpRequest, mailing_id: int) -> HttpResponse:
        mailing = self._mailing(request, mailing_id)
        # Without a choice yet, the first customer the mailing would reach.
        first = selectors.first_recipient_email(mailing)
        form = PreviewForm(request.GET or ({"customer": first} if first else None), mailing=mailing)
        preview, error = None, ""
        if form.is_valid():
            try:
                preview = mailing_preview(mailing=mailing, profile=form.cleaned_data["customer"])
            except DomainError as exc:
                error = exc.message
        return self._page(
            request,
            "preview.html",
            mailing,
            title=f"Preview: {mailing}",
            form=form,
            preview=preview,
            error=error,
            customer=form.cleaned_data.get("customer") if form.is_valid() else None,
        )

    def test_view(self, request: HttpRequest, mailing_id: int) -> HttpResponseBase:
        """Send the signed-in staff user the message as one customer would get it (no code issued)."""
        mailing = self._mailing(request, mailing_id)
        first = selectors.first_recipient_email(mailing)
        data = request.POST if request.method == "POST" else ({"customer": first} if first else None)
        form = PreviewForm(data, mailing=mailing)
        form.fields["customer"].help_text = "Whose message to send you: it is rendered for this customer."
        to = getattr(request.user, "email", "") or ""
        if request.method == "POST" and form.is_valid():
            customer = form.cleaned_data["customer"]
            try:
                mailing_send_test(mailing=mailing, profile=customer, actor=request.user)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request,
                    f"Test message for {customer.email} sent to {to}. No promo code was issued: "
                    f"codes show as {TEST_CODE}.",
                )
                return redirect("admin:mailings_mailing_test", mailing.pk)
        return self._page(
            request, "test.html", mailing, title=f"Send a test of “{mailing}”", form=form, to=to
        )

    def send_view(self, request: HttpRequest, mailing_id: int) -> HttpResponseBase:
        mailing = self._mailing(request, mailing_id)
        if mailing.status != Mailing.Status.DRAFT:
            return redirect("admin:mailings_mailing_progress", mailing.pk)
        if request.method == "POST":
            if not self._can_send(request):
                raise PermissionDenied
            try:
                mailing_start(mailing=mailing, actor=request.user)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"Sending “{mailing}”.")
                return redirect("admin:mailings_mailing_progress", mailing.pk)
        audience = selectors.audience_count(mailing)
        recipients = audience.mailed
        needs = selectors.group_needs(mailing, recipients)
        problems = template_problems(environment=mailing.environment, templates=mailing.templates)
        return self._page(
            request,
            "send.html",
            mailing,
            title=f"Send “{mailing}”?",
            recipients=recipients,
            audience=audience,
            empty_repeats=selectors.empty_last_codes(mailing),
            needs=needs,
            short=[need for need in needs if not need.enough],
            problems=problems,
        )

    def progress_view(self, request: HttpRequest, mailing_id: int) -> HttpResponse:
        mailing = self._mailing(request, mailing_id)
        progress = selectors.mailing_progress(mailing)
        deliveries_url = (
            reverse("admin:mailings_mailingdelivery_changelist") + f"?mailing__id__exact={mailing.pk}"
        )
        return self._page(
            request,
            "progress.html",
            mailing,
            title=str(mailing),
            progress=progress,
            status_variant=STATUS_VARIANTS[Mailing.Status(mailing.status)],
            stalled=selectors.mailing_stalled(mailing),
            deliveries_url=deliveries_url,
            # (label, element id, count, the deliveries behind it) of each outcome.
            outcome=[
                (
                    status.label,
                    f"mailing-{status.value}",
                    progress.counts.get(status, 0),
                    f"{deliveries_url}&status__exact={status.value}",
                )
                for status in (Status.SENT, Status.FAILED, Status.SKIPPED)
            ],
        )

    def status_view(self, request: HttpRequest, mailing_id: int) -> JsonResponse:
        response = JsonResponse(selectors.mailing_progress(self._mailing(request, mailing_id)).as_json())
        response["Cache-Control"] = "no-store"
        return response

    def resume_view(self, request: HttpRequest, mailing_id: int) -> HttpResponseBase:
        mailing = self._mailing(request, mailing_id)
        if request.method != "POST" or not self._can_send(request):
            raise PermissionDenied
        try:
            mailing_resume(mailing=mailing, actor=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Sending resumed: recipients already mailed are not mailed again.")
        return redirect("admin:mailings_mailing_progress", mailing.pk)

    # Row actions (the "..." menu of each row).
    @action(description="Edit", icon="edit", url_path="edit")
    def edit_mailing(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:mailings_mailing_change", object_id)

    @action(description="Preview", icon="visibility", url_path="preview-row")
    def preview_mailing(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:mailings_mailing_preview", object_id)

    @action(description="Send a test to me", icon="forward_to_inbox", url_path="test-row")
    def test_mailing(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:mailings_mailing_test", object_id)

    @action(description="Send…", icon="send", url_path="send-row")
    def send_mailing(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:mailings_mailing_send", object_id)

    @action(description="Progress and deliveries", icon="monitoring", url_path="progress-row")
    def open_progress(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:mailings_mailing_progress", object_id)


class DeliveryChangeList(PerPageMixin, ChangeList):
    pass


@admin.register(MailingDelivery)
class MailingDeliveryAdmin(ModelAdmin):
    """Read-only: each recipient's outcome and the message exactly as rendered for them."""

    list_display = ["email", "mailing", "status_label", "reason", "sent_at"]
    list_filter = ["status", "mailing"]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["email"]
    search_help_text = "Email"
    list_select_related = ["mailing"]
    readonly_fields = [
        "mailing",
        "email",
        "profile_link",
        "status",
        "reason",
        "prepared_at",
        "sent_at",
        "rendered_subject",
        "rendered_text",
        "rendered_html",
        "issued_codes",
    ]
    fields = readonly_fields

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return DeliveryChangeList

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Status", ordering="status")
    def status_label(self, delivery: MailingDelivery) -> str:
        return _label(delivery.get_status_display(), DELIVERY_VARIANTS[Status(delivery.status)])

    @admin.display(description="Customer")
    def profile_link(self, delivery: MailingDelivery) -> str:
        if delivery.profile_id is None:
            return "—"
        url = reverse("admin:customers_customerprofile_change", args=[delivery.profile_id])
        return format_html('<a href="{}" class="text-primary-600">{}</a>', url, delivery.email)

    def _message(self, delivery: MailingDelivery) -> tuple[str, str, str]:
        # The three fields of one page show one message: rendered once (a prepared one is rendered on demand).
        if not hasattr(delivery, "_message"):
            delivery._message = selectors.delivery_message(delivery) or ("", "", "")  # type: ignore[attr-defined]
        return delivery._message  # type: ignore[attr-defined,no-any-return]

    @admin.display(description="Subject")
    def rendered_subject(self, delivery: MailingDelivery) -> str:
        return self._message(delivery)[0] or "—"

    @admin.display(description="Text")
    def rendered_text(self, delivery: MailingDelivery) -> str:
        text = self._message(delivery)[2]
        return format_html(
            '<pre class="whitespace-pre-wrap text-sm" id="delivery-text">{}</pre>', text or "—"
        )

    @admin.display(description="HTML")
    def rendered_html(self, delivery: MailingDelivery) -> str:
        html = self._message(delivery)[1]
        if not html:
            return "—"
        # srcdoc in an iframe with every sandbox restriction: the message's HTML cannot run script or
        # reach the back office.
        return format_html(
            '<iframe id="delivery-html" sandbox="" srcdoc="{}" title="Message" '
            'class="bg-white border border-base-200 rounded-default w-full" style="height: 28rem"></iframe>',
            html,
        )

    @admin.display(description="Promo codes in this message")
    def issued_codes(self, delivery: MailingDelivery) -> str:
        issues = mailing_issues(mailing_id=delivery.mailing_id, profile_id=delivery.profile_id)
        shown = [f"{issue.code} ({issue.group_name}, {issue.get_kind_display().lower()})" for issue in issues]
        return ", ".join(shown) or "—"
