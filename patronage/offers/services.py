"""Writes about private offers. Tracking (favourite, claim, redeem) lives here so the panel, the back office
and the Management API record the same facts the same way."""

from __future__ import annotations

import datetime as dt
import io
import warnings
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from PIL import Image

from patronage.core import clock
from patronage.core.audit import audit
from patronage.core.errors import Conflict, ErrorCollector, ErrorDetail, NotFound, ValidationFailed
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application, Environment

from .models import (
    GalleryImage,
    LinkType,
    Offer,
    OfferAssignment,
    OfferClaim,
    OfferFavourite,
    OfferRedemption,
    OfferType,
    RedemptionSource,
)
from .selectors import normalize_email, offers_visible


def _visible_offer(*, offer_id: int, profile: CustomerProfile, application: Application) -> Offer:
    """The offer, when this customer sees it in this shop right now (one cannot act on a hidden offer)."""
    offer = offers_visible(application=application, email=profile.email).filter(pk=offer_id).first()
    if offer is None:
        raise NotFound(f"Offer {offer_id} is not available to you in {application.name}")
    return offer


@transaction.atomic
def offer_favourite_set(
    *, offer_id: int, profile: CustomerProfile, application: Application, favourite: bool
) -> None:
    """Mark or unmark an offer as the customer's favourite; doing it twice changes nothing."""
    if not favourite:
        OfferFavourite.objects.filter(offer_id=offer_id, profile=profile).delete()
        return
    offer = _visible_offer(offer_id=offer_id, profile=profile, application=application)
    OfferFavourite.objects.get_or_create(offer=offer, profile=profile, defaults={"created": clock.now()})


@transaction.atomic
def offer_claim(*, offer_id: int, profile: CustomerProfile, application: Application) -> OfferClaim:
    """The customer takes the offer up; claiming again returns the first claim."""
    offer = _visible_offer(offer_id=offer_id, profile=profile, application=application)
    claim, _ = OfferClaim.objects.get_or_create(
        offer=offer, profile=profile, defaults={"created": clock.now()}
    )
    return claim


def _assigned(*, offer: Offer, profile: CustomerProfile) -> bool:
    if not profile.email:
        return False
    return OfferAssignment.objects.filter(offer=offer, email=normalize_email(profile.email)).exists()


def offer_redeem(
    *,
    offer: Offer,
    profile: CustomerProfile,
    source: RedemptionSource,
    recorded_by: User | None = None,
    redeemed_at: dt.datetime | None = None,
    note: str = "",
) -> OfferRedemption:
    """Record that the customer used the offer; a second redemption of the same offer is a Conflict.

    Only a customer the offer is for may redeem it: a public offer's, or one whose email is assigned to it.
    """
    if profile.environment_id != offer.environment_id:
        raise ValidationFailed(
            f"Customer {profile.integration_id} is not in the environment of offer {offer}"
        )
    if not offer.is_public and not _assigned(offer=offer, profile=profile):
        who = profile.email or profile.integration_id
        message = f"Offer {offer.name} is not for {who}: it is not public and " + (
            "the customer has no email" if not profile.email else "their email is not assigned to it"
        )
        raise ValidationFailed(
            message, details=[ErrorDetail(title="Not assigned", details=message, pointer="customer")]
        )
    now = clock.now()
    if redeemed_at is not None and redeemed_at > now:
        raise ValidationFailed(
            "A redemption cannot be in the future",
            details=[
                ErrorDetail(
                    ValidationFailed.title, "A redemption cannot be in the future", pointer="redeemed_at"
                )
            ],
        )
    try:
        with transaction.atomic():
            return OfferRedemption.objects.create(
                offer=offer,
                profile=profile,
                source=source,
                recorded_by=recorded_by,
                redeemed_at=redeemed_at or now,
                note=note,
                created=now,
            )
    except IntegrityError as exc:
        earlier = OfferRedemption.objects.filter(offer=offer, profile=profile).first()
        when = f" on {earlier.redeemed_at:%Y-%m-%d %H:%M} UTC" if earlier else ""
        raise Conflict(f"Customer {profile.integration_id} already redeemed offer {offer}{when}") from exc


