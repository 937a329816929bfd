"""Management API for segments: the segments, their members (count, pages, CSV), a preview of rules being
edited and the catalogue of fields a rule can ask about. Mounted by ``patronage.management.api`` under
/segments.

A malformed rule tree is 422 with one error per problem, each pointing into the request body
(``/rules/children/1/children/0/value``); a name already taken is 400 pointing at ``/name``."""

import dataclasses
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.text import slugify
from ninja import Query, Router, Status
from ninja.pagination import paginate

from patronage.core import clock
from patronage.core.errors import NotFound, ValidationFailed
from patronage.customers.exports import CustomerExport
from patronage.customers.models import CustomerProfile
from patronage.integration.presenters import json_response
from patronage.segments import registry, schemas
from patronage.segments.models import Segment
from patronage.segments.selectors import rules_preview, segment_members, segments_of
from patronage.segments.services import segment_create, segment_delete, segment_update

from .access import environment_named, management_auth, require
from .pagination import LimitOffsetPagination
from .schemas import ProfileOut

router = Router(auth=management_auth, tags=["Segments"])

# Members are customers' personal data: reading them also takes the permission to view customers.
VIEW_CUSTOMERS = "customers.view_customerprofile"

CSV_RESPONSE = {
    "responses": {
        200: {
            "description": "The members in the customers' CSV format (as `patronage export customers`)",
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


def _segment(segment_id: int) -> Segment:
    segment = Segment.objects.select_related("environment").filter(pk=segment_id).first()
    if segment is None:
        raise NotFound(f"Segment {segment_id} not found")
    return segment


def _json_pointers(exc: ValidationFailed) -> ValidationFailed:
    """The service names form fields ("name"); the API answers with pointers into the body ("/name")."""
    details = [
        dataclasses.replace(d, pointer=f"/{d.pointer}") if d.pointer and not d.pointer.startswith("/") else d
        for d in exc.details
    ]
    return type(exc)(exc.message, details=details)


def _members(segment: Segment) -> QuerySet[CustomerProfile]:
    return segment_members(segment).order_by("id")


@router.get("", response=list[schemas.SegmentOut], summary="List segments")
@paginate(LimitOffsetPagination)
def list_segments(request: HttpRequest, filters: Query[schemas.SegmentFilter]) -> Any:
    require(request, "segments.view_segment")
    environment = environment_named(filters.environment, "query:environment")
    return segments_of(environment).select_related("environment")


@router.post("", response={201: schemas.SegmentOut}, summary="Create a segment")
def create_segment(request: HttpRequest, body: schemas.SegmentIn) -> Any:
    require(request, "segments.add_segment")
    environment = environment_named(body.environment, "/environment")
    try:
        segment = segment_create(
            environment=environment,
            name=body.name,
            description=body.description,
            rules=body.rules,
            actor=request.user,
        )
    except ValidationFailed as exc:
        raise _json_pointers(exc) from exc
    return Status(201, segment)


@router.post("/preview", response=schemas.PreviewOut, summary="Preview rules being edited")
def preview_rules(request: HttpRequest, body: schemas.PreviewIn) -> Any:
    """How many customers unsaved rules hold now, and a few of them; nothing is saved."""
    require(request, "segments.view_segment", VIEW_CUSTOMERS)
    preview = rules_preview(environment_named(body.environment, "/environment"), body.rules)
    return {
        "count": preview["count"],
        "sample": [
            {
                "id": row["id"],
                "integrationId": row["integration_id"],
                "name": row["name"],
                "email": row["email"],
            }
            for row in preview["sample"]
        ],
    }


@router.get("/fields", response=schemas.CatalogueOut, summary="Fields a rule can ask about")
def fields(request: HttpRequest, filters: Query[schemas.SegmentFilter]) -> Any:
    """Every field with its operators (and the shape of their value) and parameters, and the rows of the
    environment that ids may name (customer groups, groups of promo codes, offers): what a rule builder
    draws its pickers from."""
    require(request, "segments.view_segment")
    return registry.catalogue(environment_named(filters.environment, "query:environment"))


@router.get("/{int:segment_id}", response=schemas.SegmentOut, summary="Get a segment")
def get_segment(request: HttpRequest, segment_id: int) -> Any:
    require(request, "segments.view_segment")
    return _segment(segment_id)


@router.put("/{int:segment_id}", response=schemas.SegmentOut, summary="Change a segment")
def update_segment(request: HttpRequest, segment_id: int, body: schemas.SegmentPut) -> Any:
    """Name, description and rules are replaced as given; the environment is fixed at creation."""
    require(request, "segments.change_segment")
    segment = _segment(segment_id)
    try:
        segment_update(
            segment=segment,
            name=body.name,
            description=body.description,
            rules=body.rules,
            actor=request.user,
        )
    except ValidationFailed as exc:
        raise _json_pointers(exc) from exc
    return segment


@router.delete("/{int:segment_id}", response={204: None}, summary="Delete a segment")
def delete_segment(request: HttpRequest, segment_id: int) -> HttpResponse:
    """Mailings sent to it keep their recipients; a draft mailing aimed at it needs other recipients."""
    require(request, "segments.delete_segment")
    segment_delete(segment=_segment(segment_id), actor=request.user)
    return json_response(None, status=204)


@router.get("/{int:segment_id}/count", response=schemas.CountOut, summary="Count a segment's members")
def count_members(request: HttpRequest, segment_id: int) -> Any:
    require(request, "segments.view_segment")
    return {"count": segment_members(_segment(segment_id)).count()}


@router.get("/{int:segment_id}/members", response=list[ProfileOut], summary="List a segment's members")
@paginate(LimitOffsetPagination)
def list_members(request: HttpRequest, segment_id: int) -> Any:
    """The customers the segment holds now, oldest first (by id), so pages stay stable."""
    require(request, "segments.view_segment", VIEW_CUSTOMERS)
    return _members(_segment(segment_id))


@router.get(
    "/{int:segment_id}/export", summary="Export a segment's members as CSV", openapi_extra=CSV_RESPONSE
)
def export_members(request: HttpRequest, segment_id: int) -> StreamingHttpResponse:
    """Streamed: memory stays flat whatever the number of members. Re-importable as customers."""
    require(request, "segments.view_segment", VIEW_CUSTOMERS)
    segment = _segment(segment_id)
    response = StreamingHttpResponse(
        CustomerExport(_members(segment)), content_type="text/csv; charset=utf-8"
    )
    name = slugify(segment.name) or str(segment.pk)
    filename = f"segment-{name}-{segment.environment.slug}-{clock.now():%Y%m%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
