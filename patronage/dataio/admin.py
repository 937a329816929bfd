"""Back office, Import/Export: past imports, "New import", and each import's live progress and bad rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.widgets import UnfoldAdminFileFieldWidget, UnfoldAdminSelectWidget, UnfoldBooleanSwitchWidget

from patronage.core.csvio import header_of
from patronage.core.errors import DomainError, NotFound
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

from .models import ImportJob
from .registry import Importer, importer_get, importers
from .running import import_jobs_stop_stalled
from .selectors import import_job_stalled, import_job_status, import_problems, import_problems_csv
from .services import import_job_create, max_upload_bytes

HEAD_BYTES = 64 * 1024
STATUS_VARIANTS = {
    ImportJob.Status.QUEUED: "info",
    ImportJob.Status.RUNNING: "info",
    ImportJob.Status.SUCCEEDED: "success",
    ImportJob.Status.FAILED: "danger",
}
SHOWN_PROBLEMS = 200


def importers_for(user: Any) -> list[Importer]:
    return [importer for importer in importers() if user.has_perms(importer.permissions)]


class NewImportForm(forms.Form):
    kind = forms.ChoiceField(label="Type", widget=UnfoldAdminSelectWidget)
    environment = forms.ChoiceField(
        choices=Environment.SLUGS, initial=Environment.LIVE, widget=UnfoldAdminSelectWidget
    )
    file = forms.FileField(widget=UnfoldAdminFileFieldWidget)
    skip_bad_rows = forms.BooleanField(
        required=False,
        label="Skip bad rows",
        help_text="Import the good rows and list the bad ones. Off: one bad row stops the whole import "
        "and nothing changes.",
        widget=UnfoldBooleanSwitchWidget,
    )

    def __init__(
        self, *args: Any, kinds: list[Importer], options: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        kind = self.fields["kind"]
        assert isinstance(kind, forms.ChoiceField)
        kind.choices = [(importer.kind, importer.label) for importer in kinds]
        # The kind's options come from the URL (e.g. an offer's "Import emails" button) and ride along
        # in hidden fields; they are cleaned with the environment in clean().
        self.options = options or {}
        for name in self.options:
            self.fields[f"option_{name}"] = forms.CharField(widget=forms.HiddenInput, required=False)
        limit = max_upload_bytes()
        self.fields[
            "file"
        ].help_text = (
            f"A CSV file: comma separated, UTF-8, a header line first; up to {filesizeformat(limit)}."
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        kind = data.get("kind")
        if upload is None or kind is None:
            return data
        if upload.size > max_upload_bytes():
            self.add_error("file", f"The file is larger than {filesizeformat(max_upload_bytes())}.")
            return data
        head = upload.read(HEAD_BYTES)
        upload.seek(0)
        importer = importer_get(kind)
        try:
            importer.check_header(header_of(head))
        except DomainError as exc:
            self.add_error("file", [detail.details for detail in exc.details])
        environment = environment_get(data["environment"]) if data.get("environment") else None
        for name, value in self.given_options().items():
            try:
                importer.option(name).clean(value, environment)
            except DomainError as exc:
                self.add_error(None, exc.message)
        return data

    def given_options(self) -> dict[str, str]:
        source = self.data if self.is_bound else self.initial
        return {name: str(source.get(f"option_{name}", "")) for name in self.options}


@dataclass
class _FixedOptions:
    kind: str = ""
    environment: str = ""
    options: dict[str, str] = field(default_factory=dict)  # as given in the URL
    shown: list[tuple[str, str]] = field(default_factory=list)  # (label, what it is)


@admin.register(ImportJob)
class ImportJobAdmin(ModelAdmin):
    list_display = [
        "number",
        "kind_label",
        "filename",
        "environment",
        "status_label",
        "created_count",
        "updated_count",
        "skipped_count",
        "uploaded",
    ]
    list_display_links = ["number", "filename"]
    list_filter = ["status", "kind", "environment"]
    search_fields = ["filename"]
    list_select_related = ["environment", "created_by"]
    list_per_page = 50

    @display(description="Import", ordering="id")
    def number(self, job: ImportJob) -> str:
        return f"#{job.pk}"

    @display(description="Uploaded", ordering="created")
    def uploaded(self, job: ImportJob) -> Any:
        return job.created

    @display(description="Type", ordering="kind")
    def kind_label(self, job: ImportJob) -> str:
        try:
            return importer_get(job.kind).label
        except NotFound:
            return job.kind

    @display(
        description="Status",
        ordering="status",
        label={str(ImportJob.Status(status).label): variant for status, variant in STATUS_VARIANTS.items()},
    )
    def status_label(self, job: ImportJob) -> str:
        return str(job.get_status_display())

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a job is a record of what happened

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:job_id>/status/", wrap(self.status_view), name="dataio_importjob_status"),
            path("<int:job_id>/errors.csv", wrap(self.errors_view), name="dataio_importjob_errors"),
            path("sample/<slug:kind>.csv", wrap(self.sample_view), name="dataio_importjob_sample"),
            *super().get_urls(),
        ]

    def _job(self, request: HttpRequest, job_id: Any) -> ImportJob:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if not str(job_id).isdigit():
            raise Http404(f"No import {job_id}")
        job = get_object_or_404(ImportJob.objects.select_related("environment", "created_by"), pk=job_id)
        if import_job_stalled(job):
            # Its process went away: say so for good and free its upload (the page then shows why it failed).
            import_jobs_stop_stalled()
            job.refresh_from_db()
        return job

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        kinds = importers_for(request.user)
        fixed = self._fixed_options(request, kinds)
        if request.method == "POST":
            form = NewImportForm(request.POST, request.FILES, kinds=kinds, options=fixed.options)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                job = import_job_create(
                    kind=form.cleaned_data["kind"],
                    environment=environment_get(form.cleaned_data["environment"]),
                    filename=upload.name,
                    size=upload.size,
                    skip_bad_rows=form.cleaned_data["skip_bad_rows"],
                    options=form.given_options(),
                    upload=upload,
                    actor=request.user,
                )
                return HttpResponseRedirect(reverse("admin:dataio_importjob_change", args=[job.pk]))
        else:
            initial: dict[str, Any] = {f"option_{name}": value for name, value in fixed.options.items()}
            if fixed.kind:
                initial["kind"] = fixed.kind
            if fixed.environment:
                initial["environment"] = fixed.environment
            form = NewImportForm(kinds=kinds, options=fixed.options, initial=initial)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "New import",
            "form": form,
            "kinds": kinds,
            "sample_url": reverse("admin:dataio_importjob_sample", args=["KIND"]),
            "fixed": fixed.shown,
        }
        return TemplateResponse(request, "admin/dataio/importjob/new.html", context)

    def _fixed_options(self, request: HttpRequest, kinds: list[Importer]) -> _FixedOptions:
        """``?kind=K&<option>=V``: the form opens on kind K with its options set (and shown as text)."""
        fixed = _FixedOptions()
        kind = request.GET.get("kind", "")
        importer = next((i for i in kinds if i.kind == kind), None)
        if importer is None:
            return fixed
        fixed.kind = kind
        for option in importer.options:
            value = request.GET.get(option.name, "")
            if not value:
                continue
            fixed.options[option.name] = value
            try:
                # No environment yet: the one the value belongs to is preselected.
                cleaned = option.clean(value, None)
            except DomainError as exc:
                fixed.shown.append((option.label, exc.message))
                continue
            fixed.environment = option.environment_of(cleaned) or fixed.environment
            fixed.shown.append((option.label, option.describe(cleaned)))
        return fixed

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        job = self._job(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Import #{job.pk}",
            "job": job,
            "kind_label": self.kind_label(job),
            "counts": self._counts(job),
            "options": self._options(job),
            "status": import_job_status(job),
            "status_variant": STATUS_VARIANTS[ImportJob.Status(job.status)],
            "stalled": import_job_stalled(job),
            "problems": import_problems(job)[:SHOWN_PROBLEMS],
            "shown_problems": SHOWN_PROBLEMS,
            "has_add_permission": self.has_add_permission(request),
        }
        return TemplateResponse(request, "admin/dataio/importjob/detail.html", context)

    def _counts(self, job: ImportJob) -> list[tuple[str, str, int]]:
        """(label, element id, value) of the counts this kind reports."""
        try:
            names = importer_get(job.kind).counts
        except NotFound:
            names = ("created", "updated", "skipped")
        return [(name.capitalize(), f"job-{name}", getattr(job, f"{name}_count")) for name in names]

    def _options(self, job: ImportJob) -> list[tuple[str, str]]:
        try:
            importer = importer_get(job.kind)
        except NotFound:
            return [(name, str(value)) for name, value in (job.options or {}).items()]
        shown = []
        for name, value in (job.options or {}).items():
            try:
                option = importer.option(name)
            except NotFound:
                shown.append((name, str(value)))
                continue
            shown.append((option.label, option.describe(value)))
        return shown

    def status_view(self, request: HttpRequest, job_id: int) -> JsonResponse:
        response = JsonResponse(import_job_status(self._job(request, job_id)))
        response["Cache-Control"] = "no-store"
        return response

    def errors_view(self, request: HttpRequest, job_id: int) -> StreamingHttpResponse:
        job = self._job(request, job_id)
        response = StreamingHttpResponse(import_problems_csv(job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
        return response

    def sample_view(self, request: HttpRequest, kind: str) -> HttpResponse:
        if not self.has_view_permission(request) and not self.has_add_permission(request):
            raise PermissionDenied
        try:
            importer = importer_get(kind)
        except NotFound as exc:
            raise Http404(exc.message) from exc
        response = HttpResponse(importer.sample(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{importer.kind}-sample.csv"'
        return response

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportJob]:
        return super().get_queryset(request).select_related("environment", "created_by")
