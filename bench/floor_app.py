"""The stack's floor for a session PUT: the product's WSGI app with ``PUT /v2/customer_sessions/{id}`` done
by hand, for ``bench/session_update.py`` to measure beside the product (as the import benchmarks measure
``psql \\copy`` beside our import).

Everything the stack itself costs stays: gunicorn, Django's middleware, ninja's routing, the same API-key
check and the same request schema, psycopg with server-side binding, and the same statements a session
update sends (both rows locked by one SELECT, the cart upserted and the session and customer updated in one
pipeline, in one transaction) with a response of the same shape. What goes is everything of ours: model
instances, field adapters, the row helper, the service's checks (state transitions, a changed customer, the
first write of a session or customer), presenters and error collection. It handles only what the benchmark
sends, an update of an existing session of an existing customer, and is never shipped.

Serve it with ``patronage serve --wsgi-app floor_app:application`` and ``bench/`` on PYTHONPATH.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()  # sets Django up before the imports below

from django.db import connection  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from ninja import NinjaAPI  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from patronage import urls  # noqa: E402
from patronage.customer_sessions.models import CartItem, CustomerSession  # noqa: E402
from patronage.customers.models import CustomerProfile  # noqa: E402
from patronage.integration.auth import IntegrationApiKey  # noqa: E402
from patronage.integration.schemas import IntegrationRequest  # noqa: E402


def _columns(model: Any) -> list[str]:
    return [f.column for f in model._meta.concrete_fields]


PROFILE = _columns(CustomerProfile)
SESSION = _columns(CustomerSession)
ITEM = [c for c in _columns(CartItem) if c != "id"]
LOCK = (
    f"SELECT {', '.join('a.' + c for c in PROFILE)}, {', '.join('b.' + c for c in SESSION)} "
    f"FROM {CustomerProfile._meta.db_table} a, {CustomerSession._meta.db_table} b "
    "WHERE a.environment_id = %s AND a.integration_id = %s AND b.application_id = %s "
    "AND b.integration_id = %s FOR NO KEY UPDATE"
)
UPSERT = (
    f"INSERT INTO {CartItem._meta.db_table} ({', '.join(ITEM)}) VALUES "
    + ", ".join(["(" + ", ".join(["%s"] * len(ITEM)) + ")"] * 5)
    + " ON CONFLICT (session_id, position) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in ITEM if c not in {"session_id", "position"})
)
UPDATE_SESSION = (
    f"UPDATE {CustomerSession._meta.db_table} SET attributes = %s, cart_item_count = %s, "
    "cart_item_total = %s, total = %s, updated = %s WHERE id = %s"
)
UPDATE_PROFILE = f"UPDATE {CustomerProfile._meta.db_table} SET last_activity = %s WHERE id = %s"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


floor = NinjaAPI(urls_namespace="floor", auth=IntegrationApiKey(), docs_url=None, openapi_url=None)


@floor.put("/v2/customer_sessions/{customerSessionId}")
def put_session(request: HttpRequest, customerSessionId: str, body: IntegrationRequest) -> HttpResponse:
    application = request.auth.application  # type: ignore[attr-defined]
    data = body.customerSession
    items = data.cartItems or []
    if len(items) != 5:
        return HttpResponse(status=400)  # the prepared upsert takes the benchmark's five items
    connection.ensure_connection()
    conn = connection.connection
    now = dt.datetime.now(dt.UTC)
    with conn.transaction():
        row = conn.execute(
            LOCK, (application.environment_id, data.profileId, application.pk, customerSessionId)
        ).fetchone()
        if row is None:
            return HttpResponse(status=404)
        profile = dict(zip(PROFILE, row[: len(PROFILE)], strict=True))
        session = dict(zip(SESSION, row[len(PROFILE) :], strict=True))
        # Django has psycopg hand jsonb over as text (its fields decode it): so do we.
        profile["attributes"] = json.loads(profile["attributes"])
        for name in ("attributes", "coupon_codes", "loyalty_cards", "identifiers"):
            session[name] = json.loads(session[name])
        attributes = {**session["attributes"], **(data.attributes or {})}
        cart_total = sum((item.price * item.quantity for item in items), Decimal(0))
        params: list[Any] = []
        for position, item in enumerate(items):
            extra = item.model_dump(mode="json", exclude_none=True, exclude={"sku", "quantity", "price"})
            params += [
                session["id"], position, item.name or "", item.sku, item.quantity, 0, item.price,
                item.category or "", Jsonb(item.attributes or {}), Jsonb(extra),
            ]  # fmt: skip
        with conn.pipeline():
            conn.execute(UPSERT, params)
            conn.execute(
                UPDATE_SESSION, (Jsonb(attributes), len(items), cart_total, cart_total, now, session["id"])
            )
            if now - profile["last_activity"] >= dt.timedelta(minutes=1):
                conn.execute(UPDATE_PROFILE, (now, profile["id"]))
    cart = [
        {
            "name": item.name, "sku": item.sku, "quantity": item.quantity, "returnedQuantity": 0,
            "remainingQuantity": item.quantity, "price": item.price, "category": item.category,
            "position": position, "attributes": item.attributes or {},
        }
        for position, item in enumerate(items)
    ]  # fmt: skip
    state = {
        "customerSession": {
            "id": session["id"], "created": session["created"], "integrationId": customerSessionId,
            "applicationId": application.pk, "profileId": data.profileId, "evaluableCampaignIds": [],
            "couponCodes": session["coupon_codes"], "referralCode": session["referral_code"],
            "loyaltyCards": session["loyalty_cards"], "state": session["state"], "cartItems": cart,
            "additionalCosts": {}, "identifiers": session["identifiers"], "attributes": attributes,
            "firstSession": session["first_session"], "total": cart_total, "cartItemTotal": cart_total,
            "additionalCostTotal": 0, "updated": now, "closedAt": session["closed_at"],
        },
        "effects": [], "createdCoupons": [], "createdReferrals": [],
        "customerProfile": {
            "id": profile["id"], "created": profile["created"], "integrationId": data.profileId,
            "attributes": {
                "Name": profile["name"], "Email": profile["email"], **profile["attributes"]
            },
            "accountId": 1, "closedSessions": profile["closed_sessions"],
            "totalSales": profile["total_sales"], "loyaltyMemberships": [], "audienceMemberships": [],
            "lastActivity": now, "sandbox": False,
        },
    }  # fmt: skip
    body_out = json.dumps(state, default=_default, separators=(",", ":"), ensure_ascii=False)
    return HttpResponse(body_out, content_type="application/json")


# Ahead of the product's routes, so the same URL reaches the floor's view.
urls.urlpatterns.insert(0, path("", floor.urls))
