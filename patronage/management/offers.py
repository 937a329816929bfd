"""Management API for private offers: the offers, their email assignments, what a customer sees (for the
mobile app) and redemptions recorded by the shop. Mounted by ``patronage.management.api`` under /offers."""

import dataclasses
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status
from ninja.pagination import paginate

from patronage.core.errors import ErrorDetail, NotFound, ValidationFailed
from patronage.customers.models import CustomerProfile
from patronage.integration.presenters import json_response
from patronage.offers import schemas
from patronage.offers.imports import offer_assignments_add, offer_assignments_remove
from patronage.offers.models import GalleryImage, Offer, RedemptionSource
from patronage.offers.selectors import normalize_email, offers_visible_with_marks
from patronage.offers.services import OfferInput, offer_create, offer_delete, offer_patch, offer_redeem
from patronage.workspace.models import Application, Environment

from .access import environment_named, management_auth, require
from .pagination import LimitOffsetPagination

router = Router(auth=management_auth, tags=["Offers"])

# JSON field -> OfferInput attribute; ``offer_check`` points at attributes, the API answers with JSON names.
FIELDS = {
    "systemName": "system_name",
    "name": "name",
    "description": "description",
    "validityText": "validity_text",
    "link": "link",
    "offerType": "offer_type",
    "startsAt": "starts_at",
    "endsAt": "ends_at",
    "sortOrder": "sort_order",
    "isActive": "is_active",
    "isPublic": "is_public",
    "linkType": "link_type",
    "objectId": "object_id",
}
IMAGES = {
    "pictureId": "picture",
    "imageSmallId": "image_small",
    "imageMediumId": "image_medium",
    "imageBigId": "image_big",
}
POINTERS = {attr: f"/{name}" for name, attr in {**FIELDS, **IMAGES, "shops": "applications"}.items()}


def _json_pointers(exc: ValidationFailed) -> ValidationFailed:
    details = [dataclasses.replace(d, pointer=POINTERS.get(d.pointer or "", d.pointer)) for d in exc.details]
    return ValidationFailed(exc.message, details=details)


def _offer(offer_id: int) -> Offer:
    offer = Offer.objects.select_related("environment").filter(pk=offer_id).first()
    if offer is None:
        raise NotFound(f"Offer {offer_id} not found")
    return offer


def _resolve(environment: Environment, given: dict[str, Any]) -> dict[str, Any]:
    """Shops by slug and images by gallery id as OfferInput attributes; every unknown one at once."""
    problems = []
    resolved: dict[str, Any] = {}
    if given.get("shops") is not None:
        slugs = given["shops"]
        shops = {a.slug: a for a in Application.objects.filter(environment=environment, slug__in=slugs)}
        for index, slug in enumerate(slugs):
            if slug not in shops:
                problems.append(
                    ErrorDetail(
                        ValidationFailed.title,
                        f"No shop {slug!r} in the {environment.name} environment",
                        pointer=f"/shops/{index}",
                    )
                )
        resolved["applications"] = [shops[s] for s in dict.fromkeys(slugs) if s in shops]
    ids = {name: given[name] for name in IMAGES if given.get(name) is not None}
    images = GalleryImage.objects.in_bulk(set(ids.values()))
    for name, image_id in ids.items():
        if image_id not in images:
            problems.append(
                ErrorDetail(ValidationFailed.title, f"No gallery image {image_id}", pointer=f"/{name}")
            )
        else:
            resolved[IMAGES[name]] = images[image_id]
    for name, attr in FIELDS.items():
        if given.get(name) is not None:
            resolved[attr] = given[name]
    if problems:
        raise ValidationFailed(
            problems[0].details if len(problems) == 1 else f"{len(problems)} invalid values", details=problems
        )
    return resolved


