"""Writes to customer sessions: cart updates, state changes, returns, reopening and erasure.

Every write locks in the documented order (see ``patronage.core.locking``): the customer profile first,
then the session. The profile's ``closed_sessions``/``total_sales`` move by the difference each write
makes to the session's contribution, under both locks, so concurrent closes never lose an update.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from patronage.core import clock
from patronage.core.errors import (
    Conflict,
    DomainError,
    ErrorCollector,
    ErrorDetail,
    InvalidStateTransition,
    NotFound,
    ValidationFailed,
)
from patronage.core.locking import get_or_create_locked, lock, lock_wait_limit
from patronage.core.rows import pipelined, rows
from patronage.customers.models import CustomerProfile
from patronage.customers.services import (
    BEFORE_PROFILES_DELETE,
    activity_touch,
    profile_lock_or_create,
    validate_integration_id,
)
from patronage.workspace.models import Application, Environment

from .engine import SessionContext, Transition, run_evaluate, run_load, run_persist
from .models import TRANSITIONS, CartItem, CustomerSession, Event, ReturnedItem, SessionReturn, SessionState

ZERO = Decimal("0")
# Amounts are stored with 14 integer digits (money_field): a total or a customer's sales beyond that is
# refused, never left to fail in the database.
AMOUNT_LIMIT = Decimal(10) ** 14
SESSION_MUTABLE = [
    f.attname
    for f in CustomerSession._meta.concrete_fields
    if f.name not in {"id", "application", "integration_id", "created", "effects"}
]

CART_ITEM_CONTENT = [
    f.name for f in CartItem._meta.concrete_fields if f.name not in {"id", "session", "position"}
]


def cart_items(session: CustomerSession) -> list[CartItem]:
    return rows(CartItem).select(session_id=session.pk, order_by="position")


@dataclass
class CartItemInput:
    sku: str
    quantity: int
    price: Decimal = ZERO
    name: str = ""
    category: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SessionInput:
    """A session update as sent; ``None`` means "not sent, keep what is stored"."""

    profile_id: str | None = None
    store_integration_id: str | None = None
    coupon_codes: list[str] | None = None
    referral_code: str | None = None
    loyalty_cards: list[str] | None = None
    identifiers: list[str] | None = None
    attributes: dict[str, Any] | None = None
    additional_costs: dict[str, Decimal] | None = None
    cart_items: list[CartItemInput] | None = None
    state: str | None = None

    def edits_content(self) -> bool:
        return any(
            getattr(self, f.name) is not None for f in fields(self) if f.name not in {"state", "profile_id"}
        )


@dataclass
class SessionResult:
    session: CustomerSession
    items: list[CartItem]
    profile: CustomerProfile | None
    created: bool = False
    session_return: SessionReturn | None = None
    returned_items: list[ReturnedItem] = field(default_factory=list)
    # What the engines answered (effects, triggered campaigns, ...); None for plain reads.
    context: SessionContext | None = None

    @property
    def effects(self) -> list[dict[str, Any]]:
        return self.context.effects if self.context is not None else list(self.session.effects)


def _error(exc_class: type[DomainError], message: str, pointer: str) -> DomainError:
    return exc_class(message, details=[ErrorDetail(title=exc_class.title, details=message, pointer=pointer)])


def _lock_profile_then_session(
    *, application: Application, integration_id: str, profile_id: str | None
) -> tuple[CustomerProfile | None, CustomerSession, bool]:
    """Lock (creating when missing) the profile and then the session, in the documented order."""
    if profile_id is None:
        # Not sent: the session keeps its customer. Read it unlocked to know which profile to lock first.
        profile_id = (
            CustomerSession.objects.filter(application=application, integration_id=integration_id)
            .values_list("profile_integration_id", flat=True)
            .first()
        ) or ""
        keep_profile = True
    else:
        keep_profile = False
    profile = None
    if profile_id:
        errors = ErrorCollector()
        validate_integration_id(profile_id, pointer="/customerSession/profileId", errors=errors)
        errors.raise_if_any()
        # The usual case, an existing session of an existing customer: both locks in one statement.
        both = rows(CustomerProfile).lock_with(
            rows(CustomerSession),
            {"environment_id": application.environment_id, "integration_id": profile_id},
            {"application_id": application.pk, "integration_id": integration_id},
        )
        if both is not None:
            profile, session = both
            return _checked(profile, session, False, profile_id if keep_profile else None)
        profile, _ = profile_lock_or_create(environment=application.environment, integration_id=profile_id)
    now = clock.now()
    session, created = get_or_create_locked(
        CustomerSession.objects.all(),
        defaults=lambda: {
            "profile": profile,
            "profile_integration_id": profile_id,
            "created": now,
            "updated": now,
            "first_session": profile is None or not CustomerSession.objects.filter(profile=profile).exists(),
        },
        application_id=application.pk,
        integration_id=integration_id,
    )
    return _checked(profile, session, created, profile_id if keep_profile else None)


def _checked(
    profile: CustomerProfile | None, session: CustomerSession, created: bool, kept_profile_id: str | None
) -> tuple[CustomerProfile | None, CustomerSession, bool]:
    if kept_profile_id is not None and session.profile_integration_id != kept_profile_id:
        raise Conflict(
            f"Customer session {session.integration_id} changed customer meanwhile; retry the request"
        )
    return profile, session, created


def _new_cart(session: CustomerSession, items: list[CartItemInput]) -> list[CartItem]:
    return [
        CartItem(
            session=session,
            position=position,
            name=item.name,
            sku=item.sku,
            quantity=item.quantity,
            price=item.price,
            category=item.category,
            attributes=item.attributes,
            extra=item.extra,
        )
        for position, item in enumerate(items)
    ]


def _cart_write(session: CustomerSession, items: list[CartItem], *, stored_count: int) -> None:
    """Store the new cart over the old one of ``stored_count`` items: a position already there is updated
    in place (no index entry or foreign-key check to pay, unlike a delete and insert), the positions past
    the new cart go."""
    rows(CartItem).upsert_many(items, unique=["session", "position"], update=CART_ITEM_CONTENT)
    if len(items) < stored_count:
        rows(CartItem).delete(session_id=session.pk, at_least={"position": len(items)})


def _apply_content(session: CustomerSession, data: SessionInput) -> None:
    for name in ("store_integration_id", "coupon_codes", "referral_code", "loyalty_cards", "identifiers"):
        value = getattr(data, name)
        if value is not None:
            setattr(session, name, value)
    if data.attributes is not None:
        merged = {**session.attributes, **data.attributes}
        for name in [k for k, v in data.attributes.items() if v is None]:
            del merged[name]  # null removes an attribute
        session.attributes = merged
    if data.additional_costs is not None:
        session.additional_costs = {
            name: {"price": str(price)} for name, price in data.additional_costs.items()
        }


def transition_of(before: str, after: str) -> str:
    """Which life-cycle step moving from ``before`` to ``after`` is, for the engines."""
    if before == after:
        return Transition.CLOSED_AGAIN if after == SessionState.CLOSED else Transition.UPDATE
    if after == SessionState.CLOSED:
        return Transition.CLOSE
    if after == SessionState.CANCELLED:
        return Transition.CANCEL_OPEN if before == SessionState.OPEN else Transition.REVOKE
    if after == SessionState.PARTIALLY_RETURNED:
        return Transition.RETURN
    return Transition.REOPEN


def _engines(ctx: SessionContext) -> None:
    """Evaluate, then (unless dry) let each engine commit or roll back; the session keeps the answer."""
    run_evaluate(ctx)
    if ctx.dry:
        return
    run_persist(ctx)
    assert ctx.session is not None
    ctx.session.effects = ctx.effects
    rows(CustomerSession).update(ctx.session, ["effects"])


def _apply_state(session: CustomerSession, target: str, *, pointer: str) -> None:
    if target == session.state:
        return
    if target not in TRANSITIONS[session.state]:
        raise _error(
            InvalidStateTransition,
            f"Cannot change the state of customer session {session.integration_id} "
            f"from {session.state} to {target}",
            pointer,
        )
    session.state = target
    if target == SessionState.CLOSED:
        session.closed_at = clock.now()


def _recompute_totals(session: CustomerSession, items: list[CartItem]) -> None:
    session.cart_item_count = len(items)
    session.cart_item_total = sum((i.price * i.quantity for i in items), ZERO)
    session.additional_cost_total = sum(
        (Decimal(c["price"]) for c in session.additional_costs.values()), ZERO
    )
    session.total = session.cart_item_total + session.additional_cost_total


def _check_totals(session: CustomerSession) -> None:
    for name, label in (("cart_item_total", "cart items"), ("additional_cost_total", "additional costs")):
        if abs(getattr(session, name)) >= AMOUNT_LIMIT or abs(session.total) >= AMOUNT_LIMIT:
            message = f"The total of the session's {label} must stay below {AMOUNT_LIMIT:,} either way"
            pointer = "/customerSession/" + ("cartItems" if name == "cart_item_total" else "additionalCosts")
            raise _error(ValidationFailed, message, pointer)


def _check_sales(
    profile: CustomerProfile | None, session: CustomerSession, *, old_sales: Decimal, pointer: str
) -> None:
    """Refuse, before anything is written, a change that would take the customer's sales out of range."""
    if profile is None:
        return
    sales = profile.total_sales + session.sales - old_sales
    if abs(sales) >= AMOUNT_LIMIT:
        message = (
            f"Customer {profile.integration_id}'s total sales would reach {sales:,}: "
            f"they must stay below {AMOUNT_LIMIT:,} either way"
        )
        raise _error(ValidationFailed, message, pointer)


