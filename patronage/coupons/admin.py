"""Back office for coupons: the list (status, usage, filters), generating from a pattern (at once or in the
background with a progress page), personal codes for recipients, CSV import and export, editing one coupon,
deleting the selected ones or every coupon the filters match, and the promo-code groups a campaign accepts.

Every write is a service of ``services`` and the list is ``selectors.coupons_filtered``: the rows shown, the
rows exported and the rows "delete all matching" removes are the same query. This module only parses,
asks and renders.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin.choice_filters import RadioFilter
from unfold.contrib.filters.admin.dropdown_filters import DropdownFilter
from unfold.contrib.filters.admin.text_filters import TextFilter
from unfold.contrib.filters.forms import HorizontalRadioForm
from unfold.decorators import action
from unfold.views import ChangeList

from patronage.campaigns.models import Campaign
from patronage.core import clock
from patronage.core.admin_errors import DomainErrorsAsMessages
from patronage.core.admin_paging import PER_PAGE_VAR, PerPageMixin
from patronage.core.errors import DomainError
from patronage.core.money import format_money
from patronage.workspace.models import Application

from . import selectors, services
from .exports import coupons_export_rows
from .forms import (
    CampaignChoiceForm,
    CodeSourcesForm,
    CouponForm,
    GenerateCouponsForm,
    RecipientsForm,
    live_campaigns,
)
from .imports import KIND as COUPON_IMPORT_KIND
from .models import CampaignCodeSource, Coupon, CouponGeneration, GenerationStatus
from .selectors import CouponFilters

# Up to this many coupons are made while the page waits; more start a background job with a progress page.
DEFAULT_SYNC_LIMIT = 20_000
STATUS = {
    "usable": ("Usable", "bg-green-100 text-green-700 dark:bg-green-500/20 dark:text-green-400"),
    "used": ("Used up", "bg-base-100 text-base-700 dark:bg-base-500/20 dark:text-base-200"),
    "expired": ("Expired", "bg-orange-100 text-orange-700 dark:bg-orange-500/20 dark:text-orange-400"),
    "pending": ("Not started", "bg-blue-100 text-blue-700 dark:bg-blue-500/20 dark:text-blue-400"),
}
# The list's URL words -> the selector's filters. Yes/no filters say "yes" / "no".
FILTER_PARAMETERS = ("campaign", "batch", "usable", "redeemed", "valid", "recipient")
VALIDITY = {"expired": "Expired", "validNow": "Valid now", "validFuture": "Not started yet"}


def sync_limit() -> int:
    return int(getattr(settings, "PATRONAGE_COUPONS_SYNC_LIMIT", DEFAULT_SYNC_LIMIT))


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def coupon_status(coupon: Coupon, now: dt.datetime) -> str:
    if coupon.expiry_date is not None and coupon.expiry_date <= now:
        return "expired"
    if coupon.start_date is not None and coupon.start_date > now:
        return "pending"
    if coupon.usage_limit and coupon.usage_counter >= coupon.usage_limit:
        return "used"
    if coupon.discount_limit is not None and coupon.discount_counter >= coupon.discount_limit:
        return "used"
    return "usable"


def local_time(coupon: Coupon, moment: dt.datetime | None) -> str:
    """A moment in the time zone of the coupon's application, as the campaign list shows its schedule."""
    if moment is None:
        return "—"
    zone = ZoneInfo(coupon.campaign.application.time_zone or "UTC")
    return format_html(
        '<span class="whitespace-nowrap">{}</span>', f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"
    )


def status_badge(status: str) -> str:
    label, classes = STATUS[status]
    return format_html(
        '<span class="{} font-semibold inline-block leading-normal px-2 py-0.5 rounded-default text-xs '
        'uppercase whitespace-nowrap" data-status="{}">{}</span>',
        classes,
        status,
        label,
    )


