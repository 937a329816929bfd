"""Back office for customers and customer groups.

The customer list is per environment (live unless the switch says otherwise), searchable, filterable,
sortable on every column, with a page size picked by the user and pages that stay fast at the end of a
million rows. Every filter means what ``selectors.CustomerFilters`` says (the CSV export and the CLI share
it) and every write is a service; this module only parses, asks and renders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters, InlineModelAdmin
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.forms import DropdownForm, HorizontalRadioForm, RangeDateForm
from unfold.views import ChangeList

from patronage.core import clock
from patronage.core.admin_paging import DEFAULT_PER_PAGE, PER_PAGE_VAR, PerPageMixin
from patronage.core.errors import ErrorCollector
from patronage.core.money import format_total
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

from . import selectors
from .attributes import format_phone
from .consent import consent_history
from .exports import export_chunks
from .forms import (
    AssignGroupForm,
    CountRangeForm,
    CustomerGroupForm,
    CustomerProfileForm,
    MonthDayRangeForm,
)
from .models import ConsentChange, CustomerGroup, CustomerProfile
from .services import (
    group_create,
    group_delete,
    group_rename,
    groups_delete,
    profile_create,
    profile_update,
    profiles_assign_group,
    profiles_delete,
)

ENVIRONMENT_VAR = "environment"
NO_GROUP = "none"

# Tabs of the customer page after "General", as unfold inlines with ``tab = True``. Apps that show something
# per customer (orders, offers, promo codes) append their inline class from their own admin module:
# customers cannot import them.
PROFILE_TABS: list[type[InlineModelAdmin[Any, Any]]] = []


class DrawnProfileTab(TabularInline):
    """A read-only customer tab that draws its own table from ``tab_rows(profile)``.

    The inline's formset stays empty (nothing to edit or post); its template iterates
    ``inline_admin_formset.formset.tab_rows``. Subclasses set ``model``, ``template`` and the names.
    """

    fk_name = "profile"
    tab = True
    extra = 0
    max_num = 0
    can_delete = False

    def tab_rows(self, profile: CustomerProfile) -> list[Any]:
        raise NotImplementedError

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).none()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.tab_rows = self.tab_rows(obj) if obj is not None else []
        return formset


class ConsentHistoryTab(DrawnProfileTab):
    """Read-only: every change of the customer's marketing consent, newest first (customers.consent)."""

    model = ConsentChange
    verbose_name = "consent change"
    verbose_name_plural = "Consent history"
    template = "admin/customers/consent_history_tab.html"

    def tab_rows(self, profile: CustomerProfile) -> Any:
        return consent_history(profile)


PROFILE_TABS.append(ConsentHistoryTab)


