"""JSON shapes of the segments Management API (camelCase, as the rest of the Management API).

``rules`` is typed ``Any`` on purpose: the rule tree is checked by ``rules.check``, which reports every
problem at once with its JSON pointer (422), rather than by pydantic."""

import datetime as dt
from typing import Any

from ninja import Field, Schema

from .models import Segment

RULES_HELP = (
    'A rule tree: {"type": "group", "match": "all" | "any", "negate": false, "children": [...]}, whose '
    'children are groups or conditions {"type": "condition", "field", "operator", "value", "params", '
    '"negate"}; GET /segments/fields lists the fields, operators and parameters'
)


class SegmentFilter(Schema):
    environment: str = "live"


class SegmentIn(Schema):
    environment: str = Field(..., description="sandbox or live; fixed at creation")
    name: str = Field(..., description="Unique in the environment, ignoring case")
    description: str = ""
    rules: Any = Field(..., description=RULES_HELP)


class SegmentPut(Schema):
    name: str = Field(..., description="Unique in the environment, ignoring case")
    description: str = ""
    rules: Any = Field(..., description=RULES_HELP)


class SegmentOut(Schema):
    id: int
    environment: str
    name: str
    description: str
    rules: dict[str, Any]
    created: dt.datetime
    updated: dt.datetime

    @staticmethod
    def resolve_environment(obj: Segment) -> str:
        return obj.environment.slug


class CountOut(Schema):
    count: int = Field(..., description="Customers the segment holds now")


class PreviewIn(Schema):
    environment: str = Field(..., description="sandbox or live")
    rules: Any = Field(..., description=RULES_HELP)


class SampleOut(Schema):
    id: int
    integrationId: str
    name: str
    email: str | None


class PreviewOut(Schema):
    count: int
    sample: list[SampleOut] = Field(..., description="A few of the members, newest first")


class OperatorOut(Schema):
    key: str
    label: str
    value: str = Field(..., description="The shape of the value: none, text, number, count_range, ids, ...")


class ParamOut(Schema):
    name: str
    label: str
    value: str
    required: bool
    reference: str = Field(..., description="For ids: the key of references whose options name them")
    choices: list[list[str]] = Field(..., description="[key, label] pairs, when the value is a choice")
    help: str


class FieldOut(Schema):
    key: str = Field(..., description='The rule tree\'s "field", e.g. promo_codes.issued_count')
    label: str
    category: str
    type: str
    reference: str
    help: str
    operators: list[OperatorOut]
    params: list[ParamOut]


class ReferenceOut(Schema):
    label: str
    options: list[tuple[int, str]] = Field(..., description="[id, label] pairs of the environment's rows")


class CatalogueOut(Schema):
    fields: list[FieldOut]
    references: dict[str, ReferenceOut]
