"""Management API for coupons at Talon.One's paths: create (from a pattern, or one personal code per
recipient), import (CSV, all or nothing), list (``coupons/no_total``), change one or a batch, delete one or
by filter, export (CSV). Mounted by ``patronage.management.api`` under /applications, so the official SDK
works with its host set to ``<server>/api``.

Thin: the writes are ``patronage.coupons.services``, the filters ``selectors.CouponFilters``, the CSV
``imports.py`` / ``exports.py``; this module parses, checks the campaign belongs to the application in the
path and presents Talon.One's shapes.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Field, Query, Router, Schema

from patronage.campaigns.models import Campaign
from patronage.core import clock
from patronage.core.errors import ErrorDetail, NotFound, ValidationFailed
from patronage.coupons import services
from patronage.coupons.exports import coupons_export_rows
from patronage.coupons.generation import MAX_RECIPIENT_LENGTH
from patronage.coupons.imports import KIND as IMPORT_KIND
from patronage.coupons.models import MAX_USAGE_LIMIT
from patronage.coupons.presenters import coupon_json
from patronage.coupons.schemas import Body, CouponOut, ImportOut
from patronage.coupons.selectors import CouponFilters, coupon_get, coupons_filtered, coupons_sorted
from patronage.dataio.models import ImportJob
from patronage.dataio.services import import_job_create
from patronage.integration.presenters import ACCOUNT_ID, json_response
from patronage.management.lookups import application_of, campaign_of, flag

from .access import management_auth, require

router = Router(auth=management_auth, tags=["Coupons"])

VIEW = "coupons.view_coupon"
ADD = "coupons.add_coupon"
CHANGE = "coupons.change_coupon"
DELETE = "coupons.delete_coupon"
FEATURE = "coupons"
MAX_PAGE = 1000
MAX_SKIP = 1_000_000_000

Flag = Literal["", "true", "false", "True", "False"]
Validity = Literal["", "expired", "validNow", "validFuture"]


# ---- bodies ------------------------------------------------------------------------------------------------


class LimitConfig(Body):
    action: str = Field(min_length=1, max_length=100)
    limit: Decimal = Field(ge=0)
    entities: list[str] = Field(default_factory=list)
    period: str | None = None


class CouponSettings(Body):
    usageLimit: int = Field(ge=0, le=MAX_USAGE_LIMIT)
    discountLimit: Decimal | None = Field(default=None, ge=0, le=Decimal(10) ** 15)
    reservationLimit: int | None = Field(default=None, ge=0, le=MAX_USAGE_LIMIT)
    startDate: dt.datetime | None = None
    expiryDate: dt.datetime | None = None
    attributes: dict[str, Any] | None = None
    validCharacters: list[str] | None = None
    couponPattern: str | None = Field(default=None, min_length=3, max_length=100)


class NewCoupons(CouponSettings):
    numberOfCoupons: int = Field(ge=1, le=services.MAX_SYNC_COUPONS)
    uniquePrefix: str | None = Field(default=None, max_length=100)
    limits: list[LimitConfig] | None = None
    recipientIntegrationId: str | None = Field(default=None, max_length=MAX_RECIPIENT_LENGTH)
    isReservationMandatory: bool = False
    implicitlyReserved: bool = False


class NewCouponsForMultipleRecipients(CouponSettings):
    recipientsIntegrationIds: list[str] = Field(min_length=1, max_length=services.MAX_RECIPIENTS)


class UpdateCoupon(Body):
    """PUT-replace, as Talon.One's: ``startDate``, ``expiryDate`` and ``recipientIntegrationId`` left out
    become none; the other fields left out stay."""

    usageLimit: int | None = Field(default=None, ge=0, le=MAX_USAGE_LIMIT)
    discountLimit: Decimal | None = Field(default=None, ge=0, le=Decimal(10) ** 15)
    reservationLimit: int | None = Field(default=None, ge=0, le=MAX_USAGE_LIMIT)
    startDate: dt.datetime | None = None
    expiryDate: dt.datetime | None = None
    limits: list[LimitConfig] | None = None
    recipientIntegrationId: str | None = Field(default=None, max_length=MAX_RECIPIENT_LENGTH)
    attributes: dict[str, Any] | None = None
    isReservationMandatory: bool | None = None
    implicitlyReserved: bool | None = None


class UpdateCouponBatch(Body):
    """The fields sent are set on every coupon of the batch (every coupon of the campaign without
    ``batchID``); the ones left out stay."""

    usageLimit: int | None = Field(default=None, ge=0, le=MAX_USAGE_LIMIT)
    discountLimit: Decimal | None = Field(default=None, ge=0, le=Decimal(10) ** 15)
    reservationLimit: int | None = Field(default=None, ge=0, le=MAX_USAGE_LIMIT)
    startDate: dt.datetime | None = None
    expiryDate: dt.datetime | None = None
    attributes: dict[str, Any] | None = None
    batchID: str | None = Field(default=None, max_length=100)


# ---- queries -----------------------------------------------------------------------------------------------


class DeleteQuery(Schema):
    value: str = Field("", description="Part of the code (any case); with exactMatch, the whole code")
    createdBefore: dt.datetime | None = None
    createdAfter: dt.datetime | None = None
    startsAfter: dt.datetime | None = None
    startsBefore: dt.datetime | None = None
    expiresAfter: dt.datetime | None = None
    expiresBefore: dt.datetime | None = None
    valid: Validity = ""
    batchId: str = ""
    usable: Flag = Field("", description="true: uses left (or unlimited); false: used up")
    referralId: int | None = None
    recipientIntegrationId: str = ""
    exactMatch: bool = False


class ListQuery(DeleteQuery):
    pageSize: int = Field(MAX_PAGE, ge=1, le=MAX_PAGE, description=f"At most {MAX_PAGE}")
    skip: int = Field(0, ge=0, le=MAX_SKIP)
    sort: str = Field(
        "",
        description="id, value, created, startDate, expiryDate, usageCounter, usageLimit, "
        "batchId; a leading - sorts descending. Newest first without it.",
    )
    redeemed: Flag = Field("", description="true: used at least once; false: never used")


class ExportQuery(DeleteQuery):
    campaignId: int | None = Field(None, description="Only this campaign's coupons (else the application's)")
    sort: str = ""
    valuesOnly: bool = Field(False, description="Only the column value")


# ---- answers (documentation; presenters build them) ---------------------------------------------------


class CouponsCreated(Schema):
    totalResultSize: int
    data: list[CouponOut]


class CouponPage(Schema):
    hasMore: bool
    data: list[CouponOut]


class SilentQuery(Schema):
    silent: str = Field("yes", description="yes (default): answer 204 without the coupons; no: with them")


class ImportQuery(Schema):
    skipDuplicates: bool = Field(False, description="Leave out codes repeated or already used")


# ---- helpers -----------------------------------------------------------------------------------------------


def _coupon_campaign(application_id: int, campaign_id: int) -> Campaign:
    """A campaign new coupons may go to: the application's, with the feature "coupons"."""
    campaign = campaign_of(application_id, campaign_id)
    if FEATURE not in (campaign.features or []):
        message = (
            f"Campaign {campaign_id} ({campaign.name}) does not have the feature {FEATURE!r}: turn it on in "
            "the campaign's settings to add coupons to it"
        )
        raise ValidationFailed(message, details=[ErrorDetail(ValidationFailed.title, message)])
    return campaign


