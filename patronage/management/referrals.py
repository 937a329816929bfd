"""Management API for referral codes at Talon.One's paths: list (``referrals/no_total``), change, delete,
import (CSV, all or nothing) and export (CSV). Mounted by ``patronage.management.api`` under /applications,
so the official SDK works with its host set to ``<server>/api``.
"""

import datetime as dt
import io
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Field, Query, Router, Schema

from patronage.core import clock
from patronage.core.errors import ErrorDetail, ValidationFailed
from patronage.coupons import referrals
from patronage.coupons.models import MAX_USAGE_LIMIT
from patronage.coupons.presenters import referral_json
from patronage.coupons.schemas import Body, ImportOut, ReferralOut
from patronage.integration.presenters import ACCOUNT_ID, json_response
from patronage.management.lookups import application_of, campaign_of, flag

from .access import management_auth, require
from .pagination import MAX_LIMIT, MAX_OFFSET

router = Router(auth=management_auth, tags=["Referrals"])

VIEW = "coupons.view_referral"
ADD = "coupons.add_referral"
CHANGE = "coupons.change_referral"
DELETE = "coupons.delete_referral"

SORTS = {
    "id": "id",
    "created": "created",
    "code": "code",
    "usageCounter": "usage_counter",
    "usageLimit": "usage_limit",
    "startDate": "start_date",
    "expiryDate": "expiry_date",
    "advocateProfileIntegrationId": "advocate_integration_id",
}


class UpdateReferral(Body):
    """PUT-replace, as Talon.One's update of a code: the friend and the dates left out become none; the
    usage limit and the attributes left out stay."""

    friendProfileIntegrationId: str | None = Field(default=None, max_length=1000)
    startDate: dt.datetime | None = None
    expiryDate: dt.datetime | None = None
    usageLimit: int | None = Field(default=None, ge=0, le=MAX_USAGE_LIMIT)
    attributes: dict[str, Any] | None = None


class ReferralFilter(Schema):
    code: str = Field("", description="Part of the code, any case")
    createdBefore: dt.datetime | None = None
    createdAfter: dt.datetime | None = None
    valid: Literal["", "expired", "validNow", "validFuture"] = ""
    usable: Literal["", "true", "false", "True", "False"] = Field(
        "", description="true: uses left; false: used up"
    )


class ListQuery(ReferralFilter):
    pageSize: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT}")
    skip: int = Field(0, ge=0, le=MAX_OFFSET, description=f"At most {MAX_OFFSET}")
    sort: str = Field("", description=f"One of {', '.join(SORTS)}; a leading - sorts descending")
    advocate: str = Field("", description="The advocate's integration ID")


class ExportQuery(ReferralFilter):
    campaignId: int | None = None
    batchId: str = ""
    dateFormat: str = ""


class ReferralPage(Schema):
    hasMore: bool
    data: list[ReferralOut]


def _sorted(rows: Any, sort: str) -> Any:
    if not sort:
        return rows.order_by("id")
    field = SORTS.get(sort.removeprefix("-"))
    if field is None:
        message = f"Referrals sort by {', '.join(SORTS)} (a leading - for descending), not {sort!r}"
        raise ValidationFailed(message, details=[ErrorDetail("Invalid value", message, pointer="query:sort")])
    return rows.order_by(f"-{field}" if sort.startswith("-") else field, "id")


@router.get(
    "/{int:application_id}/campaigns/{int:campaign_id}/referrals/no_total",
    response=ReferralPage,
    summary="List a campaign's referral codes",
)
def list_referrals(
    request: HttpRequest, application_id: int, campaign_id: int, filters: Query[ListQuery]
) -> HttpResponse:
    require(request, VIEW)
    campaign = campaign_of(application_id, campaign_id)
    rows = referrals.referrals_of(
        campaign.application,
        campaign=campaign,
        code=filters.code,
        created_before=clock.assume_utc(filters.createdBefore),
        created_after=clock.assume_utc(filters.createdAfter),
        valid=filters.valid,
        usable=flag(filters.usable),
        advocate=filters.advocate,
    )
    page = list(_sorted(rows, filters.sort)[filters.skip : filters.skip + filters.pageSize + 1])
    return json_response(
        {
            "hasMore": len(page) > filters.pageSize,
            "data": [referral_json(r) for r in page[: filters.pageSize]],
        }
    )


