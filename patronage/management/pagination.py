"""The one pagination of the Management API's lists: ``limit``/``offset`` bounded, so a huge value is a 400
naming the parameter, never a number the database cannot take (PostgreSQL's bigint ends at 2^63)."""

from __future__ import annotations

from ninja import Field, Schema, pagination

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000
DEFAULT_LIMIT = 100


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT}")
        offset: int = Field(0, ge=0, le=MAX_OFFSET, description=f"At most {MAX_OFFSET}")

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_limit=MAX_LIMIT, **kwargs)  # type: ignore[arg-type]
