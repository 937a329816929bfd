"""Integration API: referral codes, coupon reservations and the customer's inventory (Talon.One's #2-#4, #8,
#16, #17). Thin views: parse, call a coupons service or selector, present. Mounted by ``api`` at its root.

Every call acts within the API key's application (a sandbox key sees only its sandbox application's codes,
customers and campaigns).
"""

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from patronage.core.errors import ErrorDetail, NotFound
from patronage.coupons import inventory, referrals, reservations
from patronage.coupons.models import MAX_USAGE_LIMIT
from patronage.coupons.presenters import coupon_json, referral_json
from patronage.coupons.schemas import Body, CouponOut, ReferralOut
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import ApiKey

from . import presenters, schemas
from .errors import domain_error_response
from .idempotency import idempotent

router = Router()
remembered = idempotent(domain_error_response)

ERRORS = {
    400: schemas.ErrorResponseWithStatus,
    401: schemas.ErrorResponseWithStatus,
    404: schemas.ErrorResponseWithStatus,
    409: schemas.ErrorResponseWithStatus,
}


def _key(request: HttpRequest) -> ApiKey:
    return request.auth  # type: ignore[attr-defined,no-any-return]


class NewReferral(Body):
    campaignId: int
    advocateProfileIntegrationId: str = Field(max_length=1000)
    friendProfileIntegrationId: str | None = Field(default=None, max_length=1000)
    startDate: dt.datetime | None = None
    expiryDate: dt.datetime | None = None
    usageLimit: int = Field(default=1, ge=0, le=MAX_USAGE_LIMIT)
    attributes: dict[str, Any] | None = None


class NewReferralsForMultipleAdvocates(Body):
    campaignId: int
    advocateProfileIntegrationIds: list[str] = Field(min_length=1, max_length=referrals.MAX_ADVOCATES)
    startDate: dt.datetime | None = None
    expiryDate: dt.datetime | None = None
    usageLimit: int = Field(default=1, ge=0, le=MAX_USAGE_LIMIT)
    attributes: dict[str, Any] | None = None
    validCharacters: list[str] | None = None
    referralPattern: str | None = Field(default=None, min_length=3, max_length=100)


class CouponReservations(Body):
    integrationIDs: list[str] = Field(max_length=reservations.MAX_PROFILES)


class SilentQuery(Schema):
    silent: str = "yes"  # as Talon.One: the referrals come back only with silent=no


class InventoryQuery(Schema):
    profile: bool = False
    referrals: bool = False
    coupons: bool = False
    loyalty: bool = False
    giveaways: bool = False
    achievements: bool = False


# --- documentation of the answers (presenters build them) -------------------------------------------------


class ReferralPage(Schema):
    totalResultSize: int
    data: list[ReferralOut]


class ProfilePage(Schema):
    totalResultSize: int
    data: list[dict[str, Any]]


# --- referrals --------------------------------------------------------------------------------------------


@router.post(
    "/v1/referrals",
    response={201: ReferralOut, **ERRORS},
    summary="Create referral code for an advocate",
    tags=["Referrals"],
)
@remembered
def create_referral(request: HttpRequest, body: NewReferral) -> HttpResponse:
    """Ignores the campaign's referral budgets. The campaign must be the key's application's and have the
    feature ``referrals``."""
    referral = referrals.referral_create(
        application=_key(request).application,
        campaign_id=body.campaignId,
        advocate=body.advocateProfileIntegrationId,
        friend=body.friendProfileIntegrationId or "",
        start_date=body.startDate,
        expiry_date=body.expiryDate,
        usage_limit=body.usageLimit,
        attributes=body.attributes,
    )
    return presenters.json_response(referral_json(referral), status=201)