def _out(offer: Offer) -> dict[str, Any]:
    return {
        "id": offer.pk,
        "environment": offer.environment.slug,
        "systemName": offer.system_name,
        "name": offer.name,
        "description": offer.description,
        "validityText": offer.validity_text,
        "link": offer.link,
        "offerType": offer.offer_type,
        "shops": sorted(a.slug for a in offer.applications.all()),
        "startsAt": offer.starts_at,
        "endsAt": offer.ends_at,
        "sortOrder": offer.sort_order,
        "isActive": offer.is_active,
        "isPublic": offer.is_public,
        "linkType": offer.link_type,
        "objectId": offer.object_id,
        "pictureId": offer.picture_id,
        "imageSmallId": offer.image_small_id,
        "imageMediumId": offer.image_medium_id,
        "imageBigId": offer.image_big_id,
        "created": offer.created,
        "updated": offer.updated,
    }


@router.get("", response=list[schemas.OfferOut], summary="List offers")
@paginate(LimitOffsetPagination)
def list_offers(request: HttpRequest, filters: Query[schemas.OfferFilter]) -> Any:
    require(request, "offers.view_offer")
    offers = (
        Offer.objects.filter(environment__slug=filters.environment)
        .select_related("environment")
        .prefetch_related("applications")
        .order_by("sort_order", "id")
    )
    if filters.shop:
        offers = offers.filter(applications__slug=filters.shop)
    if filters.active is not None:
        offers = offers.filter(is_active=filters.active)
    return _Presented(offers)


class _Presented:
    """A queryset the paginator slices, presented after slicing (only the page is read)."""

    def __init__(self, offers: QuerySet[Offer]) -> None:
        self.offers = offers

    def __len__(self) -> int:
        return self.offers.count()

    def __getitem__(self, page: slice) -> list[dict[str, Any]]:
        return [_out(o) for o in self.offers[page]]


@router.post("", response={201: schemas.OfferOut}, summary="Create an offer")
def create_offer(request: HttpRequest, body: schemas.OfferIn) -> Any:
    require(request, "offers.add_offer")
    environment = environment_named(body.environment, "/environment")
    values = _resolve(environment, body.dict())
    try:
        offer = offer_create(environment=environment, data=OfferInput(**values), actor=request.user)
    except ValidationFailed as exc:
        raise _json_pointers(exc) from exc
    return Status(201, _out(_offer(offer.pk)))


@router.get("/visible", response=list[schemas.VisibleOfferOut], summary="Offers a customer sees in a shop")
def visible_offers(request: HttpRequest, filters: Query[schemas.VisibleFilter]) -> Any:
    """What the customer panel's "My offers" shows this customer in this shop now, for the mobile app."""
    require(request, "offers.view_offer")
    shop = Application.objects.filter(slug=filters.shop).first()
    if shop is None:
        raise NotFound(f"No shop {filters.shop!r}")
    profile = _customer(shop.environment_id, filters.customer)
    offers = offers_visible_with_marks(application=shop, profile=profile)

    def url(image: GalleryImage) -> str:
        # The resized copy when the original is wider than the panel needs (the original stays for staff).
        return request.build_absolute_uri(image.panel_url)

    return [
        {
            "id": o.pk,
            "name": o.name,
            "description": o.description,
            "validityText": o.validity_text,
            "link": o.link,
            "offerType": o.offer_type,
            "startsAt": o.starts_at,
            "endsAt": o.ends_at,
            "linkType": o.link_type,
            "objectId": o.object_id,
            "pictureUrl": url(o.picture),
            "imageSmallUrl": url(o.image_small),
            "imageMediumUrl": url(o.image_medium),
            "imageBigUrl": url(o.image_big),
            "favourite": o.is_favourite,  # type: ignore[attr-defined]
            "claimed": o.is_claimed,  # type: ignore[attr-defined]
            "redeemed": o.is_redeemed,  # type: ignore[attr-defined]
        }
        for o in offers
    ]


def _customer(environment_id: int, given: str) -> CustomerProfile:
    """The customer by integration ID, else by email (case-insensitively), in the environment."""
    profiles = CustomerProfile.objects.filter(environment_id=environment_id)
    profile = profiles.filter(integration_id=given).first()
    if profile is None and "@" in given:
        profile = profiles.filter(email__iexact=normalize_email(given)).order_by("id").first()
    if profile is None:
        raise NotFound(f"No customer with integration ID or email {given!r}")
    return profile


