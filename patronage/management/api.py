"""Management API for staff tools and scripts: a Management API key or the staff session, checked per call."""

import datetime as dt

from django.http import HttpRequest
from ninja import NinjaAPI, Query, Schema
from ninja.errors import AuthenticationError
from ninja.pagination import paginate

from patronage.core.errors import AuthenticationFailed, ErrorDetail, NotFound
from patronage.customers.models import CustomerProfile
from patronage.integration.errors import domain_error_response, error_response, install
from patronage.management.access import (
    MISSING_AUTH,
    SCHEME,
    PermissionDenied,
    management_auth,
    require,
)
from patronage.management.pagination import LimitOffsetPagination
from patronage.workspace.models import Application

from .analytics import router as analytics_router
from .campaigns import router as campaigns_router
from .coupons import router as coupons_router
from .offers import router as offers_router
from .promocodes import router as promocodes_router
from .referrals import router as referrals_router
from .schemas import ProfileOut
from .segments import router as segments_router

api = NinjaAPI(
    title="Patronage Management API",
    version="1.0",
    description=(
        f"For staff tools and scripts. Authenticate with `Authorization: {SCHEME} <key>` (a Management API "
        "key, acting with its staff user's permissions) or the back-office session cookie."
    ),
    urls_namespace="management",
    docs_url="/docs",
    openapi_url="/openapi.json",
    auth=management_auth,
)
install(api, missing_auth=MISSING_AUTH)


@api.exception_handler(AuthenticationFailed)
def on_unauthorized(request: HttpRequest, exc: AuthenticationFailed):  # type: ignore[no-untyped-def]
    response = domain_error_response(request, exc)
    response["WWW-Authenticate"] = SCHEME  # this API's scheme, not the Integration API's
    return response


@api.exception_handler(AuthenticationError)
def on_missing_auth(request: HttpRequest, exc: AuthenticationError):  # type: ignore[no-untyped-def]
    detail = ErrorDetail("Unauthorized", MISSING_AUTH, pointer="header:Authorization")
    return on_unauthorized(request, AuthenticationFailed(MISSING_AUTH, details=[detail]))


@api.exception_handler(PermissionDenied)
def on_forbidden(request: HttpRequest, exc: PermissionDenied):  # type: ignore[no-untyped-def]
    return error_response(exc.message, exc.details, 403)


class HealthOut(Schema):
    status: str


@api.get("/health", response=HealthOut, auth=None, tags=["Service"], summary="Liveness probe")
def health(request: HttpRequest) -> dict[str, str]:
    return {"status": "ok"}


class ApplicationOut(Schema):
    id: int
    name: str
    slug: str
    environment: str
    currency: str
    timeZone: str
    description: str
    created: dt.datetime

    @staticmethod
    def resolve_environment(obj: Application) -> str:
        return obj.environment.slug

    @staticmethod
    def resolve_timeZone(obj: Application) -> str:
        return obj.time_zone


@api.get("/applications", response=list[ApplicationOut], tags=["Applications"])
@paginate(LimitOffsetPagination)
def list_applications(request: HttpRequest):  # type: ignore[no-untyped-def]
    require(request, "workspace.view_application")
    return Application.objects.select_related("environment").order_by("id")


@api.get("/applications/{application_id}", response=ApplicationOut, tags=["Applications"])
def get_application(request: HttpRequest, application_id: int) -> Application:
    require(request, "workspace.view_application")
    app = Application.objects.select_related("environment").filter(pk=application_id).first()
    if app is None:
        raise NotFound(f"Application {application_id} not found")
    return app


class ProfileFilter(Schema):
    environment: str = "live"


@api.get("/customer_profiles", response=list[ProfileOut], tags=["Customers"])
@paginate(LimitOffsetPagination)
def list_customer_profiles(request: HttpRequest, filters: Query[ProfileFilter]):  # type: ignore[no-untyped-def]
    require(request, "customers.view_customerprofile")
    return CustomerProfile.objects.filter(environment__slug=filters.environment).order_by("-id")


# Each router's own auth is management_auth too (a Management API key or the staff session).
api.add_router("/offers", offers_router)
# Its paths are whole (/promocode-groups..., /promocodes/redeem): mounted at the API's root.
api.add_router("", promocodes_router)
api.add_router("/segments", segments_router)
api.add_router("/applications", analytics_router)
api.add_router("/applications", campaigns_router)
api.add_router("/applications", referrals_router)
api.add_router("/applications", coupons_router)