def _filters(query: DeleteQuery, *, redeemed: str = "") -> CouponFilters:
    return CouponFilters(
        value=query.value,
        exact_match=query.exactMatch,
        batch_id=query.batchId,
        usable=flag(query.usable),
        redeemed=flag(redeemed),
        valid=query.valid,
        recipient_integration_id=query.recipientIntegrationId,
        referral_id=query.referralId,
        created_before=clock.assume_utc(query.createdBefore),
        created_after=clock.assume_utc(query.createdAfter),
        starts_before=clock.assume_utc(query.startsBefore),
        starts_after=clock.assume_utc(query.startsAfter),
        expires_before=clock.assume_utc(query.expiresBefore),
        expires_after=clock.assume_utc(query.expiresAfter),
    )


def _pattern(body: CouponSettings, prefix: str | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if body.couponPattern:
        settings["pattern"] = body.couponPattern
    elif prefix:
        # Talon.One's deprecated uniquePrefix: the prefix, then the default pattern's random part.
        settings["pattern"] = prefix + "########"
    if body.validCharacters:
        settings["alphabet"] = "".join(body.validCharacters)
    return settings


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _limits(limits: list[LimitConfig] | None) -> list[dict[str, Any]] | None:
    if limits is None:
        return None
    return [
        {
            "action": limit.action,
            "limit": int(limit.limit)
            if limit.limit == limit.limit.to_integral_value()
            else float(limit.limit),
            "entities": limit.entities,
            **({"period": limit.period} if limit.period else {}),
        }
        for limit in limits
    ]


def _created(coupons: list[Any], silent: str) -> HttpResponse:
    if silent != "no":
        return json_response(None, status=204)
    return json_response({"totalResultSize": len(coupons), "data": [coupon_json(c) for c in coupons]})


# ---- create ------------------------------------------------------------------------------------------------


@router.post(
    "/{int:application_id}/campaigns/{int:campaign_id}/coupons",
    response={200: CouponsCreated, 204: None},
    summary="Create coupons",
)
def create_coupons(
    request: HttpRequest, application_id: int, campaign_id: int, body: NewCoupons, query: Query[SilentQuery]
) -> HttpResponse:
    """Up to 20,000 coupons sharing a new batch ID, from ``couponPattern`` (``#`` = a random character of
    ``validCharacters``). The campaign needs the feature "coupons"."""
    require(request, ADD)
    campaign = _coupon_campaign(application_id, campaign_id)
    made = services.coupons_create(
        campaign=campaign,
        count=body.numberOfCoupons,
        usage_limit=body.usageLimit,
        discount_limit=body.discountLimit,
        reservation_limit=body.reservationLimit,
        start_date=body.startDate,
        expiry_date=body.expiryDate,
        recipient_integration_id=body.recipientIntegrationId or "",
        attributes=body.attributes,
        is_reservation_mandatory=body.isReservationMandatory,
        implicitly_reserved=body.implicitlyReserved,
        limits=_limits(body.limits),
        actor=request.user,
        **_pattern(body, body.uniquePrefix),
    )
    return _created(made, query.silent)


@router.post(
    "/{int:application_id}/campaigns/{int:campaign_id}/coupons_with_recipients",
    response={200: CouponsCreated, 204: None},
    summary="Create coupons for multiple recipients",
)
def create_coupons_for_multiple_recipients(
    request: HttpRequest,
    application_id: int,
    campaign_id: int,
    body: NewCouponsForMultipleRecipients,
    query: Query[SilentQuery],
) -> HttpResponse:
    """One personal code (only that customer may redeem it) per recipient, up to 1,000."""
    require(request, ADD)
    campaign = _coupon_campaign(application_id, campaign_id)
    made = services.coupons_for_recipients(
        campaign=campaign,
        recipients=body.recipientsIntegrationIds,
        usage_limit=body.usageLimit,
        discount_limit=body.discountLimit,
        reservation_limit=body.reservationLimit,
        start_date=body.startDate,
        expiry_date=body.expiryDate,
        attributes=body.attributes,
        actor=request.user,
        **_pattern(body),
    )
    return _created(made, query.silent)


@router.post(
    "/{int:application_id}/campaigns/{int:campaign_id}/import_coupons",
    response=ImportOut,
    summary="Import coupons from CSV",
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"upFile": {"type": "string", "format": "binary"}},
                    }
                }
            }
        }
    },
)
def import_coupons(
    request: HttpRequest, application_id: int, campaign_id: int, query: Query[ImportQuery]
) -> HttpResponse:
    """Multipart ``upFile`` (a file or a text field). Columns ``value`` (required), ``expirydate``,
    ``startdate``, ``recipientintegrationid``, ``limitval`` (default 1, 0 = unlimited), ``discountlimit``,
    ``attributes`` (JSON). All or nothing: a bad line refuses the file, each problem names its line and
    column. With ``skipDuplicates`` codes repeated or already used are left out. The import is listed in
    the back office's imports; its ID is the coupons' ``importId``."""
    require(request, ADD)
    campaign = _coupon_campaign(application_id, campaign_id)
    upload = request.FILES.get("upFile")
    if upload is not None:
        source: Any = upload
        filename, size = upload.name or "upFile.csv", upload.size or 0
    elif "upFile" in request.POST:
        data = request.POST["upFile"].encode("utf-8")
        source, filename, size = io.BytesIO(data), "upFile.csv", len(data)
    else:
        message = "Send the CSV file as the multipart field upFile"
        raise ValidationFailed(message, details=[ErrorDetail("Invalid value", message, pointer="/upFile")])
    with transaction.atomic():  # the import's record goes with its coupons, or not at all
        options: dict[str, Any] = {"campaign": campaign.pk}
        if query.skipDuplicates:
            options["skip_duplicates"] = "yes"
        job = import_job_create(
            kind=IMPORT_KIND,
            environment=campaign.application.environment,
            filename=filename,
            size=size,
            skip_bad_rows=False,
            options=options,
            actor=request.user,
            enqueue=False,
        )
        started = clock.now()
        result = services.coupons_import(
            campaign=campaign,
            source=source,
            skip_duplicates=query.skipDuplicates,
            actor=request.user,
            import_id=job.pk,
        )
        skipped = result.total - result.created
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.SUCCEEDED,
            phase="Done",
            percent=100,
            total_rows=result.total,
            processed_rows=result.total,
            created_count=result.created,
            skipped_count=skipped,
            problem_count=len(result.problems),
            message=f"Created {result.created:,}"
            + (f", skipped {skipped:,} codes repeated or already used" if skipped else "")
            + " (Management API).",
            started_at=started,
            finished_at=clock.now(),
            updated=clock.now(),
        )
    return json_response(
        {
            "id": job.pk,
            "created": job.created,
            "accountId": ACCOUNT_ID,
            "userId": request.user.pk or 0,
            "entity": "Coupon",
            "amount": result.created,
        }
    )