def list_filters(params: Any) -> tuple[Campaign | None, CouponFilters]:
    """The campaign and the selector's filters a list URL means (its search is the value filter)."""
    raw = {name: (params.get(name) or "").strip() for name in (*FILTER_PARAMETERS, SEARCH_VAR)}
    campaign = None
    if raw["campaign"].isdigit():
        campaign = live_campaigns().filter(pk=int(raw["campaign"])).first()
    yes_no = {"yes": True, "no": False}
    filters = CouponFilters(
        value=raw[SEARCH_VAR],
        batch_id=raw["batch"],
        recipient_integration_id=raw["recipient"],
        usable=yes_no.get(raw["usable"]),
        redeemed=yes_no.get(raw["redeemed"]),
        valid=raw["valid"] if raw["valid"] in VALIDITY else "",
    )
    return campaign, filters


def kept_filters(params: Any) -> list[tuple[str, str]]:
    """The list's filters and search of a query string, to send back to the list."""
    return [(name, str(params.get(name))) for name in (*FILTER_PARAMETERS, SEARCH_VAR) if params.get(name)]


def coupons_listed(campaign: Campaign | None, filters: CouponFilters) -> QuerySet[Coupon]:
    """The selector's coupons of the campaign, or of every application when no campaign is chosen."""
    if campaign is not None:
        return selectors.coupons_filtered(campaign=campaign, filters=filters)
    rows = Coupon.objects.none()
    for application in Application.objects.order_by("pk"):
        rows = rows | selectors.coupons_filtered(application=application, filters=filters)
    return rows


# --- list filters: they draw the choices; the selector filters (CouponChangeList.get_queryset) -------------


class _DrawnOnly:
    def queryset(self, request: HttpRequest, queryset: QuerySet[Coupon]) -> QuerySet[Coupon] | None:
        return None


class CampaignFilter(_DrawnOnly, DropdownFilter):
    title = "campaign"
    parameter_name = "campaign"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(c.pk), f"{c.name} ({c.application.name})") for c in live_campaigns()]


class BatchFilter(_DrawnOnly, TextFilter):
    title = "batch"
    parameter_name = "batch"


class RecipientFilter(_DrawnOnly, TextFilter):
    title = "recipient"
    parameter_name = "recipient"


class YesNoFilter(_DrawnOnly, RadioFilter):
    form_class = HorizontalRadioForm

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]


class UsableFilter(YesNoFilter):
    title = "usable"
    parameter_name = "usable"


class RedeemedFilter(YesNoFilter):
    title = "redeemed"
    parameter_name = "redeemed"


class ValidityFilter(_DrawnOnly, RadioFilter):
    title = "validity"
    parameter_name = "valid"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(VALIDITY.items())


class CouponChangeList(PerPageMixin, ChangeList):
    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        self.model_admin_request = request
        self.campaign, self.coupon_filters = list_filters(request.GET)
        self.root_queryset = coupons_listed(self.campaign, self.coupon_filters).select_related(
            "campaign__application"
        )
        return super().get_queryset(request, exclude_parameters)

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.now = clock.now()
        for coupon in self.result_list:
            coupon.list_status = coupon_status(coupon, self.now)

    def filtered_query(self) -> str:
        """The list's filters and search, for the export and "delete all matching" links."""
        return self.get_query_string(remove=[PER_PAGE_VAR, "p", "o"])

    def toolbar_links(self) -> dict[str, str]:
        """The toolbar's buttons: new coupons go to the filtered campaign (else the page asks which)."""
        admin_: CouponAdmin = self.model_admin  # type: ignore[assignment]
        request = self.model_admin_request
        for_campaign = f"?campaign={self.campaign.pk}" if self.campaign is not None else ""
        links = {"export": reverse("admin:coupons_coupon_export") + self.filtered_query()}
        if admin_.can_add(request):
            links["generate"] = reverse("admin:coupons_coupon_generate") + for_campaign
            links["recipients"] = reverse("admin:coupons_coupon_recipients") + for_campaign
            links["import"] = reverse("admin:coupons_coupon_import") + for_campaign
        if self.campaign is not None:
            links["sources"] = reverse("admin:coupons_coupon_code_sources") + for_campaign
            if admin_.has_delete_permission(request):
                links["delete"] = reverse("admin:coupons_coupon_delete_matching") + self.filtered_query()
        return links


