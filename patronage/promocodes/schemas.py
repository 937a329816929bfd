"""JSON shapes of the promo codes Management API (camelCase, as the rest of the Management API)."""

import datetime as dt

from ninja import Field, Schema


class GroupOut(Schema):
    id: int
    environment: str
    name: str
    description: str
    created: dt.datetime
    total: int = Field(..., description="Codes in the group")
    active: int = Field(..., description="Codes not issued to anyone yet")
    issued: int
    redeemed: int


class GroupFilter(Schema):
    environment: str = "live"


class CodesIn(Schema):
    codes: list[str] = Field(..., description="One code per item; trimmed, blank items ignored")


class ProblemOut(Schema):
    line: int | None = Field(None, description="1-based: the item's position in codes, or the body's line")
    title: str
    details: str


class UploadOut(Schema):
    added: int
    duplicates: int = Field(..., description="Repeated in the upload or already in the environment: skipped")
    invalid: int = Field(..., description="Bad characters or too long: skipped")
    problems: list[ProblemOut]


class RedeemIn(Schema):
    environment: str = "live"
    code: str = Field(..., max_length=200)
    customer: str = Field(..., description="The customer's integration ID or email")


class RedeemOut(Schema):
    code: str
    group: str
    customer: str = Field(..., description="Integration ID of the customer who redeemed it")
    issuedAt: dt.datetime
    redeemedAt: dt.datetime
