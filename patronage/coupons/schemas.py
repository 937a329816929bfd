"""The wire shapes of coupons and referrals for both APIs' OpenAPI documents (the presenters build the
answers; these document them), and the base of request bodies that ignore fields they do not know."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Schema
from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    """A Talon.One request body: fields we do not know are ignored, as the SDK may send newer ones."""

    model_config = ConfigDict(extra="ignore")


class CouponOut(Schema):
    id: int
    created: dt.datetime
    campaignId: int
    value: str
    usageLimit: int
    usageCounter: int
    discountLimit: float | None = None
    discountCounter: float | None = None
    discountRemainder: float | None = None
    reservationLimit: int | None = None
    reservationCounter: int | None = None
    startDate: dt.datetime | None = None
    expiryDate: dt.datetime | None = None
    limits: list[dict[str, Any]] | None = None
    attributes: dict[str, Any] | None = None
    referralId: int | None = None
    recipientIntegrationId: str | None = None
    importId: int | None = None
    reservation: bool | None = None
    batchId: str | None = None
    isReservationMandatory: bool | None = None
    implicitlyReserved: bool | None = None


class ReferralOut(Schema):
    id: int
    created: dt.datetime
    startDate: dt.datetime | None = None
    expiryDate: dt.datetime | None = None
    usageLimit: int
    campaignId: int
    advocateProfileIntegrationId: str
    friendProfileIntegrationId: str | None = None
    attributes: dict[str, Any]
    importId: int | None = None
    code: str
    usageCounter: int
    batchId: str | None = None


class ImportOut(Schema):
    """Talon.One's ModelImport."""

    id: int
    created: dt.datetime
    accountId: int
    userId: int
    entity: str
    amount: int