SUMMARY = ["value", "campaign_link", "usage", "discount_usage", "reservations", "batch", "created"]


@admin.register(Coupon)
class CouponAdmin(DomainErrorsAsMessages, ModelAdmin):
    form = CouponForm
    list_display = [
        "code",
        "campaign_link",
        "status",
        "used",
        "recipient",
        "batch",
        "starts",
        "expires",
        "created_at",
    ]
    list_display_links = ["code"]
    list_filter = [CampaignFilter, BatchFilter, UsableFilter, RedeemedFilter, ValidityFilter, RecipientFilter]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["value"]  # the selector searches: this only turns the box on
    search_help_text = "Coupon code (or part of it)"
    show_full_result_count = False
    ordering = ["-created", "-id"]
    list_before_template = "admin/coupons/coupon/list_toolbar.html"
    actions = ["export_selected", "delete_selected_coupons"]
    readonly_fields = [
        "value",
        "campaign_link",
        "usage",
        "discount_usage",
        "reservations",
        "batch",
        "created",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "value",
                    "campaign_link",
                    "usage",
                    "discount_usage",
                    "reservations",
                    "batch",
                    "created",
                ]
            },
        ),
        (
            "Limits and dates",
            {"fields": ["usage_limit", "discount_limit", "reservation_limit", "start_date", "expiry_date"]},
        ),
        (
            "Who may use it",
            {"fields": ["recipient_integration_id", "is_reservation_mandatory", "implicitly_reserved"]},
        ),
        ("Attributes", {"fields": ["attributes"]}),
    ]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CouponChangeList

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Coupon], search_term: str) -> Any:
        return queryset, False  # the selector's value filter did it

    def get_queryset(self, request: HttpRequest) -> QuerySet[Coupon]:
        return super().get_queryset(request).select_related("campaign__application")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # coupons are generated, made for recipients or imported: the toolbar's buttons

    def can_add(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # ours says what it deletes, through the service
        if not self.has_delete_permission(request):
            actions.pop("delete_selected_coupons", None)
        return actions

    class Media:
        css = {"all": ["coupons/coupons.css"]}

    # Columns.

    @admin.display(description="Code", ordering="value")
    def code(self, coupon: Coupon) -> str:
        return format_html('<span class="coupon-mono whitespace-nowrap">{}</span>', coupon.value)

    @admin.display(description="Starts", ordering="start_date")
    def starts(self, coupon: Coupon) -> str:
        return local_time(coupon, coupon.start_date)

    @admin.display(description="Expires", ordering="expiry_date")
    def expires(self, coupon: Coupon) -> str:
        return local_time(coupon, coupon.expiry_date)

    @admin.display(description="Created", ordering="created")
    def created_at(self, coupon: Coupon) -> str:
        return local_time(coupon, coupon.created)

    @admin.display(description="Campaign", ordering="campaign__name")
    def campaign_link(self, coupon: Coupon) -> str:
        url = reverse("admin:coupons_coupon_changelist") + f"?campaign={coupon.campaign_id}"
        return format_html('<a href="{}" class="text-primary-600">{}</a>', url, coupon.campaign.name)

    @admin.display(description="Status")
    def status(self, coupon: Coupon) -> str:
        return status_badge(getattr(coupon, "list_status", None) or coupon_status(coupon, clock.now()))

    @admin.display(description="Used", ordering="usage_counter")
    def used(self, coupon: Coupon) -> str:
        limit = f"{coupon.usage_limit:,}" if coupon.usage_limit else "∞"
        return f"{coupon.usage_counter:,} / {limit}"

    @admin.display(description="Recipient", ordering="recipient_integration_id")
    def recipient(self, coupon: Coupon) -> str:
        return coupon.recipient_integration_id or "—"

    @admin.display(description="Batch", ordering="batch_id")
    def batch(self, coupon: Coupon) -> str:
        if not coupon.batch_id:
            return "—"
        url = (
            reverse("admin:coupons_coupon_changelist")
            + "?"
            + urlencode({"campaign": str(coupon.campaign_id), "batch": coupon.batch_id})
        )
        return format_html('<a href="{}" class="font-mono text-primary-600">{}</a>', url, coupon.batch_id)

    @admin.display(description="Redemptions")
    def usage(self, coupon: Coupon) -> str:
        limit = f"{coupon.usage_limit:,}" if coupon.usage_limit else "unlimited"
        return f"{coupon.usage_counter:,} of {limit}"

    @admin.display(description="Discount drawn")
    def discount_usage(self, coupon: Coupon) -> str:
        currency = coupon.campaign.application.currency
        used = format_money(coupon.discount_counter, currency)
        if coupon.discount_limit is None:
            return f"{used} (no discount limit)"
        return f"{used} of {format_money(coupon.discount_limit, currency)}"

    @admin.display(description="Reservations")
    def reservations(self, coupon: Coupon) -> str:
        limit = f"{coupon.reservation_limit:,}" if coupon.reservation_limit is not None else "no limit"
        return f"{coupon.reservation_counter:,} by rules ({limit}); {coupon.reservations.count():,} holders"

    # Editing: the service writes (and audits).

    def save_model(self, request: HttpRequest, obj: Coupon, form: Any, change: bool) -> None:
        stored = Coupon.objects.get(pk=obj.pk)
        saved = services.coupon_update(coupon=stored, data=dict(form.cleaned_data), actor=request.user)
        for model_field in Coupon._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(saved, model_field.attname))

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # coupon_update wrote it

    def delete_model(self, request: HttpRequest, obj: Coupon) -> None:
        services.coupon_delete(coupon=obj, actor=request.user)

    # Actions on the selected rows.

    @action(description="Export selected coupons as CSV", icon="download")
    def export_selected(self, request: HttpRequest, queryset: QuerySet[Coupon]) -> HttpResponseBase:
        return self._csv(queryset, "coupons-selected")

    @action(description="Delete selected coupons", icon="delete", permissions=["delete"])
    def delete_selected_coupons(
        self, request: HttpRequest, queryset: QuerySet[Coupon]
    ) -> HttpResponseBase | None:
        ids = list(queryset.values_list("pk", flat=True))
        if request.POST.get("confirmed") == "yes":
            with transaction.atomic():
                deleted = 0
                for coupon in Coupon.objects.filter(pk__in=ids).select_related("campaign"):
                    services.coupon_delete(coupon=coupon, actor=request.user)
                    deleted += 1
            self.message_user(request, f"Deleted {_plural(deleted, 'coupon')}.", messages.SUCCESS)
            return None
        return self._page(
            request,
            "delete_selected.html",
            title="Delete the selected coupons?",
            count=len(ids),
            examples=list(queryset.order_by("value").values_list("value", flat=True)[:10]),
            ids=ids,
            redeemed=queryset.filter(usage_counter__gt=0).count(),
        )

    # Pages of our own.

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("generate/", view(self.generate_view), name="coupons_coupon_generate"),
            path("generation/<int:pk>/", view(self.generation_view), name="coupons_coupon_generation"),
            path(
                "generation/<int:pk>/status/",
                view(self.generation_status_view),
                name="coupons_coupon_generation_status",
            ),
            path("recipients/", view(self.recipients_view), name="coupons_coupon_recipients"),
            path("import/", view(self.import_view), name="coupons_coupon_import"),
            path("export/", view(self.export_view), name="coupons_coupon_export"),
            path("delete-matching/", view(self.delete_matching_view), name="coupons_coupon_delete_matching"),
            path("code-sources/", view(self.code_sources_view), name="coupons_coupon_code_sources"),
            *super().get_urls(),
        ]

    def _page(self, request: HttpRequest, template: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(
            request,
            f"admin/coupons/coupon/{template}",
            {**self.admin_site.each_context(request), "opts": self.model._meta, "wide": WIDE, **context},
        )

    def _list_url(self, campaign: Campaign | None = None, **params: Any) -> str:
        url = reverse("admin:coupons_coupon_changelist")
        query = {"campaign": campaign.pk} if campaign is not None else {}
        query.update(params)
        return f"{url}?{urlencode(query)}" if query else url

    def _campaign(self, request: HttpRequest) -> Campaign | None:
        wanted = request.GET.get("campaign") or request.POST.get("campaign") or ""
        return live_campaigns().filter(pk=int(wanted)).first() if wanted.isdigit() else None

    def _choose_campaign(self, request: HttpRequest, title: str, purpose: str) -> TemplateResponse:
        return self._page(
            request,
            "choose_campaign.html",
            title=title,
            purpose=purpose,
            form=CampaignChoiceForm(request.GET or None),
        )

    def _need_add(self, request: HttpRequest) -> None:
        if not self.can_add(request):
            raise PermissionDenied

    def generate_view(self, request: HttpRequest) -> HttpResponseBase:
        """Coupons from a pattern: made now up to the sync limit, else a background job to watch."""
        self._need_add(request)
        campaign = self._campaign(request)
        if campaign is None:
            return self._choose_campaign(request, "Generate coupons", "Which campaign are the coupons for?")
        currency = campaign.application.currency
        form = GenerateCouponsForm(request.POST or None, currency=currency)
        if request.method == "POST" and form.is_valid():
            count = form.cleaned_data["count"]
            try:
                if count <= sync_limit():
                    coupons = services.coupons_create(
                        campaign=campaign,
                        count=count,
                        pattern=form.cleaned_data["pattern"],
                        alphabet=form.cleaned_data["alphabet"],
                        recipient_integration_id=form.cleaned_data.get("recipient_integration_id") or "",
                        actor=request.user,
                        **form.settings(),
                    )
                else:
                    generation = services.coupon_generation_start(
                        campaign=campaign, count=count, params=form.params(), actor=request.user
                    )
                    return redirect("admin:coupons_coupon_generation", generation.pk)
            except DomainError as exc:
                field = "pattern" if "pattern" in exc.message.lower() else None
                form.add_error(field, exc.message)
            else:
                batch = coupons[0].batch_id if coupons else ""
                self.message_user(
                    request,
                    f"Generated {_plural(len(coupons), 'coupon')} for “{campaign.name}”"
                    + (f" (batch {batch})." if batch else "."),
                    messages.SUCCESS,
                )
                return redirect(self._list_url(campaign, **({"batch": batch} if batch else {})))
        return self._page(
            request,
            "generate.html",
            title=f"Generate coupons for “{campaign.name}”",
            campaign=campaign,
            form=form,
            sections=sections(form, GENERATE_LAYOUT),
            sync_limit=sync_limit(),
            list_url=self._list_url(campaign),
        )

    def _generation(self, request: HttpRequest, pk: int) -> CouponGeneration:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(CouponGeneration.objects.select_related("campaign"), pk=pk)

    @staticmethod
    def _progress(generation: CouponGeneration) -> dict[str, Any]:
        requested = generation.requested or 1
        percent = (
            100 if generation.status == GenerationStatus.DONE else min(99, generation.made * 100 // requested)
        )
        return {
            "status": generation.status,
            "status_label": generation.get_status_display(),
            "made": generation.made,
            "requested": generation.requested,
            "percent": percent,
            "finished": generation.status in (GenerationStatus.DONE, GenerationStatus.FAILED),
            "error": generation.error,
        }

    def generation_view(self, request: HttpRequest, pk: int) -> HttpResponseBase:
        generation = self._generation(request, pk)
        return self._page(
            request,
            "generation.html",
            title=f"Generating coupons for “{generation.campaign.name}”",
            generation=generation,
            progress=self._progress(generation),
            batch_url=self._list_url(generation.campaign, batch=generation.batch_id),
            status_url=reverse("admin:coupons_coupon_generation_status", args=[generation.pk]),
        )

    def generation_status_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        return JsonResponse(self._progress(self._generation(request, pk)))

    def recipients_view(self, request: HttpRequest) -> HttpResponseBase:
        """One personal code per pasted customer integration ID."""
        self._need_add(request)
        campaign = self._campaign(request)
        if campaign is None:
            return self._choose_campaign(
                request, "Personal codes for customers", "Which campaign are the personal codes for?"
            )
        form = RecipientsForm(request.POST or None, currency=campaign.application.currency)
        if request.method == "POST" and form.is_valid():
            try:
                coupons = services.coupons_for_recipients(
                    campaign=campaign,
                    recipients=form.cleaned_data["recipients"],
                    pattern=form.cleaned_data["pattern"],
                    alphabet=form.cleaned_data["alphabet"],
                    actor=request.user,
                    **form.settings(),
                )
            except DomainError as exc:
                form.add_error("pattern" if "pattern" in exc.message.lower() else None, exc.message)
            else:
                batch = coupons[0].batch_id if coupons else ""
                self.message_user(
                    request,
                    f"Made {_plural(len(coupons), 'personal code')} for “{campaign.name}”, one per customer.",
                    messages.SUCCESS,
                )
                return redirect(self._list_url(campaign, **({"batch": batch} if batch else {})))
        return self._page(
            request,
            "recipients.html",
            title=f"Personal codes for “{campaign.name}”",
            campaign=campaign,
            form=form,
            sections=sections(form, RECIPIENTS_LAYOUT),
            list_url=self._list_url(campaign),
        )

    def import_view(self, request: HttpRequest) -> HttpResponseBase:
        """A CSV of coupons is an import of the "coupons" kind: Import/Export stores it, runs it in the
        background and shows its progress and bad lines; this only asks which campaign first."""
        self._need_add(request)
        campaign = self._campaign(request)
        if campaign is None:
            return self._choose_campaign(request, "Import coupons", "Which campaign are the coupons for?")
        query = urlencode({"kind": COUPON_IMPORT_KIND, "campaign": str(campaign.pk)})
        return redirect(reverse("admin:dataio_importjob_add") + f"?{query}")

    def _csv(self, queryset: QuerySet[Coupon], name: str) -> StreamingHttpResponse:
        response = StreamingHttpResponse(
            coupons_export_rows(queryset=queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{name}-{clock.now():%Y%m%d-%H%M}.csv"'
        return response

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """The CSV of exactly the coupons the list shows for this query string."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        campaign, filters = list_filters(request.GET)
        queryset = coupons_listed(campaign, filters)
        return self._csv(queryset, f"coupons-{campaign.pk}" if campaign else "coupons")

    def delete_matching_view(self, request: HttpRequest) -> HttpResponseBase:
        """Every coupon of a campaign the list's filters match, after a page that says how many."""
        if not self.has_delete_permission(request):
            raise PermissionDenied
        params = request.POST if request.method == "POST" else request.GET
        campaign, filters = list_filters(params)
        back = reverse("admin:coupons_coupon_changelist") + "?" + urlencode(kept_filters(params))
        if campaign is None:
            self.message_user(
                request,
                "Choose a campaign in the filters first: coupons are deleted one campaign at a time.",
                messages.ERROR,
            )
            return redirect(back)
        if request.method == "POST" and request.POST.get("confirmed") == "yes":
            deleted = services.coupons_delete(campaign=campaign, filters=filters, actor=request.user)
            self.message_user(
                request, f"Deleted {_plural(deleted, 'coupon')} of “{campaign.name}”.", messages.SUCCESS
            )
            return redirect(self._list_url(campaign))
        matching = selectors.coupons_filtered(campaign=campaign, filters=filters)
        return self._page(
            request,
            "delete_matching.html",
            title="Delete the matching coupons?",
            campaign=campaign,
            count=matching.count(),
            redeemed=matching.filter(usage_counter__gt=0).count(),
            examples=list(matching.order_by("value").values_list("value", flat=True)[:10]),
            described=describe_filters(filters),
            hidden=kept_filters(params),
            back=back,
        )

    def code_sources_view(self, request: HttpRequest) -> HttpResponseBase:
        """The promo-code groups whose issued codes a campaign accepts at checkout."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        campaign = self._campaign(request)
        if campaign is None:
            return self._choose_campaign(
                request, "Promo codes a campaign accepts", "Which campaign's accepted promo codes?"
            )
        chosen = list(campaign.code_sources.values_list("group_id", flat=True))
        form = CodeSourcesForm(request.POST or None, campaign=campaign, initial={"groups": chosen})
        if request.method == "POST":
            if not request.user.has_perm("coupons.change_campaigncodesource"):
                raise PermissionDenied
            if form.is_valid():
                try:
                    form.save(campaign=campaign, actor=request.user)
                except DomainError as exc:
                    form.add_error("groups", exc.message)
                else:
                    names = [g.name for g in form.cleaned_data["groups"]]
                    self.message_user(
                        request,
                        f"“{campaign.name}” accepts issued codes of: {', '.join(names)}."
                        if names
                        else f"“{campaign.name}” accepts no promo codes of groups.",
                        messages.SUCCESS,
                    )
                    return redirect(reverse("admin:coupons_coupon_code_sources") + f"?campaign={campaign.pk}")
        return self._page(
            request,
            "code_sources.html",
            title=f"Promo codes “{campaign.name}” accepts",
            campaign=campaign,
            form=form,
            can_change=request.user.has_perm("coupons.change_campaigncodesource"),
            list_url=self._list_url(campaign),
        )


def sections(form: Any, layout: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """A form's bound fields grouped as the page draws them (``_fields.html``)."""
    return [{"title": title, "fields": [form[name] for name in names]} for title, names in layout]


SETTINGS_LAYOUT = [
    ("Limits", ["usage_limit", "discount_limit", "reservation_limit"]),
    ("Dates", ["start_date", "expiry_date"]),
    ("Reservations and attributes", ["is_reservation_mandatory", "implicitly_reserved", "attributes"]),
]
GENERATE_LAYOUT = [
    ("Codes", ["count", "pattern", "alphabet", "recipient_integration_id"]),
    *SETTINGS_LAYOUT,
]
RECIPIENTS_LAYOUT = [
    ("Customers and codes", ["recipients", "pattern", "alphabet"]),
    *SETTINGS_LAYOUT[:2],
    ("", ["attributes"]),
]
# Fields that take both columns of a form (text areas, switches, the date-and-time pairs).
WIDE = {
    "recipients",
    "attributes",
    "start_date",
    "expiry_date",
    "is_reservation_mandatory",
    "implicitly_reserved",
}


def describe_filters(filters: CouponFilters) -> list[str]:
    """The filters in words, for the delete confirmation: ``batch b1``, ``never redeemed``."""
    said = []
    if filters.value:
        said.append(f"with “{filters.value}” in the code")
    if filters.batch_id:
        said.append(f"of batch {filters.batch_id}")
    if filters.recipient_integration_id:
        said.append(f"for the customer {filters.recipient_integration_id}")
    if filters.usable is not None:
        said.append("usable" if filters.usable else "used up")
    if filters.redeemed is not None:
        said.append("redeemed at least once" if filters.redeemed else "never redeemed")
    if filters.valid:
        said.append(VALIDITY[filters.valid].lower())
    return said


@admin.register(CampaignCodeSource)
class CampaignCodeSourceAdmin(ModelAdmin):
    """Which campaign accepts which group's codes, at a glance; choosing is the per-campaign page."""

    list_display = ["campaign", "group", "environment"]
    list_filter = ["campaign"]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["campaign__name", "group__name"]
    list_select_related = ["campaign", "group__environment"]
    list_before_template = "admin/coupons/campaigncodesource/list_toolbar.html"
    actions = None

    @admin.display(description="Environment")
    def environment(self, source: CampaignCodeSource) -> str:
        return str(source.group.environment)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


from . import admin_referrals  # noqa: E402, F401  (the referral pages register themselves)
