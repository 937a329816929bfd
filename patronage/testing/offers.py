"""Factories for private offers and their image gallery, usable by any app's tests."""

from __future__ import annotations

import datetime as dt
import io
import itertools
from collections.abc import Iterable
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from patronage.core import clock
from patronage.offers.models import GalleryImage, LinkType, Offer, OfferAssignment, OfferType
from patronage.workspace.models import Application, Environment

_serial = itertools.count(1)


def png_bytes(*, width: int = 8, height: int = 6, color: str = "#c0392b", fmt: str = "PNG") -> bytes:
    """A real, small image file as bytes (PNG unless ``fmt`` says otherwise)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


def make_image(
    *, title: str | None = None, width: int = 8, height: int = 6, color: str = "#c0392b"
) -> GalleryImage:
    """A GalleryImage holding a real PNG, stored through the storage API like an upload."""
    from patronage.offers.services import gallery_image_upload

    n = next(_serial)
    upload = SimpleUploadedFile(
        f"image-{n}.png", png_bytes(width=width, height=height, color=color), content_type="image/png"
    )
    return gallery_image_upload(file=upload, title=title if title is not None else f"Image {n}")


def _environment(environment: Environment | str) -> Environment:
    if isinstance(environment, Environment):
        return environment
    return Environment.objects.get(slug=environment)


def make_offer(
    *,
    environment: Environment | str,
    shops: Iterable[Application],
    system_name: str | None = None,
    is_public: bool = False,
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
    assigned_emails: Iterable[str] = (),
    **fields: Any,
) -> Offer:
    """An offer valid from a day ago for thirty days unless told otherwise, with its images made for it."""
    from patronage.offers.services import OfferInput, offer_create

    n = next(_serial)
    now = clock.now()
    starts_at = starts_at or now - dt.timedelta(days=1)
    ends_at = ends_at or max(now, starts_at) + dt.timedelta(days=30)
    picture = fields.pop("picture", None) or make_image()
    values: dict[str, Any] = {
        "name": f"Offer {n}",
        "description": "",
        "validity_text": "",
        "link": "https://shop.example.com/offer",
        "offer_type": OfferType.ONLINE_AND_RETAIL,
        "sort_order": 0,
        "is_active": True,
        "link_type": LinkType.PROMOTION_PAGE,
        "object_id": f"promo-{n}",
    }
    values.update(fields)
    for size in ("image_small", "image_medium", "image_big"):
        values[size] = values.get(size) or picture
    data = OfferInput(
        system_name=system_name or f"offer-{n}",
        applications=list(shops),
        is_public=is_public,
        starts_at=starts_at,
        ends_at=ends_at,
        picture=picture,
        **values,
    )
    offer = offer_create(environment=_environment(environment), data=data)
    emails = sorted({e.strip().lower() for e in assigned_emails})
    OfferAssignment.objects.bulk_create([OfferAssignment(offer=offer, email=e) for e in emails])
    return offer