@dataclass(frozen=True)
class FigureTable:
    """Figures about a customer, drawn at the top of their page: a title, column headings (the first one
    heads the row names) and rows of values already formatted for reading."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    total: list[str] | None = None  # drawn under the rows, set apart
    empty: str = "Nothing yet."  # said instead of rows when there are none


# Figures at the top of the customer page, from apps that know more about the customer than this one
# (campaigns: discounted orders, accrued discounts, net revenue); customers cannot import them. Each hook
# answers its table, or None when it has nothing to show for this customer.
PROFILE_FIGURES: list[Callable[[CustomerProfile], FigureTable | None]] = []


def list_environment_slug(request: HttpRequest) -> str:
    """The environment of the list a page was opened from (``?environment=`` or the list's own filters)."""
    from_list = QueryDict(request.GET.get("_changelist_filters", ""))
    slug = request.GET.get(ENVIRONMENT_VAR) or from_list.get(ENVIRONMENT_VAR) or Environment.LIVE
    return slug if slug in dict(Environment.SLUGS) else Environment.LIVE


def selected_environment(request: HttpRequest) -> Environment:
    """The environment the list shows: ``?environment=sandbox``, live otherwise."""
    chosen: Environment | None = getattr(request, "_customers_environment", None)
    if chosen is None:
        slug = request.GET.get(ENVIRONMENT_VAR, "")
        chosen = environment_get(slug if slug in dict(Environment.SLUGS) else Environment.LIVE)
        request._customers_environment = chosen  # type: ignore[attr-defined]
    return chosen


# --- list filters -------------------------------------------------------------------------------------------


class SelectorFilter(admin.ListFilter):
    """A list filter over some ``CustomerFilters`` fields: the same URL words and meaning as the export.

    Subclasses name their parameters and how to draw them; parsing and filtering are ``from_params`` and
    ``apply``, so a value means one thing on the list, in the CSV export and on the command line.
    """

    parameters: tuple[str, ...] = ()
    template = "unfold/filters/filters_date_range.html"

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.values: dict[str, list[str]] = {}
        # What is wrong with the values, by parameter, in the user's words (shown on the field).
        self.problems: dict[str, str] = {}
        for name in self.parameters:
            values = [v for v in params.pop(name, []) if v.strip()]
            if values:
                self.values[name] = values
                # unfold's filter form leaves these out of the hidden fields it keeps
                self.used_parameters[name] = values[-1]

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return list(self.parameters)

    def value_of(self, name: str) -> str | None:
        values = self.values.get(name)
        return values[-1] if values else None

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if not self.values:
            return None
        errors = ErrorCollector()
        filters = selectors.CustomerFilters.from_params(self.values, errors=errors)
        if errors.problems:
            for problem in errors.problems:
                name = problem.pointer if problem.pointer in self.parameters else self.parameters[0]
                # "orders_min: 'x' is not ..." is the URL's word: the field says it without it.
                reason = problem.details.removeprefix(f"{problem.pointer}: ")
                self.problems.setdefault(name, reason[:1].upper() + reason[1:])
            return queryset.none()
        return filters.apply(queryset)

    def form(self) -> forms.Form:
        raise NotImplementedError

    def choices(self, changelist: Any) -> Iterator[Any]:
        form = self.form()
        for name, reason in self.problems.items():
            if name in form.fields and not form.has_error(name):
                form.add_error(name, reason)
        yield {"form": form, "request": self.request}

    # The chip above the list that says what this filter keeps.

    def problem_text(self) -> str:
        """The first problem, as the chip says it: ``Number of orders: the minimum (5) is more than ...``."""
        for reason in self.problems.values():
            return f"{str(self.title).capitalize()}: {reason[:1].lower() + reason[1:]}"
        return ""

    def chip_text(self) -> str:
        shown = ", ".join(v for name in self.parameters for v in self.values.get(name, []))
        return f"{str(self.title).capitalize()}: {shown}"


def warn_once(request: HttpRequest, text: str) -> None:
    shown: set[str] = getattr(request, "_customers_warned", set())
    if text not in shown:
        messages.error(request, text)
        shown.add(text)
        request._customers_warned = shown  # type: ignore[attr-defined]


def range_words(low: str | None, high: str | None, *, at_least: str = "from", at_most: str = "until") -> str:
    """``2 to 5``, ``at least 2``, ``until 2026-05-17``: a range as the chips say it."""
    if low and high:
        return f"{low} to {high}"
    return f"{at_least} {low}" if low else f"{at_most} {high}"


class DateRangeFilter(SelectorFilter):
    """``<prefix>_from`` / ``<prefix>_to`` calendar dates, both ends included."""

    form_class = RangeDateForm  # unfold adds its calendar widget's scripts for filters naming it
    prefix = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.parameters = (f"{self.prefix}_from", f"{self.prefix}_to")
        super().__init__(*args, **kwargs)

    def form(self) -> forms.Form:
        return RangeDateForm(name=self.prefix, data={p: self.value_of(p) for p in self.parameters})

    def chip_text(self) -> str:
        low, high = (self.value_of(p) for p in self.parameters)
        return f"{str(self.title).capitalize()}: {range_words(low, high)}"


class BirthdayFilter(DateRangeFilter):
    title = "birthday"
    prefix = "birthday"


class CreatedFilter(DateRangeFilter):
    title = "created"
    prefix = "created"


class ActiveFilter(DateRangeFilter):
    title = "last activity"
    prefix = "active"


class RedeemedFilter(DateRangeFilter):
    """Customers who redeemed anything (an offer, a promo code) in the window."""

    title = "redemption date"
    prefix = "redeemed"

    def has_output(self) -> bool:
        # Nothing can be redeemed until a feature registers where redemptions are.
        return bool(selectors.REDEMPTION_SOURCES)


class BirthdayWindowFilter(SelectorFilter):
    """Birthdays between two days of the year whatever the year (Dec 20 - Jan 10 wraps over New Year)."""

    title = "birthday in (any year)"
    parameters = ("birthday_window_from", "birthday_window_to")
    template = "unfold/filters/filters_numeric_range.html"

    def form(self) -> forms.Form:
        return MonthDayRangeForm(name="birthday_window", data={p: self.value_of(p) for p in self.parameters})

    def chip_text(self) -> str:
        low, high = (self.value_of(p) for p in self.parameters)
        return f"Birthday: {range_words(low, high)} (any year)"


class OrdersFilter(SelectorFilter):
    title = "number of orders"
    parameters = ("orders_min", "orders_max")
    template = "unfold/filters/filters_numeric_range.html"

    def form(self) -> forms.Form:
        return CountRangeForm(name="orders", data={p: self.value_of(p) for p in self.parameters})

    def chip_text(self) -> str:
        low, high = (self.value_of(p) for p in self.parameters)
        return f"Orders: {range_words(low, high, at_least='at least', at_most='at most')}"


class YesNoFilter(SelectorFilter):
    template = "unfold/filters/filters_field.html"

    def chip_text(self) -> str:
        return f"{str(self.title).capitalize()}: {self.value_of(self.parameters[0])}"

    def form(self) -> forms.Form:
        name = self.parameters[0]
        return HorizontalRadioForm(
            name=name,
            label=f" By {self.title} ",
            choices=[("", "All"), ("yes", "Yes"), ("no", "No")],
            data={name: self.value_of(name) or ""},
        )


class TaxExemptFilter(YesNoFilter):
    title = "tax exempt"
    parameters = ("tax_exempt",)


class MarketingFilter(YesNoFilter):
    title = "marketing consent"
    parameters = ("accepts_marketing",)


class GroupFilter(SelectorFilter):
    """Any of several groups of the listed environment, or none (``group=3&group=none``)."""

    title = "customer group"
    parameters = ("group",)
    template = "unfold/filters/filters_field.html"
    form_class = DropdownForm  # its select widget's scripts

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        groups = selectors.groups_of(selected_environment(request)).values_list("pk", "name")
        self.options = [(str(pk), name) for pk, name in groups]

    def has_output(self) -> bool:
        return bool(self.options)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        values = self.values.get("group", [])
        if not values:
            return None
        ids = [int(v) for v in values if v.isdigit()]
        if len(ids) + values.count(NO_GROUP) != len(values):
            self.problems["group"] = "Pick groups from the list"
            return queryset.none()
        return selectors.in_groups(queryset, ids, no_group=NO_GROUP in values)

    def chip_text(self) -> str:
        names = dict(self.options)
        chosen = [names.get(v, "no group" if v == NO_GROUP else v) for v in self.values.get("group", [])]
        return f"Group: {', '.join(chosen)}"

    def form(self) -> forms.Form:
        return DropdownForm(
            name="group",
            label=f" By {self.title} ",
            choices=[*self.options, (NO_GROUP, "No group")],
            multiple=True,
            data={"group": self.values.get("group", [])},
        )


# The list's filters, in the sidebar's order. Apps that know more about customers (segments) append
# theirs from their own admin module, as with PROFILE_TABS.
LIST_FILTERS: list[type[admin.ListFilter]] = [
    GroupFilter,
    TaxExemptFilter,
    MarketingFilter,
    OrdersFilter,
    BirthdayFilter,
    BirthdayWindowFilter,
    CreatedFilter,
    ActiveFilter,
    RedeemedFilter,
]


# --- the list -----------------------------------------------------------------------------------------------


class TailFirstPaginator(Paginator):
    """Pages past the middle are read from the end backwards, so OFFSET never exceeds half the rows.

    ``OFFSET n`` makes the database walk and drop n rows: the last page of a million would read them
    all. Past the middle, the same rows come from the reversed ordering with the small offset counted from
    the end, reversed back here. Needs a total ordering (the admin appends ``-pk``) and the count, which
    Django's paginator asks for anyway.
    """

    def page(self, number: int | str) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        rows = self.object_list
        if bottom * 2 > self.count and isinstance(rows, QuerySet) and rows.ordered:
            tail = list(rows.reverse()[self.count - top : self.count - bottom])
            tail.reverse()
            return Page(tail, number, self)
        return Page(rows[bottom:top], number, self)


class CustomerChangeList(PerPageMixin, ChangeList):
    """Customers of one environment, ``per_page`` rows a page; neither parameter is a filter."""

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.environment = selected_environment(request)
        super().__init__(request, *args, **kwargs)

    def get_filters_params(self, params: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
        lookup = super().get_filters_params(params)
        lookup.pop(ENVIRONMENT_VAR, None)
        # A submitted filter form sends its empty fields too: an empty field filters nothing.
        return {key: values for key, values in lookup.items() if any(str(v).strip() for v in values)}

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: Sequence[str] | None = None
    ) -> QuerySet[Any]:
        queryset = super().get_queryset(request, exclude_parameters)  # type: ignore[arg-type]
        return queryset.filter(environment=self.environment)

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        if not self.has_active_filters and not self.query:
            # Unfiltered, the count is the environment's total: say so instead of offering "Show all".
            self.full_result_count = self.result_count
        # One look at the environment's shops for the whole page: the total sales' currency.
        currencies = selectors.currencies_of(self.environment)
        for profile in self.result_list:
            profile.shop_currencies = currencies

    # What the toolbar above the list draws.

    def environment_tabs(self) -> list[dict[str, Any]]:
        # Group ids belong to one environment: switching drops the group filter.
        return [
            {
                "slug": slug,
                "name": name,
                "url": self.get_query_string({ENVIRONMENT_VAR: slug}, remove=["group"]),
                "active": slug == self.environment.slug,
            }
            for slug, name in sorted(Environment.SLUGS, key=lambda s: s[0] != Environment.LIVE)
        ]

    def chips(self) -> list[dict[str, str]]:
        """The search and each active filter, said in words, each with a link that drops just it.

        A filter whose values are wrong says what is wrong (``problem``) instead. Filters of other apps
        say what they keep through their ``note`` (segments), or by their title.
        """
        chips = []
        if self.query:
            remove = self.get_query_string(remove=[SEARCH_VAR])
            chips.append({"text": f"Search: {self.query}", "remove": remove, "problem": ""})
        for spec in self.filter_specs:
            parameters = [p for p in spec.expected_parameters() if p]
            if not any(self.params.get(p) for p in parameters):
                continue
            remove = self.get_query_string(remove=parameters)
            if isinstance(spec, SelectorFilter):
                problem = spec.problem_text()
                text = problem or spec.chip_text()
            else:
                problem = ""
                value = self.params.get(parameters[0])
                text = getattr(spec, "note", "") or f"{str(spec.title).capitalize()}: {value}"
            chips.append({"text": text, "remove": remove, "problem": problem})
        return chips

    def clear_all_url(self) -> str:
        """The list without search and filters; the environment and the page size stay."""
        parameters = [p for spec in self.filter_specs for p in spec.expected_parameters() if p]
        return self.get_query_string(remove=[*parameters, SEARCH_VAR])

    def export_url(self) -> str:
        return reverse("admin:customers_customerprofile_export") + self.get_query_string(
            remove=[PER_PAGE_VAR]
        )

    def export_all_url(self) -> str:
        return (
            reverse("admin:customers_customerprofile_export") + f"?{ENVIRONMENT_VAR}={self.environment.slug}"
        )


@admin.register(CustomerProfile)
class CustomerProfileAdmin(ModelAdmin):
    form = CustomerProfileForm
    list_display = [
        "integration_id",
        "name",
        "email",
        "phone_number",
        "group",
        "orders",
        "sales",
        "created_at",
        "active_at",
    ]
    list_display_links = ["integration_id", "name"]
    list_filter = LIST_FILTERS
    list_filter_submit = True
    # Counts per filter choice would each scan the filtered customers again.
    show_facets = admin.ShowFacets.NEVER
    # The search itself is selectors.search (phone numbers in any format); these only turn the box on.
    search_fields = ["integration_id", "name", "email", "phone"]
    search_help_text = "Name, email, phone or integration ID"
    list_select_related = ["group"]
    # One COUNT per page, of the filtered rows; never a second one of the whole table.
    show_full_result_count = False
    list_per_page = DEFAULT_PER_PAGE
    paginator = TailFirstPaginator
    list_before_template = "admin/customers/customerprofile/list_toolbar.html"
    change_form_before_template = "admin/customers/customerprofile/figures.html"
    actions = ["delete_customers", "assign_group"]
    add_fieldsets = [
        (
            None,
            {
                "fields": [
                    "environment",
                    "integration_id",
                    "name",
                    "email",
                    "phone",
                    "birth_date",
                    "group",
                    "tax_exempt",
                    "accepts_marketing",
                ]
            },
        ),
        ("Custom attributes", {"fields": ["attributes"]}),
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "integration_id",
                    "environment",
                    "name",
                    "email",
                    "phone",
                    "birth_date",
                    "group",
                    "tax_exempt",
                    "accepts_marketing",
                ]
            },
        ),
        ("Custom attributes", {"fields": ["attributes"]}),
        (
            "Activity",
            {
                "fields": [
                    "orders",
                    "sales",
                    "created",
                    "last_activity",
                    "last_login",
                    "panel_account",
                ]
            },
        ),
    ]

    @admin.display(description="Orders", ordering="closed_sessions")
    def orders(self, profile: CustomerProfile) -> int:
        return profile.closed_sessions

    @admin.display(description="Total sales", ordering="total_sales")
    def sales(self, profile: CustomerProfile) -> str:
        # The list sets the environment's shop currencies on each row; one customer's page looks them up.
        currencies = getattr(profile, "shop_currencies", None)
        if currencies is None:
            currencies = selectors.currencies_of(profile.environment)
        return format_total(profile.total_sales, currencies)

    @admin.display(description="Created", ordering="created")
    def created_at(self, profile: CustomerProfile) -> str:
        return f"{timezone.localtime(profile.created):%Y-%m-%d %H:%M}"

    @admin.display(description="Last activity", ordering="last_activity")
    def active_at(self, profile: CustomerProfile) -> str:
        return f"{timezone.localtime(profile.last_activity):%Y-%m-%d %H:%M}"

    @admin.display(description="Phone", ordering="phone")
    def phone_number(self, profile: CustomerProfile) -> str:
        return format_phone(profile.phone)

    @admin.display(description="Customer panel", boolean=True)
    def panel_account(self, profile: CustomerProfile) -> bool:
        return bool(profile.password)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CustomerChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[CustomerProfile], search_term: str
    ) -> tuple[QuerySet[CustomerProfile], bool]:
        return selectors.search(queryset, search_term), False

    def get_readonly_fields(self, request: HttpRequest, obj: CustomerProfile | None = None) -> list[str]:
        if obj is None:
            return []
        return [
            "integration_id",
            "environment",
            "orders",
            "sales",
            "created",
            "last_activity",
            "last_login",
            "panel_account",
        ]

    def get_inlines(self, request: HttpRequest, obj: CustomerProfile | None = None) -> list[Any]:
        return list(PROFILE_TABS) if obj is not None else []

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: CustomerProfile | None = None,
    ) -> Any:
        if obj is not None and obj.pk is not None:
            context["profile_figures"] = [t for t in (hook(obj) for hook in PROFILE_FIGURES) if t is not None]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        initial[ENVIRONMENT_VAR] = list_environment_slug(request)
        return initial

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            # "Add" adds to the environment the list shows; its groups are the only ones offered.
            environment = environment_get(list_environment_slug(request))
            form = type(form.__name__, (form,), {"list_environment": environment})
        return form

    def save_model(self, request: HttpRequest, obj: CustomerProfile, form: Any, change: bool) -> None:
        data = form.profile_input()
        if change:
            saved = profile_update(profile=obj, data=data, actor=request.user)
        else:
            saved = profile_create(
                environment=form.cleaned_data["environment"],
                integration_id=form.cleaned_data.get("integration_id") or "",
                data=data,
                actor=request.user,
            )
        for field in CustomerProfile._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))

    def delete_model(self, request: HttpRequest, obj: CustomerProfile) -> None:
        # The admin's delete view writes its own history row.
        profiles_delete(queryset=CustomerProfile.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CustomerProfile]) -> None:
        profiles_delete(queryset=queryset, actor=request.user)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Django's own page lists every object: with "select all" over a million it would never render.
        actions.pop("delete_selected", None)
        return actions

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "export/",
            self.admin_site.admin_view(self.export_view),
            name="customers_customerprofile_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """The CSV of exactly the customers the list shows for this query string (search and filters)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            messages.error(request, "These filters cannot be exported: the list does not understand them.")
            return redirect("admin:customers_customerprofile_changelist")
        response = StreamingHttpResponse(
            export_chunks(changelist.queryset, changelist.environment), content_type="text/csv; charset=utf-8"
        )
        filename = f"customers-{changelist.environment.slug}-{clock.now():%Y%m%d-%H%M}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def _action_page(
        self, request: HttpRequest, queryset: QuerySet[CustomerProfile], template: str, **context: Any
    ) -> TemplateResponse:
        count = context.pop("count", None)
        if count is None:
            count = queryset.count()
        examples = list(queryset.values_list("name", "integration_id")[:5])
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "count": count,
                "examples": examples,
                "more": count - len(examples),
                "environment": selected_environment(request),
                "action": request.POST.get("action", ""),
                "select_across": request.POST.get("select_across", "0"),
                "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                **context,
            },
        )

    @admin.action(description="Delete selected customers", permissions=["delete"])
    def delete_customers(
        self, request: HttpRequest, queryset: QuerySet[CustomerProfile]
    ) -> HttpResponse | None:
        if request.POST.get("confirmed") != "yes":
            return self._action_page(
                request,
                queryset,
                "admin/customers/customerprofile/delete_confirm.html",
                title="Delete customers?",
            )
        deleted = profiles_delete(queryset=queryset, actor=request.user)
        self.message_user(
            request,
            f"Deleted {deleted} customer{'s' if deleted != 1 else ''}. "
            "Their orders stay on the orders list, anonymized.",
            messages.SUCCESS,
        )
        return None

    @admin.action(description="Put selected customers in a group", permissions=["change"])
    def assign_group(self, request: HttpRequest, queryset: QuerySet[CustomerProfile]) -> HttpResponse | None:
        environment = selected_environment(request)
        count = queryset.count()
        form = AssignGroupForm(
            request.POST if "apply" in request.POST else None, environment=environment, count=count
        )
        if form.is_bound and form.is_valid():
            group = form.cleaned_data["target"]
            moved = profiles_assign_group(queryset=queryset, group=group, actor=request.user)
            if group is None:
                text = f"Took {moved} customer{'s' if moved != 1 else ''} out of their group."
            else:
                text = f"Moved {moved} customer{'s' if moved != 1 else ''} to group {group.name}."
            self.message_user(request, text, messages.SUCCESS)
            return None
        return self._action_page(
            request,
            queryset,
            "admin/customers/customerprofile/assign_group.html",
            title="Put customers in a group",
            form=form,
            count=count,
            now_in=selectors.group_counts(queryset),
        )