def _settle_profile(
    profile: CustomerProfile | None, session: CustomerSession, *, was_order: bool, old_sales: Decimal
) -> None:
    """Move the customer's order count and sales by what this write changed, and mark activity. A cart
    update of an open session changes neither, so within a minute of the last one it writes nothing."""
    if profile is None:
        return
    orders, sales = int(session.is_order) - int(was_order), session.sales - old_sales
    changed = ["closed_sessions", "total_sales"] if orders or sales else []
    profile.closed_sessions += orders
    profile.total_sales += sales
    if activity_touch(profile):
        changed.append("last_activity")
    if changed:
        rows(CustomerProfile).update(profile, changed)


def _session_update(ctx: SessionContext, data: SessionInput) -> SessionResult:
    application, integration_id = ctx.application, ctx.integration_id
    profile, session, created = _lock_profile_then_session(
        application=application, integration_id=integration_id, profile_id=data.profile_id
    )
    ctx.profile, ctx.session, ctx.created, ctx.previous_state = profile, session, created, session.state
    was_order, old_sales, stored_count = session.is_order, session.sales, session.cart_item_count
    stored = [getattr(session, name) for name in SESSION_MUTABLE]
    if not created and session.state != SessionState.OPEN:
        changes_customer = data.profile_id is not None and data.profile_id != session.profile_integration_id
        if data.edits_content() or changes_customer:
            raise _error(
                InvalidStateTransition,
                f"Customer session {integration_id} is {session.state}: only its state can change"
                + (" (reopen it to edit the cart)" if session.state == SessionState.CLOSED else ""),
                "/customerSession",
            )
    if data.profile_id is not None:
        session.profile, session.profile_integration_id = profile, data.profile_id
    _apply_content(session, data)
    if data.state is not None:
        _apply_state(session, data.state, pointer="/customerSession/state")
    ctx.transition = transition_of(ctx.previous_state, session.state)
    if data.cart_items is not None:
        items = _new_cart(session, data.cart_items)
    else:
        items = [] if created else cart_items(session)
    ctx.items = items
    _recompute_totals(session, items)
    _check_totals(session)
    _check_sales(profile, session, old_sales=old_sales, pointer="/customerSession")
    session.updated = clock.now()
    if ctx.transition == Transition.CLOSED_AGAIN:
        # Closing a closed session again commits nothing new: it answers what the close answered.
        ctx.effects = list(session.effects)
    else:
        run_load(ctx)
    with pipelined():  # every check is done: the writes go out as one batch
        if data.cart_items is not None:
            _cart_write(session, items, stored_count=stored_count)
        # Only what changed: fewer values to adapt and send, and a large unchanged JSON stays as it is.
        changed = [n for n, old in zip(SESSION_MUTABLE, stored, strict=True) if getattr(session, n) != old]
        rows(CustomerSession).update(session, changed)
        _settle_profile(profile, session, was_order=was_order, old_sales=old_sales)
    if ctx.transition != Transition.CLOSED_AGAIN:
        _engines(ctx)
    return SessionResult(session=session, items=items, profile=profile, created=created, context=ctx)