@router.post(
    "/v1/referrals_for_multiple_advocates",
    response={201: ReferralPage, 204: None, **ERRORS},
    summary="Create referral codes for multiple advocates",
    tags=["Referrals"],
)
@remembered
def create_referrals_for_multiple_advocates(
    request: HttpRequest, body: NewReferralsForMultipleAdvocates, query: Query[SilentQuery]
) -> HttpResponse:
    """One code per advocate (up to 1000), from ``referralPattern`` (``#`` = a character of
    ``validCharacters``) or the default pattern. ``silent=no`` answers the codes."""
    made = referrals.referrals_create_for_advocates(
        application=_key(request).application,
        campaign_id=body.campaignId,
        advocates=body.advocateProfileIntegrationIds,
        start_date=body.startDate,
        expiry_date=body.expiryDate,
        usage_limit=body.usageLimit,
        attributes=body.attributes,
        alphabet=body.validCharacters,
        pattern=body.referralPattern,
    )
    if query.silent != "no":
        return presenters.json_response(None, status=204)
    return presenters.json_response(
        {"totalResultSize": len(made), "data": [referral_json(r) for r in made]}, status=201
    )


# --- coupon reservations ----------------------------------------------------------------------------------


@router.post(
    "/v1/coupon_reservations/{couponValue}",
    response={201: CouponOut, **ERRORS},
    summary="Create coupon reservation",
    tags=["Coupons"],
)
@remembered
def create_coupon_reservation(
    request: HttpRequest, couponValue: str, body: CouponReservations
) -> HttpResponse:
    """The customers named hold the coupon (hard when it requires reservation, soft otherwise); unknown
    customers are created. Ignores the coupon's reservation limit. A personal coupon is refused (400)."""
    coupon = reservations.coupon_reserve(
        application=_key(request).application, value=couponValue, integration_ids=body.integrationIDs
    )
    return presenters.json_response(coupon_json(coupon), status=201)


@router.delete(
    "/v1/coupon_reservations/{couponValue}",
    response={204: None, **ERRORS},
    summary="Delete coupon reservations",
    tags=["Coupons"],
)
@remembered
def delete_coupon_reservation(
    request: HttpRequest, couponValue: str, body: CouponReservations
) -> HttpResponse:
    reservations.coupon_unreserve(
        application=_key(request).application, value=couponValue, integration_ids=body.integrationIDs
    )
    return presenters.json_response(None, status=204)


@router.get(
    "/v1/coupon_reservations/customerprofiles/{couponValue}",
    response={200: ProfilePage, **ERRORS},
    summary="List customers that have this coupon reserved",
    tags=["Coupons"],
)
def get_reserved_customers(request: HttpRequest, couponValue: str) -> HttpResponse:
    application = _key(request).application
    sandbox = application.environment.is_sandbox
    holders = list(reservations.coupon_holders(application, couponValue))
    return presenters.json_response(
        {
            "totalResultSize": len(holders),
            "data": [presenters.customer_profile(p, sandbox=sandbox) for p in holders],
        }
    )


# --- inventory --------------------------------------------------------------------------------------------


@router.get(
    "/v1/customer_profiles/{integrationId}/inventory",
    response={200: dict[str, Any], **ERRORS},
    summary="List customer data",
    tags=["Customer profiles"],
)
def get_customer_inventory(
    request: HttpRequest, integrationId: str, query: Query[InventoryQuery]
) -> HttpResponse:
    """The sections asked for: ``profile``, ``coupons`` (reserved, personal and shown to everyone, each
    with its state and the customer's redemptions), ``referrals`` (the customer's codes as advocate, with
    the customers they referred); sections not served yet are left out."""
    application = _key(request).application
    environment = application.environment
    profile = CustomerProfile.objects.filter(environment=environment, integration_id=integrationId).first()
    if profile is None:
        message = f"Customer profile {integrationId!r} not found"
        raise NotFound(message, details=[ErrorDetail(NotFound.title, message, pointer="query:integrationId")])
    flags = {name for name, on in query.dict().items() if on}
    shown: dict[str, Any] = {}
    if "profile" in flags:
        shown["profile"] = presenters.customer_profile(profile, sandbox=environment.is_sandbox)
    shown.update(inventory.inventory_sections(application, profile, flags))
    return presenters.json_response(shown)