# --- groups -------------------------------------------------------------------------------------------------


@admin.register(CustomerGroup)
class CustomerGroupAdmin(ModelAdmin):
    form = CustomerGroupForm
    list_display = ["name", "environment", "customer_count", "created"]
    list_filter = ["environment"]
    search_fields = ["name"]
    list_select_related = ["environment"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CustomerGroup]:
        return super().get_queryset(request).annotate(customer_count=Count("customers"))

    @admin.display(description="Customers", ordering="customer_count")
    def customer_count(self, group: CustomerGroup) -> str:
        url = reverse("admin:customers_customerprofile_changelist")
        query = f"?{ENVIRONMENT_VAR}={group.environment.slug}&group={group.pk}"
        count: int = group.customer_count  # type: ignore[attr-defined]
        return format_html('<a href="{}" class="text-primary-600">{}</a>', url + query, count)

    def get_fields(self, request: HttpRequest, obj: CustomerGroup | None = None) -> list[str]:
        return ["environment", "name", "created"] if obj else ["environment", "name"]

    def get_readonly_fields(self, request: HttpRequest, obj: CustomerGroup | None = None) -> list[str]:
        # A group's customers are of its environment: it cannot move to the other one.
        return ["environment", "created"] if obj else []

    def save_model(self, request: HttpRequest, obj: CustomerGroup, form: Any, change: bool) -> None:
        if change:
            saved = group_rename(group=obj, name=obj.name)
        else:
            saved = group_create(environment=form.cleaned_data["environment"], name=obj.name)
        obj.pk, obj.created = saved.pk, saved.created

    def delete_model(self, request: HttpRequest, obj: CustomerGroup) -> None:
        released = group_delete(group=obj)
        if released:
            self.message_user(request, f"Its customers ({released}) stay, in no group.")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CustomerGroup]) -> None:
        released = groups_delete(queryset=queryset)
        if released:
            self.message_user(request, f"Their customers ({released}) stay, in no group.")
