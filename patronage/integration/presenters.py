"""Domain objects -> Talon.One JSON shapes (plain dicts, serialized once)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.http import HttpResponse

from patronage.core.money import as_json_number
from patronage.customer_sessions.models import CartItem, CustomerSession
from patronage.customer_sessions.services import SessionResult
from patronage.customers.attributes import profile_attributes
from patronage.customers.models import CustomerProfile

# Talon.One responses carry an account ID; a self-hosted install is one account.
ACCOUNT_ID = 1
NO_EFFECTS: dict[str, list[Any]] = {"effects": [], "createdCoupons": [], "createdReferrals": []}


def rfc3339(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return as_json_number(value)
    if isinstance(value, dt.datetime):
        return rfc3339(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(payload: Any, *, status: int = 200) -> HttpResponse:
    if status == 204:
        return HttpResponse(status=204)
    body = json.dumps(payload, default=_default, separators=(",", ":"), ensure_ascii=False)
    return HttpResponse(body, status=status, content_type="application/json")


def cart_item(item: CartItem) -> dict[str, Any]:
    return {
        **item.extra,
        "name": item.name,
        "sku": item.sku,
        "quantity": item.quantity,
        "returnedQuantity": item.returned_quantity,
        "remainingQuantity": item.quantity - item.returned_quantity,
        "price": item.price,
        "category": item.category,
        "position": item.position,
        "attributes": item.attributes,
    }


def customer_session(session: CustomerSession, items: list[CartItem]) -> dict[str, Any]:
    shown = {
        "id": session.pk or 0,
        "created": session.created,
        "integrationId": session.integration_id,
        "applicationId": session.application_id,
        "profileId": session.profile_integration_id,
        "storeIntegrationId": session.store_integration_id,
        "evaluableCampaignIds": [],
        "couponCodes": session.coupon_codes,
        "referralCode": session.referral_code,
        "loyaltyCards": session.loyalty_cards,
        "state": session.state,
        "cartItems": [cart_item(item) for item in items],
        "additionalCosts": {
            name: {"price": Decimal(cost["price"])} for name, cost in session.additional_costs.items()
        },
        "identifiers": session.identifiers,
        "attributes": session.attributes,
        "firstSession": session.first_session,
        "total": session.total,
        "cartItemTotal": session.cart_item_total,
        "additionalCostTotal": session.additional_cost_total,
        "updated": session.updated,
        "closedAt": session.closed_at,
    }
    if not session.store_integration_id:
        del shown["storeIntegrationId"]  # Talon.One omits it; its SDK rejects an empty one
    return shown


def customer_profile(profile: CustomerProfile, *, sandbox: bool) -> dict[str, Any]:
    return {
        "id": profile.pk,
        "created": profile.created,
        "integrationId": profile.integration_id,
        "attributes": profile_attributes(profile),
        "accountId": ACCOUNT_ID,
        "closedSessions": profile.closed_sessions,
        "totalSales": profile.total_sales,
        "loyaltyMemberships": [],
        "audienceMemberships": [],
        "lastActivity": profile.last_activity,
        "sandbox": sandbox,
    }


def engine_answer(result: SessionResult) -> dict[str, Any]:
    """The effects and, when the request asked for them, what else the engine reported."""
    ctx = result.context
    answer: dict[str, Any] = {"effects": result.effects, "createdCoupons": [], "createdReferrals": []}
    if ctx is None:
        return answer
    answer["createdCoupons"], answer["createdReferrals"] = ctx.created_coupons, ctx.created_referrals
    if "triggeredCampaigns" in ctx.response_content:
        answer["triggeredCampaigns"] = ctx.triggered_campaigns
    if "ruleFailureReasons" in ctx.response_content:
        answer["ruleFailureReasons"] = ctx.rule_failure_reasons
    for name, part in ctx.content.items():
        if name in ctx.response_content:
            answer[name] = part
    return answer


def integration_state(result: SessionResult, *, sandbox: bool) -> dict[str, Any]:
    state: dict[str, Any] = {"customerSession": customer_session(result.session, result.items)}
    state.update(engine_answer(result))
    wanted = result.context.response_content if result.context is not None else set()
    if result.profile is not None and (not wanted or "customerProfile" in wanted):
        state["customerProfile"] = customer_profile(result.profile, sandbox=sandbox)
    if result.session_return is not None:
        ret = result.session_return
        state["return"] = {
            "id": ret.pk,
            "created": ret.created,
            "applicationId": result.session.application_id,
            "accountId": ACCOUNT_ID,
            "returnedCartItems": [
                {"position": i.position, "quantity": i.quantity} for i in result.returned_items
            ],
            "eventId": ret.event_id,
            "sessionId": result.session.pk,
            "sessionIntegrationId": result.session.integration_id,
            "profileIntegrationId": ret.profile_integration_id,
        }
    return state