@router.get("/{int:offer_id}", response=schemas.OfferOut, summary="Get an offer")
def get_offer(request: HttpRequest, offer_id: int) -> Any:
    require(request, "offers.view_offer")
    return _out(_offer(offer_id))


@router.patch("/{int:offer_id}", response=schemas.OfferOut, summary="Change an offer")
def update_offer(request: HttpRequest, offer_id: int, body: schemas.OfferPatch) -> Any:
    require(request, "offers.change_offer")
    offer = _offer(offer_id)
    given = body.dict(exclude_unset=True)
    nulls = [name for name, value in given.items() if value is None]
    if nulls:
        raise ValidationFailed(
            f"{nulls[0]}: leave it out to keep it; it cannot be null",
            details=[
                ErrorDetail(ValidationFailed.title, f"{n}: cannot be null", pointer=f"/{n}") for n in nulls
            ],
        )
    # Merged with the offer in the service, under its row lock: a concurrent change to another field stays.
    try:
        offer_patch(offer_id=offer.pk, changes=_resolve(offer.environment, given), actor=request.user)
    except ValidationFailed as exc:
        raise _json_pointers(exc) from exc
    return _out(_offer(offer_id))


@router.delete("/{int:offer_id}", response={204: None}, summary="Delete an offer")
def delete_offer(request: HttpRequest, offer_id: int) -> HttpResponse:
    """With its assignments, favourites, claims and redemptions; the gallery images stay."""
    require(request, "offers.delete_offer")
    offer_delete(offer=_offer(offer_id), actor=request.user)
    return json_response(None, status=204)


@router.post("/{int:offer_id}/assignments", response=schemas.AssignedOut, summary="Assign emails")
def add_assignments(request: HttpRequest, offer_id: int, body: schemas.EmailsIn) -> Any:
    """All or none: one invalid email fails the request, pointing at it (``/emails/<index>``)."""
    require(request, "offers.add_offerassignment")
    counts = offer_assignments_add(offer=_offer(offer_id), emails=body.emails)
    return {"assigned": counts.changed, "unchanged": counts.unchanged}


@router.delete("/{int:offer_id}/assignments", response=schemas.UnassignedOut, summary="Unassign emails")
def remove_assignments(request: HttpRequest, offer_id: int, body: schemas.EmailsIn) -> Any:
    require(request, "offers.delete_offerassignment")
    counts = offer_assignments_remove(offer=_offer(offer_id), emails=body.emails)
    return {"removed": counts.changed, "unchanged": counts.unchanged}


@router.post(
    "/{int:offer_id}/redemptions", response={201: schemas.RedemptionOut}, summary="Record a redemption"
)
def redeem(request: HttpRequest, offer_id: int, body: schemas.RedemptionIn) -> Any:
    """The shop says the customer used the offer; a second redemption is 409 Conflict."""
    require(request, "offers.add_offerredemption")
    offer = _offer(offer_id)
    profile = _customer(offer.environment_id, body.customer)
    try:
        redemption = offer_redeem(
            offer=offer,
            profile=profile,
            source=RedemptionSource.API,
            recorded_by=request.user,  # type: ignore[arg-type]
            redeemed_at=body.redeemedAt,
            note=body.note,
        )
    except ValidationFailed as exc:
        pointers = {"customer": "/customer", "redeemed_at": "/redeemedAt"}
        raise type(exc)(
            exc.message,
            details=[
                dataclasses.replace(d, pointer=pointers.get(d.pointer or "", d.pointer)) for d in exc.details
            ],
        ) from exc
    return Status(
        201,
        {
            "id": redemption.pk,
            "offerId": offer.pk,
            "customer": profile.integration_id,
            "redeemedAt": redemption.redeemed_at,
            "source": redemption.source,
        },
    )
