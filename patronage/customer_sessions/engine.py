"""The hook through which a rule engine takes part in every session write, without this app knowing it.

A session write runs in four steps over one :class:`SessionContext`: **load and lock** (the profile and the
session, then each engine's ``load``: what its campaigns need, locked in the documented order), **apply
the input** (cart, state, codes), **evaluate** (each engine's ``evaluate``: pure, it reads the context and
fills ``effects``), **persist** (the session's rows, then each engine's ``persist``: commit on close, roll
back on cancel, return, reopen). A dry run stops before persist.

The campaigns app appends its engine to :data:`SESSION_ENGINES` from its ``AppConfig.ready()``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from patronage.customers.models import CustomerProfile
    from patronage.workspace.models import Application

    from .models import CartItem, CustomerSession


class Transition:
    """What a write did to the session's life cycle; engines commit or roll back accordingly."""

    UPDATE = "update"  # an open session stays open (or is created)
    CLOSE = "close"  # open -> closed: commit
    CLOSED_AGAIN = "closed_again"  # "closed" sent for a closed session: nothing new
    CANCEL_OPEN = "cancel_open"  # open -> cancelled: nothing was committed
    REVOKE = "revoke"  # closed or partially returned -> cancelled: roll back what is left
    RETURN = "return"  # units of a closed session returned: roll back their per-item effects
    REOPEN = "reopen"  # closed -> open: roll back


@dataclass
class SessionContext:
    """Everything one session write knows; engines read it and add their results."""

    application: Application
    integration_id: str
    now: dt.datetime
    dry: bool = False
    # Campaigns to evaluate whatever their state (a dry run's ``evaluableCampaignIds``); None: the usual.
    evaluable_campaign_ids: list[int] | None = None
    response_content: set[str] = field(default_factory=set)
    profile: CustomerProfile | None = None
    session: CustomerSession | None = None
    items: list[CartItem] = field(default_factory=list)
    created: bool = False
    previous_state: str = ""
    transition: str = Transition.UPDATE
    # For returns: position -> units returned by this request, and units returned before it.
    returned: dict[int, int] = field(default_factory=dict)
    returned_before: dict[int, int] = field(default_factory=dict)
    # Filled by engines.
    effects: list[dict[str, Any]] = field(default_factory=list)
    created_coupons: list[dict[str, Any]] = field(default_factory=list)
    created_referrals: list[dict[str, Any]] = field(default_factory=list)
    triggered_campaigns: list[dict[str, Any]] = field(default_factory=list)
    rule_failure_reasons: list[dict[str, Any]] = field(default_factory=list)
    # Further responseContent parts engines answer ("coupons", "referral"), by name.
    content: dict[str, Any] = field(default_factory=dict)
    # Each engine's own working data (what it loaded), by engine name.
    state: dict[str, Any] = field(default_factory=dict)


class SessionEngine(Protocol):
    name: str

    def load(self, ctx: SessionContext) -> None: ...

    def evaluate(self, ctx: SessionContext) -> None: ...

    def persist(self, ctx: SessionContext) -> None: ...


SESSION_ENGINES: list[SessionEngine] = []


def run_load(ctx: SessionContext) -> None:
    for engine in SESSION_ENGINES:
        engine.load(ctx)


def run_evaluate(ctx: SessionContext) -> None:
    for engine in SESSION_ENGINES:
        engine.evaluate(ctx)


def run_persist(ctx: SessionContext) -> None:
    for engine in SESSION_ENGINES:
        engine.persist(ctx)
