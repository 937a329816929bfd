"""The engine's own vocabulary, registered like any feature's: attributes of the session, its items, the
customer, the event and the application; customer functions (birthday, segment membership); the effects of
this issue; the budget scopes. docs/RULES.md documents each with an example."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Case, When

from patronage.core.money import as_json_number
from patronage.customers.models import CustomerProfile

from .evaluation import Env
from .facts import ZERO, Facts
from .registry import (
    Attribute,
    Effect,
    Entity,
    Function,
    T,
    register_attribute,
    register_budget_action,
    register_effect,
    register_entity,
    register_function,
)
from .talang import Compiled, Compiler, RuleError, to_decimal


def _session(root: str, name: str, type_: str, get: Any, label: str, nested: bool = False) -> Attribute:
    return Attribute(root, name, type_, get, label, nested)


register_attribute(
    _session("Session", "Total", T.NUMBER, lambda env: env.session.total, "Session total"),
    _session(
        "Session", "CartItemTotal", T.NUMBER, lambda env: env.session.cart_item_total, "Cart items total"
    ),
    _session(
        "Session",
        "AdditionalCostTotal",
        T.NUMBER,
        lambda env: env.session.additional_cost_total,
        "Additional costs total",
    ),
    _session(
        "Session",
        "DiscountedTotal",
        T.NUMBER,
        lambda env: env.discounted_total("all"),
        "Discounted session total",
    ),
    _session(
        "Session",
        "DiscountedCartItemTotal",
        T.NUMBER,
        lambda env: env.discounted_total("items"),
        "Discounted cart items total",
    ),
    _session("Session", "CartItems", T.ITEMS, lambda env: list(env.session.items), "Cart items"),
    _session(
        "Session",
        "ItemCount",
        T.NUMBER,
        lambda env: Decimal(env.session.unit_count),
        "Number of units in the cart",
    ),
    _session(
        "Session", "LineCount", T.NUMBER, lambda env: Decimal(len(env.session.items)), "Number of cart lines"
    ),
    _session("Session", "Store", T.STRING, lambda env: env.session.store, "Store integration ID"),
    _session(
        "Session",
        "FirstSession",
        T.BOOLEAN,
        lambda env: env.session.first_session,
        "Customer's first session",
    ),
    _session("Session", "State", T.STRING, lambda env: env.session.state, "Session state"),
    _session(
        "Session", "IntegrationId", T.STRING, lambda env: env.session.integration_id, "Session integration ID"
    ),
    _session("Session", "CouponCodes", T.LIST, lambda env: list(env.session.coupon_codes), "Coupon codes"),
    _session("Session", "ReferralCode", T.STRING, lambda env: env.session.referral_code, "Referral code"),
    _session(
        "Session", "Attributes", T.ANY, lambda env: env.session.attributes, "Session attribute", nested=True
    ),
    _session(
        "Session",
        "AdditionalCosts",
        T.ANY,
        lambda env: env.session.additional_costs,
        "Additional cost (by name)",
        nested=True,
    ),
    Attribute("Item", "Sku", T.STRING, lambda i: i.sku, "SKU"),
    Attribute("Item", "Name", T.STRING, lambda i: i.name, "Name"),
    Attribute("Item", "Category", T.STRING, lambda i: i.category, "Category"),
    Attribute("Item", "Price", T.NUMBER, lambda i: i.price, "Unit price"),
    Attribute("Item", "Quantity", T.NUMBER, lambda i: Decimal(i.quantity), "Quantity"),
    Attribute("Item", "Total", T.NUMBER, lambda i: i.total, "Price times quantity"),
    Attribute("Item", "Position", T.NUMBER, lambda i: Decimal(i.position), "Position in the cart"),
    Attribute("Item", "Attributes", T.ANY, lambda i: i.attributes, "Item attribute", nested=True),
    Attribute("Profile", "IntegrationId", T.STRING, lambda p: p.integration_id, "Customer integration ID"),
    Attribute("Profile", "Name", T.STRING, lambda p: p.name, "Name"),
    Attribute("Profile", "Email", T.STRING, lambda p: p.email, "Email"),
    Attribute("Profile", "Group", T.STRING, lambda p: p.group, "Customer group (name)"),
    Attribute(
        "Profile", "GroupId", T.NUMBER, lambda p: Decimal(p.group_id or 0), "Customer group (ID; 0: none)"
    ),
    Attribute("Profile", "Orders", T.NUMBER, lambda p: Decimal(p.orders), "Number of orders"),
    Attribute("Profile", "TotalSales", T.NUMBER, lambda p: p.total_sales, "Total sales"),
    Attribute(
        "Profile",
        "BirthDate",
        T.STRING,
        lambda p: _known(p.birth_date, "the customer's birth date is not known").isoformat(),
        "Birth date (YYYY-MM-DD)",
    ),
    Attribute(
        "Profile", "Created", T.STRING, lambda p: p.created.date().isoformat(), "Created (YYYY-MM-DD, UTC)"
    ),
    Attribute("Profile", "Attributes", T.ANY, lambda p: p.attributes, "Customer attribute", nested=True),
    Attribute("Event", "Type", T.STRING, lambda e: e.type, "Event type"),
    Attribute("Event", "Attributes", T.ANY, lambda e: e.attributes, "Event attribute", nested=True),
    Attribute(
        "Application",
        "Weekday",
        T.NUMBER,
        lambda f: Decimal(f.local_now.isoweekday()),
        "Weekday (1 = Monday)",
    ),
    Attribute("Application", "Hour", T.NUMBER, lambda f: Decimal(f.local_now.hour), "Hour (0-23)"),
    Attribute("Application", "Date", T.STRING, lambda f: f.local_now.date().isoformat(), "Date (YYYY-MM-DD)"),
    Attribute("Application", "Currency", T.STRING, lambda f: f.app.currency, "Currency"),
    Attribute("Application", "Name", T.STRING, lambda f: f.app.name, "Application name"),
)


def _known(value: Any, message: str) -> Any:
    if value is None:
        raise RuleError(message)
    return value


# ---- customer functions ------------------------------------------------------------------------------


def _days_to_birthday(facts: Facts) -> int:
    profile = facts.profile
    if profile is None:
        raise RuleError("the session has no customer")
    born = _known(profile.birth_date, "the customer's birth date is not known")
    today = facts.local_now.date()
    for year in (today.year, today.year + 1):
        try:
            day = born.replace(year=year)
        except ValueError:  # 29 February in a common year: the 28th
            day = dt.date(year, 2, 28)
        if day >= today:
            return (day - today).days
    return 366


def _birthday_within(args: list[Any]) -> Any:
    (days,) = args
    return lambda env: _days_to_birthday(env.facts) <= int(to_decimal(days(env)))


register_function(
    Function(
        "birthdayToday",
        (),
        T.BOOLEAN,
        lambda args: lambda env: _days_to_birthday(env.facts) == 0,
        "Customer's birthday is today",
        "In the application's time zone; 29 February birthdays fall on the 28th in common years.",
    )
)
register_function(
    Function(
        "birthdayWithin",
        (T.NUMBER,),
        T.BOOLEAN,
        _birthday_within,
        "Customer's birthday is within N days",
        "Today counts (0 days); in the application's time zone.",
    )
)


def _segments_loader(facts: Facts, uses: list[tuple[Any, ...]]) -> set[int]:
    """The segments (of those the rules ask about) the customer is in: one query, every segment's rule tree
    as a CASE over the customer's own row (looked up by primary key)."""
    from patronage.segments.models import Segment
    from patronage.segments.selectors import segment_q

    if facts.profile is None:
        return set()
    ids = sorted({int(to_decimal(args[0])) for args in uses})
    segments = list(Segment.objects.filter(pk__in=ids).select_related("environment"))
    if not segments:
        return set()
    cases = {f"s{s.pk}": Case(When(segment_q(s), then=True), default=False) for s in segments}
    row = CustomerProfile.objects.filter(pk=facts.profile.pk).values(**cases).first() or {}
    return {s.pk for s in segments if row.get(f"s{s.pk}")}


