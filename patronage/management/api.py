"""Management API for staff tools: session-authenticated, permission-checked, read-mostly for now."""

import datetime as dt

from django.http import HttpRequest
from ninja import NinjaAPI, Query, Schema
from ninja.pagination import LimitOffsetPagination, paginate
from ninja.security import django_auth

from patronage.core.errors import NotFound
from patronage.customers.models import CustomerProfile
from patronage.integration.errors import error_response, install
from patronage.management.access import PermissionDenied, require
from patronage.workspace.models import Application

from .schemas import ProfileOut

api = NinjaAPI(
    title="Patronage Management API",
    version="1.0",
    description="For staff tools. Authenticate by logging in to the back office (session cookie).",
    urls_namespace="management",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
install(api, missing_auth="Log in to the back office first: this API uses the staff session")


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


@api.get("/applications", response=list[ApplicationOut], auth=django_auth, tags=["Applications"])
@paginate(LimitOffsetPagination)
def list_applications(request: HttpRequest):  # type: ignore[no-untyped-def]
    require(request, "workspace.view_application")
    return Application.objects.select_related("environment").order_by("id")


@api.get("/applications/{application_id}", response=ApplicationOut, auth=django_auth, tags=["Applications"])
def get_application(request: HttpRequest, application_id: int) -> Application:
    require(request, "workspace.view_application")
    app = Application.objects.select_related("environment").filter(pk=application_id).first()
    if app is None:
        raise NotFound(f"Application {application_id} not found")
    return app


class ProfileFilter(Schema):
    environment: str = "live"


@api.get("/customer_profiles", response=list[ProfileOut], auth=django_auth, tags=["Customers"])
@paginate(LimitOffsetPagination)
def list_customer_profiles(request: HttpRequest, filters: Query[ProfileFilter]):  # type: ignore[no-untyped-def]
    require(request, "customers.view_customerprofile")
    return CustomerProfile.objects.filter(environment__slug=filters.environment).order_by("-id")


# At the end: the offers router uses this module's access checks.
from patronage.offers.api import router as offers_router  # noqa: E402

api.add_router("/offers", offers_router)

from patronage.promocodes.api import router as promocodes_router  # noqa: E402

# Its paths are whole (/promocode-groups..., /promocodes/redeem): mounted at the API's root.
api.add_router("", promocodes_router)

from patronage.segments.api import router as segments_router  # noqa: E402

api.add_router("/segments", segments_router)
