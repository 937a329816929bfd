"""JSON shapes of the offers Management API (camelCase, as the rest of the Management API)."""

import datetime as dt

from ninja import Field, Schema

from .models import LinkType, OfferType


class OfferIn(Schema):
    environment: str = Field("live", description="sandbox or live; fixed at creation")
    systemName: str = Field(..., max_length=100, description="Unique; assignment imports name offers by it")
    name: str = Field(..., max_length=200, description="The name customers see")
    description: str = ""
    validityText: str = Field("", max_length=200)
    link: str = Field(..., max_length=500)
    offerType: OfferType
    shops: list[str] = Field(..., description="Slugs of the applications (shops) showing the offer")
    startsAt: dt.datetime
    endsAt: dt.datetime
    sortOrder: int = 0
    isActive: bool = True
    isPublic: bool = Field(False, description="Shown to every signed-in customer; fixed at creation")
    linkType: LinkType
    objectId: str = Field(..., max_length=200)
    pictureId: int = Field(..., description="Gallery image id")
    imageSmallId: int
    imageMediumId: int
    imageBigId: int


class OfferPatch(Schema):
    """Only the fields given change. ``environment`` and ``isPublic`` are fixed at creation."""

    systemName: str | None = Field(None, max_length=100)
    name: str | None = Field(None, max_length=200)
    description: str | None = None
    validityText: str | None = Field(None, max_length=200)
    link: str | None = Field(None, max_length=500)
    offerType: OfferType | None = None
    shops: list[str] | None = None
    startsAt: dt.datetime | None = None
    endsAt: dt.datetime | None = None
    sortOrder: int | None = None
    isActive: bool | None = None
    linkType: LinkType | None = None
    objectId: str | None = Field(None, max_length=200)
    pictureId: int | None = None
    imageSmallId: int | None = None
    imageMediumId: int | None = None
    imageBigId: int | None = None


class OfferOut(Schema):
    id: int
    environment: str
    systemName: str
    name: str
    description: str
    validityText: str
    link: str
    offerType: str
    shops: list[str]
    startsAt: dt.datetime
    endsAt: dt.datetime
    sortOrder: int
    isActive: bool
    isPublic: bool
    linkType: str
    objectId: str
    pictureId: int
    imageSmallId: int
    imageMediumId: int
    imageBigId: int
    created: dt.datetime
    updated: dt.datetime


class OfferFilter(Schema):
    environment: str = "live"
    shop: str | None = Field(None, description="Only offers of this shop (application slug)")
    active: bool | None = None


class EmailsIn(Schema):
    emails: list[str] = Field(..., max_length=100_000)


class AssignedOut(Schema):
    assigned: int  # newly assigned
    unchanged: int  # already assigned (or listed twice)


class UnassignedOut(Schema):
    removed: int
    unchanged: int  # were not assigned


class VisibleFilter(Schema):
    shop: str = Field(..., description="Application slug")
    customer: str = Field(..., description="The customer's integration ID or email")


class VisibleOfferOut(Schema):
    """An offer as the mobile app draws it; image URLs are absolute."""

    id: int
    name: str
    description: str
    validityText: str
    link: str
    offerType: str
    startsAt: dt.datetime
    endsAt: dt.datetime
    linkType: str
    objectId: str
    pictureUrl: str
    imageSmallUrl: str
    imageMediumUrl: str
    imageBigUrl: str
    favourite: bool
    claimed: bool
    redeemed: bool


class RedemptionIn(Schema):
    customer: str = Field(..., description="The customer's integration ID or email")
    redeemedAt: dt.datetime | None = Field(None, description="Defaults to now; never in the future")
    note: str = Field("", max_length=500)


class RedemptionOut(Schema):
    id: int
    offerId: int
    customer: str  # integration ID
    redeemedAt: dt.datetime
    source: str