def session_update(
    *,
    application: Application,
    integration_id: str,
    data: SessionInput,
    dry: bool = False,
    evaluable_campaign_ids: list[int] | None = None,
    response_content: set[str] | None = None,
    now: dt.datetime | None = None,
) -> SessionResult:
    """Create or update a session (and its customer when new) and answer the effects of its campaigns.

    ``dry`` evaluates and rolls everything back; only a dry run may name its own ``now`` and
    ``evaluable_campaign_ids`` (campaigns to run whatever their state).
    """
    errors = ErrorCollector()
    validate_integration_id(integration_id, pointer="/customerSessionId", errors=errors)
    errors.raise_if_any()
    ctx = SessionContext(
        application=application,
        integration_id=integration_id,
        now=(now if dry and now is not None else clock.now()),
        dry=dry,
        evaluable_campaign_ids=evaluable_campaign_ids if dry else None,
        response_content=response_content or set(),
    )
    with transaction.atomic(), lock_wait_limit():
        if not dry:
            return _session_update(ctx, data)
        savepoint = transaction.savepoint()
        try:
            return _session_update(ctx, data)
        finally:
            transaction.savepoint_rollback(savepoint)


def _locked_existing(
    application: Application, integration_id: str
) -> tuple[CustomerProfile | None, CustomerSession]:
    if not CustomerSession.objects.filter(application=application, integration_id=integration_id).exists():
        raise _error(NotFound, f"Customer session {integration_id} not found", "/customerSessionId")
    profile, session, _ = _lock_profile_then_session(
        application=application, integration_id=integration_id, profile_id=None
    )
    return profile, session