# ---- read --------------------------------------------------------------------------------------------------


@router.get(
    "/{int:application_id}/campaigns/{int:campaign_id}/coupons/no_total",
    response=CouponPage,
    summary="List a campaign's coupons",
)
def list_coupons(
    request: HttpRequest, application_id: int, campaign_id: int, filters: Query[ListQuery]
) -> HttpResponse:
    """Newest first unless ``sort``; ``hasMore`` says whether another page follows."""
    require(request, VIEW)
    campaign = campaign_of(application_id, campaign_id)
    rows = coupons_filtered(campaign=campaign, filters=_filters(filters, redeemed=filters.redeemed))
    rows = coupons_sorted(rows, filters.sort)
    page = list(rows[filters.skip : filters.skip + filters.pageSize + 1])
    return json_response(
        {
            "hasMore": len(page) > filters.pageSize,
            "data": [coupon_json(c) for c in page[: filters.pageSize]],
        }
    )


@router.get(
    "/{int:application_id}/export_coupons",
    response={200: str},
    summary="Export coupons as CSV",
)
def export_coupons(request: HttpRequest, application_id: int, filters: Query[ExportQuery]) -> HttpResponse:
    """Talon.One's columns (``accountid, applicationid, attributes, batchid, campaignid, counter, created,
    ...``; with ``valuesOnly`` just ``value``); re-importable. A cell a spreadsheet could run as a formula
    starts with ``'``."""
    require(request, VIEW)
    application = application_of(application_id)
    campaign = None
    if filters.campaignId is not None:
        campaign = campaign_of(application_id, filters.campaignId)
    rows = coupons_filtered(campaign=campaign, application=application, filters=_filters(filters))
    rows = coupons_sorted(rows, filters.sort)
    lines = coupons_export_rows(queryset=rows)
    if filters.valuesOnly:
        lines = _values_only(rows)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="coupons-{application.slug}.csv"'
    return response  # type: ignore[return-value]