@router.put(
    "/{int:application_id}/campaigns/{int:campaign_id}/referrals/{int:referral_id}",
    response=ReferralOut,
    summary="Change a referral code",
)
def update_referral(
    request: HttpRequest, application_id: int, campaign_id: int, referral_id: int, body: UpdateReferral
) -> HttpResponse:
    require(request, CHANGE)
    referral = referrals.referral_of(campaign_of(application_id, campaign_id), referral_id)
    referral = referrals.referral_update(
        referral=referral,
        friend=body.friendProfileIntegrationId or "",
        start_date=body.startDate,
        expiry_date=body.expiryDate,
        usage_limit=body.usageLimit,
        attributes=body.attributes,
        actor=request.user,
    )
    return json_response(referral_json(referral))


@router.delete(
    "/{int:application_id}/campaigns/{int:campaign_id}/referrals/{int:referral_id}",
    response={204: None},
    summary="Delete a referral code",
)
def delete_referral(
    request: HttpRequest, application_id: int, campaign_id: int, referral_id: int
) -> HttpResponse:
    require(request, DELETE)
    referral = referrals.referral_of(campaign_of(application_id, campaign_id), referral_id)
    referrals.referral_delete(referral=referral, actor=request.user)
    return json_response(None, status=204)


@router.post(
    "/{int:application_id}/campaigns/{int:campaign_id}/import_referrals",
    response=ImportOut,
    summary="Import referral codes from CSV",
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
def import_referrals(request: HttpRequest, application_id: int, campaign_id: int) -> HttpResponse:
    """Multipart ``upFile`` (a file or a text field). Columns ``code``, ``advocateprofileintegrationid``
    (required), ``startdate``, ``expirydate``, ``limitval`` (default 1), ``attributes`` (a JSON object).
    All or nothing: a bad line refuses the file, each problem names its line. Advocates are not created."""
    require(request, ADD)
    campaign = campaign_of(application_id, campaign_id)
    upload = request.FILES.get("upFile")
    if upload is not None:
        source: Any = upload
    elif "upFile" in request.POST:
        source = io.BytesIO(request.POST["upFile"].encode("utf-8"))
    else:
        message = "Send the CSV file as the multipart field upFile"
        raise ValidationFailed(message, details=[ErrorDetail("Invalid value", message, pointer="/upFile")])
    result = referrals.referrals_import(campaign=campaign, source=source, actor=request.user)
    return json_response(
        {
            "id": result.import_id,
            "created": result.created_at,
            "accountId": ACCOUNT_ID,
            "userId": request.user.pk or 0,
            "entity": "Referral",
            "amount": result.created,
        }
    )


@router.get(
    "/{int:application_id}/export_referrals",
    response={200: str},
    summary="Export referral codes as CSV",
)
def export_referrals(request: HttpRequest, application_id: int, filters: Query[ExportQuery]) -> HttpResponse:
    """Columns ``id, created, campaignid, code, advocateprofileintegrationid, friendprofileintegrationid,
    startdate, expirydate, limitval, counter, batchid, importid, attributes``; re-importable. A cell a
    spreadsheet could run as a formula starts with ``'``."""
    require(request, VIEW)
    application = application_of(application_id)
    campaign = None
    if filters.campaignId is not None:
        campaign = campaign_of(application_id, filters.campaignId)
    rows = referrals.referrals_of(
        application,
        campaign=campaign,
        created_before=clock.assume_utc(filters.createdBefore),
        created_after=clock.assume_utc(filters.createdAfter),
        valid=filters.valid,
        usable=flag(filters.usable),
        batch_id=filters.batchId,
    )
    response = StreamingHttpResponse(
        referrals.referral_export_lines(rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="referrals-{application.slug}.csv"'
    return response  # type: ignore[return-value]
