"""Back office for referral codes: the list (campaign, advocate, usable, expired; search by code; pages),
adding one code, editing, deleting with a confirmation, importing a CSV file (bad lines by number, all or
nothing) and exporting the codes the filters show.

Every write is a service of ``referrals``; this module only parses, asks and renders.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin.choice_filters import RadioFilter
from unfold.contrib.filters.admin.dropdown_filters import DropdownFilter
from unfold.contrib.filters.admin.text_filters import TextFilter
from unfold.contrib.filters.forms import HorizontalRadioForm
from unfold.decorators import action
from unfold.views import ChangeList
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminSplitDateTimeWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from patronage.campaigns.models import Campaign
from patronage.core import clock
from patronage.core.admin_errors import DomainErrorsAsMessages
from patronage.core.admin_paging import PER_PAGE_VAR, PerPageMixin
from patronage.core.errors import ValidationFailed

from . import referrals
from .models import MAX_USAGE_LIMIT, Referral

PROBLEMS_SHOWN = 50
EDITABLE = ("friend_integration_id", "usage_limit", "start_date", "expiry_date", "attributes")


def referral_campaigns() -> list[Campaign]:
    """Campaigns that may hold referral codes (feature "referrals"), by shop and name."""
    campaigns = Campaign.objects.filter(deleted_at=None).select_related("application")
    return [
        c for c in campaigns.order_by("application__name", "name") if referrals.FEATURE in (c.features or [])
    ]


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _problem_text(problem: Any) -> str:
    """A problem of the file as a line of the page: "line 3: ..." (the service's words start so)."""
    text = str(problem.details)
    if problem.line is not None and not text.lower().startswith("line"):
        return f"line {problem.line}: {text}"
    return text


# --- filters ----------------------------------------------------------------------------------------------


class CampaignFilter(DropdownFilter):
    title = "campaign"
    parameter_name = "campaign"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(c.pk), f"{c.name} ({c.application.name})") for c in referral_campaigns()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Referral]) -> QuerySet[Referral]:
        value = self.value()
        return queryset.filter(campaign_id=value) if value and value.isdigit() else queryset


class AdvocateFilter(TextFilter):
    title = "advocate"
    parameter_name = "advocate"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Referral]) -> QuerySet[Referral]:
        value = (self.value() or "").strip()
        return queryset.filter(advocate_integration_id=value) if value else queryset


class YesNoFilter(RadioFilter):
    form_class = HorizontalRadioForm

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]


class UsableFilter(YesNoFilter):
    title = "uses left"
    parameter_name = "usable"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Referral]) -> QuerySet[Referral]:
        left = Q(usage_limit=0) | Q(usage_counter__lt=F("usage_limit"))
        if self.value() == "yes":
            return queryset.filter(left)
        if self.value() == "no":
            return queryset.exclude(left)
        return queryset


class ExpiredFilter(YesNoFilter):
    title = "expired"
    parameter_name = "expired"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Referral]) -> QuerySet[Referral]:
        now = clock.now()
        if self.value() == "yes":
            return queryset.filter(expiry_date__lte=now)
        if self.value() == "no":
            return queryset.filter(Q(expiry_date=None) | Q(expiry_date__gt=now))
        return queryset


class ReferralChangeList(PerPageMixin, ChangeList):
    def export_url(self) -> str:
        return reverse("admin:coupons_referral_export") + self.get_query_string(
            remove=[PER_PAGE_VAR, "p", "o"]
        )


# --- forms ------------------------------------------------------------------------------------------------


def _date_field(label: str, help_text: str = "") -> forms.SplitDateTimeField:
    return forms.SplitDateTimeField(
        label=label, required=False, widget=UnfoldAdminSplitDateTimeWidget, help_text=help_text
    )