def _context(
    application: Application, integration_id: str, profile: CustomerProfile | None, session: CustomerSession
) -> SessionContext:
    return SessionContext(
        application=application,
        integration_id=integration_id,
        now=clock.now(),
        profile=profile,
        session=session,
        previous_state=session.state,
    )


@transaction.atomic
def session_return_items(
    *, application: Application, integration_id: str, returned: list[tuple[int, int | None]]
) -> SessionResult:
    """Return cart items of an order: ``returned`` holds (position, quantity or None for all that remain)."""
    with lock_wait_limit():
        profile, session = _locked_existing(application, integration_id)
    if session.state not in (SessionState.CLOSED, SessionState.PARTIALLY_RETURNED):
        raise _error(
            InvalidStateTransition,
            f"Customer session {integration_id} is {session.state}: only closed sessions accept returns",
            "/return",
        )
    was_order, old_sales = session.is_order, session.sales
    items = cart_items(session)
    by_position = {item.position: item for item in items}
    errors = ErrorCollector()
    taken: dict[int, int] = {}
    for index, (position, quantity) in enumerate(returned):
        pointer = f"/return/returnedCartItems/{index}"
        item = by_position.get(position)
        if item is None:
            errors.add(f"The cart has no item at position {position}", pointer=f"{pointer}/position")
            continue
        remaining = item.quantity - item.returned_quantity - taken.get(position, 0)
        wanted = remaining if quantity is None else quantity
        if wanted < 1 or wanted > remaining:
            errors.add(
                f"Position {position} ({item.sku}) has {remaining} left to return, not {wanted}",
                pointer=f"{pointer}/quantity",
            )
            continue
        taken[position] = taken.get(position, 0) + wanted
    if not returned:
        errors.add("Name at least one cart item to return", pointer="/return/returnedCartItems")
    errors.raise_if_any()

    ctx = _context(application, integration_id, profile, session)
    ctx.items, ctx.transition, ctx.returned = items, Transition.RETURN, dict(taken)
    ctx.returned_before = {p: by_position[p].returned_quantity for p in taken}
    run_load(ctx)
    for position, quantity in taken.items():
        by_position[position].returned_quantity += quantity
        session.returned_total += by_position[position].price * quantity
    session.state = SessionState.PARTIALLY_RETURNED
    _check_sales(profile, session, old_sales=old_sales, pointer="/return")
    CartItem.objects.bulk_update([by_position[p] for p in taken], ["returned_quantity"])
    session.updated = clock.now()
    session.save()
    _settle_profile(profile, session, was_order=was_order, old_sales=old_sales)

    event = Event.objects.create(
        application=application,
        session=session,
        profile_integration_id=session.profile_integration_id,
        type="talon_session_returned",
        attributes={"returnedCartItems": [{"position": p, "quantity": q} for p, q in taken.items()]},
    )
    session_return = SessionReturn.objects.create(
        session=session, event=event, profile_integration_id=session.profile_integration_id
    )
    returned_items = ReturnedItem.objects.bulk_create(
        [ReturnedItem(session_return=session_return, position=p, quantity=q) for p, q in taken.items()]
    )
    _engines(ctx)
    return SessionResult(
        session=session,
        items=items,
        profile=profile,
        session_return=session_return,
        returned_items=returned_items,
        context=ctx,
    )


