"""Back office for promo codes: the group list with its code counts, the group form that uploads codes
(pasted or as a file), the delete confirmation, and the Promo codes tab of a customer.

Every write is a service and every count a selector; this module only parses, asks and renders.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin
from unfold.decorators import action
from unfold.views import ChangeList

from patronage.core.admin_errors import DomainErrorsAsMessages
from patronage.core.admin_paging import PerPageMixin
from patronage.customers.admin import PROFILE_TABS, DrawnProfileTab
from patronage.customers.models import CustomerProfile

from . import selectors
from .forms import PromoCodeGroupForm
from .models import PromoCodeGroup, PromoCodeIssue
from .services import (
    UploadResult,
    promo_code_group_create,
    promo_code_group_delete,
    promo_code_group_update,
    promo_codes_upload,
)

# A message longer than this stops being read; the total says how many more there are.
PROBLEMS_SHOWN = 50


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def report_upload(request: HttpRequest, group: PromoCodeGroup, result: UploadResult) -> None:
    """The upload's counts, then each problem with its line number (the first ``PROBLEMS_SHOWN``)."""
    summary = (
        f"Upload to “{group.name}”: {result.added} added, {result.duplicates} duplicate, "
        f"{result.invalid} invalid."
    )
    skipped = result.duplicates + result.invalid
    messages.add_message(request, messages.WARNING if skipped else messages.SUCCESS, summary)
    if not result.problems:
        return
    # The service's details already start with "Line N:".
    shown = result.problems[:PROBLEMS_SHOWN]
    items = format_html_join("", "<li>{}</li>", ((problem.details,) for problem in shown))
    tail = (
        format_html("<p>Showing the first {} of {} skipped lines.</p>", len(shown), skipped)
        if len(result.problems) > len(shown)
        else ""
    )
    messages.warning(
        request,
        format_html(
            '<div class="upload-problems"><p>{} skipped:</p><ul class="list-disc ml-5">{}</ul>{}</div>',
            _plural(skipped, "line"),
            items,
            tail,
        ),
    )


class PromoCodeGroupChangeList(PerPageMixin, ChangeList):
    pass


@admin.register(PromoCodeGroup)
class PromoCodeGroupAdmin(DomainErrorsAsMessages, ModelAdmin):
    form = PromoCodeGroupForm
    list_display = ["name", "environment", "total", "active", "issued", "redeemed"]
    list_display_links = ["name"]
    list_filter = ["environment"]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["name"]
    search_help_text = "Group name"
    list_select_related = ["environment"]
    list_before_template = "admin/promocodes/promocodegroup/list_toolbar.html"
    actions_row = ["edit_group", "delete_group"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromoCodeGroup]:
        return selectors.with_counts(super().get_queryset(request))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return PromoCodeGroupChangeList

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Django's bulk delete would skip our confirmation (what happens to issued codes).
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="Total", ordering="total")
    def total(self, group: PromoCodeGroup) -> int:
        return int(group.total)  # type: ignore[attr-defined]

    @admin.display(description="Active", ordering="active")
    def active(self, group: PromoCodeGroup) -> int:
        return int(group.active)  # type: ignore[attr-defined]

    @admin.display(description="Issued", ordering="issued")
    def issued(self, group: PromoCodeGroup) -> int:
        return int(group.issued)  # type: ignore[attr-defined]

    @admin.display(description="Redeemed", ordering="redeemed")
    def redeemed(self, group: PromoCodeGroup) -> int:
        return int(group.redeemed)  # type: ignore[attr-defined]

    @admin.display(description="Codes")
    def code_counts(self, group: PromoCodeGroup) -> str:
        counts = selectors.group_counts(group)
        return (
            f"{counts.total} in all: {counts.active} active (not yet issued), {counts.issued} issued, "
            f"{counts.redeemed} redeemed"
        )

    def get_fieldsets(self, request: HttpRequest, obj: PromoCodeGroup | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": ["environment", "name", "description", "codes", "codes_file"]})]
        return [
            (None, {"fields": ["environment", "name", "description", "code_counts"]}),
            ("Upload more codes", {"fields": ["codes", "codes_file"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: PromoCodeGroup | None = None) -> list[str]:
        # A code is unique within its environment: moving the group would move its codes.
        return ["environment", "code_counts"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: PromoCodeGroup, form: Any, change: bool) -> None:
        data = form.cleaned_data
        lines = form.code_lines()
        if change:
            group = promo_code_group_update(
                group=obj, name=data["name"], description=data.get("description") or "", actor=request.user
            )
            result = promo_codes_upload(group=group, lines=lines, actor=request.user) if lines else None
        else:
            group, result = promo_code_group_create(
                environment=data["environment"],
                name=data["name"],
                description=data.get("description") or "",
                codes=lines,
                actor=request.user,
            )
        for model_field in PromoCodeGroup._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(group, model_field.attname))
        if lines and result is not None:
            report_upload(request, group, result)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # promo_code_group_create wrote it

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # promo_code_group_update wrote it

    def _changelist_url(self) -> str:
        return reverse("admin:promocodes_promocodegroup_changelist")

    # Row actions (the "..." menu of each row).

    @action(description="Edit", icon="edit", url_path="edit")
    def edit_group(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:promocodes_promocodegroup_change", object_id)

    @action(description="Delete", icon="delete", url_path="delete-group", permissions=["delete"])
    def delete_group(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:promocodes_promocodegroup_delete", object_id)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Our confirmation: what happens to issued codes, instead of Django's list of every code."""
        group = get_object_or_404(PromoCodeGroup.objects.select_related("environment"), pk=object_id)
        if not self.has_delete_permission(request, group):
            return redirect(self._changelist_url())
        if request.method == "POST":
            name, codes = group.name, selectors.group_counts(group).total
            kept = promo_code_group_delete(group=group, actor=request.user)
            self.message_user(
                request,
                f"Deleted the group “{name}” and its {_plural(codes, 'code')}. The customers' history of "
                f"{_plural(kept, 'issued code')} is kept.",
                messages.SUCCESS,
            )
            return redirect(self._changelist_url())
        return TemplateResponse(
            request,
            "admin/promocodes/promocodegroup/delete_confirm.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Delete group of promo codes?",
                "group": group,
                "counts": selectors.group_counts(group),
            },
        )


# --- the customer's Promo codes tab -------------------------------------------------------------------------


class CustomerPromoCodesTab(DrawnProfileTab):
    """Read-only: every code issued to the customer, newest first."""

    model = PromoCodeIssue
    verbose_name = "promo code"
    verbose_name_plural = "Promo codes"
    template = "admin/promocodes/customer_promo_codes_tab.html"

    def tab_rows(self, profile: CustomerProfile) -> list[Any]:
        return selectors.customer_issues(profile)


PROFILE_TABS.append(CustomerPromoCodesTab)