# --- back office: the gallery and the offers themselves ------------------------------------------------

# Formats a browser shows in an <img>; Pillow reads more (e.g. TIFF, PSD) that would show as a broken picture.
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}


def _image_error(message: str, title: str = ValidationFailed.title) -> ValidationFailed:
    return ValidationFailed(message, details=[ErrorDetail(title=title, details=message, pointer="file")])


def gallery_image_check(*, file: File) -> tuple[str, int, int]:
    """(extension, width, height) of an upload that really is a web image under the size limit.

    Pillow's ``verify`` reads the whole file without decoding the pixels, so a truncated or forged file
    fails here instead of as a broken picture in the customer panel.
    """
    limit: int = settings.PATRONAGE_IMAGE_MAX_BYTES
    size = file.size or 0
    if size > limit:
        raise _image_error(
            f"The image is {size / 1048576:.1f} MiB; at most {limit / 1048576:.0f} MiB is allowed",
            "Too large",
        )
    max_side: int = settings.PATRONAGE_IMAGE_MAX_SIDE
    max_pixels: int = settings.PATRONAGE_IMAGE_MAX_PIXELS
    try:
        file.seek(0)
        with warnings.catch_warnings():
            # Pillow warns between its limit and twice it; the check below refuses those with their size.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(file)
        with probe:
            # The header's size, read before anything is decoded: a decompression bomb stops here.
            width, height = probe.size
            image_format = probe.format or ""
            if width > max_side or height > max_side or width * height > max_pixels:
                raise _image_error(
                    f"The image is {width} x {height} pixels; at most {max_side} x {max_side} pixels "
                    f"({max_pixels / 1_000_000:g} megapixels) are allowed: make it smaller and upload it "
                    "again",
                    "Too large",
                )
            probe.verify()
    except Image.DecompressionBombError as exc:
        raise _image_error(
            f"The image has far too many pixels; at most {max_side} x {max_side} pixels "
            f"({max_pixels / 1_000_000:g} megapixels) are allowed: make it smaller and upload it again",
            "Too large",
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise _image_error("This file is not an image (or it is damaged)") from exc
    finally:
        file.seek(0)
    if image_format not in IMAGE_FORMATS:
        raise _image_error(
            f"{image_format or 'These'} images are not shown by browsers: upload a PNG, JPEG, GIF or WebP"
        )
    return IMAGE_FORMATS[image_format], width, height


def _display_copy(file: File, width: int, height: int) -> tuple[ContentFile[bytes], int, int] | None:
    """The picture at most PATRONAGE_IMAGE_DISPLAY_WIDTH wide, aspect kept, in its own format; None when it
    is narrow enough already. JPEGs are decoded at a reduced scale (``draft``), so memory stays small."""
    target: int = settings.PATRONAGE_IMAGE_DISPLAY_WIDTH
    if width <= target:
        return None
    size = (target, max(1, round(height * target / width)))
    file.seek(0)
    try:
        with Image.open(file) as image:
            image_format = image.format or "PNG"
            image.draft("RGB" if image.mode == "RGB" else image.mode, size)
            image.thumbnail(size, Image.Resampling.LANCZOS)
            out = io.BytesIO()
            if image_format == "JPEG":
                image.save(out, format="JPEG", quality=85, optimize=True)
            elif image_format == "GIF":
                image.save(out, format="GIF")
            else:
                image.save(out, format=image_format, optimize=True)
            shown_width, shown_height = image.size
    finally:
        file.seek(0)
    return ContentFile(out.getvalue()), shown_width, shown_height


@transaction.atomic
def gallery_image_upload(*, file: File, title: str = "", actor: Any = None) -> GalleryImage:
    """Store an uploaded picture, checked by ``gallery_image_check``, with its size and dimensions, and a
    copy at most PATRONAGE_IMAGE_DISPLAY_WIDTH wide for the customer panel and the mobile app when it is
    wider (the original stays for the back office)."""
    extension, width, height = gallery_image_check(file=file)
    stem = (file.name or "image").rsplit("/", 1)[-1].rsplit(".", 1)[0][:80] or "image"
    row = GalleryImage(title=title.strip()[:200], size=file.size or 0, width=width, height=height)
    display = _display_copy(file, width, height)
    # Stored under the extension of what the file really is, whatever the upload called it.
    row.file.save(f"{stem}.{extension}", file, save=False)
    if display is not None:
        copy, row.display_width, row.display_height = display
        row.display.save(f"{stem}.{extension}", copy, save=False)
    row.width, row.height = width, height
    row.save()
    audit(actor, row, ADDITION, "Uploaded")
    return row


@dataclass
class OfferInput:
    """An offer as staff type it in; ``offer_check`` validates it. ``is_public`` counts only at creation."""

    system_name: str
    name: str
    link: str
    picture: GalleryImage
    offer_type: str
    applications: list[Application]
    starts_at: dt.datetime
    ends_at: dt.datetime
    link_type: str
    object_id: str
    image_small: GalleryImage
    image_medium: GalleryImage
    image_big: GalleryImage
    description: str = ""
    validity_text: str = ""
    sort_order: int = 0
    is_active: bool = True
    is_public: bool = False


_URL = URLValidator(schemes=["http", "https"])


def offer_check(*, environment: Environment, data: OfferInput, pk: int | None = None) -> OfferInput:
    """The input trimmed, or ValidationFailed pointing at every bad field at once."""
    errors = ErrorCollector()
    data = replace(
        data,
        system_name=data.system_name.strip(),
        name=data.name.strip(),
        link=data.link.strip(),
        object_id=data.object_id.strip(),
        validity_text=data.validity_text.strip(),
    )
    for attr, label in [
        ("system_name", "System name"),
        ("name", "Name"),
        ("link", "Link"),
        ("object_id", "Object ID"),
    ]:
        if not getattr(data, attr):
            errors.add(f"{label} is required", pointer=attr)
    if data.system_name:
        taken = Offer.objects.filter(system_name=data.system_name)
        if pk is not None:
            taken = taken.exclude(pk=pk)
        if taken.exists():
            errors.add(
                f"Another offer already has the system name {data.system_name!r}", pointer="system_name"
            )
    if data.link:
        try:
            _URL(data.link)
        except DjangoValidationError:
            errors.add(f"{data.link!r} is not a web address (https://...)", pointer="link")
    if data.offer_type not in OfferType.values:
        errors.add("Pick a type", pointer="offer_type")
    if data.link_type not in LinkType.values:
        errors.add("Pick a link type", pointer="link_type")
    if data.starts_at and data.ends_at and data.ends_at <= data.starts_at:
        errors.add("The end date must be after the start date", pointer="ends_at")
    if not data.applications:
        errors.add("Pick at least one shop", pointer="applications")
    foreign = [a.name for a in data.applications if a.environment_id != environment.pk]
    if foreign:
        errors.add(
            f"Not shops of the {environment.name} environment: {', '.join(sorted(foreign))}",
            pointer="applications",
        )
    for attr in ("picture", "image_small", "image_medium", "image_big"):
        if getattr(data, attr) is None:
            errors.add("Pick an image from the gallery", pointer=attr)
    errors.raise_if_any()
    return data


_EDITABLE = [
    "system_name",
    "name",
    "description",
    "validity_text",
    "link",
    "picture",
    "offer_type",
    "starts_at",
    "ends_at",
    "sort_order",
    "is_active",
    "link_type",
    "object_id",
    "image_small",
    "image_medium",
    "image_big",
]


def _save_checked(offer: Offer, **kwargs: Any) -> None:
    try:
        with transaction.atomic():
            offer.save(**kwargs)
    except IntegrityError as exc:
        # Lost a race for the system name between the check and the write: same words as the check.
        message = f"Another offer already has the system name {offer.system_name!r}"
        raise ValidationFailed(
            message,
            details=[ErrorDetail(title=ValidationFailed.title, details=message, pointer="system_name")],
        ) from exc


@transaction.atomic
def offer_create(*, environment: Environment, data: OfferInput, actor: Any = None) -> Offer:
    data = offer_check(environment=environment, data=data)
    now = clock.now()
    offer = Offer(environment=environment, is_public=data.is_public, created=now, updated=now)
    for attr in _EDITABLE:
        setattr(offer, attr, getattr(data, attr))
    _save_checked(offer)
    offer.applications.set(data.applications)
    audit(actor, offer, ADDITION, "Created")
    return offer


def _locked(offer_id: int) -> Offer:
    """The offer row locked for the rest of the transaction (its environment is read, not locked)."""
    locked = (
        Offer.objects.select_for_update(no_key=True, of=("self",))
        .select_related("environment")
        .filter(pk=offer_id)
        .first()
    )
    if locked is None:
        raise NotFound(f"Offer {offer_id} not found")
    return locked


def _write(locked: Offer, data: OfferInput, attrs: list[str], actor: Any) -> Offer:
    for attr in attrs:
        if attr != "applications":
            setattr(locked, attr, getattr(data, attr))
    locked.updated = clock.now()
    _save_checked(locked, update_fields=[*(a for a in attrs if a != "applications"), "updated"])
    if "applications" in attrs:
        locked.applications.set(data.applications)
    audit(actor, locked, CHANGE, "Changed")
    return locked


@transaction.atomic
def offer_update(*, offer: Offer, data: OfferInput, actor: Any = None) -> Offer:
    """Staff edits; ``data.is_public`` is ignored: who an offer is for is fixed when it is made."""
    locked = _locked(offer.pk)
    data = offer_check(environment=locked.environment, data=data, pk=locked.pk)
    return _write(locked, data, [*_EDITABLE, "applications"], actor)


# What a partial change may name: the editable fields and the shops.
PATCHABLE = frozenset([*_EDITABLE, "applications"])


@transaction.atomic
def offer_patch(*, offer_id: int, changes: dict[str, Any], actor: Any = None) -> Offer:
    """Change only the fields named in ``changes`` (``OfferInput`` attribute names), merged with the offer
    as it is under the row lock: two callers changing different fields at once both keep their change."""
    unknown = sorted(set(changes) - PATCHABLE)
    if unknown:
        raise ValidationFailed(
            f"Cannot change {', '.join(unknown)}",
            details=[ErrorDetail(ValidationFailed.title, "cannot be changed", pointer=u) for u in unknown],
        )
    locked = _locked(offer_id)
    current = OfferInput(
        **{attr: getattr(locked, attr) for attr in _EDITABLE},
        applications=list(locked.applications.all()),
        is_public=locked.is_public,
    )
    data = offer_check(environment=locked.environment, data=replace(current, **changes), pk=locked.pk)
    return _write(locked, data, [a for a in [*_EDITABLE, "applications"] if a in changes], actor)


@transaction.atomic
def offer_assignments_delete(*, offer: Offer, actor: Any = None) -> int:
    """Remove every email assigned to the offer with one DELETE; returns how many there were."""
    # Nothing cascades from an assignment and nothing listens to its deletion: Django sends one DELETE.
    deleted, _ = OfferAssignment.objects.filter(offer=offer).delete()
    if deleted:
        audit(actor, offer, CHANGE, f"Removed {deleted} assigned email{'s' if deleted != 1 else ''}")
    return deleted


@transaction.atomic
def offer_delete(*, offer: Offer, actor: Any = None) -> None:
    """Delete the offer with its assignments and what customers did with it; gallery images stay.

    The assignments go in one DELETE per table (no row has dependants), however many emails there are.
    """
    if actor is not None:
        audit(actor, offer, DELETION, "Deleted")
    offer.delete()
