from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.shortcuts import redirect
from django.urls import include, path, re_path
from django.views.static import serve

from patronage.core import admin_login
from patronage.core.errors import ErrorDetail
from patronage.integration.api import api as integration_api
from patronage.integration.errors import error_response
from patronage.integration.middleware import is_api_path
from patronage.management.api import api as management_api

urlpatterns = [
    path("", lambda request: redirect("admin:index")),
    path("favicon.ico", lambda request: HttpResponse(status=204)),
    path("admin/login/", admin_login.login),  # the site's login, throttled (429 when refused)
    path("admin/", include("patronage.coupons.admin_customers")),  # Return items of a session
    path("admin/", admin.site.urls),
    path("api/v1/", management_api.urls),
    path("panel/<slug:shop>/", include("patronage.panel.urls")),
    path("unsubscribe/", include("patronage.mailings.unsubscribe_views")),
    # Offer pictures. Public by nature (the panel shows them); a proxy may serve MEDIA_ROOT itself instead.
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
    path("", integration_api.urls),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request.path):
        message = f"No endpoint {request.method} {request.path}"
        return error_response(message, [ErrorDetail("Not found", message, pointer=request.path)], 404)
    return HttpResponseNotFound("<h1>Not found</h1><p>There is no page at this address.</p>")


def handler500(request: HttpRequest) -> HttpResponse:
    message = "Internal server error"
    if is_api_path(request.path):
        return error_response(message, [ErrorDetail("Internal error", message)], 500)
    return HttpResponse("<h1>Server error</h1><p>Something went wrong; it has been logged.</p>", status=500)
