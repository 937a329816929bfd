from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from patronage.core.errors import ErrorDetail, PayloadTooLarge

API_PREFIXES = ("/v1/", "/v2/", "/api/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class BodySizeLimitMiddleware:
    """Refuse oversized API bodies up front (413, JSON) before anything reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request.path):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            limit = settings.PATRONAGE_MAX_BODY_BYTES
            if length > limit:
                from .errors import error_response

                message = f"The request body is {length} bytes; the limit is {limit} bytes"
                return error_response(message, [ErrorDetail(PayloadTooLarge.title, message)], 413)
        return self.get_response(request)
