"""What an evaluation reads: plain snapshots of the session, its items, the customer, the event and the
application, made once per request before evaluation (which then never touches the database)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

ZERO = Decimal("0")


@dataclass(frozen=True)
class ItemFacts:
    position: int
    sku: str
    name: str
    category: str
    price: Decimal  # of one unit
    quantity: int  # 1 for a unit of a flattened line
    attributes: dict[str, Any]
    sub_position: int | None = None  # the unit within its line, when flattened

    @property
    def total(self) -> Decimal:
        return self.price * self.quantity

    @property
    def key(self) -> tuple[int, int | None]:
        return (self.position, self.sub_position)

    def units(self) -> list[ItemFacts]:
        if self.sub_position is not None:
            return [self]
        return [
            ItemFacts(self.position, self.sku, self.name, self.category, self.price, 1, self.attributes, sub)
            for sub in range(self.quantity)
        ]


@dataclass(frozen=True)
class SessionFacts:
    integration_id: str
    state: str
    store: str
    first_session: bool
    total: Decimal
    cart_item_total: Decimal
    additional_cost_total: Decimal
    additional_costs: dict[str, Decimal]
    items: tuple[ItemFacts, ...]  # lines, or units when the application flattens cart items
    attributes: dict[str, Any]
    coupon_codes: tuple[str, ...] = ()
    referral_code: str = ""
    identifiers: tuple[str, ...] = ()

    @property
    def unit_count(self) -> int:
        return sum(item.quantity for item in self.items)


@dataclass(frozen=True)
class ProfileFacts:
    pk: int
    integration_id: str
    name: str
    email: str
    group: str
    group_id: int | None
    orders: int
    total_sales: Decimal
    birth_date: dt.date | None
    created: dt.datetime
    attributes: dict[str, Any]


@dataclass(frozen=True)
class EventFacts:
    type: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class AppFacts:
    id: int
    name: str
    currency: str
    time_zone: str
    default_discount_scope: str = "sessionTotal"
    cascading: bool = False
    flattened: bool = False
    partial_discounts: bool = False
    environment_id: int = 0
    code_case: str = "sensitive"

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class Facts:
    app: AppFacts
    now: dt.datetime  # UTC
    local_now: dt.datetime  # in the application's time zone
    session: SessionFacts | None = None
    profile: ProfileFacts | None = None
    event: EventFacts | None = None


@dataclass
class Remaining:
    """What is left to discount, moved by every discount an evaluation grants: prices never go below 0.

    ``items`` maps (position, sub_position) of what the session's items are (lines or units) to the
    amount still undiscounted. Copied for each trial of an exclusive evaluation group.
    """

    items: dict[tuple[int, int | None], Decimal] = field(default_factory=dict)
    costs: dict[str, Decimal] = field(default_factory=dict)
    session_discount_items: Decimal = ZERO  # session-level discounts taken off the cart items
    session_discount_costs: Decimal = ZERO

    def copy(self) -> Remaining:
        return Remaining(
            dict(self.items), dict(self.costs), self.session_discount_items, self.session_discount_costs
        )

    @property
    def cart_items(self) -> Decimal:
        return sum(self.items.values(), ZERO) - self.session_discount_items

    @property
    def additional_costs(self) -> Decimal:
        return sum(self.costs.values(), ZERO) - self.session_discount_costs

    @classmethod
    def of(cls, session: SessionFacts | None) -> Remaining:
        if session is None:
            return cls()
        return cls(
            items={item.key: item.total for item in session.items},
            costs=dict(session.additional_costs),
        )