def _in_segment(args: list[Any]) -> Any:
    segment = int(to_decimal(args[0]))
    return lambda env: segment in env.loaded.get("inSegment", ())


register_function(
    Function(
        "inSegment",
        (T.NUMBER,),
        T.BOOLEAN,
        _in_segment,
        "Customer is in segment",
        "The segment's ID; membership is checked once per request, before the rules run.",
        loader=_segments_loader,
        literal_args=True,
    )
)

# ---- effects -------------------------------------------------------------------------------------------


def plain_effect(name: str, types: tuple[str, ...], make: Any, **details: Any) -> Effect:
    """An effect whose arguments are plain expressions of ``types``; ``make`` builds it from their runs."""
    return Effect(name, types, _simple(name, types, make), **details)


def _simple(name: str, types: tuple[str, ...], make: Any) -> Any:
    """An effect whose arguments are plain expressions of these types (trailing ones may be left out)."""

    def compile_(
        compiler: Compiler, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Any:
        runs = compiler.arguments(name, args, types, ptr, scope, depth)
        return None if runs is None else make(runs + [None] * (len(types) - len(runs)))

    return compile_


def as_text(run: Any, env: Env) -> str:
    value = run(env)
    if not isinstance(value, str):
        value = str(value)
    return value


def _set_discount(runs: list[Any]) -> Any:
    name, value, scope = runs

    def run(env: Env) -> None:
        where = scope(env) if scope is not None else None
        if where not in (None, "sessionTotal", "cartItems", "additionalCosts"):
            raise RuleError(f"scope must be sessionTotal, cartItems or additionalCosts, not {where!r}")
        env.discount_session(as_text(name, env), to_decimal(value(env)), where)

    return run


register_effect(
    plain_effect(
        "setDiscount",
        (T.STRING, T.NUMBER, T.STRING),
        _set_discount,
        optional=1,
        label="Discount the session",
        help="Name, amount, and optionally the scope: sessionTotal, cartItems or additionalCosts.",
    )
)


def _per_item(compiler: Compiler, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int) -> Any:
    """["setDiscountPerItem", name, ITEMS, ["Item"], amount]: the amount is computed for each item."""
    name = compiler.typed(args[0], f"{ptr}/1", scope, depth, T.STRING)
    items = compiler.typed(args[1], f"{ptr}/2", scope, depth, T.ITEMS)
    body = compiler.lambda_body(args[2], args[3], f"{ptr}/3", f"{ptr}/4", scope, depth, T.NUMBER)
    if name is None or items is None or body is None:
        return None
    bind, amount = body
    name_of, source = name.run, items.run

    def run(env: Env) -> None:
        label = as_text(name_of, env)
        for item in source(env):
            bind(item)
            env.discount_item(label, item, to_decimal(amount(env)))

    return run


register_effect(
    Effect(
        "setDiscountPerItem",
        (T.STRING, T.ITEMS, T.ITEM, T.NUMBER),
        _per_item,
        label="Discount each item",
        help='Name, the items (e.g. a filter, or ["cheapest", items, 1]), ["Item"], the amount per item.',
    )
)


def _per_cost(runs: list[Any]) -> Any:
    name, cost, value = runs

    def run(env: Env) -> None:
        cost_name = as_text(cost, env)
        amount = env.remaining.costs.get(cost_name, ZERO) if value is None else to_decimal(value(env))
        env.discount_cost(as_text(name, env), cost_name, amount)

    return run


register_effect(
    plain_effect(
        "setDiscountPerAdditionalCost",
        (T.STRING, T.STRING, T.NUMBER),
        _per_cost,
        optional=1,
        label="Discount an additional cost",
        help="Name, the additional cost (e.g. shipping), the amount (left out: all of it: free shipping).",
    )
)


def _free_item(runs: list[Any]) -> Any:
    sku, name, quantity = runs

    def run(env: Env) -> None:
        props: dict[str, Any] = {"sku": as_text(sku, env), "name": as_text(name, env)}
        if quantity is not None:
            props["desiredQuantity"] = int(to_decimal(quantity(env)))
        env.emit("addFreeItem", props, actions=("addFreeItemEffect",))

    return run


register_effect(
    plain_effect(
        "addFreeItem",
        (T.STRING, T.STRING, T.NUMBER),
        _free_item,
        optional=1,
        label="Add a free item",
        help="SKU, name, and optionally the quantity.",
    )
)


def _notification(runs: list[Any]) -> Any:
    kind, title, body = runs

    def run(env: Env) -> None:
        env.emit(
            "showNotification",
            {
                "notificationType": as_text(kind, env),
                "title": as_text(title, env),
                "body": as_text(body, env),
            },
        )

    return run


register_effect(
    plain_effect(
        "showNotification",
        (T.STRING, T.STRING, T.STRING),
        _notification,
        label="Show a notification",
        help="Type (e.g. Info, Offer, Error), title and body.",
        failure_allowed=True,
    )
)


def _update_attribute(
    compiler: Compiler, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
) -> Any:
    """["updateAttributeValue", "Profile" | "Session", attribute, value]."""
    target, attribute = args[0], args[1]
    if target not in ("Profile", "Session"):
        compiler.problem(f"{ptr}/1", 'updateAttributeValue changes a "Profile" or a "Session" attribute')
        return None
    if not isinstance(attribute, str) or not attribute:
        compiler.problem(f"{ptr}/2", "Name the attribute to set")
        return None
    value = compiler.typed(args[2], f"{ptr}/3", scope, depth, T.ANY)
    if value is None:
        return None
    get = value.run

    def run(env: Env) -> None:
        env.emit("updateAttribute", {"path": f"{target}.{attribute}", "value": _plain(get(env))})

    return run


register_effect(
    Effect(
        "updateAttributeValue",
        (T.NAME, T.NAME, T.ANY),
        _update_attribute,
        label="Set an attribute",
        help='"Profile" or "Session", the attribute name, the value. Applied when the session closes.',
    )
)


def _custom(compiler: Compiler, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int) -> Any:
    """["customEffect", effectId, name, payload]."""
    effect_id, name = args[0], args[1]
    if isinstance(effect_id, bool) or not isinstance(effect_id, int) or effect_id < 0:
        compiler.problem(f"{ptr}/1", "customEffect starts with a whole-number effect ID")
        return None
    if not isinstance(name, str) or not name:
        compiler.problem(f"{ptr}/2", "Name the custom effect")
        return None
    payload = _payload(compiler, args[2] if len(args) > 2 else {}, f"{ptr}/3", scope, depth)
    if payload is None:
        return None

    def run(env: Env) -> None:
        values = _payload_values(payload, env)
        env.emit(
            "customEffect",
            {"effectId": effect_id, "name": name, "payload": values},
            actions=("customEffect",),
        )

    return run


def _plain(value: Any) -> Any:
    """A value as JSON carries it (effect props are stored and answered as JSON)."""
    return as_json_number(value) if isinstance(value, Decimal) else value


def _payload(
    compiler: Compiler, raw: Any, ptr: str, scope: dict[str, Compiled], depth: int
) -> dict[str, Compiled] | None:
    """A payload object whose values may be expressions (custom effects, webhooks), compiled."""
    if not isinstance(raw, dict):
        compiler.problem(ptr, "The payload is an object of values or expressions")
        return None
    payload: dict[str, Compiled] = {}
    for key, node in raw.items():
        compiled = compiler.typed(node, f"{ptr}/{key}", scope, depth, T.ANY)
        if compiled is None:
            return None
        payload[key] = compiled
    return payload


def _payload_values(payload: dict[str, Compiled], env: Env) -> dict[str, Any]:
    return {key: _plain(compiled.run(env)) for key, compiled in payload.items()}


register_effect(
    Effect(
        "customEffect",
        (T.NUMBER, T.NAME, T.ANY),
        _custom,
        optional=1,
        label="Custom effect",
        help="Effect ID, name, and a payload object whose values may be expressions.",
        failure_allowed=True,
    )
)


def _webhook(compiler: Compiler, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int) -> Any:
    """["triggerWebhook", webhookId, payload?]: posted by the worker once the session commits."""
    hook = args[0]
    if isinstance(hook, bool) or not isinstance(hook, int) or hook < 1:
        compiler.problem(f"{ptr}/1", "triggerWebhook takes the webhook's ID (a whole number)")
        return None
    compiled = _payload(compiler, args[1] if len(args) > 1 else {}, f"{ptr}/2", scope, depth)
    if compiled is None:
        return None

    def run(env: Env) -> None:
        names = env.loaded.get("webhooks", {})
        payload = _payload_values(compiled, env)
        env.emit(
            "triggerWebhook",
            {"webhookId": hook, "webhookName": names.get(hook, f"webhook {hook}"), "payload": payload},
            actions=("callApi",),
        )

    return run


register_effect(
    Effect(
        "triggerWebhook",
        (T.NUMBER, T.ANY),
        _webhook,
        optional=1,
        label="Call a webhook",
        help="The webhook's ID and a payload; sent, signed, after the session closes.",
    )
)

# ---- budgets -------------------------------------------------------------------------------------------

for _action, _label in (
    ("setDiscount", "Discount value (money)"),
    ("setDiscountEffect", "Number of discounts"),
    ("addFreeItemEffect", "Number of free items"),
    ("customEffect", "Number of custom effects"),
    ("callApi", "Number of webhook calls"),
):
    register_budget_action(_action, _label)

register_entity(
    Entity("Profile", lambda f: [str(f.profile.pk)] if f.profile is not None else [], "ProfileRequired")
)
register_entity(Entity("Session", lambda f: [f.session.integration_id] if f.session is not None else []))
register_entity(
    Entity("Store", lambda f: [f.session.store] if f.session is not None and f.session.store else [])
)
register_entity(Entity("Identifier", lambda f: list(f.session.identifiers) if f.session is not None else []))
