"""The Talon.One-compatible Integration API: thin views that parse, call a service and present."""

import datetime as dt

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query, Schema

from patronage.campaigns.standalone import Answer, event_track, profile_update_evaluated
from patronage.core.money import to_money
from patronage.customer_sessions import selectors as session_selectors
from patronage.customer_sessions.models import Event
from patronage.customer_sessions.services import (
    CartItemInput,
    SessionInput,
    customer_data_erase,
    session_reopen,
    session_return_items,
    session_update,
)
from patronage.customers.consent import ConsentActor
from patronage.customers.services import profile_upsert, profiles_bulk_upsert
from patronage.workspace.models import ApiKey

from . import presenters, schemas
from .auth import IntegrationApiKey
from .codes import router as codes_router
from .errors import domain_error_response, install
from .idempotency import dry_or_idempotent

api = NinjaAPI(
    title="Patronage Integration API",
    version="2.0",
    description=(
        "Wire-compatible with Talon.One's Integration API. "
        "Authenticate with `Authorization: ApiKey-v1 <key>`."
    ),
    urls_namespace="integration",
    auth=IntegrationApiKey(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
install(api, missing_auth="Missing credentials: send the header 'Authorization: ApiKey-v1 <key>'")
mutating = dry_or_idempotent(domain_error_response)

ERRORS = {
    400: schemas.ErrorResponseWithStatus,
    401: schemas.ErrorResponseWithStatus,
    404: schemas.ErrorResponseWithStatus,
    409: schemas.ErrorResponseWithStatus,
    422: schemas.ErrorResponseWithStatus,
}


def _key(request: HttpRequest) -> ApiKey:
    return request.auth  # type: ignore[attr-defined,no-any-return]


class SessionQuery(Schema):
    dry: bool = False
    now: dt.datetime | None = None


class ProfileQuery(Schema):
    runRuleEngine: bool = False
    dry: bool = False


class BulkQuery(Schema):
    silent: str = "yes"


class EventQuery(Schema):
    silent: str = "yes"  # as Talon.One: the effects only with silent=no
    dry: bool = False
    forceCompleteEvaluation: bool = False


def _to_input(body: schemas.NewCustomerSessionV2) -> SessionInput:
    fields = body.model_fields_set
    items = None
    if body.cartItems is not None:
        items = [
            CartItemInput(
                sku=item.sku,
                quantity=item.quantity,
                price=to_money(item.price),
                name=item.name or "",
                category=item.category or "",
                attributes=item.attributes or {},
                extra=item.model_dump(
                    mode="json",
                    exclude_none=True,
                    exclude={
                        "sku",
                        "quantity",
                        "price",
                        "name",
                        "category",
                        "attributes",
                        "position",
                        "returnedQuantity",
                        "remainingQuantity",
                    },
                ),
            )
            for item in body.cartItems
        ]
    return SessionInput(
        profile_id=body.profileId if "profileId" in fields else None,
        store_integration_id=body.storeIntegrationId,
        coupon_codes=body.couponCodes,
        referral_code=body.referralCode,
        loyalty_cards=body.loyaltyCards,
        identifiers=body.identifiers,
        attributes=body.attributes,
        additional_costs=(
            {name: to_money(cost.price) for name, cost in body.additionalCosts.items()}
            if body.additionalCosts is not None
            else None
        ),
        cart_items=items,
        state=body.state,
    )


@api.put(
    "/v2/customer_sessions/{customerSessionId}",
    response={200: schemas.IntegrationStateV2, **ERRORS},
    summary="Update customer session",
    tags=["Customer sessions"],
)
@mutating
def update_customer_session(
    request: HttpRequest,
    customerSessionId: str,
    body: schemas.IntegrationRequest,
    query: Query[SessionQuery],
) -> HttpResponse:
    key = _key(request)
    now = query.now
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)  # the SDK sends naive datetimes: they are UTC
    result = session_update(
        application=key.application,
        integration_id=customerSessionId,
        data=_to_input(body.customerSession),
        dry=query.dry,
        now=now,
        evaluable_campaign_ids=body.customerSession.evaluableCampaignIds,
        response_content=set(body.responseContent or ()),
    )
    return presenters.json_response(
        presenters.integration_state(result, sandbox=key.application.environment.is_sandbox)
    )


@api.get(
    "/v2/customer_sessions/{customerSessionId}",
    response={200: schemas.IntegrationCustomerSessionResponse, **ERRORS},
    summary="Get customer session",
    tags=["Customer sessions"],
)
def get_customer_session(request: HttpRequest, customerSessionId: str) -> HttpResponse:
    result = session_selectors.session_get(
        application=_key(request).application, integration_id=customerSessionId
    )
    return presenters.json_response(
        {
            "customerSession": presenters.customer_session(result.session, result.items),
            "effects": result.session.effects,
        }
    )


@api.post(
    "/v2/customer_sessions/{customerSessionId}/returns",
    response={201: schemas.IntegrationStateV2, **ERRORS},
    summary="Return cart items",
    tags=["Customer sessions"],
)
@mutating
def return_cart_items(
    request: HttpRequest,
    customerSessionId: str,
    body: schemas.ReturnIntegrationRequest,
    query: Query[SessionQuery],
) -> HttpResponse:
    key = _key(request)
    result = session_return_items(
        application=key.application,
        integration_id=customerSessionId,
        returned=[(item.position, item.quantity) for item in body.return_.returnedCartItems],
    )
    return presenters.json_response(
        presenters.integration_state(result, sandbox=key.application.environment.is_sandbox), status=201
    )


@api.put(
    "/v2/customer_sessions/{customerSessionId}/reopen",
    response={200: schemas.ReopenSessionResponse, **ERRORS},
    summary="Reopen customer session",
    tags=["Customer sessions"],
)
@mutating
def reopen_customer_session(request: HttpRequest, customerSessionId: str) -> HttpResponse:
    result = session_reopen(application=_key(request).application, integration_id=customerSessionId)
    return presenters.json_response({"effects": result.effects})


@api.put(
    "/v2/customer_profiles/{integrationId}",
    response={200: schemas.CustomerProfileIntegrationResponseV2, **ERRORS},
    summary="Update customer profile",
    tags=["Customer profiles"],
)
@mutating
def update_customer_profile(
    request: HttpRequest,
    integrationId: str,
    body: schemas.CustomerProfileIntegrationRequestV2,
    query: Query[ProfileQuery],
) -> HttpResponse:
    application = _key(request).application
    environment = application.environment
    if not query.runRuleEngine:
        profile, _ = profile_upsert(
            environment=environment,
            integration_id=integrationId,
            attributes=body.attributes or {},
            consent_by=ConsentActor.api_key(_key(request)),
        )
        return presenters.json_response(
            {
                "customerProfile": presenters.customer_profile(profile, sandbox=environment.is_sandbox),
                **presenters.NO_EFFECTS,
            }
        )
    wanted = set(body.responseContent or ())
    profile, answer = profile_update_evaluated(
        application=application,
        integration_id=integrationId,
        attributes=body.attributes or {},
        dry=query.dry,
        evaluable_campaign_ids=body.evaluableCampaignIds,
        response_content=wanted,
        consent_by=ConsentActor.api_key(_key(request)),
    )
    return presenters.json_response(
        {
            "customerProfile": presenters.customer_profile(profile, sandbox=environment.is_sandbox),
            **_engine_answer(answer, wanted),
        }
    )


def _engine_answer(answer: Answer, wanted: set[str]) -> dict[str, object]:
    shown: dict[str, object] = {
        "effects": answer.effects,
        "createdCoupons": answer.created_coupons,
        "createdReferrals": answer.created_referrals,
    }
    if "triggeredCampaigns" in wanted:
        shown["triggeredCampaigns"] = answer.triggered_campaigns
    if "ruleFailureReasons" in wanted:
        shown["ruleFailureReasons"] = answer.rule_failure_reasons
    return shown


def _event(event: Event) -> dict[str, object]:
    """Talon.One's Event."""
    shown: dict[str, object] = {
        "id": event.pk,
        "created": event.created,
        "applicationId": event.application_id,
        "profileId": event.profile_integration_id,
        "storeIntegrationId": event.store_integration_id,
        "type": event.type,
        "attributes": event.attributes,
        "effects": event.effects,
    }
    if not event.store_integration_id:
        del shown["storeIntegrationId"]  # the SDK refuses an empty one
    return shown


@api.post(
    "/v2/events",
    response={200: schemas.TrackEventV2Response, 204: None, **ERRORS},
    summary="Track event",
    tags=["Events"],
)
@mutating
def track_event(
    request: HttpRequest, body: schemas.IntegrationEventV2Request, query: Query[EventQuery]
) -> HttpResponse:
    key = _key(request)
    wanted = set(body.responseContent or ())
    result = event_track(
        application=key.application,
        profile_id=body.profileId,
        type=body.type,
        attributes=body.attributes,
        store_integration_id=body.storeIntegrationId,
        dry=query.dry,
        evaluable_campaign_ids=body.evaluableCampaignIds,
        force_complete=query.forceCompleteEvaluation,
        response_content=wanted,
    )
    if query.silent != "no":
        return presenters.json_response(None, status=204)
    shown = _engine_answer(result.answer, wanted)
    # Without responseContent the customer and the event come along, as the session endpoint's customer does.
    if not wanted or "customerProfile" in wanted:
        shown["customerProfile"] = presenters.customer_profile(
            result.profile, sandbox=key.application.environment.is_sandbox
        )
    if not wanted or "event" in wanted:
        shown["event"] = _event(result.event)
    return presenters.json_response(shown)


@api.put(
    "/v2/customer_profiles",
    response={200: schemas.MultipleCustomerProfileIntegrationResponseV2, 204: None, **ERRORS},
    summary="Update multiple customer profiles (up to 1000)",
    tags=["Customer profiles"],
)
@mutating
def update_customer_profiles(
    request: HttpRequest, body: schemas.MultipleCustomerProfileIntegrationRequest, query: Query[BulkQuery]
) -> HttpResponse:
    environment = _key(request).application.environment
    profiles = profiles_bulk_upsert(
        environment=environment,
        items=[(item.integrationId, item.attributes or {}) for item in body.customerProfiles],
        consent_by=ConsentActor.api_key(_key(request)),
    )
    if query.silent != "no":
        return presenters.json_response(None, status=204)
    return presenters.json_response(
        {
            "integrationStates": [
                {"customerProfile": presenters.customer_profile(p, sandbox=environment.is_sandbox)}
                for p in profiles
            ]
        }
    )


@api.delete(
    "/v1/customer_data/{integrationId}",
    response={204: None, **ERRORS},
    summary="Delete customer's personal data",
    tags=["Customer profiles"],
)
@mutating
def delete_customer_data(request: HttpRequest, integrationId: str) -> HttpResponse:
    customer_data_erase(environment=_key(request).application.environment, integration_id=integrationId)
    return presenters.json_response(None, status=204)


# Referral codes, coupon reservations and the customer's inventory (#2-#4, #8, #16, #17).
api.add_router("", codes_router)