@transaction.atomic
def session_reopen(*, application: Application, integration_id: str) -> SessionResult:
    """Closed -> open again, taking the order out of the customer's totals."""
    with lock_wait_limit():
        profile, session = _locked_existing(application, integration_id)
    if session.state != SessionState.CLOSED:
        reason = " (it has returns)" if session.state == SessionState.PARTIALLY_RETURNED else ""
        raise _error(
            InvalidStateTransition,
            f"Cannot change the state of customer session {integration_id} from {session.state} to open: "
            f"only closed sessions can be reopened{reason}",
            "/customerSessionId",
        )
    was_order, old_sales = session.is_order, session.sales
    ctx = _context(application, integration_id, profile, session)
    ctx.items, ctx.transition = cart_items(session), Transition.REOPEN
    run_load(ctx)
    session.state = SessionState.OPEN
    session.closed_at = None
    _check_sales(profile, session, old_sales=old_sales, pointer="/customerSessionId")
    session.updated = clock.now()
    session.save()
    _settle_profile(profile, session, was_order=was_order, old_sales=old_sales)
    _engines(ctx)
    return SessionResult(session=session, items=ctx.items, profile=profile, context=ctx)


def sessions_anonymize(profiles: QuerySet[CustomerProfile]) -> None:
    """Detach the sessions of these customers from them and drop every copy of their integration ID.

    The orders stay (sales figures, returns) without saying whose they were. A few UPDATEs whatever the
    number of customers; registered in ``customers.services.BEFORE_PROFILES_DELETE`` by this app's config.
    """
    sessions = CustomerSession.objects.filter(profile__in=profiles)
    Event.objects.filter(session__in=sessions).update(profile_integration_id="")
    # Events without a session (tracked by the shop) name their customer only by integration ID.
    Event.objects.filter(
        Exists(
            profiles.filter(
                environment_id=OuterRef("application__environment_id"),
                integration_id=OuterRef("profile_integration_id"),
            )
        ),
        session=None,
    ).update(profile_integration_id="")
    SessionReturn.objects.filter(session__in=sessions).update(profile_integration_id="")
    sessions.update(profile=None, profile_integration_id="", anonymized=True)


@transaction.atomic
def customer_data_erase(*, environment: Environment, integration_id: str) -> None:
    """Right to erasure: the profile and its personal data go; its orders stay, anonymized."""
    profile = lock(
        CustomerProfile.objects.filter(environment=environment, integration_id=integration_id)
    ).first()
    if profile is None:
        raise _error(NotFound, f"Customer profile {integration_id} not found", "/integrationId")
    # What every deletion of customers does first (sessions_anonymize among them): nothing of the customer
    # stays elsewhere.
    for hook in BEFORE_PROFILES_DELETE:
        hook(CustomerProfile.objects.filter(pk=profile.pk))
    profile.delete()