def _values_only(rows: Any) -> Iterator[str]:
    from patronage.core.csvio import format_row, neutralize

    yield format_row(["value"])
    for value in rows.values_list("value", flat=True).iterator(chunk_size=5000):
        yield format_row([neutralize(value)])


# ---- change ------------------------------------------------------------------------------------------------


@router.put(
    "/{int:application_id}/campaigns/{int:campaign_id}/coupons/{int:coupon_id}",
    response=CouponOut,
    summary="Change a coupon",
)
def update_coupon(
    request: HttpRequest, application_id: int, campaign_id: int, coupon_id: int, body: UpdateCoupon
) -> HttpResponse:
    require(request, CHANGE)
    coupon = coupon_get(campaign=campaign_of(application_id, campaign_id), coupon_id=coupon_id)
    sent = body.model_fields_set
    data: dict[str, Any] = {
        # PUT-replace: these three become none when left out
        "start_date": body.startDate,
        "expiry_date": body.expiryDate,
        "recipient_integration_id": body.recipientIntegrationId or "",
    }
    for name, field in (
        ("usageLimit", "usage_limit"),
        ("discountLimit", "discount_limit"),
        ("reservationLimit", "reservation_limit"),
        ("attributes", "attributes"),
        ("isReservationMandatory", "is_reservation_mandatory"),
        ("implicitlyReserved", "implicitly_reserved"),
    ):
        if name in sent:
            data[field] = getattr(body, name)
    if "limits" in sent:
        data["limits"] = _limits(body.limits) or []
    coupon = services.coupon_update(coupon=coupon, data=data, actor=request.user)
    return json_response(coupon_json(coupon))


