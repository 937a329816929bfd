"""Back office for segments: the list, the builder (with a live count and sample of members), and the
segment filter of the customer list (so the list's CSV export exports a segment too)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.contrib.filters.forms import DropdownForm
from unfold.views import ChangeList

from patronage.core.admin_paging import PerPageMixin
from patronage.core.errors import DomainError
from patronage.customers import admin as customers_admin
from patronage.offers.models import Offer
from patronage.workspace.models import Environment

from .forms import SegmentForm
from .models import Segment
from .registry import catalogue
from .selectors import rules_preview, segment_q, segments_of
from .services import segment_create, segment_delete, segment_update


class SegmentChangeList(PerPageMixin, ChangeList):
    pass


@admin.register(Segment)
class SegmentAdmin(ModelAdmin):
    form = SegmentForm
    list_display = ["name", "environment", "description", "updated", "customers"]
    list_display_links = ["name"]
    list_filter = ["environment"]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["name", "description"]
    search_help_text = "Name or description"
    list_select_related = ["environment"]
    list_before_template = "admin/per_page_form.html"
    change_form_template = "admin/segments/segment/change_form.html"
    fieldsets = [
        (None, {"fields": ["environment", "name", "description"]}),
        ("Rules as JSON", {"fields": ["rules"], "classes": ["collapse"]}),
    ]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SegmentChangeList

    @admin.display(description="Customers")
    def customers(self, segment: Segment) -> str:
        # Counting every segment of a page would run each one: the customer list counts the one asked for.
        return format_html('<a href="{}" class="text-primary-600">Show members</a>', members_url(segment))

    def get_readonly_fields(self, request: HttpRequest, obj: Segment | None = None) -> list[str]:
        # Its rules name groups and offers of its environment: a segment cannot move to the other one.
        return ["environment"] if obj else []

    def get_form(self, request: HttpRequest, obj: Segment | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        if obj is not None:
            form.base_fields.pop("environment", None)
        return form

    def save_model(self, request: HttpRequest, obj: Segment, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            saved = segment_update(
                segment=obj,
                name=data["name"],
                description=data.get("description") or "",
                rules=data["rules"],
                actor=request.user,
            )
        else:
            saved = segment_create(
                environment=data["environment"],
                name=data["name"],
                description=data.get("description") or "",
                rules=data["rules"],
                actor=request.user,
            )
        obj.pk, obj.created, obj.updated = saved.pk, saved.created, saved.updated

    def log_addition(self, *args: Any, **kwargs: Any) -> None:
        pass  # the service wrote the audit row

    def log_change(self, *args: Any, **kwargs: Any) -> None:
        pass

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        segment_delete(segment=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        for segment in queryset.order_by("pk"):
            segment_delete(segment=segment, actor=request.user)

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "preview/", self.admin_site.admin_view(self.preview_view), name="segments_segment_preview"
        )
        return [preview, *super().get_urls()]

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        form = context["adminform"].form
        obj = kwargs.get("obj")
        context["builder"] = {
            "catalogues": {
                env.slug: _with_visible_names(catalogue(env)) for env in Environment.objects.order_by("pk")
            },
            "environment": obj.environment.slug if obj else "",
            "problems": [{"pointer": p.pointer, "details": p.details} for p in form.rule_problems],
            "members_url": members_url(obj) if obj else "",
        }
        context["preview_url"] = reverse("admin:segments_segment_preview")
        return super().render_change_form(request, context, *args, **kwargs)

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """POST ``{"environment": slug, "rules": tree}`` -> the member count and a sample, or the rules'
        problems with their JSON pointers."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return JsonResponse({"message": "POST the rules as JSON"}, status=405)
        try:
            body = json.loads(request.body or b"{}")
            environment = Environment.objects.get(slug=body.get("environment"))
        except (ValueError, AttributeError, Environment.DoesNotExist):
            return JsonResponse({"message": "Send {environment, rules} as JSON"}, status=400)
        try:
            preview = rules_preview(environment, body.get("rules"))
        except DomainError as exc:
            problems = [{"pointer": d.pointer, "details": d.details} for d in exc.details]
            return JsonResponse({"message": exc.message, "problems": problems}, status=422)
        for row in preview["sample"]:
            row["url"] = reverse("admin:customers_customerprofile_change", args=[row["id"]])
        return JsonResponse(preview)


def _with_visible_names(entries: dict[str, Any]) -> dict[str, Any]:
    """Offers are picked by the name customers see, with the system name to tell equal names apart."""
    offers = entries["references"].get("offers")
    if offers and offers["options"]:
        names = dict(
            Offer.objects.filter(pk__in=[pk for pk, _ in offers["options"]]).values_list("pk", "name")
        )
        offers["options"] = sorted(
            ([pk, f"{names.get(pk, system)} ({system})"] for pk, system in offers["options"]),
            key=lambda option: str(option[1]).lower(),
        )
    return entries


def members_url(segment: Segment) -> str:
    query = f"?environment={segment.environment.slug}&{SegmentFilter.parameter}={segment.pk}"
    return reverse("admin:customers_customerprofile_changelist") + query


class SegmentFilter(admin.ListFilter):
    """The customer list's "segment" filter: the members of one segment of the listed environment."""

    title = "segment"
    parameter = "segment"
    template = "unfold/filters/filters_field.html"
    form_class = DropdownForm  # its select widget's scripts

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        values = [v for v in params.pop(self.parameter, []) if v.strip()]
        self.value = values[-1] if values else ""
        self.note = ""
        # Its members are what the segment pages show: the list (and its export) needs the same permission.
        self.allowed = request.user.has_perm("segments.view_segment")
        if self.value and not self.allowed:
            raise PermissionDenied("You do not have permission to view segments or their members.")
        if self.value:
            self.used_parameters[self.parameter] = self.value
        environment = customers_admin.selected_environment(request)
        segments = segments_of(environment) if self.allowed else Segment.objects.none()
        self.options = [(str(pk), name) for pk, name in segments.values_list("pk", "name")]

    def has_output(self) -> bool:
        return self.allowed and (bool(self.options) or bool(self.value))

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if not self.value:
            return None
        environment = customers_admin.selected_environment(request)
        segment = Segment.objects.filter(pk=self.value if self.value.isdigit() else 0).first()
        if segment is None or segment.environment_id != environment.pk:
            customers_admin.warn_once(request, f"Segment: no segment {self.value} in {environment}")
            return queryset.none()
        self.note = f"Segment: {segment.name}"
        return queryset.filter(segment_q(segment))

    def choices(self, changelist: Any) -> Any:
        yield {
            "form": DropdownForm(
                name=self.parameter,
                label=f" By {self.title} ",
                choices=[("", "All customers"), *self.options],
                data={self.parameter: self.value},
            ),
            "request": self.request,
        }


customers_admin.LIST_FILTERS.append(SegmentFilter)