class ReferralForm(forms.ModelForm):
    """Adding (campaign, advocate, optional code) and editing (friend, limit, dates, attributes)."""

    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(),
        widget=UnfoldAdminSelectWidget,
        help_text="Campaigns with the Referrals feature.",
    )
    code = forms.CharField(
        required=False,
        max_length=100,
        widget=UnfoldAdminTextInputWidget,
        help_text="Leave empty to make one (REF-########). Stored in the shop's code case.",
    )
    advocate_integration_id = forms.CharField(
        label="Advocate",
        max_length=1000,
        widget=UnfoldAdminTextInputWidget,
        help_text="The customer's integration ID who shares the code.",
    )
    friend_integration_id = forms.CharField(
        label="Only for friend",
        required=False,
        max_length=1000,
        widget=UnfoldAdminTextInputWidget,
        help_text="Set: only this customer may use the code.",
    )
    usage_limit = forms.IntegerField(
        min_value=0,
        max_value=MAX_USAGE_LIMIT,
        initial=1,
        widget=UnfoldAdminTextInputWidget,
        help_text="How many orders may use the code; 0 = unlimited.",
    )
    start_date = _date_field("Starts", "Empty: usable at once.")
    expiry_date = _date_field("Expires", "Empty: never expires.")
    attributes = forms.JSONField(
        required=False,
        initial=dict,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text='A JSON object, e.g. {"channel": "email"}.',
    )

    class Meta:
        model = Referral
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = referral_campaigns()
        self.fields["campaign"].queryset = Campaign.objects.filter(pk__in=[c.pk for c in choices])  # type: ignore[attr-defined]
        self.fields["campaign"].label_from_instance = lambda c: f"{c.name} ({c.application.name})"  # type: ignore[attr-defined]
        if self.instance.pk:
            for name in ("campaign", "code", "advocate_integration_id"):
                self.fields.pop(name, None)
            for name in EDITABLE:
                self.initial[name] = getattr(self.instance, name)

    def clean_attributes(self) -> dict[str, Any]:
        value = self.cleaned_data.get("attributes")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Enter a JSON object, e.g. {"channel": "email"}.')
        return value

    def _post_clean(self) -> None:
        pass  # the services check and save; the model's own validation would only repeat them


