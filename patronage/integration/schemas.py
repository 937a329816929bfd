"""Request and response bodies of the Integration API, with Talon.One's field names.

Requests are validated by these models (errors point at the offending field). Responses are built by
``presenters`` as plain dicts for speed; the response models here document them in the OpenAPI schema.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SessionStateName = Literal["open", "closed", "partially_returned", "cancelled"]
Str255 = Field(default=None, max_length=255)


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# A price, as cart items and additional costs take it: within a trillion either way (a total of them must
# still fit the database's 14 integer digits, which the session services check).
Price = Field(default=Decimal("0"), allow_inf_nan=False, ge=-(10**12), le=10**12)


class AdditionalCostIn(Body):
    price: Decimal = Field(allow_inf_nan=False, ge=-(10**12), le=10**12)


class CartItemIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = Str255
    sku: str = Field(min_length=1, max_length=255)
    quantity: int = Field(ge=1, le=1_000_000)
    price: Decimal = Price
    category: str | None = Str255
    attributes: dict[str, Any] | None = None
    weight: float | None = None
    height: float | None = None
    width: float | None = None
    length: float | None = None
    position: float | None = None
    additionalCosts: dict[str, AdditionalCostIn] | None = None


class NewCustomerSessionV2(Body):
    profileId: str | None = Field(default=None, max_length=1000)
    storeIntegrationId: str | None = Field(default=None, max_length=1000)
    evaluableCampaignIds: list[int] | None = None
    couponCodes: list[str] | None = Field(default=None, max_length=100)
    referralCode: str | None = Field(default=None, max_length=100)
    loyaltyCards: list[str] | None = Field(default=None, max_length=10)
    state: SessionStateName | None = None
    cartItems: list[CartItemIn] | None = Field(default=None, max_length=1000)
    additionalCosts: dict[str, AdditionalCostIn] | None = None
    identifiers: list[str] | None = Field(default=None, max_length=5)
    attributes: dict[str, Any] | None = None


class IntegrationRequest(Body):
    customerSession: NewCustomerSessionV2
    responseContent: list[str] | None = None


class CustomerProfileIntegrationRequestV2(Body):
    attributes: dict[str, Any] | None = None
    evaluableCampaignIds: list[int] | None = None
    responseContent: list[str] | None = None


class IntegrationEventV2Request(Body):
    profileId: str = Field(min_length=1, max_length=1000)
    storeIntegrationId: str | None = Field(default=None, max_length=1000)
    evaluableCampaignIds: list[int] | None = None
    type: str = Field(min_length=1, max_length=255)
    attributes: dict[str, Any] | None = None
    loyaltyCards: list[str] | None = Field(default=None, max_length=10)
    responseContent: list[str] | None = None


class MultipleCustomerProfileItem(Body):
    integrationId: str = Field(min_length=1, max_length=1000)
    attributes: dict[str, Any] | None = None


class MultipleCustomerProfileIntegrationRequest(Body):
    customerProfiles: list[MultipleCustomerProfileItem] = Field(max_length=1000)


class ReturnedCartItemIn(Body):
    position: int = Field(ge=0)
    quantity: int | None = Field(default=None, ge=1)


class NewReturn(Body):
    returnedCartItems: list[ReturnedCartItemIn] = Field(min_length=1, max_length=1000)


class ReturnIntegrationRequest(Body):
    return_: NewReturn = Field(alias="return")
    responseContent: list[str] | None = None


# ---- responses (documentation; presenters build the actual dicts) ----


class CartItemOut(BaseModel):
    name: str
    sku: str
    quantity: int
    returnedQuantity: int
    remainingQuantity: int
    price: float
    category: str
    position: int
    attributes: dict[str, Any]


class CustomerSessionV2(BaseModel):
    id: int
    created: dt.datetime
    integrationId: str
    applicationId: int
    profileId: str
    storeIntegrationId: str
    evaluableCampaignIds: list[int]
    couponCodes: list[str]
    referralCode: str
    loyaltyCards: list[str]
    state: SessionStateName
    cartItems: list[CartItemOut]
    additionalCosts: dict[str, dict[str, float]]
    identifiers: list[str]
    attributes: dict[str, Any]
    firstSession: bool
    total: float
    cartItemTotal: float
    additionalCostTotal: float
    updated: dt.datetime
    closedAt: dt.datetime | None = None


class CustomerProfile(BaseModel):
    id: int
    created: dt.datetime
    integrationId: str
    attributes: dict[str, Any]
    accountId: int
    closedSessions: int
    totalSales: float
    loyaltyMemberships: list[dict[str, Any]]
    audienceMemberships: list[dict[str, Any]]
    lastActivity: dt.datetime
    sandbox: bool


class ReturnOut(BaseModel):
    id: int
    created: dt.datetime
    applicationId: int
    accountId: int
    returnedCartItems: list[ReturnedCartItemIn]
    eventId: int
    sessionId: int
    sessionIntegrationId: str
    profileIntegrationId: str


class IntegrationStateV2(BaseModel):
    customerSession: CustomerSessionV2 | None = None
    customerProfile: CustomerProfile | None = None
    effects: list[dict[str, Any]]
    createdCoupons: list[dict[str, Any]]
    createdReferrals: list[dict[str, Any]]
    return_: ReturnOut | None = Field(default=None, alias="return")


class CustomerProfileIntegrationResponseV2(BaseModel):
    customerProfile: CustomerProfile
    effects: list[dict[str, Any]]
    createdCoupons: list[dict[str, Any]]
    createdReferrals: list[dict[str, Any]]
    triggeredCampaigns: list[dict[str, Any]] | None = None
    ruleFailureReasons: list[dict[str, Any]] | None = None


class EventOut(BaseModel):
    id: int
    created: dt.datetime
    applicationId: int
    profileId: str
    storeIntegrationId: str | None = None
    type: str
    attributes: dict[str, Any]
    effects: list[dict[str, Any]]


class TrackEventV2Response(BaseModel):
    customerProfile: CustomerProfile | None = None
    event: EventOut | None = None
    effects: list[dict[str, Any]]
    createdCoupons: list[dict[str, Any]]
    createdReferrals: list[dict[str, Any]]
    triggeredCampaigns: list[dict[str, Any]] | None = None
    ruleFailureReasons: list[dict[str, Any]] | None = None


class CustomerProfileUpdateV2Response(BaseModel):
    customerProfile: CustomerProfile


class MultipleCustomerProfileIntegrationResponseV2(BaseModel):
    integrationStates: list[CustomerProfileUpdateV2Response]


class IntegrationCustomerSessionResponse(BaseModel):
    customerSession: CustomerSessionV2
    effects: list[dict[str, Any]]


class ReopenSessionResponse(BaseModel):
    effects: list[dict[str, Any]]


class ErrorSource(BaseModel):
    pointer: str | None = None
    parameter: str | None = None
    line: str | None = None


class APIError(BaseModel):
    title: str
    details: str
    source: ErrorSource | None = None


class ErrorResponseWithStatus(BaseModel):
    message: str
    errors: list[APIError]
    StatusCode: int