@router.put(
    "/{int:application_id}/campaigns/{int:campaign_id}/coupons",
    response={204: None},
    summary="Change a batch of coupons",
)
def update_coupon_batch(
    request: HttpRequest, application_id: int, campaign_id: int, body: UpdateCouponBatch
) -> HttpResponse:
    require(request, CHANGE)
    campaign = campaign_of(application_id, campaign_id)
    sent = body.model_fields_set
    data = {
        field: getattr(body, name)
        for name, field in (
            ("usageLimit", "usage_limit"),
            ("discountLimit", "discount_limit"),
            ("reservationLimit", "reservation_limit"),
            ("startDate", "start_date"),
            ("expiryDate", "expiry_date"),
            ("attributes", "attributes"),
        )
        if name in sent
    }
    if (
        body.batchID
        and not coupons_filtered(campaign=campaign, filters=CouponFilters(batch_id=body.batchID)).exists()
    ):
        message = f"Campaign {campaign.pk} has no coupons of the batch {body.batchID!r}"
        raise NotFound(message, details=[ErrorDetail(NotFound.title, message, pointer="/batchID")])
    services.coupons_update_batch(campaign=campaign, batch_id=body.batchID, data=data, actor=request.user)
    return json_response(None, status=204)


# ---- delete ------------------------------------------------------------------------------------------------


@router.delete(
    "/{int:application_id}/campaigns/{int:campaign_id}/coupons/{int:coupon_id}",
    response={204: None},
    summary="Delete a coupon",
)
def delete_coupon(
    request: HttpRequest, application_id: int, campaign_id: int, coupon_id: int
) -> HttpResponse:
    require(request, DELETE)
    coupon = coupon_get(campaign=campaign_of(application_id, campaign_id), coupon_id=coupon_id)
    services.coupon_delete(coupon=coupon, actor=request.user)
    return json_response(None, status=204)


@router.delete(
    "/{int:application_id}/campaigns/{int:campaign_id}/coupons",
    response={204: None},
    summary="Delete coupons",
)
def delete_coupons(
    request: HttpRequest, application_id: int, campaign_id: int, filters: Query[DeleteQuery]
) -> HttpResponse:
    """The campaign's coupons matching the filters; all of them without a filter (as Talon.One)."""
    require(request, DELETE)
    campaign = campaign_of(application_id, campaign_id)
    services.coupons_delete(campaign=campaign, filters=_filters(filters), actor=request.user)
    return json_response(None, status=204)
