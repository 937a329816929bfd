"""Management API for promo codes: groups with their counts, uploading codes into a group and redeeming a
code at checkout. Mounted by ``patronage.management.api`` at the API's root (its paths are whole)."""

import json
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router
from ninja.pagination import paginate
from pydantic import ValidationError

from patronage.core.errors import ErrorDetail, NotFound, ValidationFailed
from patronage.customers.models import CustomerProfile
from patronage.promocodes import schemas
from patronage.promocodes.models import PromoCodeGroup
from patronage.promocodes.selectors import with_counts
from patronage.promocodes.services import promo_code_redeem, promo_codes_upload
from patronage.workspace.models import Environment

from .access import environment_named, management_auth, require
from .pagination import LimitOffsetPagination

router = Router(auth=management_auth, tags=["Promo codes"])

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CodesIn"}},
            "text/plain": {"schema": {"type": "string", "example": "SPRING-7Q2K\nSPRING-M4XZ\n"}},
        },
    }
}


def _customer(environment: Environment, given: str) -> CustomerProfile:
    """The customer by integration ID, else by email (case-insensitively), in the environment."""
    profiles = CustomerProfile.objects.filter(environment=environment)
    profile = profiles.filter(integration_id=given).first()
    if profile is None and "@" in given:
        profile = profiles.filter(email__iexact=given.strip()).order_by("id").first()
    if profile is None:
        raise NotFound(f"No customer with integration ID or email {given!r} in {environment}")
    return profile


def _codes_of(request: HttpRequest) -> list[str]:
    """The body's codes: ``text/plain`` one per line, or JSON ``{"codes": [...]}`` (the item's position
    then counts as its line)."""
    content_type = request.content_type or ""
    if content_type.startswith("text/"):
        try:
            return request.body.decode(request.encoding or "utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise ValidationFailed("The body is not UTF-8 text") from exc
    try:
        return schemas.CodesIn.model_validate(json.loads(request.body or b"null")).codes
    except (ValueError, ValidationError) as exc:
        message = 'Send {"codes": ["...", ...]} as application/json, or one code per line as text/plain'
        raise ValidationFailed(
            message, details=[ErrorDetail("Invalid value", message, pointer="/codes")]
        ) from exc


@router.get("/promocode-groups", response=list[schemas.GroupOut], summary="List groups of promo codes")
@paginate(LimitOffsetPagination)
def list_groups(request: HttpRequest, filters: Query[schemas.GroupFilter]) -> Any:
    require(request, "promocodes.view_promocodegroup")
    groups = PromoCodeGroup.objects.filter(environment__slug=filters.environment).select_related(
        "environment"
    )
    return [
        {
            "id": g.pk,
            "environment": g.environment.slug,
            "name": g.name,
            "description": g.description,
            "created": g.created,
            "total": g.total,  # type: ignore[attr-defined]
            "active": g.active,  # type: ignore[attr-defined]
            "issued": g.issued,  # type: ignore[attr-defined]
            "redeemed": g.redeemed,  # type: ignore[attr-defined]
        }
        for g in with_counts(groups).order_by("name", "id")
    ]


@router.post(
    "/promocode-groups/{int:group_id}/codes",
    response=schemas.UploadOut,
    summary="Upload codes into a group",
    openapi_extra=UPLOAD_BODY,
)
def upload_codes(request: HttpRequest, group_id: int) -> Any:
    """Trimmed, blank lines ignored; invalid codes and duplicates (in the body or anywhere in the
    environment) are skipped and listed by line. All or nothing. For files beyond the request size limit
    use ``patronage import promocodes --group NAME FILE`` or the back office's Import/Export."""
    require(request, "promocodes.add_promocode")
    group = PromoCodeGroup.objects.select_related("environment").filter(pk=group_id).first()
    if group is None:
        raise NotFound(f"Group of promo codes {group_id} not found")
    result = promo_codes_upload(group=group, lines=_codes_of(request), actor=request.user)
    return {
        "added": result.added,
        "duplicates": result.duplicates,
        "invalid": result.invalid,
        "problems": [{"line": p.line, "title": p.title, "details": p.details} for p in result.problems],
    }


@router.post("/promocodes/redeem", response=schemas.RedeemOut, summary="Redeem a promo code")
def redeem(request: HttpRequest, body: schemas.RedeemIn) -> Any:
    """Single use, and only by the customer the code was issued to: a code used before, issued to
    someone else or not issued yet is 409 Conflict (the message says which, and when it was used);
    an unknown code or customer is 404."""
    require(request, "promocodes.change_promocode")
    environment = environment_named(body.environment, "/environment")
    profile = _customer(environment, body.customer)
    promo = promo_code_redeem(environment=environment, code=body.code, profile=profile)
    return {
        "code": promo.code,
        "group": promo.group.name,
        "customer": profile.integration_id,
        "issuedAt": promo.issued_at,
        "redeemedAt": promo.redeemed_at,
    }