class ImportForm(forms.Form):
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.none(), widget=UnfoldAdminSelectWidget)
    file = forms.FileField(
        label="CSV file",
        widget=UnfoldAdminFileFieldWidget,
        help_text="Columns: code, advocateprofileintegrationid (required), startdate, expirydate, limitval "
        "(default 1), attributes (a JSON object). An export of this page imports as it is.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = referral_campaigns()
        self.fields["campaign"].queryset = Campaign.objects.filter(pk__in=[c.pk for c in choices])  # type: ignore[attr-defined]
        self.fields["campaign"].label_from_instance = lambda c: f"{c.name} ({c.application.name})"  # type: ignore[attr-defined]


# --- the admin --------------------------------------------------------------------------------------------


@admin.register(Referral)
class ReferralAdmin(DomainErrorsAsMessages, ModelAdmin):
    form = ReferralForm
    list_display = [
        "code_shown",
        "campaign_name",
        "advocate_integration_id",
        "friend_integration_id",
        "uses",
        "status_shown",
        "start_date",
        "expiry_date",
        "created",
    ]
    list_display_links = ["code_shown"]
    list_filter = [CampaignFilter, AdvocateFilter, UsableFilter, ExpiredFilter]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["code"]
    search_help_text = "Referral code (or part of it)"
    list_select_related = ["campaign__application"]
    ordering = ["-created", "-id"]
    list_before_template = "admin/coupons/referral_list_toolbar.html"
    actions_row = ["edit_referral", "delete_referral"]
    readonly_fields = ["code", "campaign_name", "advocate_integration_id", "uses", "created"]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ReferralChangeList

    def get_fieldsets(self, request: HttpRequest, obj: Referral | None = None) -> Any:
        if obj is None:
            fields = ["campaign", "code", "advocate_integration_id", "friend_integration_id", "usage_limit"]
            return [
                (None, {"fields": fields}),
                ("Validity and attributes", {"fields": ["start_date", "expiry_date", "attributes"]}),
            ]
        return [
            (None, {"fields": ["code", "campaign_name", "advocate_integration_id", "uses", "created"]}),
            (
                "Change",
                {
                    "fields": [
                        "friend_integration_id",
                        "usage_limit",
                        "start_date",
                        "expiry_date",
                        "attributes",
                    ]
                },
            ),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Referral | None = None) -> list[str]:
        return self.readonly_fields if obj is not None else []  # type: ignore[return-value]

    @admin.display(description="Code", ordering="code")
    def code_shown(self, referral: Referral) -> str:
        return format_html('<span class="font-mono whitespace-nowrap">{}</span>', referral.code)

    @admin.display(description="Campaign", ordering="campaign__name")
    def campaign_name(self, referral: Referral) -> str:
        return f"{referral.campaign.name} ({referral.campaign.application.name})"

    @admin.display(description="Used", ordering="usage_counter")
    def uses(self, referral: Referral) -> str:
        limit = "unlimited" if referral.usage_limit == 0 else f"{referral.usage_limit:,}"
        return f"{referral.usage_counter:,} of {limit}"

    @admin.display(description="Status")
    def status(self, referral: Referral) -> str:
        now = clock.now()
        if referral.expiry_date is not None and referral.expiry_date <= now:
            return "Expired"
        if referral.start_date is not None and referral.start_date > now:
            return "Not started"
        if referral.usage_limit and referral.usage_counter >= referral.usage_limit:
            return "Used up"
        return "Usable"

    @admin.display(description="Status")
    def status_shown(self, referral: Referral) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', self.status(referral))

    # --- writes through the services ---------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Referral, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            saved = referrals.referral_update(
                referral=obj,
                friend=data.get("friend_integration_id") or "",
                start_date=data.get("start_date"),
                expiry_date=data.get("expiry_date"),
                usage_limit=data["usage_limit"],
                attributes=data.get("attributes") or {},
            )
        else:
            campaign = data["campaign"]
            saved = referrals.referral_create(
                application=campaign.application,
                campaign_id=campaign.pk,
                advocate=data["advocate_integration_id"].strip(),
                friend=(data.get("friend_integration_id") or "").strip(),
                start_date=data.get("start_date"),
                expiry_date=data.get("expiry_date"),
                usage_limit=data["usage_limit"],
                attributes=data.get("attributes") or {},
                code=data.get("code") or "",
            )
        for model_field in Referral._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(saved, model_field.attname))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Referral]) -> None:
        referrals.referrals_delete(queryset=queryset)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            func, name, _ = actions["delete_selected"]
            actions["delete_selected"] = (func, name, "Delete selected referral codes")
        return actions

    # --- row actions -------------------------------------------------------------------------------------

    @action(description="Edit", icon="edit", url_path="edit")
    def edit_referral(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:coupons_referral_change", object_id)

    @action(description="Delete", icon="delete", url_path="delete-referral", permissions=["delete"])
    def delete_referral(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:coupons_referral_delete", object_id)

    def _changelist_url(self) -> str:
        return reverse("admin:coupons_referral_changelist")

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Our confirmation, saying what the code's deletion means for the friends it brought."""
        referral = get_object_or_404(Referral.objects.select_related("campaign__application"), pk=object_id)
        if not self.has_delete_permission(request, referral):
            return redirect(self._changelist_url())
        if request.method == "POST":
            code = referral.code
            referrals.referral_delete(referral=referral, actor=request.user)
            self.message_user(request, f"Deleted the referral code {code}.", messages.SUCCESS)
            return redirect(self._changelist_url())
        return TemplateResponse(
            request,
            "admin/coupons/referral_delete_confirm.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Delete referral code?",
                "referral": referral,
                "redemptions": referral.redemptions.filter(rolled_back_at=None).count(),
            },
        )

    # --- import and export -------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("import/", self.admin_site.admin_view(self.import_view), name="coupons_referral_import"),
            path("export/", self.admin_site.admin_view(self.export_view), name="coupons_referral_export"),
        ]
        return own + super().get_urls()

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return redirect(self._changelist_url())
        problems: list[Any] = []
        form = ImportForm(
            request.POST or None, request.FILES or None, initial={"campaign": request.GET.get("campaign")}
        )
        if request.method == "POST" and form.is_valid():
            campaign = form.cleaned_data["campaign"]
            try:
                result = referrals.referrals_import(
                    campaign=campaign, source=form.cleaned_data["file"], actor=request.user
                )
            except ValidationFailed as exc:
                problems = exc.details
                messages.error(
                    request,
                    f"Nothing was imported: the file has {_plural(len(problems), 'problem')}. "
                    "Fix the lines below and import it again.",
                )
            else:
                self.message_user(
                    request,
                    f"Imported {_plural(result.created, 'referral code')} into “{campaign.name}”.",
                    messages.SUCCESS,
                )
                return redirect(f"{self._changelist_url()}?campaign={campaign.pk}")
        return TemplateResponse(
            request,
            "admin/coupons/referral_import.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Import referral codes",
                "form": form,
                "problems": [_problem_text(p) for p in problems[:PROBLEMS_SHOWN]],
                "more_problems": max(0, len(problems) - PROBLEMS_SHOWN),
            },
        )

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        if not self.has_view_permission(request):
            return redirect("admin:index")
        # The same filters and search as the list: build its change list and take its rows.
        changelist = self.get_changelist_instance(request)
        rows = changelist.get_queryset(request)
        search = request.GET.get(SEARCH_VAR, "")
        response = StreamingHttpResponse(
            referrals.referral_export_lines(rows), content_type="text/csv; charset=utf-8"
        )
        suffix = "-search" if search else ""
        response["Content-Disposition"] = f'attachment; filename="referrals{suffix}.csv"'
        return response
